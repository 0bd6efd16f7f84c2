"""Issue 10's protocol: three-way split, periodic evaluation, best.npz and its selection."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import restored_logging, small_config
from test_training import synthetic_dataset

from symstdp_genn import cli, runner
from symstdp_genn.checkpoint import load_checkpoint, save_checkpoint
from symstdp_genn.data import Dataset
from symstdp_genn.errors import UserError
from symstdp_genn.selection import (
    BEST_FILE,
    TEST_SELECTED,
    VALIDATION_SELECTED,
    Selection,
    best_of_history,
    protocol_datasets,
)
from symstdp_genn.training import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import reproduce


def _periodic(samples: int, split: str, supervised: float, assignment: float) -> dict:
    return {"event": "evaluation", "tag": "periodic", "split": split, "samples_seen": samples,
            "supervised_accuracy": supervised, "assignment_accuracy": assignment}


# ------------------------------------------------------------------------------------------
# selection rules (synthetic metrics history)
# ------------------------------------------------------------------------------------------


def test_selection_picks_the_best_validation_score_of_a_metrics_history() -> None:
    history = [
        {"event": "train", "samples_seen": 10_000, "running_accuracy": 0.99},
        _periodic(10_000, "validation", 0.80, 0.85),
        _periodic(20_000, "validation", 0.86, 0.82),
        _periodic(20_000, "test", 0.95, 0.95),  # the test set never selects
        _periodic(30_000, "validation", 0.84, 0.88),
        _periodic(40_000, "validation", 0.86, 0.80),  # a tie keeps the earlier checkpoint
        _periodic(50_000, "validation", None, 0.70),  # no score (null in the JSON)
        {"event": "evaluation", "tag": "final", "split": "test", "samples_seen": 50_000,
         "supervised_accuracy": 0.99, "assignment_accuracy": 0.99},
    ]
    assert best_of_history(history, "supervised", "validation")["samples_seen"] == 20_000
    assert best_of_history(history, "assignment", "validation")["samples_seen"] == 30_000
    assert best_of_history(history, "supervised", "test")["samples_seen"] == 20_000
    assert best_of_history(history[:1], "supervised", "validation") is None


def test_selection_state_round_trips_and_restarts_for_another_readout() -> None:
    config = small_config(8, **{"training.validation": "true", "training.eval_every": 10})
    sel = Selection.for_config(config)
    assert (sel.readout, sel.split, sel.label) == ("supervised", "validation",
                                                   VALIDATION_SELECTED)
    assert sel.offer(10, {"supervised_accuracy": 0.5, "assignment_accuracy": 0.6})
    assert not sel.offer(20, {"supervised_accuracy": 0.4, "assignment_accuracy": 0.9})
    meta = json.loads(json.dumps(sel.to_meta()))  # as stored in a checkpoint
    again = Selection.from_meta(meta, config)
    assert again == sel and len(again.curve) == 2
    other = small_config(8, **{"training.validation": "true", "training.eval_every": 10,
                               "evaluation.select_on_readout": "assignment"})
    assert Selection.from_meta(meta, other).best_score is None


@pytest.mark.parametrize(("sets", "words"), [
    ({"training.eval_every": 10}, "evaluation.select_split=test"),
    ({"training.validation": "true", "evaluation.select_split": "test"},
     "needs training.validation=false"),
])
def test_protocols_that_would_select_silently_on_the_test_set_are_refused(
        tmp_path: Path, sets: dict, words: str) -> None:
    with pytest.raises(UserError, match=words):
        Trainer(small_config(8, **sets), synthetic_dataset(), tmp_path)


def test_three_way_split_trains_on_the_first_images_and_keeps_the_test_set_apart() -> None:
    full = _big_synthetic()
    config = small_config(8, **{"training.validation": "true"})
    training, final = protocol_datasets(full, config)
    assert len(training.train_images) == len(full.train_images) - 10_000
    np.testing.assert_array_equal(training.test_images, full.train_images[-10_000:])
    np.testing.assert_array_equal(final.train_images, training.train_images)
    assert final.test_images is full.test_images
    plain, plain_final = protocol_datasets(full, small_config(8))
    assert plain is full and plain_final is full


# ------------------------------------------------------------------------------------------
# best.npz in a training run
# ------------------------------------------------------------------------------------------


def _config(samples: int, **extra: object):
    return small_config(16, **{"training.samples": samples, "evaluation.samples": 12,
                               "evaluation.assignment_samples": 20, "seed": 7,
                               "training.checkpoint_every": 0, "training.eval_every": 8,
                               "training.validation": "true",
                               "evaluation.periodic_samples": 12,
                               "evaluation.periodic_label_samples": 16, **extra})


def _datasets() -> tuple[Dataset, Dataset]:
    """A synthetic three-way split: 40 training, 12 validation and 12 test images."""
    train = synthetic_dataset(n_train=40, n_test=12, seed=0)
    test = synthetic_dataset(n_train=10, n_test=12, seed=5)
    final = Dataset(train.train_images, train.train_labels, test.test_images, test.test_labels)
    return train, final


def _train(run_dir: Path, samples: int, resume=None):
    train, final = _datasets()
    trainer = Trainer(_config(samples), train, run_dir, resume, final_dataset=final)
    return trainer.train(show_progress=False)


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_best_checkpoint_is_the_best_validation_score_and_tested_beside_the_last(
        tmp_path: Path) -> None:
    out = _train(tmp_path, 40)
    events = _events(tmp_path)
    periodic = [e for e in events if e.get("tag") == "periodic"]
    assert [e["samples_seen"] for e in periodic] == [8, 16, 24, 32, 40]
    assert {e["split"] for e in periodic} == {"validation"}
    assert all(e["labelled"] == 16 and e["n"] == 12 for e in periodic)
    chosen = best_of_history(events, "supervised", "validation")
    assert out.selection["best_samples"] == chosen["samples_seen"]
    best = load_checkpoint(tmp_path / BEST_FILE)
    assert best.meta["driver"]["samples_seen"] == chosen["samples_seen"]
    assert best.meta["selected"]["label"] == VALIDATION_SELECTED
    tested = [e for e in events if e.get("tag") in ("final", "best")]
    assert [(e["tag"], e["split"], e["checkpoint"]) for e in tested] == [
        ("final", "test", "checkpoint.npz"), ("best", "test", BEST_FILE)]
    assert tested[1]["selected_at"] == chosen["samples_seen"]
    assert out.best is not None and out.best.n == 12
    assert tested[1]["supervised_accuracy"] == out.best.supervised_accuracy
    assert (tmp_path / "evaluation-best.npz").is_file()


def test_best_npz_and_the_curve_survive_an_interruption_and_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = _train(tmp_path / "full", 40)
    original = Trainer._running_update

    def update_then_ctrl_c(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.samples_seen == 19:  # the 20th sample: after the evaluations at 8 and 16
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Trainer, "_running_update", update_then_ctrl_c)
    part = _train(tmp_path / "part", 40)
    monkeypatch.setattr(Trainer, "_running_update", original)
    assert part.interrupted and part.samples_seen == 20
    ckpt = load_checkpoint(part.checkpoint)
    assert [c["samples_seen"] for c in ckpt.meta["selection"]["curve"]] == [8, 16]
    resumed = _train(tmp_path / "part", 40, resume=ckpt)
    assert resumed.selection == full.selection
    assert ((tmp_path / "part" / BEST_FILE).read_bytes()
            == (tmp_path / "full" / BEST_FILE).read_bytes())
    assert resumed.best.supervised_accuracy == full.best.supervised_accuracy


def test_resume_of_a_float32_theta_checkpoint_continues_with_exact_theta(tmp_path: Path) -> None:
    """A checkpoint written before issue 10 (θ float32, no theta_decay key) loads as a
    float32-θ run; resumed with exact θ, θ is widened exactly and saved as float64."""
    dataset = synthetic_dataset()
    old = small_config(16, **{"training.samples": 10, "network.theta_decay": "float32"})
    Trainer(old, dataset, tmp_path / "old").train(show_progress=False, final_evaluation=False)
    ckpt = load_checkpoint(tmp_path / "old" / "checkpoint.npz")
    assert ckpt.arrays["hidden.theta"].dtype == np.float32
    del ckpt.meta["config"]["network"]["theta_decay"]
    save_checkpoint(tmp_path / "old" / "checkpoint.npz", ckpt.arrays, ckpt.meta)
    ckpt = load_checkpoint(tmp_path / "old" / "checkpoint.npz")
    # its config keeps the dynamics it was trained with (tests reproduce its numbers) ...
    assert ckpt.meta["config"]["network"]["theta_decay"] == "float32"
    # ... and asking for exact θ on top widens θ exactly
    new = small_config(16, **{"training.samples": 10})
    assert new.network.theta_decay == "exact"
    trainer = Trainer(new, dataset, tmp_path / "new", ckpt)
    theta = trainer.backend.get_var("hidden", "theta")
    assert theta.dtype == np.float64
    np.testing.assert_array_equal(theta, ckpt.arrays["hidden.theta"].astype(np.float64))
    trainer.total = 12
    out = trainer.train(show_progress=False, final_evaluation=False)
    assert load_checkpoint(out.checkpoint).arrays["hidden.theta"].dtype == np.float64


# ------------------------------------------------------------------------------------------
# the command line: the test set untouched until the final pass; test selection labelled
# ------------------------------------------------------------------------------------------


class _Touched(np.ndarray):
    """An image array that records every read of its contents into ``log``."""

    log: list[str]

    def __getitem__(self, item):
        self.log.append("test set read")
        return np.asarray(self)[item]


def _big_synthetic(log: list[str] | None = None) -> Dataset:
    """10 040 training images (the last 10 000 are the validation split) and 12 test
    images; the test images record their reads into ``log`` when given."""
    small = synthetic_dataset(n_train=40, n_test=12)
    reps = np.resize(np.arange(40), 10_040)
    test = small.test_images
    if log is not None:
        test = small.test_images.view(_Touched)
        test.log = log
    return Dataset(small.train_images[reps], small.train_labels[reps], test,
                   small.test_labels, name="synthetic")


def _cli_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
               dataset: Dataset, *sets: str) -> tuple[int, str]:
    monkeypatch.setattr(runner, "load_dataset", lambda name, folder: dataset)
    monkeypatch.setattr(cli, "draw_safely", lambda draw: None)  # figures: not this test's
    code = cli.main(["--mode", "train", "--preset", "mnist-100", "--out", str(tmp_path / "run"),
                     "--samples", "20", "--eval-samples", "12", "--no-progress",
                     "--set", "network.n_hidden=16", "--set", "network.norm_hidden_to_output=12.8",
                     "--set", "training.eval_every=10", "--set", "evaluation.periodic_samples=12",
                     "--set", "evaluation.assignment_samples=20", *(
                         x for s in sets for x in ("--set", s))])
    return code, capsys.readouterr().out


def test_the_test_set_is_not_read_before_the_final_pass_with_validation_selection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    log: list[str] = []
    original = Trainer.evaluate

    def evaluate(self, n_label, n_test, tag, *args, **kwargs):
        log.append(tag)
        return original(self, n_label, n_test, tag, *args, **kwargs)

    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    code, out = _cli_train(tmp_path, monkeypatch, capsys, _big_synthetic(log),
                           "training.validation=true")
    assert code == 0
    first_read = log.index("test set read")
    assert log[:first_read] == ["periodic", "periodic", "final"]  # at 10 and 20 samples
    assert log.count("test set read") >= 1
    assert "periodic evaluations: 2 on the validation split (12 images each, labelled on 20" in out
    assert "test, last checkpoint: 12 images" in out
    assert f"test, best checkpoint (best.npz, {VALIDATION_SELECTED})" in out
    assert TEST_SELECTED not in out


def test_a_test_selected_run_says_so_in_stdout_metrics_and_its_readme_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    code, out = _cli_train(tmp_path, monkeypatch, capsys, _big_synthetic(),
                           "evaluation.select_split=test")
    assert code == 0
    assert f"samples: {TEST_SELECTED}" in out
    assert f"test, best checkpoint (best.npz, {TEST_SELECTED})" in out
    run_dir = tmp_path / "run"
    events = _events(run_dir)
    periodic = [e for e in events if e.get("tag") == "periodic"]
    assert periodic and all(e["split"] == "test" and e["selection"] == TEST_SELECTED
                            for e in periodic)
    assert [e["selection"] for e in events if e["event"] == "selection"] == [TEST_SELECTED]
    args = reproduce.build_parser().parse_args(["--preset", "mnist-100", "--eval-every", "10",
                                                "--select-split", "test"])
    row = reproduce.markdown_row(args, reproduce.read_results(run_dir), 12.0, "python run.py")
    assert TEST_SELECTED in row
    assert row.count("|") == reproduce.HEADER.splitlines()[0].count("|")


def test_snapshot_scores_scores_every_snapshot_and_labels_a_test_selection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import snapshot_scores

    dataset = _big_synthetic()
    code, _ = _cli_train(tmp_path, monkeypatch, capsys, dataset, "training.validation=true",
                         "training.checkpoint_every=5")
    assert code == 0
    run_dir = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["snapshot_scores.py", "--run", str(run_dir),
                                      "--split", "test"])
    assert snapshot_scores.main() == 0
    out = capsys.readouterr().out
    result = json.loads((run_dir / "snapshot-scores-test.json").read_text())
    assert [r["samples_seen"] for r in result["rows"]] == [5, 10, 15, 20]  # 20: the final save
    assert all(r["n"] == 12 for r in result["rows"])
    best = max(result["rows"], key=lambda r: r["supervised_accuracy"])
    assert result["best"] == best and result["selection"] == TEST_SELECTED
    assert f"after {best['samples_seen']:,} samples" in out and TEST_SELECTED in out
    assert out.count("\n| ") == 2 + 4  # header, rule, one row per snapshot
    # the same snapshot tested through --mode test gives the same numbers
    shot = run_dir / "snapshots" / "samples-00000010.npz"
    with restored_logging():
        assert cli.main(["--mode", "test", "--checkpoint", str(shot), "--no-progress",
                         "--out", str(tmp_path / "t")]) == 0
    tested = capsys.readouterr().out
    row = next(r for r in result["rows"] if r["samples_seen"] == 10)
    assert f"supervised accuracy  {100 * row['supervised_accuracy']:.2f} %" in tested


def test_snapshot_scores_refuses_a_validation_split_the_run_never_had(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import snapshot_scores

    code, _ = _cli_train(tmp_path, monkeypatch, capsys, _big_synthetic(),
                         "evaluation.select_split=test", "training.checkpoint_every=10")
    assert code == 0
    monkeypatch.setattr(sys, "argv", ["snapshot_scores.py", "--run", str(tmp_path / "run")])
    with pytest.raises(UserError, match="no validation split; use --split test"):
        snapshot_scores.main()
