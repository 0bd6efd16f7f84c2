"""Sweeps on Dask: sweep-file validation, a 2 x 2 grid x 2 seeds on an in-process cluster
(equal bit for bit to the same runs through --mode train, nothing re-run the second time,
failures recorded), and a worker killed with -9 on a real process cluster.

The data are tiny synthetic IDX files in the MNIST layout (10 200 training images, so the
validation split exists) whose ``.verified`` stamp vouches for them, so every process,
worker processes included, loads them through the ordinary ensure_dataset path.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import run_cli

from symstdp_genn import cli
from symstdp_genn.data import DATASETS, FILES, write_idx
from symstdp_genn.data.cache import _stat_key
from symstdp_genn.sweep import build_sweep, load_sweep
from symstdp_genn.sweep.spec import config_hash

try:
    import distributed
except ImportError:  # the [sweep] extra is missing: only the sweep-file tests run
    distributed = None

needs_dask = pytest.mark.skipif(distributed is None, reason='needs pip install -e ".[sweep]"')


def run_sweep(*args: Any, **kwargs: Any) -> Any:
    from symstdp_genn.sweep.engine import run_sweep as run

    return run(*args, **kwargs)

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "sweeps" / "smoke.yaml"


def write_synthetic_mnist(root: Path, n_train: int = 10_200, n_test: int = 20) -> Path:
    """Noisy class prototypes as MNIST IDX files, stamped as verified (see module doc)."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, 784)) < 0.15
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        pixels = prototypes[labels] ^ (rng.random((n, 784)) < 0.08)
        images = (pixels * rng.integers(100, 256, (n, 784))).astype(np.uint8)
        return images.reshape(n, 28, 28), labels

    stamp = {}
    for name, array in zip(FILES, (*make(n_train), *make(n_test)), strict=True):
        write_idx(folder / name, array)
        stamp[name] = {**_stat_key(folder / name), "sha256": DATASETS["mnist"].files[name][1]}
    (folder / ".verified").write_text(json.dumps(stamp))
    return root


@contextlib.contextmanager
def in_process_cluster(n_workers: int = 2) -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_mnist(tmp_path_factory.mktemp("synthetic-data"))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("smoke-sweep")
    spec = load_sweep(SMOKE)
    with in_process_cluster() as client:
        report = run_sweep(spec, out, data_dir=data_dir, client=client, show_progress=False)
    return report, out


# -- sweep files -------------------------------------------------------------------------


