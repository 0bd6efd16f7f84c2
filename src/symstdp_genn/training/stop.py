"""How a training is asked to stop: Ctrl-C, SIGTERM or a ``threading.Event``, all alike,
so that every way of stopping saves a checkpoint first."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                     if hasattr(signal, name))


class StopRequest:
    """Ctrl-C, SIGTERM (what ``kill``, ``timeout`` and batch schedulers send) and a
    ``threading.Event`` all ask a training to stop the same way.

    While training, the first request sets :attr:`stop` (the loop saves a checkpoint and
    stops after the current sample); a second signal interrupts at once. Once
    :attr:`immediate` is set (the final checkpoint is written, the final evaluation runs)
    a signal raises ``KeyboardInterrupt`` straight away: nothing is left to save.
    """

    def __init__(self, event: threading.Event | None = None):
        self.event = event
        self.signalled = ""
        self.immediate = False

    @property
    def stop(self) -> bool:
        return bool(self.signalled) or (self.event is not None and self.event.is_set())

    @property
    def source(self) -> str:
        return self.signalled or ("stop request" if self.stop else "")

    def handle(self, signum: int, frame: object) -> None:
        if self.signalled or self.immediate:
            self.signalled = self.signalled or signal.Signals(signum).name
            raise KeyboardInterrupt
        self.signalled = signal.Signals(signum).name

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Install the signal handlers for the block; only the main thread can (elsewhere
        the caller's ``threading.Event`` is the way to stop)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self.handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt for the block (main thread only), so code that
    already cleans up after Ctrl-C (a starting run, a sweep's client) does the same when
    ``kill``, ``timeout`` or a batch system ends it."""
    if (not hasattr(signal, "SIGTERM")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
