"""The IDX file format (raw or gzip-compressed): reader and atomic writer.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError
from .cache import _atomic_write_bytes, _is_gzip

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
