"""Reliability at the edges: sweeps that share a folder, malformed checkpoints and configs,
output folders that cannot be written, and stops (SIGTERM, SIGHUP, Ctrl-C) at awkward
moments. Each test drives the real command line (in this process, or in a child process
where a real signal matters) on the synthetic data of test_cli."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import run_cli
from test_cli import (
    REPO,
    SMALL,
    TRAIN,
    Run,
    _assert_user_error,
    _fake_load_dataset,
    _files,
    _full_disk_after,
    _main,
    _train_process,
    _wait_for,
)

from symstdp_genn import checkpoint, cli, runner
from symstdp_genn.checkpoint import load_checkpoint, save_checkpoint
from symstdp_genn.simulation import Simulation

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason='needs pip install -e ".[sweep]"')
LONG_NAME = "x" * 300  # one path component over the 255 bytes file systems allow


@pytest.fixture(scope="module")
def build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("reliability-build-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYMSTDP_GENN_CACHE", str(path))
        yield path


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_cache: Path) -> None:
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setattr(runner, "load_dataset", _fake_load_dataset)
    monkeypatch.setenv("SYMSTDP_GENN_CACHE", str(build_cache))
    monkeypatch.setattr(cli, "draw_safely", lambda draw: None)  # figures are not tested here


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, build_cache: Path) -> Path:
    """One small finished run folder; tests copy it before changing anything."""
    run_dir = tmp_path_factory.mktemp("reliability-trained") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "load_dataset", _fake_load_dataset)
        mp.setattr(cli, "draw_safely", lambda draw: None)
        run = _main([*TRAIN, "--out", str(run_dir)])
    assert run.code == 0, run.err
    return run_dir


def _copy_run(trained: Path, where: Path) -> Path:
    copy = where / "run"
    shutil.copytree(trained, copy)
    return copy


def _sweep_argv(path: Path, out: Path, *extra: str) -> list[str]:
    return ["--mode", "sweep", "--sweep", str(path), "--out", str(out), "--no-progress", *extra]


def _write_sweep(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


SWEEP = ("base: mnist-100\nseeds: [4]\nsamples: 20\neval_samples: 10\n"
         "set: {network.n_hidden: 16, network.norm_hidden_to_output: 12.8, "
         "evaluation.assignment_samples: 10}\n")


# ------------------------------------------------------------------------------------------
# 1. sweeps that share a folder
# ------------------------------------------------------------------------------------------


@needs_dask
def test_second_sweep_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    """A sweep holds its folder's lock: a second one into the same --out is one line naming
    the holder, and touches nothing there."""
    from symstdp_genn.sweep.engine import sweep_folder

    out = tmp_path / "sweep"
    path = _write_sweep(tmp_path, SWEEP)
    with sweep_folder(out):  # what a first sweep holds while it runs
        before = sorted(p.name for p in out.iterdir())
        code, _, err = run_cli(_sweep_argv(path, out))
        assert sorted(p.name for p in out.iterdir()) == before
    line = _assert_user_error(Run(code, "", err))
    assert f"sweep folder {out} is in use by another sweep (process {os.getpid()})" in line


def test_sweep_never_deletes_a_locked_trial_folder(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial folder without a checkpoint is started afresh, unless a training holds it:
    then it is left alone (no delete, no result.json) and the trial reports the holder."""
    from symstdp_genn.sweep import build_sweep, trial

    spec = build_sweep(yaml.safe_load(SWEEP))
    folder = tmp_path / "trials" / spec.trials[0].trial_id
    folder.mkdir(parents=True)
    (folder / "log.txt").write_text("a training that has not saved yet\n")
    monkeypatch.setattr(trial, "ensure_dataset", lambda name, folder: folder)
    with runner.RunLock(folder):  # the training in it (another worker, another sweep)
        if importlib.util.find_spec("distributed") is not None:
            from symstdp_genn.sweep.engine import _prepare

            _prepare(spec.trials[0], folder)
            assert (folder / "log.txt").is_file()
        result = trial.run_trial(spec.trials[0].config.to_dict(), str(folder), None)
        assert (folder / "log.txt").read_text() == "a training that has not saved yet\n"
    assert result["status"] == "failed" and "in use by another training" in result["reason"]
    assert not (folder / "result.json").exists()


