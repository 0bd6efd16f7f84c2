"""Tests of the command line, in-process: user errors are one line and exit code 2, and a tiny
end-to-end train/test run on a synthetic dataset (no real MNIST, no network access)."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from symstdp_genn import cli, runner
from symstdp_genn.backends import GENN_INSTALL_DOCS
from symstdp_genn.backends.builtin import compiler
from symstdp_genn.checkpoint import load_checkpoint
from symstdp_genn.config import config_from_dict, load_config
from symstdp_genn.data import Dataset

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--preset", "mnist-100", "--set", "network.n_hidden=16", "--seed", "3", "--no-progress"]
TRAIN = ["--mode", "train", *SMALL, "--samples", "20", "--eval-samples", "10",
         "--set", "evaluation.assignment_samples=10"]


def fake_dataset(n_train: int = 40, n_test: int = 20, seed: int = 0) -> Dataset:
    """Sparse random digits: one fixed pixel pattern per class plus a little noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784)) < 0.15

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        pixels = prototypes[labels] ^ (rng.random((n, 784)) < 0.03)
        return (pixels * rng.integers(100, 256, (n, 784))).astype(np.uint8), labels

    train_images, train_labels = make(n_train)
    test_images, test_labels = make(n_test)
    return Dataset(train_images, train_labels, test_images, test_labels, name="mnist")


def _fake_load_dataset(name: str, folder: Path) -> Dataset:
    assert name == "mnist"
    return fake_dataset()


@dataclass
class Run:
    code: int
    out: str
    err: str


def _main(argv: list[str]) -> Run:
    """``cli.main(argv)`` with its output captured (usable from module-scoped fixtures)."""
    return Run(*run_cli(argv))


def _assert_user_error(run: Run, after_notices: bool = False) -> str:
    """Exit code 2 and exactly one line on stderr, starting with 'error:'; returns it.

    ``after_notices``: the run got far enough to print notices (e.g. the final
    evaluation's), so only the last line must be the error, and the only one.
    """
    assert run.code == 2, run
    lines = run.err.splitlines()
    if after_notices:
        assert sum(line.startswith("error: ") for line in lines) == 1, run.err
        lines = lines[-1:]
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in run.err
    return lines[0]


def _accuracy_lines(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines()
            if re.match(r"\s+(supervised|assignment) accuracy", line)]


@pytest.fixture(scope="module")
def build_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One build cache for the module, so each distinct network compiles once."""
    path = tmp_path_factory.mktemp("cli-build-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYMSTDP_GENN_CACHE", str(path))
        yield path


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_cache: Path) -> None:
    """Default run and data folders go under tmp_path; no test reads real data."""
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setattr(runner, "load_dataset", _fake_load_dataset)
    monkeypatch.setenv("SYMSTDP_GENN_CACHE", str(build_cache))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, build_cache: Path) -> tuple[Run, Path]:
    """One small end-to-end training run, shared by the tests that read its results."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "load_dataset", _fake_load_dataset)
        mp.setattr(cli, "ROOT", run_dir.parent)
        result = _main([*TRAIN, "--out", str(run_dir)])
    return result, run_dir


def _write_original(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    np.savetxt(folder / "gP2E", rng.random((784, n)) * 0.3)
    np.savetxt(folder / "gE2C", rng.random((n, 10)) * 0.3)
    np.savetxt(folder / "theta", np.full(n, 20.0))
    return folder


# ------------------------------------------------------------------------------------------
# user errors: one line, exit code 2
# ------------------------------------------------------------------------------------------


def test_unknown_preset() -> None:
    line = _assert_user_error(_main(["--preset", "mnist-123"]))
    assert "unknown preset 'mnist-123'" in line
    assert "mnist-400" in line


def test_out_of_range_override() -> None:
    line = _assert_user_error(_main(["--set", "network.n_hidden=-3"]))
    assert "'network.n_hidden'" in line
    assert "-3" in line


def test_unknown_override_key() -> None:
    line = _assert_user_error(_main(["--set", "nonsense.key=1"]))
    assert "'nonsense'" in line
    assert "unknown" in line


def test_bad_override_in_test_mode(tmp_path: Path) -> None:
    """Flags on top of a checkpoint's config are validated too."""
    orig = _write_original(tmp_path / "orig", 100)
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint", str(orig),
                                     "--set", "training.dt_ms=0"]))
    assert "'training.dt_ms'" in line


