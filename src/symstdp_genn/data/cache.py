"""Cache files: atomic writes, SHA-256 checks and the ``.verified`` stamp that saves
hashing 55 MB on every start.

The stamp remembers, per file, the SHA-256 it was verified against together with the
file's size, mtime, inode and ctime. ``touch -r`` (or :func:`os.utime`) can put an old
mtime back on a file edited in place, but nothing short of changing the clock can restore
its ctime, and replacing the file gives it a new inode: either makes the file be hashed
again. (Hashing all four MNIST files took 0.04-0.06 s on the development machine, cheap
there, but several times that on machines without SHA instructions; the stamp costs four
``stat`` calls, about 50 µs.)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import zlib
from pathlib import Path

log = logging.getLogger(__name__)


_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path: Path) -> bool:
    """Detect gzip by its magic bytes, because downloaded files are not always named .gz."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


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


def probe_writable(folder: Path) -> OSError | None:
    """Create and remove a file in ``folder``; the error if that is impossible, else None.

    Tried before anything is fetched or moved aside, so that a read-only data folder ends
    in one clear line instead of a traceback from the middle of a download.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe-", suffix=".tmp")
    except OSError as exc:
        return exc
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)
    return None


def aside_name(path: Path) -> Path:
    """``<file>.bad-sha256``, or ``.bad-sha256.2``, ``.3``... when earlier copies exist:
    every corrupted copy is kept, because it may be the only evidence of what went wrong."""
    first = path.with_name(f"{path.name}.bad-sha256")
    if not first.exists():
        return first
    k = 2
    while (cand := path.with_name(f"{first.name}.{k}")).exists():
        k += 1
    return cand


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
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino,
            "ctime_ns": st.st_ctime_ns}


def _cached_ok(
    folder: Path, fname: str, expect: tuple[int, str], stamp: dict[str, dict[str, object]]
) -> bool | None:
    """Is ``folder/fname`` the right file? None if absent, False if present but wrong.

    A stamp entry with the same size, mtime, inode, ctime and expected digest saves hashing
    the file; an entry written before inode and ctime were recorded does not match.
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