# ------------------------------------------------------------------------------------------
# 2. malformed checkpoints: one line naming what is wrong, exit 2, nothing written
# ------------------------------------------------------------------------------------------


def _set(key: str, value: Callable[[Any], Any]) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        arrays[key] = value(arrays[key])
    return change


def _meta(path: tuple[str, ...], value: Any) -> Callable[[dict, dict], None]:
    def change(arrays: dict, meta: dict) -> None:
        node = meta
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return change


MALFORMED = {
    "weights-of-another-size": (_set("input_to_hidden.g", lambda g: g[:, :8].copy()),
                                "'input_to_hidden.g'"),
    "scalar-theta": (_set("hidden.theta", lambda t: np.array(20.0, np.float32)),
                     "'hidden.theta'"),
    "text-as-weights": (_set("hidden_to_output.g", lambda g: np.full(g.shape, "w")),
                        "'hidden_to_output.g' is a text"),
    "class-57": (_set("assignments", lambda a: np.where(np.arange(a.size) == 3, 57, a)
                      .astype(a.dtype)), "'assignments' holds a class outside 0-9"),
    "assignments-of-another-length": (_set("assignments", lambda a: a[:-1].copy()),
                                      "'assignments'"),
    "membrane-of-another-size": (_set("hidden.V", lambda v: v[..., :-1].copy()), "'hidden.V'"),
    "float-random-state": (_set("input.rng", lambda r: r.astype(np.float64)), "'input.rng'"),
    "fractional-step": (_set("__step__", lambda s: np.array(1.5)), "'__step__'"),
    "running-sums-of-another-size": (_set("driver.response_sums", lambda r: r[:-1].copy()),
                                     "'driver.response_sums'"),
    "driver-not-a-mapping": (_meta(("driver",), [20, "joint"]), "metadata 'driver'"),
    "selection-not-a-mapping": (_meta(("selection",), "best"), "metadata 'selection'"),
    "samples-seen-not-a-number": (_meta(("driver", "samples_seen"), "twenty"),
                                  "metadata 'driver.samples_seen'"),
    "curve-not-a-list": (_meta(("selection", "curve"), 3), "metadata 'selection.curve'"),
}


def _malformed_run(trained: Path, where: Path, case: str) -> Path:
    """A copy of the trained run whose checkpoint.npz has one defect."""
    run_dir = _copy_run(trained, where)
    ckpt = load_checkpoint(run_dir / "checkpoint.npz")
    arrays, meta = dict(ckpt.arrays), json.loads(json.dumps(ckpt.meta))
    MALFORMED[case][0](arrays, meta)
    for key in ("format", "format_version", "versions"):
        meta.pop(key, None)
    save_checkpoint(run_dir / "checkpoint.npz", arrays, meta)
    return run_dir


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_checkpoint_is_one_line_for_test_and_resume(
        trained: Path, tmp_path: Path, case: str) -> None:
    run_dir = _malformed_run(trained, tmp_path, case)
    before = _files(run_dir)
    path = run_dir / "checkpoint.npz"
    for argv in (["--mode", "test", "--checkpoint", str(path), "--no-progress"],
                 ["--mode", "train", "--resume", str(path), "--samples", "30",
                  "--no-progress"]):
        line = _assert_user_error(_main(argv))
        assert MALFORMED[case][1] in line, line
        assert f"checkpoint {path}" in line
        assert _files(run_dir) == before  # nothing written, nothing replaced
        assert not (run_dir / "tests").exists()


# ------------------------------------------------------------------------------------------
# 3. sweep output errors
# ------------------------------------------------------------------------------------------


@needs_dask
def test_sweep_out_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    path = _write_sweep(tmp_path, SWEEP)
    line = _assert_user_error(Run(*run_cli(_sweep_argv(path, target))))
    assert f"sweep folder {target} is a file" in line
    line = _assert_user_error(Run(*run_cli(_sweep_argv(path, target / "inside"))))
    assert str(target / "inside") in line
    assert target.read_text() == "not a folder"