def test_test_mode_needs_a_checkpoint() -> None:
    line = _assert_user_error(_main(["--mode", "test"]))
    assert "--checkpoint" in line


def test_missing_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "missing.npz"
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint", str(path)]))
    assert str(path) in line
    assert "does not exist" in line


def test_corrupt_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint", str(path)]))
    assert str(path) in line
    assert "corrupt" in line


def test_npz_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.zeros(3))
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint", str(path)]))
    assert "not a symstdp-genn checkpoint" in line


@pytest.mark.skipif(importlib.util.find_spec("pygenn") is not None,
                    reason="PyGeNN is installed here")
def test_genn_backend_without_pygenn() -> None:
    line = _assert_user_error(_main(["--backend", "genn-cpu", *SMALL]))
    assert "PyGeNN" in line
    assert GENN_INSTALL_DOCS in line
    assert "--backend builtin" in line


def test_checkpoint_for_another_size(trained: tuple[Run, Path]) -> None:
    _, run_dir = trained
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint",
                                     str(run_dir / "checkpoint.npz"), "--preset", "mnist-400"]))
    assert "16 hidden neurons" in line
    assert "asks for 400" in line


def test_original_checkpoint_without_matching_preset(tmp_path: Path) -> None:
    orig = _write_original(tmp_path / "orig", 4)
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint", str(orig)]))
    assert "4 hidden neurons" in line
    assert "--preset" in line


def test_original_checkpoint_for_another_preset(tmp_path: Path) -> None:
    orig = _write_original(tmp_path / "orig", 4)
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint", str(orig),
                                     "--preset", "mnist-100"]))
    assert "4 hidden neurons" in line
    assert "asks for 100" in line


def test_resume_from_original_checkpoint_is_refused(tmp_path: Path) -> None:
    orig = _write_original(tmp_path / "orig", 4)
    line = _assert_user_error(_main(["--mode", "train", "--resume", str(orig), *SMALL]))
    assert "cannot be resumed" in line


def test_missing_c_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.setenv("SYMSTDP_GENN_CACHE", str(tmp_path / "empty-cache"))
    compiler._compiler_identity.cache_clear()
    compiler._openmp_flags.cache_clear()
    try:
        run = _main([*TRAIN, "--out", str(tmp_path / "run")])
    finally:
        compiler._compiler_identity.cache_clear()
        compiler._openmp_flags.cache_clear()
    line = _assert_user_error(run)
    assert "C compiler" in line
    assert "CC" in line
    assert not (tmp_path / "run").exists()  # item 14: a failed start leaves no folder


def test_keyboard_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_config", interrupted)
    run = _main(["--mode", "train"])
    assert run.code == 130
    assert run.err.strip() == "interrupted"


def test_run_py_reports_user_errors_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "run.py"), "--preset", "nope"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: unknown preset 'nope'")
    assert len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "models").exists()


# ------------------------------------------------------------------------------------------
# end to end on a synthetic dataset
# ------------------------------------------------------------------------------------------


def test_train_prints_both_accuracies(trained: tuple[Run, Path]) -> None:
    run, run_dir = trained
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert "trained 20 samples" in run.out
    assert "test: 10 images" in run.out
    lines = _accuracy_lines(run.out)
    assert [line.split()[0] for line in lines] == ["supervised", "assignment"]
    assert all(re.search(r"accuracy\s+\d+\.\d\d %", line) for line in lines)
    assert str(run_dir / "checkpoint.npz") in run.out


