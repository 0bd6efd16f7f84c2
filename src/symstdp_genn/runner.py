"""One training run from start to finish, with the run folder kept safe throughout.

:func:`train_run` is the single library entry point for training (``--mode train`` and
the sweep both call it). Everything that protects a run folder lives here, because a
run that takes hours must never be mixed with another run or lost:

* an exclusive lock on ``RUN/.lock`` (``fcntl.flock``, ``msvcrt.locking`` on Windows) for
  the whole run, so two trainings never interleave their files;
* an existing run folder is never trained into afresh (see :func:`is_run_folder`);
* a resume may change ``training.*`` and ``evaluation.*`` but not what the weights mean
  (``seed``, ``dataset``, ``network.*``);
* temporary files a killed run left behind are removed;
* a folder the run created is removed again when the run fails before training starts.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from . import __version__
from .backends import backend_for
from .checkpoint import Checkpoint, CheckpointWriteError, check_size, load_checkpoint
from .config import Config, config_from_dict
from .data import Dataset, default_data_dir, load_dataset
from .errors import UserError
from .locking import try_lock, unlock
from .progress import for_log_file
from .selection import protocol_datasets
from .training import Trainer, TrainingOutcome, sigterm_as_interrupt

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
LOG_FILE = "log.txt"
#: What makes a folder a run folder: any one of these was written by a training that got
#: past its start (``log.txt`` alone is not: a start that failed leaves only that).
RUN_MARKERS = ("checkpoint.npz", "config.yaml", "metrics.jsonl", "snapshots")
#: Settings a resume may not change: the checkpoint's weights were trained under them.
FROZEN_ON_RESUME = ("seed", "dataset", "network")
#: ``checkpoint.atomic_path``'s temporary names: ``.<stem>.<8 hex>.tmp<suffix>``.
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[^.]*)?$")
#: Folders of a run that only the training process writes (``tests/`` is written by
#: ``--mode test``, which may run beside a training, so it is left alone).
_TRAINING_SUBFOLDERS = (".", "snapshots", "figures", "figures/receptive-fields")


def is_run_folder(folder: Path) -> bool:
    """True when ``folder`` holds a training run: any of :data:`RUN_MARKERS`."""
    folder = Path(folder)
    return folder.is_dir() and any((folder / name).exists() for name in RUN_MARKERS)


def load_data(config: Config, data_dir: Path | None = None) -> tuple[Dataset, Dataset]:
    """``(training, final)`` datasets of the run's protocol (:func:`protocol_datasets`)."""
    training, final = protocol_datasets(
        load_dataset(config.dataset, data_dir if data_dir is not None else default_data_dir()),
        config)
    if config.training.validation:
        log.info("three-way split: training on the first %d images, periodic evaluations on "
                 "the last %d training images, the test set once at the end",
                 len(training.train_images), len(training.test_images))
    return training, final


# ------------------------------------------------------------------------------------------
# resuming
# ------------------------------------------------------------------------------------------


def resumable_checkpoint(path: Path) -> tuple[Checkpoint, Config]:
    """Load a checkpoint that training can continue from, and the config it was trained with."""
    ckpt = load_checkpoint(path)
    data = ckpt.meta.get("config")
    if not isinstance(data, dict):
        raise UserError(f"{path} holds no training config and cannot be resumed; "
                        "train a new network instead")
    if ckpt.meta.get("snapshot"):
        raise UserError(f"{path} is a weights-only snapshot; resume from the run's "
                        "checkpoint.npz (snapshots can be tested, not resumed)")
    return ckpt, config_from_dict(data)


def check_resume_folder(resume: Path, run_dir: Path) -> None:
    """Refuse to continue ``resume`` in its own folder when that folder holds no run (a
    shipped network in ``models/pretrained/``, a checkpoint copied elsewhere): the run's
    files would be written beside it, among files that are not a run's."""
    resume, run_dir = Path(resume), Path(run_dir)
    if run_dir.resolve() == resume.resolve().parent and not is_run_folder(run_dir):
        raise UserError(
            f"--resume {resume}: that file is not in a training run folder (no config.yaml "
            "or metrics.jsonl beside it), so there is no run to continue there; test it with "
            f"--mode test --checkpoint {resume}, or train on from it into a new folder with "
            "--out DIR")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_resume_compatible(trained: Config, requested: Config, source: Path) -> list[str]:
    """Refuse a change of what the weights mean; return the allowed changes as text.

    The weights in a checkpoint were learnt under its seed, dataset and network
    parameters; continuing under others would write files that describe a network that
    never existed. The schedule and the evaluation may change (more epochs, another
    readout size)."""
    old, new = _flatten(trained.to_dict()), _flatten(requested.to_dict())
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key.split(".")[0] in FROZEN_ON_RESUME:
            raise UserError(
                f"--resume {source}: '{key}' is {old.get(key)!r} in the checkpoint but "
                f"{new.get(key)!r} was asked; a resumed run keeps the seed, dataset and "
                "network.* of its checkpoint (drop that setting, or train a new run with --out)")
        changes.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    return changes


