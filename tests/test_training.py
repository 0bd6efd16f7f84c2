"""Determinism, resume and schedules of the training driver (small synthetic data)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import small_config

from symstdp_genn.checkpoint import load_checkpoint
from symstdp_genn.data import Dataset
from symstdp_genn.errors import UserError
from symstdp_genn.simulation import Simulation
from symstdp_genn.training import Trainer


def synthetic_dataset(n_train: int = 40, n_test: int = 12, seed: int = 0) -> Dataset:
    """Ten fixed sparse prototypes plus noise: learnable, tiny, no files needed."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((10, 784)) < 0.15) * rng.integers(100, 256, (10, 784))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 10
        noise = (rng.random((n, 784)) < 0.02) * 200
        return np.clip(protos[labels] + noise, 0, 255).astype(np.uint8), labels.astype(np.uint8)

    tr, trl = draw(n_train)
    te, tel = draw(n_test)
    return Dataset(tr, trl, te, tel, name="synthetic")


def config(samples: int, **extra: object):
    return small_config(16, **{"training.samples": samples, "evaluation.samples": 12,
                               "evaluation.assignment_samples": 20, "seed": 7,
                               "training.checkpoint_every": 0, **extra})


def train(tmp: Path, samples: int, resume=None, final: bool = True, **extra: object):
    trainer = Trainer(config(samples, **extra), synthetic_dataset(), tmp, resume)
    return trainer.train(show_progress=False, final_evaluation=final)


def test_same_seed_gives_a_byte_identical_checkpoint(tmp_path: Path) -> None:
    a = train(tmp_path / "a", 20)
    b = train(tmp_path / "b", 20)
    assert a.checkpoint.read_bytes() == b.checkpoint.read_bytes()
    assert a.final.supervised_accuracy == b.final.supervised_accuracy
    c = train(tmp_path / "c", 20, seed=8)
    assert c.checkpoint.read_bytes() != a.checkpoint.read_bytes()


