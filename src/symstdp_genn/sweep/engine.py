"""The Dask side: cluster and client, one task per trial, progress, Ctrl-C.

Why Dask distributed and not a process pool: the same code runs on an embedded
``LocalCluster`` (one single-threaded worker process per core), on a cluster started by
hand (``dask scheduler`` / ``dask worker``) and on SLURM/PBS through ``dask-jobqueue``;
the scheduler also reschedules the task of a worker that died (kill -9, node lost) on
another worker, up to ``distributed.scheduler.allowed-failures`` times. Each trial resumes
from its own last checkpoint, so a retry costs at most ``training.checkpoint_every``
samples.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker
from distributed.core import Status

from ..checkpoint import atomic_path
from ..errors import UserError
from ..locking import try_lock, unlock
from ..runner import check_path, is_locked
from ..training.stop import STOP_SIGNALS
from .results import ResultFiles, trial_row, write_results
from .spec import SweepSpec, Trial, config_hash
from .trial import (
    FAILED,
    FINISHED,
    INTERRUPTED,
    TrialControl,
    is_finished,
    one_line,
    read_result,
    run_trial,
)

log = logging.getLogger(__name__)

PLUGIN_NAME = "symstdp-genn-sweep"
TRIALS_DIR = "trials"
#: the sweep folder's lock, held for the whole sweep (the same name as a run folder's)
LOCK_FILE = ".lock"
#: seconds the trials get to save a checkpoint after Ctrl-C or a worker's shutdown
STOP_GRACE_S = 60.0
#: seconds a stopped trial's result gets to reach the scheduler before its worker closes
RESULT_GRACE_S = 1.0
#: a trial stopped by worker shutdowns more often than this is left for the next run
MAX_RESUBMITS = 20


class WorkerSetup(WorkerPlugin):
    """Per worker process: its own compile cache, and stop switches for its trials.

    Workers in the client's own process (an in-process cluster, tests) share the process
    environment, so they keep the process's cache. SIGTERM (how Dask, SLURM and PBS stop
    workers), SIGHUP and SIGINT make the running trials save a checkpoint and stop first. The
    workers of the sweep's own local cluster get the terminal's Ctrl-C too; there the client
    runs the shutdown, so the worker only stops its trials (``chain_sigint=False``).
    """

    name = PLUGIN_NAME

    def __init__(self, chain_sigint: bool = True) -> None:
        self.client_pid = os.getpid()
        self.chain_sigint = chain_sigint
        self.control: TrialControl | None = None  # made on the worker (locks don't pickle)
        self.worker: Any = None

    def setup(self, worker: Any) -> None:
        """Called by Dask as the worker starts: the trials' stop switch, and in a worker
        process of its own a compile cache of its own and the stop-signal handlers."""
        self.control = TrialControl()
        self.worker = worker
        if os.getpid() == self.client_pid:
            return
        from ..backends.builtin.compiler import cache_dir

        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(worker.name)) or "worker"
        cache = cache_dir() / "sweep-workers" / label
        os.environ["SYMSTDP_GENN_CACHE"] = str(cache)
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._chain(signum)

    def _chain(self, signum: int) -> None:
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN:  # e.g. a background job's SIGINT: keep ignoring it
            return

        def handler(sig: int, frame: Any) -> None:
            if self.control is not None:
                self.control.stop_all()
            # SIGHUP (a closed terminal) ends a worker of its own like SIGTERM; the sweep's
            # own cluster got it with the client, which runs the shutdown, as for Ctrl-C
            ends = sig == signal.SIGTERM or (sig == getattr(signal, "SIGHUP", None)
                                             and self.chain_sigint)
            chain = ends or self.chain_sigint
            if chain and callable(previous) and previous is not signal.default_int_handler:
                previous(sig, frame)
            elif ends and self.worker is not None:
                # the default action, but only once the trials have saved and their
                # 'interrupted' results are on the way (the client resubmits them);
                # paused at once, so that the scheduler sends this worker nothing new
                self.worker.loop.add_callback(self._pause)
                threading.Thread(target=self._close_when_idle, daemon=True).start()

        signal.signal(signum, handler)

    def _pause(self) -> None:
        self.worker.status = Status.paused

    def _close_when_idle(self) -> None:
        if self.control is not None:
            self.control.wait_idle(STOP_GRACE_S)
        time.sleep(RESULT_GRACE_S)
        self.worker.loop.add_callback(self.worker.close, reason="SIGTERM")

    def teardown(self, worker: Any) -> None:
        """Called by Dask as the worker closes: running trials stop and save first."""
        if self.control is not None and self.control.stop_all():
            self.control.wait_idle(STOP_GRACE_S)


def _trial_task(config_data: dict[str, Any], run_dir: str, data_dir: str | None) -> dict:
    plugin = get_worker().plugins.get(PLUGIN_NAME)
    control = plugin.control if isinstance(plugin, WorkerSetup) else None
    return run_trial(config_data, run_dir, data_dir, control)


def _stop_trials(dask_worker: Any) -> int:
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    control = plugin.control if isinstance(plugin, WorkerSetup) else None
    return control.stop_all() if control is not None else 0


def _wait_trials(dask_worker: Any) -> bool:
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    control = plugin.control if isinstance(plugin, WorkerSetup) else None
    return control.wait_idle(STOP_GRACE_S) if control is not None else True


@dataclass
class SweepReport:
    """What a sweep did: its folder, one row per trial, how many trials ran or were
    skipped as already finished, whether it was interrupted, the result files written,
    and the trials counted by status (a failed one makes the command exit with 1)."""

    out_dir: Path
    rows: list[dict[str, Any]]
    ran: int = 0
    skipped: int = 0
    interrupted: bool = False
    files: ResultFiles | None = None
    counts: dict[str, int] = field(default_factory=dict)


class _Progress:
    """A bar over trials on a terminal, one log line per trial elsewhere."""

    def __init__(self, total: int, done: int, show: bool | None):
        self.total, self.done = total, done
        self.bar = None
        tty = sys.stderr.isatty() if show is None else show
        if tty and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="sweep", unit="trial",
                            dynamic_ncols=True, file=sys.stderr)

    def trial(self, trial: Trial, result: dict[str, Any]) -> None:
        self.done += 1
        status = result.get("status")
        if status == FINISHED:
            what = (f"supervised {_pct(result.get('supervised_accuracy'))}, "
                    f"assignment {_pct(result.get('assignment_accuracy'))}")
        else:
            what = result.get("reason") or status
        line = f"[{self.done}/{self.total}] {trial.trial_id} ({trial.name}, seed {trial.seed}): " \
               f"{status}: {what}"
        if self.bar is not None:
            self.bar.set_postfix_str(f"{trial.trial_id} {status}", refresh=False)
            self.bar.update(1)
            if status != FINISHED:
                self.bar.write(line, file=sys.stderr)
        else:
            log.info("%s", line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.2f} %"


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Client]:
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it "
                            "with `dask scheduler` or leave out --scheduler") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # any free port for the HTTP server (and the dashboard, with bokeh): sweeps side by side
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def _prepare(trial: Trial, folder: Path) -> None:
    """A folder without checkpoint and without a finished result never got anywhere: start
    it afresh (the worker does the same; here it keeps a stale failure from showing). A
    folder a training holds locked is never touched: that trial is running (a worker the
    scheduler gave up on may still be training in it), and its run refuses a second one."""
    if (folder.exists() and not (folder / "checkpoint.npz").is_file()
            and not is_locked(folder)):
        shutil.rmtree(folder)


def _check_address(scheduler: str) -> None:
    """A scheduler address that cannot be one (no port, an unknown scheme) is one line now,
    before the sweep folder is touched."""
    from distributed.comm import get_address_host_port, parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, _ = parse_address(scheduler)
        get_backend(scheme)
        if scheme in ("tcp", "tls", "ws", "wss"):
            get_address_host_port(scheduler)
    except ValueError as exc:
        raise UserError(f"--scheduler {scheduler}: {exc}; give the address `dask scheduler` "
                        "prints (tcp://HOST:8786), or leave out --scheduler") from None


@contextlib.contextmanager
def sweep_folder(out_dir: Path) -> Iterator[Path]:
    """Create ``out_dir`` and hold its lock (``out_dir/.lock``) for the block: a second
    sweep into the same folder would train the same trial folders twice, delete the first
    one's fresh trials and mark its running ones failed, so it is refused in one line."""
    check_path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"sweep folder {out_dir} is a file, not a folder; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = open(out_dir / LOCK_FILE, "a+")
    except OSError as exc:
        raise _write_error(out_dir, exc) from None
    try:
        try:
            try_lock(handle)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UserError(f"sweep folder {out_dir} is in use by another sweep (process "
                            f"{holder}); wait for it to finish, or choose another --out") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield out_dir
        finally:
            unlock(handle)
    finally:
        handle.close()