@needs_dask
def test_sweep_out_on_a_read_only_file_system_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sweep"
    real = Path.mkdir

    def read_only(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == out:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    path = _write_sweep(tmp_path, SWEEP)
    line = _assert_user_error(Run(*run_cli(_sweep_argv(path, out))))
    assert "Read-only file system" in line and str(out) in line


def _finished_sweep(tmp_path: Path) -> tuple[Path, Path]:
    """A sweep file whose one trial has finished already (the tables are all that is left
    to write), and its folder."""
    from symstdp_genn.sweep import load_sweep
    from symstdp_genn.sweep.spec import config_hash
    from symstdp_genn.sweep.trial import write_result

    path = _write_sweep(tmp_path, SWEEP)
    out = tmp_path / "sweep"
    for t in load_sweep(path).trials:
        folder = out / "trials" / t.trial_id
        folder.mkdir(parents=True)
        (folder / "checkpoint.npz").write_bytes(b"")
        write_result(folder, {"status": "finished", "config_hash": config_hash(
            t.config.to_dict()), "supervised_accuracy": 0.5, "assignment_accuracy": 0.4})
    return path, out


def _disk_full(exc_path: str = "") -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), exc_path or None)


@needs_dask
def test_sweep_disk_full_writing_results_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, out = _finished_sweep(tmp_path)
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "results.csv":
            raise _disk_full(str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    # after the sweep's own progress line ("1 finished before, 0 to run")
    line = _assert_user_error(Run(*run_cli(_sweep_argv(path, out))), after_notices=True)
    assert "No space left on device" in line and "results.csv" in line
    assert "same command again" in line
    assert not list(out.rglob(".*.tmp*"))


@needs_dask
def test_sweep_disk_full_copying_the_sweep_file_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from symstdp_genn.sweep import engine

    path, out = _finished_sweep(tmp_path)

    def full(src: Any, dst: Any) -> None:
        raise _disk_full(str(dst))

    monkeypatch.setattr(engine.shutil, "copyfile", full)
    line = _assert_user_error(Run(*run_cli(_sweep_argv(path, out))), after_notices=True)
    assert "No space left on device" in line and str(out) in line


@needs_dask
@pytest.mark.parametrize("address", ["garbage", "tcp://localhost", "foo://host:8786"])
def test_sweep_scheduler_that_is_no_address_is_one_line(tmp_path: Path, address: str) -> None:
    out = tmp_path / "sweep"
    path = _write_sweep(tmp_path, SWEEP)
    line = _assert_user_error(Run(*run_cli(_sweep_argv(path, out, "--scheduler", address))))
    assert f"--scheduler {address}" in line
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# 4, 5, 8. files and values the schema refuses
# ------------------------------------------------------------------------------------------


def test_binary_config_and_sweep_files_are_one_line(trained: Path, tmp_path: Path) -> None:
    binary = trained / "checkpoint.npz"
    line = _assert_user_error(_main([*TRAIN, "--config", str(binary),
                                     "--out", str(tmp_path / "run")]))
    assert f"config file {binary} is not a YAML text file" in line
    assert not (tmp_path / "run").exists()
    code, _, err = run_cli(["--mode", "sweep", "--sweep", str(binary)])
    line = _assert_user_error(Run(code, "", err))
    assert f"sweep file {binary} is not a YAML text file" in line


@pytest.mark.parametrize(("setting", "key"), [
    ("training.present_ms=.inf", "training.present_ms"),
    ("network.tau_theta_ms=.inf", "network.tau_theta_ms"),
    ("training.present_ms=1e300", "training.present_ms"),
    ("network.norm_input_to_hidden=.inf", "network.norm_input_to_hidden"),
    ("network.norm_input_to_hidden=1e300", "network.norm_input_to_hidden"),
    ("training.rest_ms=.inf", "training.rest_ms"),
])
def test_infinite_and_absurd_values_are_refused_by_name(tmp_path: Path, setting: str,
                                                        key: str) -> None:
    line = _assert_user_error(_main([*TRAIN, "--set", setting,
                                     "--out", str(tmp_path / "run")]))
    assert f"'{key}'" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key", ["grid", "random", "seeds"])
def test_sweep_file_with_an_empty_section_is_refused(tmp_path: Path, key: str) -> None:
    """``grid:`` with nothing under it is refused when the file is read (it used to run the
    base config alone; read here without Dask, so that such a regression runs nothing)."""
    from symstdp_genn.errors import UserError
    from symstdp_genn.sweep import load_sweep

    path = _write_sweep(tmp_path, f"base: mnist-100\nsamples: 20\n{key}:\n")
    with pytest.raises(UserError) as caught:
        load_sweep(path)
    assert f"sweep file {path}: '{key}' is empty" in str(caught.value)


# ------------------------------------------------------------------------------------------
# 6. a name the file system cannot hold
# ------------------------------------------------------------------------------------------


def test_out_with_a_name_over_255_bytes_is_one_line(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / LONG_NAME / "run"
    line = _assert_user_error(_main([*TRAIN, "--out", str(out)]))
    assert "File name too long" in line and "255 bytes" in line
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint",
                                     str(trained / "checkpoint.npz"), "--out", str(out)]))
    assert "File name too long" in line
    if importlib.util.find_spec("distributed") is not None:
        path = _write_sweep(tmp_path, SWEEP)
        line = _assert_user_error(Run(*run_cli(_sweep_argv(path, out))))
        assert "File name too long" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]