# ------------------------------------------------------------------------------------------
# the run folder
# ------------------------------------------------------------------------------------------


def _refuse_unusable(run_dir: Path) -> None:
    check_path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} is a file, not a folder; choose another --out")


def check_path(path: Path, flag: str = "--out") -> None:
    """Refuse a path the operating system cannot even look up (a name over 255 bytes, a
    path too long, a loop of links) with one line, before anything is created."""
    try:
        Path(path).exists()
    except OSError as exc:
        raise path_error(path, exc, flag) from None


def path_error(path: Path, exc: OSError, flag: str = "--out") -> UserError:
    """One line for an ``OSError`` about ``path`` given as ``flag``."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENAMETOOLONG:
        reason += " (each folder or file name may have at most 255 bytes)"
    return UserError(f"{flag} {path}: {reason}; choose another {flag}")


@contextmanager
def writable_folder(folder: Path, flag: str = "--out") -> Iterator[Path]:
    """Create ``folder`` and prove that files can be written into it, before long work
    whose results would otherwise be lost at the end (a test pass of minutes); what this
    created is removed again, if still empty, when the block fails or is interrupted."""
    folder = Path(folder)
    check_path(folder, flag)
    top = _created_top(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe.{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        probe.unlink()
    except OSError as exc:
        _remove_empty(folder, top)
        raise UserError(f"cannot write into {flag} {folder}: {exc.strerror or exc}; choose a "
                        f"writable {flag}") from None
    try:
        yield folder
    except BaseException:
        _remove_empty(folder, top)
        raise


def check_run_dir(run_dir: Path, resume: Path | None = None) -> None:
    """Refuse to train into ``run_dir`` when that would overwrite or mix up a run.

    Without ``resume`` any existing run folder is refused; with it, only the
    checkpoint's own folder or a folder that holds no run is accepted."""
    run_dir = Path(run_dir)
    _refuse_unusable(run_dir)
    if is_locked(run_dir):
        raise _in_use(run_dir)
    _refuse_existing(run_dir, resume)


def _refuse_existing(run_dir: Path, resume: Path | None) -> None:
    if not is_run_folder(run_dir):
        return
    if resume is None:
        if (run_dir / "checkpoint.npz").is_file():
            raise UserError(f"{run_dir} already holds a training run; continue it with "
                            f"--resume {run_dir / 'checkpoint.npz'}, or train a new run "
                            "with another --out")
        raise UserError(f"{run_dir} already holds a training run that saved no checkpoint; "
                        "remove that folder, or train a new run with another --out")
    if run_dir.resolve() != Path(resume).resolve().parent:
        raise UserError(f"{run_dir} holds another training run; resume into the checkpoint's "
                        f"own folder (leave out --out), or choose a new --out")


def _writable_error(run_dir: Path, exc: OSError) -> UserError:
    reason = exc.strerror or str(exc)
    return UserError(f"cannot write into run folder {run_dir}: {reason}; choose a writable "
                     "--out")


class RunLock:
    """An exclusive advisory lock on ``RUN/.lock`` (holds the holder's pid).

    The lock file is left in place when released: deleting it would let a process that
    opened the old file and one that creates a new one both believe they hold the lock.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock and write this process's pid into it. Raises :class:`UserError`
        naming the holder when another process has it: two trainings in one folder would
        overwrite each other's checkpoints."""
        handle = open(self.path, "a+")
        try:
            try_lock(handle)
        except OSError:
            handle.close()
            raise _in_use(self.path.parent) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock back (the file stays, see above); nothing happens when not held."""
        if self._handle is not None:
            unlock(self._handle)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _in_use(run_dir: Path) -> UserError:
    try:
        holder = (Path(run_dir) / LOCK_FILE).read_text().strip() or "unknown"
    except OSError:
        holder = "unknown"
    return UserError(f"run folder {run_dir} is in use by another training (process {holder});"
                     " wait for it to finish, or choose another --out")


def is_locked(run_dir: Path) -> bool:
    """True while a training holds ``run_dir``'s lock (probes it; writes nothing)."""
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return False
    try:
        handle = open(path)
    except OSError:
        return False
    try:
        try_lock(handle)
    except OSError:
        return True
    else:
        unlock(handle)
        return False
    finally:
        handle.close()