def test_train_writes_run_folder(trained: tuple[Run, Path]) -> None:
    run, run_dir = trained
    assert run.code == 0, run.err
    for name in ("checkpoint.npz", "metrics.jsonl", "config.yaml", "log.txt"):
        assert (run_dir / name).is_file(), name
    assert "seed 3" in (run_dir / "log.txt").read_text()

    ckpt = load_checkpoint(run_dir / "checkpoint.npz")
    assert ckpt.n_hidden == 16
    assert ckpt.meta["driver"]["samples_seen"] == 20
    assert ckpt.arrays["assignments"].shape == (16,)
    config = config_from_dict(ckpt.meta["config"])
    assert config == load_config(config_file=run_dir / "config.yaml")
    assert config.name == "mnist-100"
    assert config.seed == 3
    assert config.network.n_hidden == 16
    assert config.network.norm_hidden_to_output == 80.0
    assert config.training.samples == 20
    assert config.evaluation.samples == 10
    assert config.evaluation.assignment_samples == 10


def test_train_metrics_are_json_lines(trained: tuple[Run, Path]) -> None:
    run, run_dir = trained
    assert run.code == 0, run.err

    def strict(token: str) -> float:
        raise AssertionError(f"non-standard JSON constant {token}")

    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    events = [json.loads(line, parse_constant=strict) for line in text.splitlines()]
    assert all(isinstance(event, dict) for event in events)
    train = [e for e in events if e["event"] == "train"]
    assert train[-1]["samples_seen"] == 20
    final = [e for e in events if e["event"] == "evaluation" and e["tag"] == "final"]
    assert len(final) == 1
    final = final[0]
    assert final["n"] == 10
    assert final["labelled"] == 10
    assert final["samples_seen"] == 20
    assert 0.0 <= final["supervised_accuracy"] <= 1.0
    assert np.array(final["supervised_confusion"]).sum() == 10
    assert np.array(final["assignment_confusion"]).shape == (10, 11)
    # the printed accuracy is the logged one
    lines = _accuracy_lines(run.out)
    assert f"{100 * final['supervised_accuracy']:.2f} %" in lines[0]
    assert f"{100 * final['assignment_accuracy']:.2f} %" in lines[1]


def test_test_mode_reproduces_the_final_evaluation(trained: tuple[Run, Path]) -> None:
    """Testing the checkpoint gives exactly the numbers of the end-of-training evaluation."""
    run, run_dir = trained
    assert run.code == 0, run.err
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = next(e for e in events if e.get("tag") == "final")
    # the comparison means something only if the output layer is not silent throughout
    assert final["silent_fraction"] < 1.0

    test = _main(["--mode", "test", "--checkpoint", str(run_dir / "checkpoint.npz"),
                  "--eval-samples", "10", "--no-progress"])
    assert test.code == 0, test.err
    assert "test: 10 images" in test.out
    assert "16 hidden neurons" in test.out
    assert "labelling" not in test.out  # the checkpoint carries its assignments
    assert _accuracy_lines(test.out) == _accuracy_lines(run.out)


@pytest.mark.slow  # several seconds: left out of the quick run
def test_second_default_run_does_not_overwrite_the_first(tmp_path: Path) -> None:
    argv = ["--mode", "train", *SMALL, "--samples", "10", "--eval-samples", "2",
            "--set", "evaluation.assignment_samples=10"]
    first = _main(argv)
    assert first.code == 0, first.err
    first_dir = tmp_path / "models" / "mnist-100-s3"
    first_ckpt = first_dir / "checkpoint.npz"
    assert first_ckpt.is_file()
    before = first_ckpt.stat()

    second = _main(argv)
    assert second.code == 0, second.err
    second_dir = tmp_path / "models" / "mnist-100-s3-2"
    assert (second_dir / "checkpoint.npz").is_file()
    assert f"-> {second_dir}" in second.out
    after = first_ckpt.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # same config and seed: the two runs are identical
    assert first_ckpt.read_bytes() == (second_dir / "checkpoint.npz").read_bytes()


