"""Issue 8, first contact: entry points, flags, where data lives, what the terminal shows,
how many images labelling uses."""

from __future__ import annotations

import configparser
import contextlib
import errno
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import restored_logging, run_cli, small_config

from symstdp_genn import cli, data, progress
from symstdp_genn.checkpoint import save_checkpoint
from symstdp_genn.data import Dataset
from symstdp_genn.evaluator import Evaluator, labelling_samples
from symstdp_genn.training import Trainer

REPO = Path(__file__).resolve().parents[1]


_main = run_cli


def _one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ------------------------------------------------------------------------------------------
# item 17: python -m symstdp_genn, the console script, the default data folder
# ------------------------------------------------------------------------------------------


def test_python_dash_m_runs_the_same_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    version = subprocess.run([sys.executable, "-m", "symstdp_genn", "--version"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("symstdp-genn ")
    usage = subprocess.run([sys.executable, "-m", "symstdp_genn", "--mode", "bogus"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
    assert usage.stderr.strip().endswith("(see python -m symstdp_genn --help)")
    assert len(usage.stderr.strip().splitlines()) == 1


def test_console_script_is_declared_for_cli_main() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = [line.strip() for line in cfg["options.entry_points"]["console_scripts"]
               .splitlines() if line.strip()]
    assert scripts == ["symstdp-genn = symstdp_genn.cli:main"]
    assert cli.program_name("/usr/local/bin/symstdp-genn") == "symstdp-genn"
    assert cli.program_name("/x/symstdp_genn/__main__.py") == "python -m symstdp_genn"
    assert cli.program_name("run.py") == "run.py"


def test_mode_data_uses_the_default_data_folder_not_the_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def fake_ensure(name: str, folder: Path) -> Path:
        seen.append(Path(folder))
        return Path(folder) / name

    monkeypatch.setattr(cli, "ensure_dataset", fake_ensure)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    code, _, err = _main(["--mode", "data", "--dataset", "mnist"])
    assert code == 0, err
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "shared"))
    code, _, err = _main(["--mode", "data", "--dataset", "mnist"])
    assert code == 0, err
    assert seen == [REPO / "data", tmp_path / "shared"]


# ------------------------------------------------------------------------------------------
# item 10 (--data-dir half) and item 11 through the command line
# ------------------------------------------------------------------------------------------


def test_read_only_data_dir_is_one_line_exit_2(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    (folder / "mnist").mkdir(parents=True)
    monkeypatch.setattr(data.sources, "SOURCES", [])
    real = tempfile.mkstemp

    def mkstemp(*args: object, dir: object = None, **kw: object) -> tuple[int, str]:
        if dir is not None and Path(str(dir)).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code, _, err = _main(["--mode", "data", "--dataset", "mnist", "--data-dir", str(folder)])
    line = _one_error_line(code, err)
    assert "not writable" in line and "Read-only file system" in line
    assert "train-images-idx3-ubyte (missing)" in line
    assert sorted(p.name for p in (folder / "mnist").iterdir()) == []


def test_nan_checkpoint_is_refused_by_test_mode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"input_to_hidden.g": rng.random((784, 4), dtype=np.float32),
              "hidden_to_output.g": rng.random((4, 10), dtype=np.float32),
              "hidden.theta": np.full((1, 4), 20.0, np.float32)}
    arrays["input_to_hidden.g"][100, 3] = np.nan
    save_checkpoint(tmp_path / "c.npz", arrays, {})
    code, _, err = _main(["--mode", "test", "--checkpoint", str(tmp_path / "c.npz")])
    line = _one_error_line(code, err)
    assert "'input_to_hidden.g' holds NaN or infinity at index [100, 3]" in line


# ------------------------------------------------------------------------------------------
# item 20: --dataset outside --mode data; every flag in the README's table
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["train", "test", "plot"])
def test_dataset_flag_outside_data_mode_is_refused(mode: str) -> None:
    code, out, err = _main(["--mode", mode, "--dataset", "fashion-mnist"])
    line = _one_error_line(code, err)
    assert f"--dataset applies to --mode data only; for --mode {mode}" in line
    assert "--set dataset=" in line and out == ""


def test_usage_flag_table_lists_every_flag() -> None:
    # The CLI flag table lives on the documentation's usage page (the README links to it).
    usage = (REPO / "docs" / "usage.md").read_text()
    table = "\n".join(line for line in usage.splitlines() if line.startswith("| `-"))
    flags = sorted({opt for action in cli.build_parser()._actions
                    for opt in action.option_strings if opt != "-h" and opt != "--help"})
    missing = [f for f in flags if not re.search(rf"`{re.escape(f)}[ `]", table)]
    assert missing == [], f"docs/usage.md flag table lacks {missing}"
    assert {"--no-progress", "-v", "--dataset", "--version"} <= set(flags)


# ------------------------------------------------------------------------------------------
# item 16: plain progress lines off a terminal; notices reach the terminal
# ------------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_plain_progress_line_at_most_every_30_s(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    stream = io.StringIO()  # not a terminal
    with caplog.at_level(logging.INFO, logger="symstdp_genn.progress"), \
            progress.ProgressBar(100, "training", True, stream=stream, clock=clock) as bar:
        for k in range(100):
            clock.t += 1.0  # one sample per second
            bar.advance(1, running=f"{50 + k // 10:.1f}%")
    lines = [r.getMessage() for r in caplog.records if progress.is_notice(r)]
    assert stream.getvalue() == ""  # no bar drawn into a pipe
    assert lines == [
        "training: 30 of 100 samples (30 %), running accuracy 52.0%, 1.0 samples/s, "
        "ETA 1 min 10 s",
        "training: 60 of 100 samples (60 %), running accuracy 55.0%, 1.0 samples/s, "
        "ETA 40 s",
        "training: 90 of 100 samples (90 %), running accuracy 58.0%, 1.0 samples/s, "
        "ETA 10 s",
    ]


def test_resumed_progress_rate_counts_only_this_session(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    with caplog.at_level(logging.INFO, logger="symstdp_genn.progress"), \
            progress.ProgressBar(10_000, "training", True, initial=6000,
                                 stream=io.StringIO(), clock=clock) as bar:
        clock.t += 40.0
        bar.advance(200)
    (line,) = [r.getMessage() for r in caplog.records if progress.is_notice(r)]
    assert line == ("training: 6,200 of 10,000 samples (62 %), 5.0 samples/s, "
                    "ETA 12 min 40 s")


def test_no_progress_and_terminal_bar(caplog: pytest.LogCaptureFixture) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock = _Clock()
    tty = Tty()
    with caplog.at_level(logging.INFO, logger="symstdp_genn.progress"):
        with progress.ProgressBar(50, "testing", True, stream=tty, clock=clock) as bar:
            for _ in range(50):
                clock.t += 10
                bar.advance(1)
        with progress.ProgressBar(50, "testing", False, stream=io.StringIO(),
                                  clock=clock) as bar:
            for _ in range(50):
                clock.t += 10
                bar.advance(1)
    assert "50/50" in tty.getvalue()  # the tqdm bar, on a terminal
    assert [r for r in caplog.records if progress.is_notice(r)] == []


def test_notices_reach_the_terminal_plain_info_does_not() -> None:
    err = io.StringIO()
    with restored_logging(), contextlib.redirect_stderr(err):
        cli._setup_logging(verbose=False)
        log = logging.getLogger("symstdp_genn.somewhere")
        log.info("an ordinary progress detail")
        progress.notice(log, "compiling the %s model", "network")
        log.warning("something odd")
    assert err.getvalue().splitlines() == ["compiling the network model",
                                           "WARNING: something odd"]


def test_tsne_skip_is_a_notice(tmp_path: Path) -> None:
    from symstdp_genn.plotting import FigureReport

    report = FigureReport(tmp_path)
    err = io.StringIO()
    with restored_logging(), contextlib.redirect_stderr(err):
        cli._setup_logging(verbose=False)
        report.skip("t-SNE: scikit-learn is not installed; pip install x", tell=True)
        report.skip("snapshots: none")
    assert err.getvalue() == ("figure skipped: t-SNE: scikit-learn is not installed; "
                              "pip install x\n")
    assert report.skipped == ["t-SNE: scikit-learn is not installed; pip install x",
                              "snapshots: none"]


# ------------------------------------------------------------------------------------------
# item 15: the labelling set scales with a run limited by --samples
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("samples,assign,n_train,want", [
    (None, 10_000, 60_000, 10_000),   # a full run: as configured
    (2_000, 10_000, 60_000, 2_000),   # the README's quick look
    (200, 10_000, 60_000, 1_000),     # never below 1000
    (50_000, 10_000, 60_000, 10_000),  # never above the configured number
    (2_000, 500, 60_000, 500),
    (2_000, 10_000, 1_500, 1_500),    # never above the training set
])
def test_labelling_samples_formula(samples: int | None, assign: int, n_train: int,
                                   want: int) -> None:
    sets = {"evaluation.assignment_samples": assign}
    if samples is not None:
        sets["training.samples"] = samples
    assert labelling_samples(small_config(8, **sets), n_train) == want


def test_final_labelling_of_a_short_run_uses_the_scaled_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    n_train = 1500
    ds = Dataset((rng.random((n_train, 784)) < 0.1).astype(np.uint8) * 200,
                 (np.arange(n_train) % 10).astype(np.uint8),
                 (rng.random((20, 784)) < 0.1).astype(np.uint8) * 200,
                 (np.arange(20) % 10).astype(np.uint8), name="mnist")
    passes: list[tuple[str, int]] = []
    real = Evaluator.run_pass

    def counting(self: Evaluator, state: object, images: np.ndarray, purpose: str,
                 progress: object = None) -> object:
        passes.append((purpose, len(images)))
        if purpose == "labelling":  # the labelling itself is not what is tested: skip it
            n = self.spec.population("hidden").size
            counts = np.tile(np.eye(10, dtype=np.int32), (n // 10 + 1, 1))[:n].T
            hidden = counts[np.arange(len(images)) % 10]
            z = np.zeros(len(images), np.int32)
            return hidden, np.zeros((len(images), 10), np.int32), z, z.astype(bool), 0.0
        return real(self, state, images, purpose, progress)

    monkeypatch.setattr(Evaluator, "run_pass", counting)
    config = small_config(16, **{"training.samples": 20, "evaluation.samples": 20,
                                 "training.checkpoint_every": 0, "seed": 3})
    assert config.evaluation.assignment_samples == 10_000  # the default
    with caplog.at_level(logging.INFO):
        outcome = Trainer(config, ds, tmp_path / "run").train(show_progress=False)
    assert outcome.final is not None
    assert passes == [("labelling", 1000), ("test", 20)]
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"labelled": 1000' in metrics
    told = [r.getMessage() for r in caplog.records if progress.is_notice(r)]
    assert "final evaluation: labelling hidden neurons on 1000 training images, then " \
           "testing on 20" in told


@pytest.mark.parametrize("mode", ["train", "test", "data"])
def test_rf_order_outside_plot_mode_is_refused(mode: str) -> None:
    code, _, err = _main(["--mode", mode, "--rf-order", "index"])
    assert "--rf-order applies to --mode plot only" in _one_error_line(code, err)
