"""What a user sees while work runs: progress, and the few messages that must reach them.

* On a terminal, progress is a tqdm bar. Anywhere else (piped, ``nohup``, CI, a Dask
  worker) a bar is unreadable and tqdm stays silent, which left hour-long runs printing
  nothing between the start line and the results; there a plain line (samples, running
  accuracy, samples/s, ETA) is logged at most every :data:`PLAIN_INTERVAL_S` seconds.
* A *notice* is a log record a user must see even without ``-v``: where data comes from,
  a compilation, a figure skipped for a missing package, how many images labelling used.
  :func:`notice` marks the record; :class:`ConsoleFilter` lets warnings and notices through
  to the terminal handler, while the run's ``log.txt`` gets every record but the plain
  progress lines (:func:`for_log_file`).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a declared dependency
    tqdm = None

log = logging.getLogger(__name__)

#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL_S = 30.0
#: How postfix keys read in a plain line.
POSTFIX_WORDS = {"running": "running accuracy"}
#: ``extra=`` of a log record that the console shows at INFO level.
NOTICE_EXTRA = {"notice": True}
#: ``extra=`` of a plain progress line: a notice for the console, but not for a run's
#: ``log.txt`` (see :func:`for_log_file`)
PROGRESS_EXTRA = {**NOTICE_EXTRA, "progress": True}


def notice(logger: logging.Logger, message: str, *args: object) -> None:
    """Log ``message`` at INFO, marked for the terminal as well as the log file."""
    logger.info(message, *args, extra=NOTICE_EXTRA)


def is_notice(record: logging.LogRecord) -> bool:
    return bool(getattr(record, "notice", False))


def for_log_file(record: logging.LogRecord) -> bool:
    """A run's ``log.txt`` filter: everything but the plain progress lines. Those come
    every :data:`PLAIN_INTERVAL_S` seconds, for a person watching a console that is not a
    terminal. The log file has the training's own line instead (samples, running accuracy,
    samples/s at a multiple of 1 000 samples, at most once a minute while progress is
    shown); both in one file read as two formats of the same thing at unrelated times."""
    return not getattr(record, "progress", False)


class ConsoleFilter(logging.Filter):
    """Warnings and errors, plus INFO records marked with :func:`notice`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or is_notice(record)


class ConsoleFormatter(logging.Formatter):
    """Notices as plain lines; everything else as ``LEVEL: message``."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if is_notice(record) and record.levelno < logging.WARNING:
            return record.getMessage()
        return super().format(record)


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``: an ETA a reader takes in at a glance."""
    if not math.isfinite(seconds):
        return "unknown"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class ProgressBar:
    """``with ProgressBar(total, "training", show) as bar: bar.advance(1, running="91%")``.

    ``show=False`` prints nothing. Otherwise a tqdm bar when ``stream`` (default stderr) is
    a terminal, else a plain :func:`notice` line at most every ``interval_s`` seconds.
    """

    def __init__(self, total: int, description: str, show: bool = True, initial: int = 0,
                 *, stream: TextIO | None = None, interval_s: float = PLAIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self._bar = None
        self._plain = False
        self.total, self.description, self.n = total, description, initial
        self._initial, self._interval, self._clock = initial, interval_s, clock
        self._postfix: dict[str, Any] = {}
        self._start = self._last = clock()
        if not show or total <= 0:
            return
        stream = stream if stream is not None else sys.stderr
        on_terminal = bool(getattr(stream, "isatty", lambda: False)())
        if on_terminal and tqdm is not None:
            self._bar = tqdm(total=total, initial=initial, desc=description, unit="sample",
                             dynamic_ncols=True, file=stream, smoothing=0.05, leave=True)
        else:
            self._plain = True

    def advance(self, n: int = 1, **postfix: Any) -> None:
        self.n += n
        if postfix:
            self._postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)
        elif self._plain:
            now = self._clock()
            if now - self._last >= self._interval:
                self._last = now
                log.info("%s", self.line(now), extra=PROGRESS_EXTRA)

    def line(self, now: float) -> str:
        """``training: 1,200 of 2,000 samples (60 %), running accuracy 85.1%, retries 3,
        12.3 samples/s, ETA 1 min 05 s``."""
        elapsed = now - self._start
        done = self.n - self._initial
        rate = done / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - self.n) / rate if rate > 0 else float("nan")
        extra = "".join(f", {POSTFIX_WORDS.get(k, k)} {v}" for k, v in self._postfix.items())
        pct = 100 * self.n / self.total if self.total else 100.0
        return (f"{self.description}: {self.n:,} of {self.total:,} samples ({pct:.0f} %)"
                f"{extra}, {rate:.1f} samples/s, ETA {duration_text(eta)}")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
