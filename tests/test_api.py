"""Tests of the public Python API (``symstdp_genn.train``, ``evaluate``...): the same numbers
and files as the command line, typed results, and one-line errors for bad input.

One mnist-100 network is trained on 200 synthetic digits (no real MNIST needed) and shared
by the tests that read it."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from test_cli import fake_dataset

import symstdp_genn as sg
from symstdp_genn import runner
from symstdp_genn.checkpoint import load_checkpoint as load_npz
from symstdp_genn.data import Dataset
from symstdp_genn.evaluation import load_evaluation

N_TRAIN, N_TEST = 200, 100


def digits(seed: int = 0) -> Dataset:
    """The command-line tests' sparse random digits, in this module's sizes."""
    return fake_dataset(N_TRAIN, N_TEST, seed)


@pytest.fixture(autouse=True)
def _synthetic_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "load_dataset", lambda name, folder: digits())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sg.TrainResult]:
    """mnist-100 trained on the 200 synthetic digits, tested on all 100 test digits."""
    out = tmp_path_factory.mktemp("api") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "load_dataset", lambda name, folder: digits())
        yield sg.train("mnist-100", samples=N_TRAIN, seed=3, out=out, progress=False)


def test_package_root_exports_the_api() -> None:
    assert set(sg.__all__) >= {"train", "evaluate", "load_config", "load_checkpoint",
                               "plot_run", "TrainResult", "EvalResult", "UserError"}
    for name in sg.__all__:
        assert getattr(sg, name) is not None
    assert sg.train.__doc__ and "Args:" in sg.train.__doc__


def test_train_result_is_typed_and_names_the_files(trained: sg.TrainResult) -> None:
    assert isinstance(trained, sg.TrainResult)
    assert trained.checkpoint == trained.run_dir / "checkpoint.npz"
    assert trained.checkpoint.is_file()
    assert (trained.run_dir / "config.yaml").is_file()
    assert trained.samples_seen == trained.samples_trained == N_TRAIN
    assert not trained.interrupted and trained.best_checkpoint is None
    assert trained.figures == []  # figures=False by default
    assert trained.config.name == "mnist-100" and trained.config.seed == 3
    assert trained.config.training.samples == N_TRAIN
    assert 0 < trained.train_seconds <= trained.seconds
    assert trained.final is not None and trained.final.n == N_TEST
    # the synthetic digits are easy: well above chance (10 %) after 200 samples
    assert trained.assignment_accuracy > 0.5, trained
    assert trained.supervised_accuracy == trained.final.supervised_accuracy


def test_evaluate_gives_the_numbers_of_training_and_of_the_command_line(
        trained: sg.TrainResult) -> None:
    api = sg.evaluate(trained.checkpoint, progress=False)
    assert isinstance(api, sg.EvalResult)
    assert api.n == N_TEST and api.labelled == 0  # the checkpoint's own labels
    assert api.supervised_accuracy == trained.supervised_accuracy
    assert api.assignment_accuracy == trained.assignment_accuracy
    assert api.report_dir == trained.run_dir / "tests" / f"{N_TEST}-images"
    assert api.record == api.report_dir / "evaluation.npz" and api.record.is_file()

    code, out, err = run_cli(["--mode", "test", "--checkpoint", str(trained.checkpoint),
                              "--no-progress"])
    assert code == 0, err
    shown = dict(re.findall(r"(supervised|assignment) accuracy\s+([\d.]+) %", out))
    assert shown == {"supervised": f"{100 * api.supervised_accuracy:.2f}",
                     "assignment": f"{100 * api.assignment_accuracy:.2f}"}
    cli_record = load_evaluation(trained.run_dir / "tests" / f"{N_TEST}-images-2" /
                                 "evaluation.npz")
    api_record = load_evaluation(api.record)
    for key in api_record.ARRAYS:
        np.testing.assert_array_equal(getattr(api_record, key), getattr(cli_record, key))


def test_evaluate_a_run_folder_without_saving(trained: sg.TrainResult) -> None:
    before = sorted(p for p in trained.run_dir.rglob("*"))
    result = sg.evaluate(trained.run_dir, samples=40, save=False, progress=False)
    assert result.checkpoint == trained.checkpoint
    assert result.n == 40 and result.report_dir is None and result.record is None
    assert sorted(p for p in trained.run_dir.rglob("*")) == before  # nothing written
    assert result.supervised_accuracy == pytest.approx(
        float(np.mean(result.result.record.supervised == result.result.record.labels)))


def test_load_checkpoint_accepts_a_run_folder(trained: sg.TrainResult) -> None:
    from_folder = sg.load_checkpoint(trained.run_dir)
    from_file = load_npz(trained.checkpoint)
    assert from_folder.n_hidden == 100
    assert from_folder.arrays.keys() == from_file.arrays.keys()
    np.testing.assert_array_equal(from_folder.arrays["input_to_hidden.g"],
                                  from_file.arrays["input_to_hidden.g"])
    assert from_folder.meta["config"]["seed"] == 3


def test_plot_run_draws_the_figures(trained: sg.TrainResult, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = sg.plot_run(trained.run_dir, out=tmp_path / "figs")
    names = {p.name for p in report.written}
    assert {"receptive-fields.png", "accuracy.png", "confusion.png"} <= names
    assert not report.failed
    assert all(p.is_file() and p.parent.is_relative_to(tmp_path) for p in report.written)


def test_load_config_takes_a_mapping_a_list_or_a_file(tmp_path: Path) -> None:
    as_map = sg.load_config("mnist-100", {"network.eta_input_to_hidden": 0.01,
                                          "training.schedule": "layerwise",
                                          "evaluation.samples": None})
    as_list = sg.load_config("mnist-100", ["network.eta_input_to_hidden=0.01",
                                           "training.schedule=layerwise"])
    assert as_map == as_list
    assert as_map.network.eta_input_to_hidden == 0.01 and as_map.network.n_hidden == 100
    path = tmp_path / "mine.yaml"
    path.write_text("preset: mnist-100\nseed: 7\n")
    for name in (path, str(path)):
        assert sg.load_config(name).seed == 7
    assert sg.load_config().name == "mnist-400"


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sg.load_config("mnist-99"), "unknown preset 'mnist-99'"),
    (lambda: sg.load_config("mnist-100", {"network.eta": 1}), "network.eta"),
    (lambda: sg.load_config("mnist-100", "seed=2"), "overrides must be a mapping"),
    (lambda: sg.train("mnist-100", samples=0, progress=False), "training.samples"),
    (lambda: sg.train("mnist-100", config=sg.load_config("mnist-100")), "not both"),
    (lambda: sg.evaluate("no/such/checkpoint.npz"), "does not exist"),
    (lambda: sg.plot_run("no/such/run"), "does not exist"),
])
def test_bad_input_is_a_user_error_with_a_clear_message(call, message: str) -> None:
    with pytest.raises(sg.UserError, match=re.escape(message)):
        call()


def test_existing_runs_are_refused(trained: sg.TrainResult, tmp_path: Path) -> None:
    with pytest.raises(sg.UserError, match="already holds a training run"):
        sg.train("mnist-100", samples=10, out=trained.run_dir, progress=False)
    with pytest.raises(sg.UserError, match="is a training run folder"):
        sg.evaluate(trained.checkpoint, out=trained.run_dir, progress=False)
    (tmp_path / "config.yaml").write_text("seed: 1\n")  # a run that saved no checkpoint
    with pytest.raises(sg.UserError, match=r"holds no checkpoint\.npz"):
        sg.load_checkpoint(tmp_path)
    with pytest.raises(sg.UserError, match="rf_order"):
        sg.plot_run(trained.run_dir, rf_order="size")


@pytest.mark.parametrize("progress", [True, False])
def test_progress_reaches_a_person_only_when_asked(
        trained: sg.TrainResult, progress: bool, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in a notebook
    result = sg.evaluate(trained.checkpoint, samples=20, save=False, progress=progress)
    err = capsys.readouterr().err
    line = f"supervised {100 * result.supervised_accuracy:.2f} %"
    assert (line in err) is progress, err
    assert not logging.getLogger("symstdp_genn").handlers  # removed again


def test_evaluate_draws_figures_on_request(trained: sg.TrainResult, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = sg.evaluate(trained.checkpoint, samples=30, out=tmp_path / "report",
                         figures=True, progress=False)
    assert result.report_dir == tmp_path / "report"
    assert {p.name for p in result.figures} >= {"receptive-fields.png", "confusion.png"}
    assert all(p.is_file() for p in result.figures)
    assert load_evaluation(result.record).n == 30