# ------------------------------------------------------------------------------------------
# 7 and the stops: SIGTERM in --mode test, SIGHUP, Ctrl-C in a periodic evaluation or
# during start-up
# ------------------------------------------------------------------------------------------


_TEST_PROCESS = """\
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from symstdp_genn import cli, runner
from symstdp_genn.simulation import Simulation
from test_cli import fake_dataset
runner.load_dataset = lambda name, folder: fake_dataset()
present = Simulation.present
def slow_present(self, *args, **kwargs):  # the test pass has begun: say so, and go slowly
    Path({marker!r}).touch()
    time.sleep(0.05)
    return present(self, *args, **kwargs)
Simulation.present = slow_present
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_during_test_mode_is_handled_as_ctrl_c(trained: Path, tmp_path: Path,
                                                       build_cache: Path) -> None:
    run_dir = _copy_run(trained, tmp_path)
    marker = tmp_path / "testing"
    script = _TEST_PROCESS.format(tests=str(REPO / "tests"), marker=str(marker))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "--mode", "test", "--checkpoint",
         str(run_dir / "checkpoint.npz"), "--no-progress", "--set",
         "evaluation.batch_size=1"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"),
             "SYMSTDP_GENN_CACHE": str(build_cache)})
    try:
        _wait_for(marker, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "interrupted (SIGTERM)"
    assert "Traceback" not in err
    assert not (run_dir / "tests").exists() or not any((run_dir / "tests").iterdir())


@pytest.fixture
def sighup_default() -> Iterator[None]:
    """SIGHUP at its default for this test and the processes it starts: a test suite
    started under ``nohup`` inherits SIGHUP ignored, and a run that inherits that keeps
    ignoring it by design, which is not what these tests are about."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.usefixtures("sighup_default")
def test_sighup_saves_a_checkpoint_and_exits_130(tmp_path: Path, build_cache: Path) -> None:
    """A closed terminal (SIGHUP) stops a training as SIGTERM does: saved, named, 130."""
    run_dir = tmp_path / "run"
    argv = ["--mode", "train", *SMALL, "--epochs", "1000", "--eval-samples", "10",
            "--set", "training.checkpoint_every=0", "--out", str(run_dir)]
    proc = _train_process(argv, tmp_path, build_cache, delay=0.002)
    try:
        _wait_for(run_dir / "config.yaml", proc)
        time.sleep(0.2)
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "SIGHUP" in err and str(run_dir / "checkpoint.npz") in err
    assert "Traceback" not in err
    assert load_checkpoint(run_dir / "checkpoint.npz").meta["driver"]["samples_seen"] > 0
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "interrupted" and events[-1]["by"] == "SIGHUP"


PERIODIC = ["--set", "training.eval_every=10", "--set", "evaluation.select_split=test",
            "--set", "evaluation.batch_size=1"]


