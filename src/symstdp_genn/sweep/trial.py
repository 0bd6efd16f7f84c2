"""The worker side: run (or resume, or skip) one trial in its own run folder.

A trial folder is an ordinary run folder made by :func:`symstdp_genn.runner.train_run`, so
``--mode test`` and ``--mode plot`` work on it. The sweep owns these folders: one with a
``checkpoint.npz`` is resumed (a killed or interrupted trial), one without is a trial that
died before its first checkpoint and is started again from scratch. ``result.json`` is
written atomically, last, and carries the config hash, so its presence with the same hash
is what "finished" means.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_path
from ..config import config_from_dict
from ..data import default_data_dir, ensure_dataset
from ..training.metrics import finite
from .spec import config_hash

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
CHECKPOINT = "checkpoint.npz"
FINISHED, FAILED, INTERRUPTED = "finished", "failed", "interrupted"


@dataclass
class TrialControl:
    """Stop switches of the trials running in one process (held by the worker plugin), so
    Ctrl-C, SIGTERM or a closing worker can make every running trial save and stop."""

    events: set[threading.Event] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    idle: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.idle = threading.Condition(self.lock)

    def add(self, event: threading.Event) -> None:
        with self.lock:
            self.events.add(event)

    def discard(self, event: threading.Event) -> None:
        with self.lock:
            self.events.discard(event)
            self.idle.notify_all()

    def stop_all(self) -> int:
        with self.lock:
            for event in self.events:
                event.set()
            return len(self.events)

    def wait_idle(self, timeout: float) -> bool:
        with self.lock:
            return self.idle.wait_for(lambda: not self.events, timeout)


def read_result(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(run_dir) / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(run_dir: Path, expected_hash: str) -> bool:
    result = read_result(run_dir)
    return (result is not None and result.get("status") == FINISHED
            and result.get("config_hash") == expected_hash)


def write_result(run_dir: Path, result: dict[str, Any]) -> None:
    text = json.dumps({k: finite(v) for k, v in result.items()}, indent=1, sort_keys=True)
    with atomic_path(Path(run_dir) / RESULT_FILE) as tmp:
        tmp.write_text(text + "\n")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_trial(config_data: dict[str, Any], run_dir: str, data_dir: str | None,
              control: TrialControl | None = None) -> dict[str, Any]:
    """Run one trial to the end (or until stopped); always returns its result record.

    Errors are caught and recorded (status 'failed' with a one-line reason) so that one
    bad trial never stops a sweep; only the death of the process escapes.
    """
    from ..runner import is_locked, train_run  # the shared entry point; imported late

    folder = Path(run_dir)
    digest = config_hash(config_data)
    base = {"config_hash": digest, "run_dir": str(folder)}
    if is_finished(folder, digest):
        return {**read_result(folder), "skipped": True}
    stop = threading.Event()
    if control is not None:
        control.add(stop)
    tic = time.perf_counter()
    try:
        config = config_from_dict(config_data)
        checkpoint = folder / CHECKPOINT
        resume = checkpoint if checkpoint.is_file() else None
        if resume is None and folder.exists() and not is_locked(folder):
            # (a locked folder is being trained in: train_run below refuses it, by name)
            log.info("%s has no checkpoint: starting the trial again", folder)
            shutil.rmtree(folder)
        # the worker's own default data folder (never its working directory)
        data_folder = Path(data_dir) if data_dir is not None else default_data_dir()
        ensure_dataset(config.dataset, data_folder)
        outcome = train_run(config, folder, resume=resume, data_dir=data_folder,
                            show_progress=False, stop_event=stop, final_evaluation=False)
    except Exception as exc:  # recorded, not raised: the sweep goes on
        if stop.is_set():  # Ctrl-C also reaches child processes (a compiler): not a failure
            return {**base, "status": INTERRUPTED, "reason": one_line(exc)}
        log.warning("trial %s failed: %s", folder.name, one_line(exc))
        result = {**base, "status": FAILED, "reason": one_line(exc),
                  "wall_s": time.perf_counter() - tic}
        if folder.is_dir() and not is_locked(folder):  # never into another's running trial
            write_result(folder, result)
        return result
    finally:
        if control is not None:
            control.discard(stop)
    if outcome.interrupted:
        return {**base, "status": INTERRUPTED, "samples_seen": outcome.samples_seen}
    # the score is the last periodic evaluation on the sweep's split (kept in the
    # checkpoint's selection state, so a trial resumed after it still has it)
    curve = (outcome.selection or {}).get("curve") or [{}]
    final = curve[-1]
    result = {**base, "status": FINISHED, "samples_seen": outcome.samples_seen,
              "supervised_accuracy": final.get("supervised_accuracy"),
              "assignment_accuracy": final.get("assignment_accuracy"),
              "silent_fraction": final.get("silent_fraction"),
              "eval_samples": final.get("n"),
              "samples_per_s": outcome.samples_per_s,
              "wall_s": time.perf_counter() - tic}
    write_result(folder, result)
    return result