def _write_error(out_dir: Path, exc: OSError, what: str = "") -> UserError:
    where = f" ({exc.filename})" if exc.filename else ""
    return UserError(f"cannot write {what or 'into'} sweep folder {out_dir}: "
                     f"{exc.strerror or exc}{where}; free some space or choose a writable --out "
                     "(finished trials are kept: the same command again resumes)")


def run_sweep(spec: SweepSpec, out_dir: Path, *, scheduler: str | None = None,
              workers: int | None = None, data_dir: Path | None = None,
              client: Client | None = None, show_progress: bool | None = None) -> SweepReport:
    """Run every unfinished trial of ``spec`` into ``out_dir/trials/`` and write the tables.

    ``client``: an existing Dask client (tests, notebooks); otherwise ``scheduler`` or a
    local cluster of ``workers`` processes (default: one per core). The sweep holds
    ``out_dir``'s lock throughout (see :func:`sweep_folder`); a problem writing there is
    one :class:`UserError` line.
    """
    out_dir = Path(out_dir)
    if client is None and scheduler is not None:
        _check_address(scheduler)
    with sweep_folder(out_dir):
        return _run_sweep_locked(spec, out_dir, scheduler, workers, data_dir, client,
                                 show_progress)


def _run_sweep_locked(spec: SweepSpec, out_dir: Path, scheduler: str | None,
                      workers: int | None, data_dir: Path | None, client: Client | None,
                      show_progress: bool | None) -> SweepReport:
    trials_dir = out_dir / TRIALS_DIR
    try:
        trials_dir.mkdir(parents=True, exist_ok=True)
        if spec.source is not None:  # the file as it was run, beside its results
            with atomic_path(out_dir / "sweep.yaml") as tmp:
                shutil.copyfile(spec.source, tmp)
    except OSError as exc:
        raise _write_error(out_dir, exc) from None
    results: dict[str, dict[str, Any]] = {}
    pending: list[Trial] = []
    for trial in spec.trials:
        folder = trials_dir / trial.trial_id
        if is_finished(folder, config_hash(trial.config.to_dict())):
            results[trial.trial_id] = {**read_result(folder), "skipped": True}
        else:
            pending.append(trial)
    report = SweepReport(out_dir, [], skipped=len(results))
    log.info("sweep %s: %d trials, %d finished before, %d to run", spec.name, len(spec.trials),
             len(results), len(pending))
    data = str(Path(data_dir).resolve()) if data_dir is not None else None
    if pending:
        with contextlib.ExitStack() as stack:
            own_cluster = client is None and scheduler is None
            if client is None:
                client = stack.enter_context(_client(scheduler, workers))
            report.interrupted = _run_pending(client, pending, trials_dir, data, results,
                                              len(spec.trials), show_progress,
                                              WorkerSetup(chain_sigint=not own_cluster))
    for trial in pending:  # finished while its result was on the way (Ctrl-C)
        folder = trials_dir / trial.trial_id
        if trial.trial_id not in results and is_finished(folder, config_hash(
                trial.config.to_dict())):
            results[trial.trial_id] = read_result(folder)
    report.ran = sum(1 for t in pending if t.trial_id in results)
    report.rows = [trial_row(spec, t, results.get(t.trial_id), trials_dir / t.trial_id)
                   for t in spec.trials]
    try:
        report.files = write_results(spec, report.rows, out_dir)
    except OSError as exc:
        raise _write_error(out_dir, exc, "the results into") from None
    counts: dict[str, int] = {}
    for row in report.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    report.counts = counts
    return report