def test_fresh_run_dir_counts_up(tmp_path: Path) -> None:
    base = tmp_path / "mnist-400-s1"
    assert cli._fresh_run_dir(base) == base
    base.mkdir()
    (base / "log.txt").write_text("a run that never saved a checkpoint\n")
    assert cli._fresh_run_dir(base) == base
    (base / "checkpoint.npz").write_bytes(b"x")
    assert cli._fresh_run_dir(base) == tmp_path / "mnist-400-s1-2"
    (tmp_path / "mnist-400-s1-2").mkdir()
    (tmp_path / "mnist-400-s1-2" / "checkpoint.npz").write_bytes(b"x")
    assert cli._fresh_run_dir(base) == tmp_path / "mnist-400-s1-3"


def test_snapshots_can_be_tested_but_not_resumed(trained: tuple[Run, Path]) -> None:
    _, run_dir = trained
    snapshot = sorted((run_dir / "snapshots").glob("samples-*.npz"))[-1]
    line = _assert_user_error(_main(["--mode", "train", "--resume", str(snapshot)]))
    assert "snapshot" in line and "checkpoint.npz" in line
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "load_dataset", _fake_load_dataset)
        result = _main(["--mode", "test", "--checkpoint", str(snapshot), "--eval-samples", "10",
                        "--no-progress"])
    assert result.code == 0
    assert len(_accuracy_lines(result.out)) == 2
    # a checkpoint that is not a run's checkpoint.npz reports into NAME-test/ beside it
    report = snapshot.parent / f"{snapshot.stem}-test"
    assert (report / "evaluation.npz").is_file()
    assert not (run_dir / "snapshots" / "evaluation.npz").exists()


@pytest.mark.slow  # several seconds: left out of the quick run
def test_original_text_checkpoint_reads_out_like_the_same_weights(
        trained: tuple[Run, Path], tmp_path: Path) -> None:
    """gP2E/gE2C/theta text files of a trained network give the supervised accuracy of
    its weights-only snapshot (per-neuron θ survives the import; the labelling pass that
    the import needs leaves no trace in the test pass)."""
    _, run_dir = trained
    snapshot = sorted((run_dir / "snapshots").glob("samples-*.npz"))[-1]
    arrays = np.load(snapshot)
    orig = tmp_path / "orig"
    orig.mkdir()
    np.savetxt(orig / "gP2E", arrays["input_to_hidden.g"])
    np.savetxt(orig / "gE2C", arrays["hidden_to_output.g"])
    np.savetxt(orig / "theta", arrays["hidden.theta"].ravel())
    assert np.unique(arrays["hidden.theta"]).size > 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "load_dataset", _fake_load_dataset)
        args = ["--eval-samples", "20", "--no-progress"]
        from_snapshot = _main(["--mode", "test", "--checkpoint", str(snapshot), *args])
        from_text = _main(["--mode", "test", "--checkpoint", str(orig), "--preset", "mnist-100",
                           "--seed", "3",
                           "--set", "network.n_hidden=16", *args])
    assert from_snapshot.code == 0 and from_text.code == 0, from_text.err
    assert _accuracy_lines(from_text.out)[0] == _accuracy_lines(from_snapshot.out)[0]