def remove_stale_temps(run_dir: Path) -> list[Path]:
    """Delete the temporary files of writes a kill interrupted (only under the run's lock)."""
    removed = []
    for sub in _TRAINING_SUBFOLDERS:
        folder = Path(run_dir) / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _TEMP_NAME.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _created_top(run_dir: Path) -> Path | None:
    """The outermost folder of ``run_dir`` that does not exist yet (None if it exists)."""
    top = None
    for folder in (run_dir, *run_dir.parents):
        if folder.exists():
            break
        top = folder
    return top


class _RunLogHandler(logging.FileHandler):
    """``log.txt``: a failed write (disk full) must not print a traceback on the terminal;
    the next checkpoint or metrics write reports the problem as one line."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


@contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Log this thread's records into ``path`` for the duration; other handlers stay."""
    handler = _RunLogHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)  # parallel runs: own log each
    handler.addFilter(for_log_file)  # one progress format: the trainer's lines
    package = logging.getLogger("symstdp_genn")
    level = package.level
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        package.setLevel(level)


# ------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------


def train_run(config: Config, run_dir: Path, *, resume: Path | None = None,
              data_dir: Path | None = None, show_progress: bool = False,
              stop_event: threading.Event | None = None,
              final_evaluation: bool = True) -> TrainingOutcome:
    """Train ``config`` into ``run_dir`` (from ``resume`` when given); see the module doc.

    ``final_evaluation=False`` ends with the final checkpoint and the periodic evaluations
    only: a sweep scored on the validation split never touches the test set.

    The final checkpoint is written before the final evaluation; SIGINT/SIGTERM (main
    thread only) or ``stop_event`` stop the run with a checkpoint saved and
    ``outcome.interrupted`` set. Raises :class:`UserError` for anything the user can fix.
    """
    run_dir = Path(run_dir)
    checkpoint: Checkpoint | None = None
    changes: list[str] = []
    if resume is not None:
        checkpoint, trained = resumable_checkpoint(resume)
        check_size(checkpoint, config.network.n_hidden, str(resume))
        changes = check_resume_compatible(trained, config, resume)
        check_resume_folder(resume, run_dir)
    check_run_dir(run_dir, resume)
    parents_created = _created_top(run_dir.parent)
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()
            created = True
        except FileExistsError:
            created = False
        lock = RunLock(run_dir)
        lock.acquire()
    except OSError as exc:
        raise _writable_error(run_dir, exc) from None
    started = False
    try:
        _refuse_existing(run_dir, resume)  # again, now that no other run can start here
        with run_log(run_dir / LOG_FILE):
            for path in remove_stale_temps(run_dir):
                log.info("removed %s, left by an interrupted write", path)
            backend = backend_for(config)
            log.info("symstdp-genn %s: training %s on %s with the %s backend (asked: %s), "
                     "seed %d, into %s", __version__, config.name, config.dataset, backend,
                     config.backend, config.seed, run_dir)
            for change in changes:
                log.info("resume changes %s", change)
            with sigterm_as_interrupt():  # a kill while starting up cleans up as Ctrl-C does
                dataset, final_dataset = load_data(config, data_dir)
                trainer = Trainer(config, dataset, run_dir, checkpoint, str(resume or ""),
                                  final_dataset=final_dataset)
            started = True
            try:
                return trainer.train(show_progress=show_progress, stop_event=stop_event,
                                     final_evaluation=final_evaluation)
            except (OSError, CheckpointWriteError) as exc:
                if isinstance(exc, CheckpointWriteError):
                    what = f"cannot write checkpoint {exc.path}: {exc.reason}"
                else:
                    where = f" ({exc.filename})" if exc.filename else ""
                    what = f"cannot write into run folder {run_dir}: {exc.strerror or exc}{where}"
                if not (run_dir / "checkpoint.npz").is_file():
                    # nothing to resume, and the folder now counts as a run: say what the
                    # next start will say too (see _refuse_existing)
                    raise UserError(f"{what}; no checkpoint was saved, so there is nothing to "
                                    "resume: fix that (disk space, permissions), then remove "
                                    f"{run_dir} and start again, or train into another "
                                    "--out") from None
                if isinstance(exc, CheckpointWriteError):
                    raise
                raise UserError(f"{what}; fix that (disk space, permissions), then resume from "
                                f"{run_dir / 'checkpoint.npz'}") from None
    except BaseException:
        if not started and created:
            # a start that failed (no compiler, no PyGeNN, no data) leaves nothing behind;
            # only what this call created is removed, and only while it holds the lock
            shutil.rmtree(run_dir, ignore_errors=True)
            _remove_empty(run_dir.parent, parents_created)
        raise
    finally:
        lock.release()




def _remove_empty(folder: Path, top: Path | None) -> None:
    """Remove the empty folders from ``folder`` up to ``top`` (those this run created)."""
    if top is None:
        return
    for path in (folder, *folder.parents):
        try:
            path.rmdir()
        except OSError:
            return
        if path == top:
            return
