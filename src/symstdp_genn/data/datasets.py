"""Loading a verified dataset into arrays, Fashion-MNIST's intensity scaling, and the
validation split.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .fetch import ensure_dataset
from .idx import read_idx
from .specs import FILES, _spec

#: Environment variable naming the data folder (overrides the defaults below).
DATA_ENV = "SYMSTDP_DATA"


def _source_checkout() -> Path | None:
    """The project folder when this package runs from a source checkout, else None."""
    root = Path(__file__).resolve().parents[3]  # data/ -> symstdp_genn/ -> src/ -> root
    if (root / "setup.cfg").is_file() and (root / "src" / "symstdp_genn").is_dir():
        return root
    return None


def default_data_dir() -> Path:
    """Where datasets live when ``--data-dir`` is not given, first match wins:

    1. ``$SYMSTDP_DATA``, when set (an explicit choice beats any default);
    2. the project's ``data/`` folder, when running from a source checkout (``run.py``,
       an editable install), wherever the working directory is;
    3. ``$XDG_CACHE_HOME/symstdp-genn/data`` (default ``~/.cache/symstdp-genn/data``)
       for an installed package.

    Never the working directory: running from another folder must not fetch MNIST again.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    root = _source_checkout()
    if root is not None:
        return root / "data"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "symstdp-genn" / "data"


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 rows of 784 pixels, labels as uint8 class numbers 0..9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    name: str = ""


def scale_to_mean(images: np.ndarray, target_mean: float = 30.0) -> np.ndarray:
    """Scale every image so its mean intensity is ``target_mean`` (spec §4, Fashion-MNIST).

    ``x <- clip(rint(x * target_mean / mean(x)), 0, 255)`` per image, as the original's MATLAB
    normalisation script does; it equalises the total input rate so that dark and bright
    garments drive the network equally. The first axis indexes images (a 1-D array is one
    image). Computed in float64 in blocks to bound memory; ``np.rint`` rounds halves to even
    where MATLAB rounds them away from zero (at most one grey level on exact .5 values).
    Images whose mean is 0 are returned unchanged. Returns a new uint8 array.
    """
    imgs = np.asarray(images)
    single = imgs.ndim == 1
    flat = imgs.reshape(1 if single else imgs.shape[0], -1)
    out = np.empty(flat.shape, dtype=np.uint8)
    block = 8192
    for start in range(0, flat.shape[0], block):
        x = flat[start : start + block].astype(np.float64)
        mean = x.mean(axis=1, keepdims=True)
        factor = np.divide(target_mean, mean, out=np.ones_like(mean), where=mean > 0)
        np.clip(np.rint(x * factor), 0, 255, out=x)
        out[start : start + block] = x
    return out.reshape(imgs.shape)


def _check_pair(
    images: np.ndarray, labels: np.ndarray, folder: Path, which: str
) -> tuple[np.ndarray, np.ndarray]:
    if (
        images.dtype != np.uint8
        or labels.dtype != np.uint8
        or images.ndim != 3
        or images.shape[1:] != (28, 28)
        or labels.ndim != 1
        or labels.shape[0] != images.shape[0]
        or (labels.size and labels.max() > 9)
    ):
        raise UserError(
            f"{folder}: {which} files are not 28x28 uint8 images with matching labels 0..9 "
            f"(images {images.dtype}{images.shape}, labels {labels.dtype}{labels.shape}); "
            f"delete the folder and fetch the dataset again"
        )
    return images.reshape(images.shape[0], 28 * 28), labels


def load_dataset(name: str, data_dir: str | os.PathLike[str]) -> Dataset:
    """Fetch (if needed), verify and load a dataset; Fashion-MNIST comes pre-scaled.

    Images are ``uint8 [N, 784]`` in the files' order (the original trains in fixed order).
    For ``fashion-mnist`` every image is scaled to mean intensity 30 (:func:`scale_to_mean`).
    """
    spec = _spec(name)
    folder = ensure_dataset(spec.name, data_dir)
    tr_x, tr_y, te_x, te_y = (read_idx(folder / f) for f in FILES)
    tr_x, tr_y = _check_pair(tr_x, tr_y, folder, "train")
    te_x, te_y = _check_pair(te_x, te_y, folder, "t10k")
    if spec.scale_to_mean is not None:
        tr_x = scale_to_mean(tr_x, spec.scale_to_mean)
        te_x = scale_to_mean(te_x, spec.scale_to_mean)
    return Dataset(tr_x, tr_y, te_x, te_y, name=spec.name)


def validation_split(dataset: Dataset, n_validation: int = 10000) -> Dataset:
    """Hold out the last ``n_validation`` training samples as the "test" set.

    For tuning hyper-parameters without ever looking at the real test set. The split is
    deterministic (no shuffling), matching the fixed sample order of the original. The
    arrays are views of ``dataset``'s arrays, not copies.
    """
    n = dataset.train_images.shape[0]
    if not 0 < n_validation < n:
        raise UserError(
            f"n_validation must be between 1 and {n - 1} for {n} training samples, "
            f"got {n_validation}"
        )
    cut = n - n_validation
    return dataclasses.replace(
        dataset,
        train_images=dataset.train_images[:cut],
        train_labels=dataset.train_labels[:cut],
        test_images=dataset.train_images[cut:],
        test_labels=dataset.train_labels[cut:],
        name=f"{dataset.name}/validation" if dataset.name else "validation",
    )
