"""Advisory whole-file locks, the one place that knows the platform's call.

Two jobs use them: a training run holds ``RUN/.lock`` for its whole life (a second
process must be refused at once, so it tries without waiting), and a dataset folder is
locked while files are fetched or repaired in it (a second process, e.g. another Dask
worker starting at the same moment, waits and then finds the files in place instead of
fetching them again or moving the first one's fresh file aside).

The locks are ``flock`` locks on POSIX and ``msvcrt.locking`` byte locks on Windows;
both are released by the operating system when the process dies, so a killed run never
leaves a folder locked.
"""

from __future__ import annotations

import sys
from typing import IO

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def try_lock(handle: IO[str]) -> None:
        """Lock ``handle``'s file now or raise :class:`OSError` (another process holds it)."""
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def lock(handle: IO[str]) -> None:
        """Lock ``handle``'s file, waiting for whoever holds it."""
        handle.seek(0)
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # retries for ~10 s
                return
            except OSError:
                continue

    def unlock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def try_lock(handle: IO[str]) -> None:
        """Lock ``handle``'s file now or raise :class:`OSError` (another process holds it)."""
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def lock(handle: IO[str]) -> None:
        """Lock ``handle``'s file, waiting for whoever holds it."""
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def unlock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