# ------------------------------------------------------------------------------------------
# run safety (issue 8): nothing a user does loses or mixes up a run
# ------------------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (tests/ excepted) by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] != "tests"}


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the end-of-training figures (seconds each) where a test does not look at them."""
    monkeypatch.setattr(cli, "draw_safely", lambda draw: None)


def _train(run_dir: Path, *extra: str, samples: int = 20) -> Run:
    return _main(["--mode", "train", *SMALL, "--samples", str(samples), "--eval-samples", "10",
                  "--set", "evaluation.assignment_samples=10", "--out", str(run_dir), *extra])


def test_existing_run_folder_is_refused(trained: tuple[Run, Path]) -> None:
    """Item 1: --out naming an existing run: one line naming it and the two ways on."""
    _, run_dir = trained
    before = _files(run_dir)
    line = _assert_user_error(_main([*TRAIN, "--out", str(run_dir)]))
    assert str(run_dir) in line
    assert f"--resume {run_dir / 'checkpoint.npz'}" in line
    assert "--out" in line
    assert _files(run_dir) == before  # nothing replaced, nothing appended


def test_run_folder_without_checkpoint_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 1\n")
    line = _assert_user_error(_main([*TRAIN, "--out", str(run_dir)]))
    assert str(run_dir) in line and "no checkpoint" in line
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]


def test_ctrl_c_during_final_evaluation_keeps_the_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 3: the final checkpoint is written before labelling; Ctrl-C there keeps it."""
    from symstdp_genn.evaluator import Evaluator

    original = Evaluator.run_pass

    def ctrl_c_while_labelling(self, state, images, purpose, progress=None):
        if purpose == "labelling":
            signal.raise_signal(signal.SIGINT)
        return original(self, state, images, purpose, progress)

    monkeypatch.setattr(Evaluator, "run_pass", ctrl_c_while_labelling)
    run_dir = tmp_path / "run"
    run = _train(run_dir)
    assert run.code == 130
    ckpt_path = run_dir / "checkpoint.npz"
    assert "final evaluation" in run.err
    assert f"--checkpoint {ckpt_path}" in run.err
    assert load_checkpoint(ckpt_path).meta["driver"]["samples_seen"] == 20
    assert "Traceback" not in run.err


_TRAIN_PROCESS = """\
import sys, time
sys.path.insert(0, {tests!r})
from symstdp_genn import cli, runner
from symstdp_genn.simulation import Simulation
from test_cli import fake_dataset
runner.load_dataset = lambda name, folder: fake_dataset()
present = Simulation.present
def slow_present(self, *args, **kwargs):  # time to act between samples; results unchanged
    time.sleep({delay})
    return present(self, *args, **kwargs)
Simulation.present = slow_present
sys.exit(cli.main(sys.argv[1:]))
"""


def _train_process(argv: list[str], cwd: Path, build_cache: Path, delay: float = 0.0
                   ) -> subprocess.Popen[str]:
    """``run.py`` in a real process (real signals), on the synthetic data of this module."""
    script = _TRAIN_PROCESS.format(tests=str(REPO / "tests"), delay=delay)
    return subprocess.Popen([sys.executable, "-c", script, *argv], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"),
                                 "SYMSTDP_GENN_CACHE": str(build_cache)})


def _wait_for(path: Path, proc: subprocess.Popen[str], text: str = "") -> None:
    for _ in range(2400):
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def test_sigterm_saves_a_checkpoint_and_exits_130(tmp_path: Path, build_cache: Path) -> None:
    """Item 4: SIGTERM (kill, timeout, schedulers) stops like Ctrl-C, in a real process."""
    run_dir = tmp_path / "run"
    argv = ["--mode", "train", *SMALL, "--epochs", "1000", "--eval-samples", "10",
            "--set", "training.checkpoint_every=0", "--out", str(run_dir)]
    proc = _train_process(argv, tmp_path, build_cache, delay=0.002)
    metrics = run_dir / "metrics.jsonl"
    try:
        _wait_for(run_dir / "config.yaml", proc)  # written once training has begun
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "SIGTERM" in err and str(run_dir / "checkpoint.npz") in err
    assert "Traceback" not in err
    seen = load_checkpoint(run_dir / "checkpoint.npz").meta["driver"]["samples_seen"]
    assert 0 < seen < 40_000
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert events[-1]["event"] == "interrupted" and events[-1]["by"] == "SIGTERM"