def test_ctrl_c_during_a_periodic_evaluation_stops_within_a_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while a periodic evaluation runs stops after the batch in progress (not after
    the whole pass), keeps the checkpoint, and the resumed run ends byte-identical."""
    from test_cli import _train

    full = _train(tmp_path / "full", *PERIODIC)
    assert full.code == 0, full.err
    from symstdp_genn.evaluator import Evaluator

    original_pass = Evaluator.run_pass
    original_present = Simulation.present
    after_signal: list[int] = []

    def run_pass(self: Any, state: Any, images: Any, purpose: str, progress: Any = None) -> Any:
        if purpose == "labelling" and not after_signal:
            after_signal.append(0)
            signal.raise_signal(signal.SIGINT)
        return original_pass(self, state, images, purpose, progress)

    def present(self: Any, *args: Any, **kwargs: Any) -> Any:
        if after_signal:
            after_signal[0] += 1
        return original_present(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "run_pass", run_pass)
    monkeypatch.setattr(Simulation, "present", present)
    run_dir = tmp_path / "run"
    run = _train(run_dir, *PERIODIC)
    assert run.code == 130, run.err
    assert after_signal == [1]  # one image of the 10 + 20 the pass would have presented
    ckpt = load_checkpoint(run_dir / "checkpoint.npz")
    assert ckpt.meta["driver"]["samples_seen"] == 10
    assert ckpt.meta["driver"]["pending_evaluation"] is True
    assert "resume with:" in run.err
    monkeypatch.setattr(Evaluator, "run_pass", original_pass)
    monkeypatch.setattr(Simulation, "present", original_present)
    resumed = _main(["--mode", "train", "--resume", str(run_dir / "checkpoint.npz"),
                     "--no-progress"])
    assert resumed.code == 0, resumed.err
    for name in ("checkpoint.npz", "best.npz"):
        assert (run_dir / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    curve = load_checkpoint(run_dir / "checkpoint.npz").meta["selection"]["curve"]
    assert [c["samples_seen"] for c in curve] == [10, 20]


@pytest.mark.parametrize("entry", ["run.py", "-m"])
def test_ctrl_c_while_the_modules_load_prints_no_traceback(tmp_path: Path, entry: str) -> None:
    """Ctrl-C in the first fraction of a second, while numpy and the package load: one
    'interrupted' line and 130, as at any other moment (a module that raises
    KeyboardInterrupt on import stands in for the keypress), through ``run.py`` and
    ``python -m symstdp_genn`` alike (the package itself imports nothing heavy)."""
    fake = tmp_path / "fake"
    (fake / "yaml").mkdir(parents=True)
    (fake / "yaml" / "__init__.py").write_text("raise KeyboardInterrupt\n")
    command = [str(REPO / "run.py")] if entry == "run.py" else ["-m", "symstdp_genn"]
    proc = subprocess.run([sys.executable, *command, "--mode", "train"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{REPO / 'src'}"})
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "interrupted\n"


# ------------------------------------------------------------------------------------------
# the rest: messages that agree, hints that work, refusals before the work
# ------------------------------------------------------------------------------------------


def test_disk_full_at_the_first_checkpoint_says_what_the_rerun_needs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No checkpoint could be saved: the message says to remove the folder, the same as
    the refusal of a rerun into it, and after removing it the rerun trains."""
    real = checkpoint.write_npz
    monkeypatch.setattr(checkpoint, "write_npz", _full_disk_after(0))
    run_dir = tmp_path / "run"
    first = _assert_user_error(_main([*TRAIN, "--out", str(run_dir)]))
    assert "No space left on device" in first
    assert f"remove {run_dir} and start again" in first and "--resume" not in first
    monkeypatch.setattr(checkpoint, "write_npz", real)
    again = _assert_user_error(_main([*TRAIN, "--out", str(run_dir)]))
    assert "remove that folder" in again
    shutil.rmtree(run_dir)
    assert _main([*TRAIN, "--out", str(run_dir)]).code == 0


def test_resume_hint_keeps_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Simulation.present
    calls: list[int] = []

    def ctrl_c_at_the_fifth(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 5:
            signal.raise_signal(signal.SIGINT)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Simulation, "present", ctrl_c_at_the_fifth)
    data = tmp_path / "my data"
    run_dir = tmp_path / "run"
    run = _main([*TRAIN, "--out", str(run_dir), "--data-dir", str(data)])
    assert run.code == 130, run.err
    hint = next(line for line in run.err.splitlines() if line.startswith("resume with: "))
    assert hint == (f"resume with: python run.py --mode train --resume "
                    f"{run_dir / 'checkpoint.npz'} --data-dir '{data}'")