def _sweep_file(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


GOOD = {"base": "mnist-100", "grid": {"network.theta_plus": [0.05, 0.07]}, "seeds": [1, 2]}


@pytest.mark.parametrize("change, named", [
    ({"gird": {"network.theta_plus": [0.1]}}, "'gird'"),
    ({"grid": {"network.theta_plus": []}}, "'grid.network.theta_plus'"),
    ({"grid": {}}, "'grid'"),
    ({"grid": {"network.theta_plus": [0.05, -1.0]}}, "'network.theta_plus'"),
    ({"grid": {"network.tau_theta": [1e6]}}, "'network.tau_theta'"),
    ({"set": {"training.sample": 100}}, "'training.sample'"),
    ({"split": "train"}, "'split'"),
    ({"set": {"training.validation": False}}, "'training.validation' is set by 'split:'"),
    ({"seeds": []}, "'seeds'"),
    ({"samples": 0}, "'samples'"),
    ({"base": "mnist-7"}, "unknown preset 'mnist-7'"),
    ({"random": {"trials": 2, "params": {"network.theta_plus": {"normal": [0, 1]}}}},
     "'random.params.network.theta_plus'"),
    ({"random": {"trials": 2, "params": {"network.eta_input_to_hidden":
                                         {"log_uniform": [0.0, 0.1]}}}},
     "'random.params.network.eta_input_to_hidden'"),
])
def test_sweep_file_errors_are_one_line_naming_the_key(tmp_path: Path, change: dict,
                                                       named: str) -> None:
    path = _sweep_file(tmp_path, {**GOOD, **change})
    code, _, err = run_cli(["--mode", "sweep", "--sweep", str(path), "--out",
                              str(tmp_path / "out")])
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert named in err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_missing_sweep_file_and_flag() -> None:
    code, _, err = run_cli(["--mode", "sweep"])
    assert code == 2 and "--sweep FILE.yaml" in err
    code, _, err = run_cli(["--mode", "sweep", "--sweep", "no/such.yaml"])
    assert code == 2 and "cannot read sweep file no/such.yaml" in err


def test_without_dask_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    code, _, err = run_cli(["--mode", "sweep", "--sweep", str(SMOKE)])
    assert code == 2
    assert err == 'error: --mode sweep needs Dask distributed: pip install -e ".[sweep]"\n'


def test_expansion_grid_seeds_and_ids() -> None:
    spec = load_sweep(SMOKE)
    assert len(spec.trials) == 8 and spec.split == "validation"
    assert {t.seed for t in spec.trials} == {1, 2}
    # all seeds of a point share its id; the four points differ; the id is the config's hash
    points = {t.point_id for t in spec.trials}
    assert len(points) == 4
    for t in spec.trials:
        assert t.config.seed == t.seed and t.config.training.validation
        assert t.config.training.samples == 200 and t.config.evaluation.periodic_samples == 100
        # scored once, at the last sample, on the validation split; the test set unused
        assert t.config.training.eval_every == 200
        assert t.config.evaluation.select_split == "validation"
        assert t.config.network.theta_plus == t.params["network.theta_plus"]
    assert spec.trials[0].name == "theta_plus=0.05, eta_input_to_hidden=0.005"


def test_random_draws_are_reproducible_and_in_range() -> None:
    data = {"base": "mnist-100", "seed": 7, "random": {"trials": 6, "params": {
        "network.eta_input_to_hidden": {"log_uniform": [0.001, 0.1]},
        "network.theta_plus": {"uniform": [0.01, 0.05]},
        "network.supervision": {"choice": ["teacher", "current"]}}}}
    a, b = build_sweep(data), build_sweep(data)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert len(a.trials) == 6
    for t in a.trials:
        assert 0.001 <= t.params["network.eta_input_to_hidden"] <= 0.1
        assert 0.01 <= t.params["network.theta_plus"] <= 0.05
    other = build_sweep({**data, "seed": 8})
    assert [t.params for t in other.trials] != [t.params for t in a.trials]


def test_test_split_is_said_everywhere(tmp_path: Path) -> None:
    from symstdp_genn.sweep.results import write_results

    spec = build_sweep({**GOOD, "split": "test"})
    assert not spec.trials[0].config.training.validation
    rows = [{"trial": t.trial_id, "point": t.point_id, "name": t.name, "seed": t.seed,
             "network.theta_plus": t.params["network.theta_plus"], "status": "finished",
             "split": "test", "supervised_accuracy": 0.5 + 0.1 * t.seed,
             "assignment_accuracy": 0.4, "reason": ""} for t in spec.trials]
    files = write_results(spec, rows, tmp_path)
    assert "TEST set" in files.markdown.read_text()
    assert "supervised (test)" in files.markdown.read_text()
    assert all(line.endswith(",test,") or ",test," in line
               for line in files.csv.read_text().splitlines()[1:])


# -- the smoke grid on an in-process cluster ----------------------------------------------
@needs_dask
@pytest.mark.slow  # the smoke grid: a local Dask cluster, ~12 s
def test_grid_runs_every_trial_into_run_folders(smoke: tuple[Any, Path]) -> None:
    report, out = smoke
    assert report.ran == 8 and report.skipped == 0 and report.counts == {"finished": 8}
    for row in report.rows:
        folder = Path(row["run_dir"])
        assert folder.parent == out / "trials" and folder.name == row["trial"]
        for name in ("checkpoint.npz", "best.npz", "config.yaml", "metrics.jsonl", "log.txt",
                     "result.json"):
            assert (folder / name).is_file(), folder / name
        assert not (folder / "evaluation.npz").exists()  # the test set is never scored
        assert 0.0 <= row["supervised_accuracy"] <= 1.0
    accuracies = {row["supervised_accuracy"] for row in report.rows}
    assert len(accuracies) > 1  # the grid and the seeds make a difference


@needs_dask
@pytest.mark.slow  # the smoke grid: a local Dask cluster, ~12 s
def test_results_tables_and_figure(smoke: tuple[Any, Path]) -> None:
    report, out = smoke
    lines = (out / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["trial", "point", "name", "network.theta_plus",
                          "network.eta_input_to_hidden"]
    assert {"seed", "status", "supervised_accuracy", "assignment_accuracy", "samples_per_s",
            "wall_s"} <= set(header)
    assert len(lines) == 9
    md = (out / "results.md").read_text()
    assert "validation split" in md
    table = [line for line in md.splitlines() if line.startswith("| ") and "±" in line]
    assert len(table) == 4
    means = [float(line.split("|")[4].split("±")[0]) for line in table]
    assert means == sorted(means, reverse=True)  # best point first
    by_point: dict[str, list[float]] = {}
    for row in report.rows:
        by_point.setdefault(row["point"], []).append(100 * row["supervised_accuracy"])
    best = max(by_point, key=lambda p: np.mean(by_point[p]))
    assert table[0].split("|")[1].strip() == best
    assert abs(means[0] - np.mean(by_point[best])) < 0.006
    assert (out / "sweep.png").stat().st_size > 10_000


@needs_dask
@pytest.mark.slow  # the smoke grid: a local Dask cluster, ~12 s
def test_trials_equal_train_mode_bit_for_bit(smoke: tuple[Any, Path], data_dir: Path,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    report, _ = smoke
    monkeypatch.setattr(cli, "draw_safely", lambda draw: None)  # figures are not results
    for row in report.rows:
        trial = Path(row["run_dir"])
        alone = tmp_path / row["trial"]
        code, stdout, err = run_cli(["--mode", "train", "--config", str(trial / "config.yaml"),
                                     "--out", str(alone), "--data-dir", str(data_dir),
                                     "--no-progress"])
        assert code == 0, err
        assert (alone / "checkpoint.npz").read_bytes() == (trial / "checkpoint.npz").read_bytes()
        # --mode train also tests on the test set at the end; the sweep's score is the
        # periodic evaluation on the validation split, the same in both
        events = map(json.loads, (alone / "metrics.jsonl").read_text().splitlines())
        periodic = [e for e in events if e["event"] == "evaluation" and e["tag"] == "periodic"]
        assert len(periodic) == 1 and periodic[0]["split"] == "validation"
        for readout in ("supervised_accuracy", "assignment_accuracy", "silent_fraction"):
            assert periodic[0][readout] == row[readout], readout
        assert f"best supervised score {100 * row['supervised_accuracy']:.2f} %" in stdout


@needs_dask
@pytest.mark.slow  # the smoke grid: a local Dask cluster, ~12 s
def test_second_invocation_runs_nothing(smoke: tuple[Any, Path], data_dir: Path) -> None:
    report, out = smoke
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/checkpoint.npz")}
    assert len(stamps) == 8
    again = run_sweep(load_sweep(SMOKE), out, data_dir=data_dir,
                      client=_FailIfUsed(), show_progress=False)
    assert again.ran == 0 and again.skipped == 8 and again.counts == {"finished": 8}
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert [r["supervised_accuracy"] for r in again.rows] == \
        [r["supervised_accuracy"] for r in report.rows]


class _FailIfUsed:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the cluster was used ({name}) though every trial had finished")


@needs_dask
@pytest.mark.slow  # the smoke grid: a local Dask cluster, ~12 s
def test_changed_config_is_not_taken_for_finished(smoke: tuple[Any, Path]) -> None:
    _, out = smoke
    trial = load_sweep(SMOKE).trials[0]
    result = json.loads((out / "trials" / trial.trial_id / "result.json").read_text())
    assert result["config_hash"] == config_hash(trial.config.to_dict())
    assert result["status"] == "finished"


@pytest.mark.slow  # several seconds: left out of the quick run
@needs_dask
def test_failing_trial_is_recorded_and_the_rest_finish(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from symstdp_genn import runner

    spec = build_sweep({**yaml.safe_load(SMOKE.read_text()), "seeds": [1],
                        "grid": {"network.theta_plus": [0.05, 0.06, 0.07]}})
    real = runner.train_run

    def flaky(config: Any, run_dir: Path, **kwargs: Any) -> Any:
        if config.network.theta_plus == 0.06:
            raise RuntimeError("simulated failure\nsecond line")
        return real(config, run_dir, **kwargs)

    monkeypatch.setattr(runner, "train_run", flaky)
    with in_process_cluster() as client:
        report = run_sweep(spec, tmp_path, data_dir=data_dir, client=client,
                           show_progress=False)
    assert report.counts == {"finished": 2, "failed": 1}
    failed = next(r for r in report.rows if r["status"] == "failed")
    assert failed["reason"] == "RuntimeError: simulated failure"
    assert "simulated failure" in (tmp_path / "results.md").read_text()
    assert ",failed," in (tmp_path / "results.csv").read_text()

    monkeypatch.setattr(runner, "train_run", real)  # fixed: the next run does only that one
    with in_process_cluster() as client:
        again = run_sweep(spec, tmp_path, data_dir=data_dir, client=client,
                          show_progress=False)
    assert again.ran == 1 and again.skipped == 2 and again.counts == {"finished": 3}


@pytest.mark.slow  # several seconds: left out of the quick run
@needs_dask
def test_cli_runs_a_sweep_on_a_local_cluster(tmp_path: Path, data_dir: Path) -> None:
    path = _sweep_file(tmp_path, {"base": "mnist-100", "seeds": [4], "samples": 40,
                                  "eval_samples": 20,
                                  "set": {"network.n_hidden": 16,
                                          "network.norm_hidden_to_output": 12.8,
                                          "evaluation.assignment_samples": 20}})
    out = tmp_path / "out"
    argv = ["--mode", "sweep", "--sweep", str(path), "--workers", "1", "--out", str(out),
            "--data-dir", str(data_dir), "--no-progress"]
    code, stdout, err = run_cli(argv)
    assert code == 0, err
    assert "1 trials (validation split) on a local cluster of 1 workers" in stdout
    assert "1 trials run now, 0 finished before; 1 finished" in stdout
    assert "finished: supervised" in err  # one plain line per trial off a terminal
    row = (out / "results.csv").read_text().splitlines()[1]
    assert ",4,finished,validation," in row
    code, stdout, _ = run_cli(argv)
    assert code == 0 and "0 trials run now, 1 finished before" in stdout


# -- real worker processes ----------------------------------------------------------------


def _kill_spec() -> Any:
    return build_sweep({"base": "mnist-100", "seeds": [1, 2], "samples": 400,
                        "eval_samples": 50, "set": {"network.n_hidden": 32,
                                                    "network.norm_hidden_to_output": 25.6,
                                                    "evaluation.assignment_samples": 50,
                                                    "training.checkpoint_every": 40}})


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The undisturbed sweep of _kill_spec."""
    out = tmp_path_factory.mktemp("undisturbed")
    with in_process_cluster() as client:
        run_sweep(_kill_spec(), out, data_dir=data_dir, client=client, show_progress=False)
    return out


def _mid_trial(spec: Any, out: Path) -> Any:
    """A trial that has written a checkpoint but not yet its result, or None."""
    for trial in spec.trials:
        folder = out / "trials" / trial.trial_id
        if (folder / "checkpoint.npz").is_file() and not (folder / "result.json").exists():
            return trial
    return None


def _same_checkpoints(spec: Any, out: Path, reference: Path) -> None:
    for trial in spec.trials:
        a = (out / "trials" / trial.trial_id / "checkpoint.npz").read_bytes()
        b = (reference / "trials" / trial.trial_id / "checkpoint.npz").read_bytes()
        assert a == b, trial.trial_id


@pytest.mark.slow  # several seconds: left out of the quick run
@needs_dask
def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path: Path, data_dir: Path,
                                                       reference: Path) -> None:
    spec = _kill_spec()
    out = tmp_path / "sweep"

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 120
        while _mid_trial(spec, out) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    with in_process_cluster() as client:
        threading.Thread(target=press_ctrl_c, daemon=True).start()
        report = run_sweep(spec, out, data_dir=data_dir, client=client, show_progress=False)
    assert report.interrupted and report.ran < len(spec.trials)
    stopped = [t for t in spec.trials
               if not (out / "trials" / t.trial_id / "result.json").exists()]
    assert stopped  # caught mid-run: saved where it stood, no result
    for trial in stopped:
        lines = (out / "trials" / trial.trial_id / "metrics.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["event"] == "interrupted"
    with in_process_cluster() as client:
        again = run_sweep(spec, out, data_dir=data_dir, client=client, show_progress=False)
    assert not again.interrupted and again.ran == len(stopped)
    assert again.counts == {"finished": len(spec.trials)}
    _same_checkpoints(spec, out, reference)


@needs_dask
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_worker_killed_mid_trial_is_retried_from_its_checkpoint(
        tmp_path: Path, data_dir: Path, reference: Path, signum: int) -> None:
    """kill -9: Dask reruns the task, which resumes from the last periodic checkpoint;
    SIGTERM: the trial saves where it is, the worker closes, the sweep resubmits it."""
    spec = _kill_spec()

    out = tmp_path / "killed"
    victim: dict[str, Any] = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        box: dict[str, Any] = {}
        runner = threading.Thread(target=lambda: box.update(report=run_sweep(
            spec, out, data_dir=data_dir, client=client, show_progress=False)))
        runner.start()
        deadline = time.monotonic() + 120
        while not victim and time.monotonic() < deadline and runner.is_alive():
            trial = _mid_trial(spec, out)
            if trial is not None:
                pids = client.run(os.getpid)
                for address, keys in client.processing().items():
                    if any(trial.trial_id in str(k) for k in keys):
                        victim = {"trial": trial.trial_id, "pid": pids[address]}
            time.sleep(0.02)
        assert victim, "no trial was caught mid-run"
        os.kill(victim["pid"], signum)
        runner.join(timeout=300)
        assert not runner.is_alive()
    report = box["report"]
    assert report.counts == {"finished": 2}
    log = (out / "trials" / victim["trial"] / "log.txt").read_text()
    assert "resumed from" in log  # retried on a worker from the trial's last checkpoint
    events = [json.loads(line)["event"] for line in
              (out / "trials" / victim["trial"] / "metrics.jsonl").read_text().splitlines()]
    assert ("interrupted" in events) == (signum == signal.SIGTERM)
    _same_checkpoints(spec, out, reference)
