"""Tests of runner.train_run, the library entry point for training: the run-folder lock,
refusals, clean-up, logging and stopping from another thread (tiny synthetic data)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from conftest import small_config
from test_training import synthetic_dataset

from symstdp_genn import runner
from symstdp_genn.checkpoint import load_checkpoint
from symstdp_genn.errors import UserError
from symstdp_genn.evaluator import Evaluator
from symstdp_genn.simulation import Simulation
from symstdp_genn.training import TrainingOutcome


@pytest.fixture(autouse=True)
def _synthetic_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "load_dataset", lambda name, folder: synthetic_dataset())


def config(samples: int = 20, **extra: object):
    return small_config(16, **{"training.samples": samples, "evaluation.samples": 12,
                               "evaluation.assignment_samples": 20, "seed": 7,
                               "training.checkpoint_every": 0, **extra})


def _in_thread(target, *args, **kwargs) -> tuple[threading.Thread, dict[str, object]]:
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["outcome"] = target(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_train_run_trains_logs_and_keeps_other_handlers(tmp_path: Path) -> None:
    root = logging.getLogger()
    mine = logging.NullHandler()
    root.addHandler(mine)
    try:
        out = runner.train_run(config(), tmp_path / "run")
        assert mine in root.handlers
    finally:
        root.removeHandler(mine)
    assert isinstance(out, TrainingOutcome) and not out.interrupted
    assert out.samples_seen == out.samples_trained == 20
    assert out.final is not None and out.final.n == 12
    log_text = (tmp_path / "run" / "log.txt").read_text()
    assert "training mnist-100" in log_text and "evaluation (final, test split)" in log_text
    assert not any(isinstance(h, logging.FileHandler) and "run" in h.baseFilename
                   for h in root.handlers)


def test_stop_event_from_another_thread_stops_like_ctrl_c(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run (in a worker thread: no signal handlers there) pauses after 5 samples; the
    test thread sets the event; the run saves a checkpoint at 5 and says interrupted."""
    stop, reached = threading.Event(), threading.Event()
    original = Simulation.present
    calls = {"n": 0}

    def present(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:
            reached.set()
            assert stop.wait(30)
        return out

    monkeypatch.setattr(Simulation, "present", present)
    thread, box = _in_thread(runner.train_run, config(), tmp_path / "run", stop_event=stop)
    assert reached.wait(60), box
    stop.set()
    thread.join(60)
    assert "error" not in box, box
    out = box["outcome"]
    assert isinstance(out, TrainingOutcome)
    assert out.interrupted and out.interrupted_during == "training"
    assert out.stopped_by == "stop request" and out.final is None
    assert load_checkpoint(out.checkpoint).meta["driver"]["samples_seen"] == 5


def test_stop_event_during_final_evaluation_keeps_the_final_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    original = Evaluator.run_pass

    def run_pass(self, state, images, purpose, progress=None):
        stop.set()  # e.g. a sweep cancelling its runs
        return original(self, state, images, purpose, progress)

    monkeypatch.setattr(Evaluator, "run_pass", run_pass)
    out = runner.train_run(config(), tmp_path / "run", stop_event=stop)
    assert out.interrupted and out.interrupted_during == "final evaluation"
    assert load_checkpoint(out.checkpoint).meta["driver"]["samples_seen"] == 20


def test_a_held_lock_refuses_a_second_run_in_the_same_process(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with runner.RunLock(run_dir):
        assert runner.is_locked(run_dir)
        with pytest.raises(UserError, match=f"in use by another training \\(process "
                                            f"{os.getpid()}\\)"):
            runner.train_run(config(), run_dir)
    assert not runner.is_locked(run_dir)
    assert not runner.is_run_folder(run_dir)


def test_resume_refuses_another_runs_folder(tmp_path: Path) -> None:
    a = runner.train_run(config(10), tmp_path / "a")
    runner.train_run(config(10), tmp_path / "b")
    before = (tmp_path / "b" / "checkpoint.npz").read_bytes()
    with pytest.raises(UserError, match="holds another training run"):
        runner.train_run(config(20), tmp_path / "b", resume=a.checkpoint)
    assert (tmp_path / "b" / "checkpoint.npz").read_bytes() == before
    # into a new folder is fine, and the resumed run counts this session's samples
    out = runner.train_run(config(20), tmp_path / "c", resume=a.checkpoint)
    assert (out.samples_seen, out.samples_trained) == (20, 10)


def test_what_counts_as_a_run_folder(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    assert not runner.is_run_folder(folder)
    folder.mkdir()
    (folder / "log.txt").write_text("a start that failed\n")
    (folder / runner.LOCK_FILE).write_text("123\n")
    (folder / "evaluation.npz").write_bytes(b"a test report")
    assert not runner.is_run_folder(folder)
    for marker in runner.RUN_MARKERS:
        (folder / marker).mkdir()
        assert runner.is_run_folder(folder)
        (folder / marker).rmdir()


def test_remove_stale_temps_removes_only_atomic_path_leftovers(tmp_path: Path) -> None:
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "tests" / "5-images").mkdir(parents=True)
    stale = [tmp_path / ".checkpoint.0011aabb.tmp.npz",
             tmp_path / "snapshots" / ".samples-00000010.0011aabb.tmp.npz",
             tmp_path / ".config.0011aabb.tmp.yaml"]
    kept = [tmp_path / "checkpoint.npz", tmp_path / ".checkpoint.npz",
            tmp_path / "x.tmp.npz", tmp_path / ".lock",
            tmp_path / "tests" / "5-images" / ".evaluation.0011aabb.tmp.npz"]
    for path in stale + kept:
        path.write_bytes(b"x")
    assert sorted(runner.remove_stale_temps(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in kept)