def _run_pending(client: Client, pending: list[Trial], trials_dir: Path, data: str | None,
                 results: dict[str, dict[str, Any]], total: int,
                 show_progress: bool | None, plugin: WorkerSetup) -> bool:
    """Submit, collect, and on Ctrl-C stop cleanly; True when interrupted.

    A trial that comes back 'interrupted' while the sweep goes on was stopped by its
    worker's shutdown (SIGTERM, a scaled-down or pre-empted job): it is submitted again
    and resumes from the checkpoint it just saved.
    """
    client.register_plugin(plugin, name=PLUGIN_NAME)
    link = getattr(client, "dashboard_link", None)
    if link and importlib.util.find_spec("bokeh") is not None:
        log.info("Dask dashboard: %s", link)
    token = uuid.uuid4().hex[:8]
    futures: dict[str, tuple[Any, Trial]] = {}
    attempts: dict[str, int] = {}

    def submit(trial: Trial) -> Any:
        attempts[trial.trial_id] = attempts.get(trial.trial_id, 0) + 1
        key = f"trial-{trial.trial_id}-{token}-{attempts[trial.trial_id]}"
        future = client.submit(_trial_task, trial.config.to_dict(),
                               str(trials_dir / trial.trial_id), data, key=key, pure=False)
        futures[key] = (future, trial)
        return future

    for trial in pending:
        _prepare(trial, trials_dir / trial.trial_id)
    collected = as_completed([submit(trial) for trial in pending])
    progress = _Progress(total, total - len(pending), show_progress)
    try:
        for future in collected:
            _, trial = futures.pop(future.key)
            result = _result(future)
            future.release()  # a lost worker must not make Dask recompute a finished trial
            if result.get("status") == INTERRUPTED and attempts[trial.trial_id] <= MAX_RESUBMITS:
                log.info("%s was stopped by its worker's shutdown; resubmitted", trial.trial_id)
                collected.add(submit(trial))
                continue
            if result.get("status") != INTERRUPTED:
                results[trial.trial_id] = result
            progress.trial(trial, result)
        return False
    except KeyboardInterrupt:
        progress.close()
        log.warning("stopping: the running trials save a checkpoint (Ctrl-C again to abort)")
        try:  # queued trials never start; running ones save and stop at their next sample
            client.cancel([f for f, _ in futures.values() if not f.done()])
            client.run(_stop_trials)
            client.run(_wait_trials)
        except KeyboardInterrupt:
            log.warning("aborted; every trial resumes from its last periodic checkpoint")
        return True
    finally:
        progress.close()


def _result(future: Any) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as exc:  # KilledWorker: the trial took down its worker too often
        return {"status": FAILED, "reason": one_line(exc)}