def test_test_mode_with_a_read_only_out_fails_before_the_pass(
        trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from symstdp_genn.evaluator import Evaluator

    out = tmp_path / "report"
    out.mkdir()
    passes: list[str] = []
    original = Evaluator.run_pass
    monkeypatch.setattr(Evaluator, "run_pass", lambda self, state, images, purpose, *a, **k:
                        passes.append(purpose) or original(self, state, images, purpose, *a, **k))
    if os.geteuid() == 0:  # root writes anywhere: make the refusal the file system's
        real_open = os.open

        def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if str(path).startswith(str(out)) and flags & os.O_CREAT:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
    else:
        out.chmod(0o500)
    try:
        line = _assert_user_error(_main(["--mode", "test", "--checkpoint",
                                         str(trained / "checkpoint.npz"), "--out", str(out),
                                         "--no-progress"]))
    finally:
        out.chmod(0o700)
    assert f"cannot write into --out {out}" in line
    assert passes == []  # refused before labelling or testing a single image
    assert list(out.iterdir()) == []


def test_resuming_a_shipped_network_is_refused_clearly() -> None:
    """models/pretrained/*.npz are networks to test, not runs to continue: resuming one is
    refused with the two ways on, and nothing is written into models/pretrained/."""
    shipped = REPO / "models" / "pretrained" / "mnist-400.npz"
    if not shipped.is_file():
        pytest.skip("no shipped network in this checkout")
    before = sorted(p.name for p in shipped.parent.iterdir())
    line = _assert_user_error(_main(["--mode", "train", "--resume", str(shipped),
                                     "--no-progress"]))
    assert "not in a training run folder" in line
    assert f"--mode test --checkpoint {shipped}" in line and "--out DIR" in line
    assert "select_split" not in line and "eval_every" not in line
    assert sorted(p.name for p in shipped.parent.iterdir()) == before
    from symstdp_genn import api
    from symstdp_genn.errors import UserError

    with pytest.raises(UserError, match="not in a training run folder"):
        api.train(resume=shipped, progress=False)  # the library refuses it too
    assert sorted(p.name for p in shipped.parent.iterdir()) == before


@needs_dask
@pytest.mark.slow  # a process cluster and two sweeps: about a minute
@pytest.mark.usefixtures("sighup_default")
def test_sweep_worker_sent_sighup_saves_and_its_trial_is_resubmitted(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose terminal closes (SIGHUP) saves its trial and closes, as for SIGTERM;
    the sweep resubmits the trial, which ends byte-identical to an undisturbed one."""
    import threading

    import distributed
    import test_sweep
    from test_sweep import _kill_spec, _mid_trial, _same_checkpoints, in_process_cluster

    from symstdp_genn.data import load_dataset
    from symstdp_genn.sweep.engine import run_sweep

    monkeypatch.setattr(runner, "load_dataset", load_dataset)  # the files, as workers read
    data_dir = test_sweep.write_synthetic_mnist(tmp_path_factory.mktemp("sighup-data"))
    spec = _kill_spec()
    reference = tmp_path / "undisturbed"
    with in_process_cluster() as client:
        run_sweep(spec, reference, data_dir=data_dir, client=client, show_progress=False)
    out = tmp_path / "hung-up"
    victim: dict[str, Any] = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        box: dict[str, Any] = {}
        sweep = threading.Thread(target=lambda: box.update(report=run_sweep(
            spec, out, data_dir=data_dir, client=client, show_progress=False)))
        sweep.start()
        deadline = time.monotonic() + 120
        while not victim and time.monotonic() < deadline and sweep.is_alive():
            trial = _mid_trial(spec, out)
            if trial is not None:
                pids = client.run(os.getpid)
                for address, keys in client.processing().items():
                    if any(trial.trial_id in str(k) for k in keys):
                        victim = {"trial": trial.trial_id, "pid": pids[address]}
            time.sleep(0.02)
        assert victim, "no trial was caught mid-run"
        os.kill(victim["pid"], signal.SIGHUP)
        sweep.join(timeout=300)
        assert not sweep.is_alive()
    assert box["report"].counts == {"finished": 2}
    events = [json.loads(line)["event"] for line in
              (out / "trials" / victim["trial"] / "metrics.jsonl").read_text().splitlines()]
    assert "interrupted" in events  # saved where it stood, then resumed elsewhere
    _same_checkpoints(spec, out, reference)
