"""How a training is asked to stop: Ctrl-C, SIGTERM, SIGHUP or a ``threading.Event``, all
alike, so that every way of stopping saves a checkpoint first.

SIGHUP is what a closing terminal (or a dropped ssh session) sends: a run started there
saves and stops as after Ctrl-C instead of dying with its work since the last checkpoint.
A signal the process was started ignoring (``nohup``, a background job's SIGINT) stays
ignored: whoever started it asked for that."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
#: the signals that end a process the way Ctrl-C does, besides SIGINT itself
INTERRUPT_SIGNALS = tuple(s for s in STOP_SIGNALS if s != signal.SIGINT)


class StopRequest:
    """Ctrl-C, SIGTERM (what ``kill``, ``timeout`` and batch schedulers send), SIGHUP (a
    closed terminal) and a ``threading.Event`` all ask a training to stop the same way.

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
        for s, handler in previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(s, self.handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class Interrupted(KeyboardInterrupt):
    """KeyboardInterrupt raised by another signal than SIGINT; ``signal_name`` says which."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt (:class:`Interrupted`) for the block (main
    thread only), so code that already cleans up after Ctrl-C (a starting run, a sweep's
    client, a test pass) does the same when ``kill``, ``timeout``, a batch system or a
    closing terminal ends it."""
    if not INTERRUPT_SIGNALS or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.getsignal(s) for s in INTERRUPT_SIGNALS}
    for s, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, interrupt)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