def test_second_training_into_a_running_folder_names_the_holder(
        tmp_path: Path, build_cache: Path) -> None:
    """Item 2: a training runs in another process: a second one into its folder is one line
    naming that process, and touches nothing."""
    run_dir = tmp_path / "run"
    argv = ["--mode", "train", *SMALL, "--epochs", "1000", "--eval-samples", "10",
            "--set", "training.checkpoint_every=0", "--out", str(run_dir)]
    proc = _train_process(argv, tmp_path, build_cache, delay=0.002)
    try:
        _wait_for(run_dir / "config.yaml", proc)  # written once training has begun
        before = (run_dir / "config.yaml").read_bytes()
        line = _assert_user_error(_main([*TRAIN, "--out", str(run_dir)]))
        resume = _main([*TRAIN, "--resume", str(run_dir / "checkpoint.npz")])
    finally:
        proc.terminate()
        proc.communicate(timeout=120)
    assert f"in use by another training (process {proc.pid})" in line
    assert str(run_dir) in line
    assert (run_dir / "config.yaml").read_bytes() == before
    assert proc.returncode == 130  # the holder was not disturbed: SIGTERM saved its work
    assert resume.code != 0


def test_kill_9_then_resume_ends_identical(tmp_path: Path, build_cache: Path,
                                           no_figures: None) -> None:
    """kill -9 loses only the samples since the last checkpoint: resuming from it ends
    byte-identical to an uninterrupted run (and cleans up any half-written temp file)."""
    extra = ["--set", "training.checkpoint_every=10"]
    full = _train(tmp_path / "full", *extra, samples=30)
    assert full.code == 0, full.err
    run_dir = tmp_path / "run"
    argv = ["--mode", "train", *SMALL, "--samples", "30", "--eval-samples", "10",
            "--set", "evaluation.assignment_samples=10", *extra, "--out", str(run_dir)]
    proc = _train_process(argv, tmp_path, build_cache, delay=0.02)
    try:
        _wait_for(run_dir / "snapshots" / "samples-00000010.npz", proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(run_dir / "checkpoint.npz").meta["driver"]["samples_seen"] < 30
    resumed = _main(["--mode", "train", "--resume", str(run_dir / "checkpoint.npz"),
                     "--no-progress"])
    assert resumed.code == 0, resumed.err
    assert ((run_dir / "checkpoint.npz").read_bytes()
            == (tmp_path / "full" / "checkpoint.npz").read_bytes())
    assert _accuracy_lines(resumed.out) == _accuracy_lines(full.out)
    assert not list(run_dir.rglob(".*.tmp*"))


def test_test_mode_reports_into_its_own_subfolder(trained: tuple[Run, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 5: testing a run's checkpoint never replaces training's evaluation or figures."""
    _, run_dir = trained
    before = _files(run_dir)
    assert "evaluation.npz" in before and "figures/confusion.png" in before
    argv = ["--mode", "test", "--checkpoint", str(run_dir / "checkpoint.npz"),
            "--eval-samples", "5", "--no-progress"]
    first = _main(argv)
    assert (run_dir / "tests" / "5-images" / "figures" / "confusion.png").is_file()
    monkeypatch.setattr(cli, "draw_safely", lambda draw: None)  # once is enough
    second = _main(argv)
    assert first.code == 0 and second.code == 0, second.err
    assert _files(run_dir) == before
    reports = sorted(p.name for p in (run_dir / "tests").iterdir() if p.name.startswith("5-"))
    assert reports == ["5-images", "5-images-2"]
    for name in reports:
        assert (run_dir / "tests" / name / "evaluation.npz").is_file()
    assert f"report:     {run_dir / 'tests' / '5-images'}" in first.out
    # pointing --out at the run folder itself is refused, before any work
    line = _assert_user_error(_main([*argv, "--out", str(run_dir)]))
    assert "training run folder" in line
    assert _files(run_dir) == before


def test_test_mode_takes_a_run_folder(trained: tuple[Run, Path],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``--checkpoint RUN_FOLDER`` tests the run's checkpoint.npz (it was refused as "not an
    original checkpoint folder"), with the same numbers and report place as the file."""
    run, run_dir = trained
    monkeypatch.setattr(cli, "draw_safely", lambda draw: None)
    test = _main(["--mode", "test", "--checkpoint", str(run_dir), "--eval-samples", "10",
                  "--no-progress"])
    assert test.code == 0, test.err
    assert f"testing {run_dir / 'checkpoint.npz'} " in test.out
    assert _accuracy_lines(test.out) == _accuracy_lines(run.out)
    assert f"report:     {run_dir / 'tests' / '10-images'}" in test.out


@pytest.mark.parametrize(("flags", "key", "old", "new"), [
    (["--seed", "5"], "seed", "3", "5"),
    (["--set", "network.eta_input_to_hidden=0.02"], "network.eta_input_to_hidden", "0.005",
     "0.02"),
    (["--set", "dataset=fashion-mnist"], "dataset", "'mnist'", "'fashion-mnist'"),
])
def test_resume_refuses_a_changed_seed_dataset_or_network(
        trained: tuple[Run, Path], flags: list[str], key: str, old: str, new: str) -> None:
    """Item 6: the weights were learnt under the checkpoint's seed, dataset and network."""
    _, run_dir = trained
    before = _files(run_dir)
    line = _assert_user_error(_main(["--mode", "train", "--resume",
                                     str(run_dir / "checkpoint.npz"), *flags]))
    assert f"'{key}' is {old} in the checkpoint but {new} was asked" in line
    assert _files(run_dir) == before


def test_resume_may_change_training_and_logs_it(tmp_path: Path, no_figures: None) -> None:
    """Item 6 (allowed half) and item 18: a resume reports this session's samples and time."""
    run_dir = tmp_path / "run"
    assert _train(run_dir, samples=10).code == 0
    run = _main(["--mode", "train", "--resume", str(run_dir / "checkpoint.npz"),
                 "--samples", "20", "--no-progress"])
    assert run.code == 0, run.err
    assert "trained 10 samples in" in run.out and "20 in total" in run.out
    assert "resume changes training.samples 10 -> 20" in (run_dir / "log.txt").read_text()
    assert load_config(config_file=run_dir / "config.yaml").training.samples == 20


def test_stale_temp_files_are_removed_on_resume(tmp_path: Path, no_figures: None) -> None:
    """Item 7: temporary files a kill left behind go at the next start in that folder."""
    run_dir = tmp_path / "run"
    assert _train(run_dir, samples=10).code == 0
    stale = [run_dir / ".checkpoint.0123abcd.tmp.npz",
             run_dir / "snapshots" / ".samples-00000010.89abcdef.tmp.npz",
             run_dir / ".config.deadbeef.tmp.yaml"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    keep = run_dir / "notes.tmp.txt"  # not a name atomic_path makes
    keep.write_text("mine")
    run = _main(["--mode", "train", "--resume", str(run_dir / "checkpoint.npz"),
                 "--samples", "12", "--no-progress"])
    assert run.code == 0, run.err
    assert [p for p in stale if p.exists()] == []
    assert keep.read_text() == "mine"


def _full_disk_after(calls: int) -> object:
    """A ``checkpoint.write_npz`` that succeeds ``calls`` times, then fills the disk midway."""
    from symstdp_genn import checkpoint

    real = checkpoint.write_npz
    seen: list[Path] = []

    def write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
        seen.append(Path(path))
        if len(seen) <= calls:
            return real(path, arrays)
        with checkpoint.atomic_path(path) as tmp:
            tmp.write_bytes(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    return write


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 9: ENOSPC while saving: one line, exit 2, the last checkpoint intact."""
    from symstdp_genn import checkpoint

    monkeypatch.setattr(checkpoint, "write_npz", _full_disk_after(2))  # checkpoint + snapshot
    run_dir = tmp_path / "run"
    line = _assert_user_error(_train(run_dir, "--set", "training.checkpoint_every=10"))
    assert "No space left on device" in line
    assert str(run_dir / "checkpoint.npz") in line and "unchanged" in line
    assert load_checkpoint(run_dir / "checkpoint.npz").meta["driver"]["samples_seen"] == 10
    assert not list(run_dir.rglob("*.tmp*"))


def test_disk_full_while_drawing_figures_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 9: ENOSPC while writing a figure: one line, exit 2 (training's files kept)."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    def full(self, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Figure, "savefig", full)
    run_dir = tmp_path / "run"
    line = _assert_user_error(_train(run_dir), after_notices=True)
    assert "cannot write figure" in line and "No space left on device" in line
    assert "--mode plot" in line
    assert load_checkpoint(run_dir / "checkpoint.npz").meta["driver"]["samples_seen"] == 20


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """Item 10: --out naming a regular file (or a path through one)."""
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    line = _assert_user_error(_main([*TRAIN, "--out", str(target)]))
    assert str(target) in line and "not a folder" in line
    line = _assert_user_error(_main([*TRAIN, "--out", str(target / "run")]))
    assert "cannot write into run folder" in line
    assert target.read_text() == "not a folder"


def test_test_mode_out_that_is_a_file_is_refused(trained: tuple[Run, Path],
                                                 tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("not a folder")
    line = _assert_user_error(_main(["--mode", "test", "--checkpoint",
                                     str(trained[1] / "checkpoint.npz"), "--out", str(target)]))
    assert str(target) in line and "not a folder" in line


def test_out_not_writable_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 10: --out where the user may not write (EACCES from mkdir; real as non-root)."""
    parent = tmp_path / "readonly"
    parent.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the refusal the OS's answer to mkdir
        real = Path.mkdir

        def mkdir(self: Path, *args: object, **kwargs: object) -> None:
            if self.parent == parent:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    else:
        parent.chmod(0o500)
    try:
        line = _assert_user_error(_main([*TRAIN, "--out", str(parent / "run")]))
    finally:
        parent.chmod(0o700)
    assert "Permission denied" in line and "--out" in line


def test_failed_start_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 14: a start that fails (here: no data) removes the folders it created."""
    def no_data(name: str, folder: Path) -> Dataset:
        from symstdp_genn.errors import UserError
        raise UserError("no data here")

    monkeypatch.setattr(runner, "load_dataset", no_data)
    line = _assert_user_error(_main([*TRAIN, "--out", str(tmp_path / "new" / "run")]))
    assert line == "error: no data here"
    assert not (tmp_path / "new").exists()
    # a folder that existed before is kept, whatever it held
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    _assert_user_error(_main([*TRAIN, "--out", str(tmp_path / "mine")]))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_config_records_the_backend_used_and_metrics_are_timestamped(
        trained: tuple[Run, Path]) -> None:
    """Item 18: config.yaml keeps what was asked and says what was used; every metrics
    line has an ISO time and the seconds since the session began."""
    _, run_dir = trained
    text = (run_dir / "config.yaml").read_text()
    asked = load_config(config_file=run_dir / "config.yaml").backend
    assert f"backend: {asked}" in text
    used = load_checkpoint(run_dir / "checkpoint.npz").meta["backend"]
    assert f"# backend used: {used} (asked: {asked})" in text
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "start" and events[0]["backend"] == used
    assert events[0]["backend_requested"] == asked
    stamps = [datetime.fromisoformat(e["time"]) for e in events]
    assert all(s.tzinfo is not None for s in stamps) and stamps == sorted(stamps)
    elapsed = [e["elapsed_s"] for e in events]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0
