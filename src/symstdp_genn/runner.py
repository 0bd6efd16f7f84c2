"""One training run as a library call: the path ``--mode train`` and sweeps share.

(Placeholder of the i11-sweep branch with the shared contract's signature; the run-safety
work of issue 8 owns and replaces this module.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from .checkpoint import Checkpoint, check_size, load_checkpoint
from .config import Config
from .data import Dataset, load_dataset, validation_split
from .errors import UserError
from .training import Trainer, TrainingOutcome

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Exclusive for the whole run; the kernel drops it when the process dies (even kill -9)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"run folder {run_dir} is in use by process {holder}; wait for it "
                            "or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _run_log(run_dir: Path) -> Iterator[None]:
    """Log this thread's records into run_dir/log.txt; other handlers stay as they are."""
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    package = logging.getLogger("symstdp_genn")
    previous = package.level
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    package.addHandler(handler)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)
        handler.close()


def _load_data(config: Config, data_dir: Path | None) -> Dataset:
    dataset = load_dataset(config.dataset, data_dir if data_dir is not None else Path("data"))
    return validation_split(dataset) if config.training.validation else dataset


def _resume_checkpoint(config: Config, resume: Path) -> Checkpoint:
    ckpt = load_checkpoint(resume)
    if ckpt.meta.get("snapshot") or not isinstance(ckpt.meta.get("config"), dict):
        raise UserError(f"{resume} cannot be resumed (a snapshot or an imported network); "
                        "resume from a run's checkpoint.npz")
    check_size(ckpt, config.network.n_hidden, str(resume))
    old = ckpt.meta["config"]
    new = config.to_dict()
    for key in ("seed", "dataset"):
        if old.get(key) != new[key]:
            raise UserError(f"cannot resume {resume} with a different '{key}' "
                            f"({old.get(key)!r} -> {new[key]!r}); start a new run instead")
    for key, value in new["network"].items():
        if old.get("network", {}).get(key) != value:
            raise UserError(f"cannot resume {resume} with a different 'network.{key}' "
                            f"({old.get('network', {}).get(key)!r} -> {value!r}); "
                            "start a new run instead")
    return ckpt


def _remove_stale_temp_files(run_dir: Path) -> None:
    for pattern in (".*.tmp.*", "snapshots/.*.tmp.*"):
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)


def train_run(config: Config, run_dir: Path, *, resume: Path | None = None,
              data_dir: Path | None = None, show_progress: bool = False,
              stop_event: threading.Event | None = None) -> TrainingOutcome:
    """Train ``config`` into ``run_dir`` (new, or resumed from ``resume``)."""
    run_dir = Path(run_dir)
    if resume is None and run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"run folder {run_dir} already exists; resume it with --resume "
                        f"{run_dir / 'checkpoint.npz'} or choose another --out folder")
    ckpt = _resume_checkpoint(config, Path(resume)) if resume is not None else None
    with _run_lock(run_dir), _run_log(run_dir):
        _remove_stale_temp_files(run_dir)
        dataset = _load_data(config, data_dir)
        trainer = Trainer(config, dataset, run_dir, ckpt, str(resume or ""))
        return trainer.train(show_progress=show_progress, stop_event=stop_event)