def test_interrupted_and_resumed_run_ends_identical(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    full = train(tmp_path / "full", 24)

    original = Simulation.present
    calls = {"n": 0}

    def present_then_ctrl_c(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 10:
            signal.raise_signal(signal.SIGINT)  # as a user's Ctrl-C
        return out

    monkeypatch.setattr(Simulation, "present", present_then_ctrl_c)
    part = train(tmp_path / "part", 24)
    monkeypatch.setattr(Simulation, "present", original)
    assert part.interrupted and part.samples_seen == 10
    ckpt = load_checkpoint(part.checkpoint)
    assert ckpt.meta["driver"]["samples_seen"] == 10
    resumed = train(tmp_path / "part", 24, resume=ckpt)
    assert resumed.samples_seen == 24
    assert resumed.checkpoint.read_bytes() == full.checkpoint.read_bytes()


def test_checkpoints_and_metrics_are_written_during_training(tmp_path: Path) -> None:
    out = train(tmp_path, 20, **{"training.checkpoint_every": 10})
    snaps = sorted(p.name for p in (tmp_path / "snapshots").glob("*.npz"))
    assert snaps == ["samples-00000010.npz", "samples-00000020.npz"]
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    final = [e for e in events if e["event"] == "evaluation" and e["tag"] == "final"]
    assert len(final) == 1 and final[0]["n"] == 12
    assert final[0]["supervised_accuracy"] == out.final.supervised_accuracy
    assert np.array(final[0]["supervised_confusion"]).sum() == 12


def test_layerwise_schedule_freezes_the_hidden_layer_in_stage_two(tmp_path: Path) -> None:
    trainer = Trainer(config(60, **{"training.schedule": "layerwise"}), synthetic_dataset(),
                      tmp_path)
    assert trainer.stages == [("joint", 40), ("output", 40)]
    trainer.total = 40
    trainer.train(show_progress=False, final_evaluation=False)
    w_in, theta = trainer.backend.get_weights("input_to_hidden"), trainer.backend.get_var(
        "hidden", "theta")
    w_out = trainer.backend.get_weights("hidden_to_output")
    trainer.total = 60
    trainer.train(show_progress=False, final_evaluation=False)
    assert trainer.stage == "output"
    # stage 2 normalises input→hidden before each presentation but cannot learn it
    np.testing.assert_allclose(trainer.backend.get_weights("input_to_hidden"),
                               w_in * (78.4 / w_in.sum(axis=0)), rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(trainer.backend.get_var("hidden", "theta"), theta)
    assert not np.allclose(trainer.backend.get_weights("hidden_to_output"), w_out)


def test_learning_separates_the_synthetic_classes(tmp_path: Path) -> None:
    """Ten noisy prototypes, 200 samples: both readouts must do far better than chance."""
    trainer = Trainer(config(200, **{"evaluation.assignment_samples": 100}),
                      synthetic_dataset(n_train=200, n_test=100), tmp_path)
    out = trainer.train(show_progress=False)
    assert out.final.supervised_accuracy >= 0.6
    assert out.final.assignment_accuracy >= 0.6


def test_current_supervision_trains_without_a_teacher_population(tmp_path: Path) -> None:
    out = train(tmp_path, 20, **{"network.supervision": "current"})
    assert out.final is not None and out.samples_seen == 20


def two_stage(samples: int = 80, **extra: object):
    """A layerwise run that selects: 40 joint samples, then 40 output-only samples,
    scored every 10 (test-selected here: the synthetic set has no validation split)."""
    return config(samples, **{"training.schedule": "layerwise", "training.eval_every": 10,
                              "evaluation.select_split": "test",
                              "evaluation.periodic_label_samples": 20, **extra})


def test_two_stage_run_starts_stage_two_from_the_selected_joint_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # make the joint stage's assignment scores peak after 20 samples, whatever they are
    from symstdp_genn import evaluator as evaluator_module
    original = evaluator_module.Evaluator.label_and_test
    calls = {"n": 0}

    def scripted(self, *args, **kwargs):
        assignments, result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] <= 4:  # the joint stage's four periodic evaluations
            result.assignment_accuracy = [0.2, 0.9, 0.5, 0.4][calls["n"] - 1]
        return assignments, result

    monkeypatch.setattr(evaluator_module.Evaluator, "label_and_test", scripted)
    trainer = Trainer(two_stage(), synthetic_dataset(), tmp_path)
    trainer.total = 40
    trainer.train(show_progress=False, final_evaluation=False)
    selected = load_checkpoint(tmp_path / "best-joint.npz")
    assert selected.meta["selected"]["selected_at"] == 20
    assert selected.meta["selected"]["readout"] == "assignment"
    assert not (tmp_path / "best.npz").exists()  # best.npz comes from stage 2 only
    last_w_in = trainer.backend.get_weights("input_to_hidden")
    assert not np.array_equal(last_w_in, selected.arrays["input_to_hidden.g"])
    trainer.total = 41
    trainer.train(show_progress=False, final_evaluation=False)
    assert trainer.stage == "output"
    np.testing.assert_array_equal(trainer.backend.get_var("hidden", "theta"),
                                  selected.arrays["hidden.theta"])
    w_sel = selected.arrays["input_to_hidden.g"]  # as normalised before the presentation
    np.testing.assert_allclose(trainer.backend.get_weights("input_to_hidden"),
                               w_sel * (78.4 / w_sel.sum(axis=0)), rtol=1e-4, atol=1e-7)
    trainer.total = 80
    out = trainer.train(show_progress=False, final_evaluation=False)
    best = load_checkpoint(tmp_path / "best.npz")
    assert best.meta["selected"]["selected_at"] > 40
    assert out.selection is not None and out.selection["readout"] == "supervised"
    # (41: the end of the short call above, which evaluates like the end of a run)
    assert [c["samples_seen"] for c in out.selection["curve"]] == [41, 50, 60, 70, 80]
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    stage = [e for e in events if e["event"] == "stage"]
    assert len(stage) == 1 and stage[0]["start_samples"] == 20


def test_two_stage_run_resumed_at_the_stage_boundary_ends_identical(tmp_path: Path) -> None:
    full = Trainer(two_stage(), synthetic_dataset(), tmp_path / "full").train(
        show_progress=False, final_evaluation=False)
    part = Trainer(two_stage(40), synthetic_dataset(), tmp_path / "part").train(
        show_progress=False, final_evaluation=False)
    assert part.samples_seen == 40
    resumed = Trainer(two_stage(), synthetic_dataset(), tmp_path / "part",
                      load_checkpoint(part.checkpoint)).train(show_progress=False,
                                                              final_evaluation=False)
    assert resumed.checkpoint.read_bytes() == full.checkpoint.read_bytes()
    assert ((tmp_path / "part" / "best.npz").read_bytes()
            == (tmp_path / "full" / "best.npz").read_bytes())


def test_two_stage_run_can_start_stage_two_from_the_last_joint_state(tmp_path: Path) -> None:
    trainer = Trainer(two_stage(41, **{"training.output_stage_start": "last"}),
                      synthetic_dataset(), tmp_path)
    trainer.total = 40
    trainer.train(show_progress=False, final_evaluation=False)
    theta = trainer.backend.get_var("hidden", "theta").copy()
    trainer.total = 41
    trainer.train(show_progress=False, final_evaluation=False)
    np.testing.assert_array_equal(trainer.backend.get_var("hidden", "theta"), theta)


def test_stage_two_alone_on_the_hidden_layer_of_another_run(tmp_path: Path) -> None:
    first = train(tmp_path / "first", 20, final=False)
    source = load_checkpoint(first.checkpoint)
    extra = {"training.schedule": "layerwise", "training.epochs": 0,
             "training.hidden_layer_from": str(first.checkpoint),
             "network.eta_hidden_to_output": 0.08}  # output-layer keys may differ
    trainer = Trainer(config(5, **extra), synthetic_dataset(), tmp_path / "second")
    assert trainer.stages == [("joint", 0), ("output", 40)]
    trainer.train(show_progress=False, final_evaluation=False)
    np.testing.assert_array_equal(trainer.backend.get_var("hidden", "theta"),
                                  source.arrays["hidden.theta"])
    w = source.arrays["input_to_hidden.g"]
    np.testing.assert_allclose(trainer.backend.get_weights("input_to_hidden"),
                               w * (78.4 / w.sum(axis=0)), rtol=1e-4, atol=1e-7)
    events = [json.loads(line) for line in
              (tmp_path / "second" / "metrics.jsonl").read_text().splitlines()]
    assert [e["start"] for e in events if e["event"] == "stage"] == ["checkpoint"]
    # a hidden layer trained under other hidden-layer parameters is refused, naming the key
    other = Trainer(config(5, **{**extra, "network.theta_plus": 0.5}), synthetic_dataset(),
                    tmp_path / "third")
    with pytest.raises(UserError, match=r"network\.theta_plus"):
        other.train(show_progress=False, final_evaluation=False)


def test_hidden_layer_from_needs_stage_two_alone() -> None:
    with pytest.raises(UserError, match=r"training\.hidden_layer_from"):
        config(5, **{"training.hidden_layer_from": "x.npz"})


def test_stage_two_labels_its_frozen_hidden_layer_once_and_resumes_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from symstdp_genn import evaluator as evaluator_module
    original = evaluator_module.Evaluator.label_neurons
    labelled_at: list[int] = []
    trainers: list[Trainer] = []

    def counting(self, *args, **kwargs):
        labelled_at.append(trainers[-1].samples_seen)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(evaluator_module.Evaluator, "label_neurons", counting)
    trainers.append(Trainer(two_stage(), synthetic_dataset(), tmp_path / "full"))
    full = trainers[-1].train(show_progress=False, final_evaluation=False)
    # every joint-stage evaluation labels; stage 2's four share the first one's labels
    assert labelled_at == [10, 20, 30, 40, 50]
    trainers.append(Trainer(two_stage(60), synthetic_dataset(), tmp_path / "part"))
    part = trainers[-1].train(show_progress=False, final_evaluation=False)
    trainers.append(Trainer(two_stage(), synthetic_dataset(), tmp_path / "part",
                            load_checkpoint(part.checkpoint)))
    resumed = trainers[-1].train(show_progress=False, final_evaluation=False)
    assert resumed.checkpoint.read_bytes() == full.checkpoint.read_bytes()
    assert labelled_at[5:] == [10, 20, 30, 40, 50]  # the resumed run labelled nothing
