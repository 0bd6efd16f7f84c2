"""Figures: the data each figure draws (exact numbers), valid PNG/GIF files, and the
``--mode plot`` / end-of-training / ``--mode test`` figure paths on a tiny synthetic run."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from test_cli import Run, _assert_user_error, _main, fake_dataset

from symstdp_genn import cli, plotting, runner
from symstdp_genn.checkpoint import load_checkpoint, save_checkpoint
from symstdp_genn.errors import UserError
from symstdp_genn.evaluation import (
    KEEP_HIDDEN_COUNTS,
    REFERENCE_RESULTS,
    SILENT,
    EvaluationRecord,
    confusion_matrix,
    load_evaluation,
    save_evaluation,
)

PNG = b"\x89PNG\r\n\x1a\n"
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None
RUN_FIGURES = ["accuracy.png", "confusion.png", "hidden-spikes.png", "hidden-to-output.png",
               "receptive-fields.png", "theta.png", "weight-evolution.gif"]


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG)


def _is_gif(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 100 and data[:6] in (b"GIF89a", b"GIF87a")


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name]


# ------------------------------------------------------------------------------------------
# data functions
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "side"), [(1, 1), (2, 2), (4, 2), (5, 3), (100, 10), (101, 11),
                                         (400, 20), (6400, 80)])
def test_grid_is_ceil_sqrt_square(n: int, side: int) -> None:
    assert plotting.grid_shape(n) == (side, side)


@pytest.mark.parametrize("gap", [0, 1, 3])
def test_receptive_field_tiles_are_the_weight_columns(gap: int) -> None:
    rng = np.random.default_rng(0)
    w = rng.random((784, 7))
    grid = plotting.receptive_field_grid(w, gap=gap)
    rows, cols = 3, 3
    step = 28 + gap
    assert grid.shape == (rows * step - gap, cols * step - gap)
    for r in range(rows):
        for c in range(cols):
            tile = grid[r * step: r * step + 28, c * step: c * step + 28]
            j = r * cols + c
            if j < 7:
                np.testing.assert_array_equal(tile, w[:, j].reshape(28, 28))
            else:
                assert np.isnan(tile).all()
    # everything that is not a tile is a NaN gap
    assert np.isnan(grid).sum() == grid.size - 7 * 784


def test_receptive_field_tile_orientation() -> None:
    """Pixel (row 3, column 20) of input image = weight index 3·28 + 20, drawn at that place."""
    w = np.zeros((784, 4))
    w[3 * 28 + 20, 2] = 1.0
    grid = plotting.receptive_field_grid(w, gap=1)
    assert np.nanargmax(grid) == np.ravel_multi_index((1 * 29 + 3, 0 * 29 + 20), grid.shape)


def test_receptive_field_grid_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"\[784, N\]"):
        plotting.receptive_field_grid(np.zeros((10, 784)))


def test_hidden_output_rows_sorted_by_assignment() -> None:
    rng = np.random.default_rng(1)
    w = rng.random((12, 10))
    assignments = np.array([3, SILENT, 0, 3, 9, 0, SILENT, 3, 5, 0, 9, 3], dtype=np.int16)
    data = plotting.hidden_output_order(w, assignments)
    assert data.ordered_by == "assigned class"
    assert sorted(data.order.tolist()) == list(range(12))
    np.testing.assert_array_equal(data.matrix, w[data.order])
    np.testing.assert_array_equal(data.classes, assignments[data.order])
    assert data.classes.tolist() == [0, 0, 0, 3, 3, 3, 3, 5, 9, 9, SILENT, SILENT]
    assert data.groups == [(0, 0, 3), (3, 3, 7), (5, 7, 8), (9, 8, 10), (SILENT, 10, 12)]
    for k, lo, hi in data.groups:
        if k != SILENT:  # within a class: strongest weight to that class's output first
            own = data.matrix[lo:hi, k]
            assert np.all(np.diff(own) <= 0)


def test_hidden_output_without_assignments_uses_strongest_output() -> None:
    w = np.zeros((5, 10))
    w[[0, 1, 2, 3, 4], [7, 2, 7, 0, 2]] = [1.0, 2.0, 3.0, 4.0, 5.0]
    for assignments in (None, np.full(5, SILENT)):
        data = plotting.hidden_output_order(w, assignments)
        assert data.ordered_by == "strongest output weight"
        assert data.order.tolist() == [3, 4, 1, 2, 0]
        assert data.classes.tolist() == [0, 2, 2, 7, 7]


def _write_metrics(path: Path) -> None:
    events = [
        {"event": "train", "samples_seen": 1000, "running_accuracy": None, "stage": "joint"},
        {"event": "train", "samples_seen": 2000, "running_accuracy": 0.40},
        {"event": "evaluation", "tag": "periodic", "samples_seen": 2000, "n": 100,
         "supervised_accuracy": 0.50, "assignment_accuracy": 0.45},
        {"event": "train", "samples_seen": 3000, "running_accuracy": 0.55},
        # resumed from the checkpoint at 2000: 3000 is logged again, the later value counts
        {"event": "train", "samples_seen": 3000, "running_accuracy": 0.60},
        {"event": "evaluation", "tag": "periodic", "samples_seen": 4000, "n": 100,
         "supervised_accuracy": 0.70, "assignment_accuracy": None},
        {"event": "train", "samples_seen": 4000, "running_accuracy": 0.65},
        {"event": "evaluation", "tag": "final", "samples_seen": 4000, "n": 10000,
         "supervised_accuracy": 0.8123, "assignment_accuracy": 0.7900,
         "supervised_confusion": np.eye(10, 11, dtype=int).tolist(),
         "assignment_confusion": (2 * np.eye(10, 11, dtype=int)).tolist()},
        {"event": "interrupted", "samples_seen": 4000},
    ]
    text = "".join(json.dumps(e) + "\n" for e in events)
    path.write_text(text + '{"event": "train", "samples_se')  # a torn last line


def test_accuracy_curves_from_metrics(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    _write_metrics(path)
    events = plotting.read_metrics(path)
    assert len(events) == 9
    curves = plotting.accuracy_curves(events)
    assert curves.running.x.tolist() == [2000, 3000, 4000]
    np.testing.assert_allclose(curves.running.y, [40.0, 60.0, 65.0])
    assert curves.periodic["supervised"].x.tolist() == [2000, 4000]
    np.testing.assert_allclose(curves.periodic["supervised"].y, [50.0, 70.0])
    assert curves.periodic["assignment"].x.tolist() == [2000]
    np.testing.assert_allclose(curves.periodic["assignment"].y, [45.0])
    assert curves.final["supervised"].x.tolist() == [4000]
    np.testing.assert_allclose(curves.final["supervised"].y, [81.23])
    np.testing.assert_allclose(curves.final["assignment"].y, [79.0])
    assert curves.evaluated_on == {"periodic": 100, "final": 10000}
    assert not curves.empty
    assert plotting.accuracy_curves([]).empty
    assert curves.stage2 is None


def test_accuracy_curves_mark_where_stage_two_began_and_what_it_started_from(
        tmp_path: Path) -> None:
    events = [{"event": "train", "samples_seen": 1000, "running_accuracy": 0.5},
              {"event": "stage", "stage": "output", "samples_seen": 5000, "start": "selected",
               "start_samples": 3000},
              {"event": "train", "samples_seen": 6000, "running_accuracy": 0.6}]
    curves = plotting.accuracy_curves(events)
    assert curves.stage2 == (5000, 3000)
    fig = plotting.accuracy_figure(curves, [], "two stages")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("stage 2" in t and "3,000" in t for t in texts)
    lines = [ln for ln in fig.axes[0].lines if list(ln.get_xdata()) == [5000, 5000]]
    assert len(lines) == 1


def test_confusions_from_metrics_take_the_last_final_evaluation(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    _write_metrics(path)
    cms = plotting.confusions_from_metrics(plotting.read_metrics(path))
    assert cms is not None
    assert cms["supervised"].shape == (10, 11)
    assert cms["assignment"].sum() == 20
    assert plotting.confusions_from_metrics([{"event": "train", "samples_seen": 1}]) is None


@pytest.mark.parametrize(("dataset", "n", "expected"), [
    ("mnist", 100, {("assignment", 82.9, 82.9, "Diehl & Cook 2015"),
                    ("supervised", 80.0, 82.0, "BindsNET port (third party)")}),
    ("mnist", 400, {("assignment", 87.0, 87.0, "Diehl & Cook 2015")}),
    ("mnist", 1600, {("assignment", 91.9, 91.9, "Diehl & Cook 2015")}),
    ("mnist", 6400, {("assignment", 95.0, 95.0, "Diehl & Cook 2015"),
                     ("supervised", 96.73, 96.73, "Hao et al. 2019")}),
    ("fashion-mnist", 6400, {("supervised", 85.31, 85.31, "Hao et al. 2019")}),
    ("fashion-mnist", 400, set()),
    ("mnist", 10000, set()),
    ("mnist", 16, set()),
])
def test_reference_lines_for_dataset_and_size(dataset: str, n: int, expected: set) -> None:
    refs = plotting.reference_lines(dataset, n)
    assert {(r.readout, r.low, r.high, r.source) for r in refs} == expected
    for r in refs:
        assert r.source in r.label and r.value_text in r.label


def test_reference_table_has_one_entry_per_target() -> None:
    keys = [(r.dataset, r.n_hidden, r.readout) for r in REFERENCE_RESULTS]
    assert len(keys) == len(set(keys)) == 7


def test_confusion_rows_are_normalised() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 1, SILENT, 1, 1, 2, 0, SILENT, SILENT])
    cm = confusion_matrix(labels, pred)
    frac = plotting.normalised_confusion(cm)
    np.testing.assert_allclose(frac[:3].sum(axis=1), 1.0)
    np.testing.assert_allclose(frac[0, [0, 1, 10]], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(frac[2, [0, 2, 10]], [0.25, 0.25, 0.5])
    assert np.all(frac[3:] == 0)  # classes without samples stay 0, not NaN


def _record(n: int = 30, n_hidden: int = 6, seed: int = 0) -> EvaluationRecord:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    hidden = rng.integers(0, 6, (n, n_hidden))
    output = rng.integers(0, 3, (n, 10))
    retries = np.where(np.arange(n) % 7 == 0, 2, 0)
    forced = np.arange(n) == 5
    from symstdp_genn.evaluation import assignment_predictions, supervised_predictions

    assignments = (np.arange(n_hidden) % 10).astype(np.int16)
    return EvaluationRecord.from_counts(labels, hidden, supervised_predictions(output),
                                        assignment_predictions(hidden, assignments), retries,
                                        forced, assignments)


def test_evaluation_record_round_trip(tmp_path: Path) -> None:
    rec = _record()
    path = save_evaluation(tmp_path / "evaluation.npz", rec, dataset="mnist",
                           min_hidden_spikes=5)
    loaded = load_evaluation(path)
    for key in EvaluationRecord.ARRAYS:
        a, b = getattr(rec, key), getattr(loaded, key)
        assert a.dtype == b.dtype and np.array_equal(a, b), key
    assert loaded.meta["dataset"] == "mnist" and loaded.meta["min_hidden_spikes"] == 5
    assert loaded.hidden_counts.dtype == np.uint16
    assert loaded.hidden_spikes.tolist() == rec.hidden_counts.sum(axis=1).tolist()
    np.testing.assert_array_equal(loaded.supervised_confusion,
                                  confusion_matrix(rec.labels, rec.supervised))
    assert _no_temp_files(tmp_path)


def test_evaluation_record_keeps_the_first_counts_only() -> None:
    n = KEEP_HIDDEN_COUNTS + 5
    hidden = np.zeros((n, 2), np.int32)
    hidden[:, 0] = np.arange(n)
    hidden[3, 1] = 70000  # beyond uint16: clipped in the kept matrix, exact in the totals
    rec = EvaluationRecord.from_counts(np.zeros(n), hidden, np.zeros(n), np.zeros(n),
                                       np.zeros(n), np.zeros(n, bool), np.zeros(2))
    assert rec.hidden_counts.shape == (KEEP_HIDDEN_COUNTS, 2)
    assert rec.hidden_counts[-1, 0] == KEEP_HIDDEN_COUNTS - 1
    assert rec.hidden_counts[3, 1] == 65535
    assert rec.hidden_spikes[3] == 70003
    assert rec.hidden_spikes[-1] == n - 1


def test_corrupt_evaluation_record(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.npz"
    np.savez(path, labels=np.zeros(3))
    with pytest.raises(UserError, match="not an evaluation record"):
        load_evaluation(path)
    with pytest.raises(UserError, match="does not exist"):
        load_evaluation(tmp_path / "missing.npz")


def test_spike_summary_counts_retries() -> None:
    rec = _record(n=30)
    s = plotting.spike_summary(rec, 5)
    assert s.n == 30
    assert s.retried == 5  # samples 0, 7, 14, 21, 28
    assert s.retries == 10
    assert s.forced == 1
    assert s.spikes.tolist() == rec.hidden_spikes.tolist()


def test_theta_values_take_the_first_lane() -> None:
    theta = np.arange(12, dtype=np.float32).reshape(2, 6)
    assert plotting.theta_values({"hidden.theta": theta}).tolist() == list(range(6))
    assert plotting.theta_values({"hidden.theta": theta[0]}).tolist() == list(range(6))


def test_snapshots_in_order_of_samples(tmp_path: Path) -> None:
    for name in ("samples-00010000.npz", "samples-00000100.npz", "samples-00001000.npz",
                 "notes.npz", ".samples-00000200.abcd.tmp.npz"):
        (tmp_path / name).write_bytes(b"")
    snaps = plotting.list_snapshots(tmp_path)
    assert [s for s, _ in snaps] == [100, 1000, 10000]
    assert snaps[0][1].name == "samples-00000100.npz"


def test_gif_frames_are_spread_and_keep_the_ends() -> None:
    assert plotting.gif_frames(5, 60) == [0, 1, 2, 3, 4]
    frames = plotting.gif_frames(200, 60)
    assert len(frames) == 60 and frames[0] == 0 and frames[-1] == 199
    assert frames == sorted(set(frames))


@pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn (the optional 'plots' extra) "
                                             "is not installed")
def test_tsne_embedding_is_seeded() -> None:
    rec = _record(n=60, n_hidden=20)
    a = plotting.tsne_embedding(rec.hidden_counts, seed=3)
    b = plotting.tsne_embedding(rec.hidden_counts, seed=3)
    assert a.shape == (60, 2)
    np.testing.assert_allclose(a, b)


# ------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------


@pytest.mark.slow  # several seconds: left out of the quick run
def test_draw_functions_write_valid_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 10
    w_in = rng.random((784, n)).astype(np.float32)
    w_out = rng.random((n, 10)) * 8
    rec = _record(n=40, n_hidden=n)
    path = tmp_path / "events.jsonl"
    _write_metrics(path)
    curves = plotting.accuracy_curves(plotting.read_metrics(path))
    written = [
        plotting.draw_receptive_fields(tmp_path / "rf.png", w_in, 100),
        plotting.draw_hidden_output(tmp_path / "ho.png", w_out, rec.assignments, None),
        plotting.draw_accuracy(tmp_path / "acc.png", curves,
                               plotting.reference_lines("mnist", 100), "t"),
        plotting.draw_confusions(tmp_path / "cm.png", {"supervised": rec.supervised_confusion,
                                                       "assignment": rec.assignment_confusion},
                                 "fashion-mnist"),
        plotting.draw_theta(tmp_path / "theta.png", rng.normal(20, 1, n), 5, 20.0),
        plotting.draw_hidden_spikes(tmp_path / "spikes.png", plotting.spike_summary(rec, 5),
                                    "t"),
    ]
    for p in written:
        assert _is_png(p), p

    snaps = []
    for k, samples in enumerate((10, 20, 30)):
        p = save_checkpoint(tmp_path / "snaps" / f"samples-{samples:08d}.npz",
                            {"input_to_hidden.g": w_in * (k + 1),
                             "hidden_to_output.g": w_out, "hidden.theta": np.zeros((1, n))},
                            {"snapshot": True})
        snaps.append((samples, p))
    gif = plotting.draw_weight_evolution(
        tmp_path / "evolution.gif", snaps,
        lambda p: load_checkpoint(p).arrays["input_to_hidden.g"])
    assert _is_gif(gif)
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 3
    assert _no_temp_files(tmp_path)


def test_failed_draw_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    def broken(self: object, *args: object, **kwargs: object) -> None:
        Path(args[0]).write_bytes(b"partial")
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError):
        plotting.draw_theta(tmp_path / "theta.png", np.ones(4), 1, None)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# the command line on a tiny synthetic run
# ------------------------------------------------------------------------------------------

TRAIN = ["--mode", "train", "--preset", "mnist-100", "--set", "network.n_hidden=16",
         "--seed", "3", "--no-progress", "--samples", "30", "--eval-samples", "20",
         "--set", "evaluation.assignment_samples=20", "--set", "training.checkpoint_every=10"]


def _fake_load(name: str, folder: Path):
    return fake_dataset()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    run_dir = tmp_path_factory.mktemp("plot") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "load_dataset", _fake_load)
        mp.setattr(cli, "ROOT", run_dir.parent)
        result = _main([*TRAIN, "--out", str(run_dir)])
    assert result.code == 0, result.err
    return result, run_dir


def test_training_writes_figures_and_evaluation_record(trained: tuple[Run, Path]) -> None:
    run, run_dir = trained
    figures = run_dir / "figures"
    assert f"figures:    {figures}" in run.out
    for name in RUN_FIGURES:
        path = figures / name
        assert (_is_gif if name.endswith(".gif") else _is_png)(path), name
    snapshots = sorted(p.name for p in (figures / "receptive-fields").iterdir())
    assert snapshots == ["samples-00000010.png", "samples-00000020.png", "samples-00000030.png"]
    assert (figures / "tsne.png").is_file() == HAVE_SKLEARN

    rec = load_evaluation(run_dir / "evaluation.npz")
    assert rec.n == 20
    assert rec.hidden_counts.shape == (20, 16)
    assert rec.meta["samples_seen"] == 30 and rec.meta["tag"] == "final"
    ckpt = load_checkpoint(run_dir / "checkpoint.npz")
    np.testing.assert_array_equal(rec.assignments, ckpt.arrays["assignments"])
    # the record's confusion is the one logged in metrics.jsonl
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    final = next(e for e in events if e.get("tag") == "final")
    np.testing.assert_array_equal(rec.supervised_confusion, final["supervised_confusion"])
    np.testing.assert_array_equal(rec.assignment_confusion, final["assignment_confusion"])
    assert rec.n * final["retried_fraction"] == pytest.approx((rec.retries > 0).sum())
    if not HAVE_SKLEARN:
        assert "scikit-learn" in (run_dir / "log.txt").read_text()


@pytest.mark.slow  # several seconds: left out of the quick run
def test_plot_mode_redraws_every_figure(trained: tuple[Run, Path]) -> None:
    _, run_dir = trained
    figures = run_dir / "figures"
    for path in sorted(figures.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    run = _main(["--mode", "plot", "--run", str(run_dir)])
    assert run.code == 0, run.err
    expected = len(RUN_FIGURES) + 3 + HAVE_SKLEARN
    assert f"{expected} figures written to {figures}" in run.out
    for name in RUN_FIGURES:
        assert (figures / name).stat().st_size > 0
    assert len(list((figures / "receptive-fields").glob("*.png"))) == 3
    skipped = [line for line in run.out.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == (0 if HAVE_SKLEARN else 1)
    assert _no_temp_files(run_dir)


@pytest.mark.slow  # several seconds: left out of the quick run
def test_snapshot_figures_are_drawn_once_per_snapshot(trained: tuple[Run, Path]) -> None:
    """Large runs have many snapshots: a snapshot's PNG is redrawn only when the
    snapshot is newer than it."""
    _, run_dir = trained
    assert _main(["--mode", "plot", "--run", str(run_dir)]).code == 0
    tiles = sorted((run_dir / "figures" / "receptive-fields").glob("*.png"))
    assert len(tiles) == 3
    stamps = [p.stat().st_mtime_ns for p in tiles]
    snapshot = sorted((run_dir / "snapshots").glob("*.npz"))[0]
    os.utime(snapshot, ns=(stamps[0] + 10**9, stamps[0] + 10**9))
    assert _main(["--mode", "plot", "--run", str(run_dir)]).code == 0
    after = [p.stat().st_mtime_ns for p in tiles]
    assert after[1:] == stamps[1:]
    assert after[0] != stamps[0]


def test_plot_mode_skips_figures_whose_input_is_missing(trained: tuple[Run, Path],
                                                        tmp_path: Path) -> None:
    _, run_dir = trained
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "checkpoint.npz").write_bytes((run_dir / "checkpoint.npz").read_bytes())
    run = _main(["--mode", "plot", "--run", str(bare)])
    assert run.code == 0, run.err
    written = sorted(p.name for p in (bare / "figures").iterdir())
    assert written == ["hidden-to-output.png", "receptive-fields.png", "theta.png"]
    skipped = [line for line in run.out.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 4  # snapshots, accuracy, confusion, spikes + t-SNE
    assert any("evaluation.npz" in line for line in skipped)


def test_plot_mode_without_a_run_folder(tmp_path: Path) -> None:
    line = _assert_user_error(_main(["--mode", "plot", "--run", str(tmp_path / "nope")]))
    assert "does not exist" in line and str(tmp_path / "nope") in line
    line = _assert_user_error(_main(["--mode", "plot", "--run", str(tmp_path)]))
    assert "no checkpoint.npz" in line
    line = _assert_user_error(_main(["--mode", "plot"]))
    assert "--run" in line
    assert not (tmp_path / "figures").exists()


def test_one_broken_figure_is_reported_and_the_rest_drawn(
        trained: tuple[Run, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, run_dir = trained
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "checkpoint.npz").write_bytes((run_dir / "checkpoint.npz").read_bytes())

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no ink")

    monkeypatch.setattr(plotting.run, "draw_theta", broken)
    report = plotting.draw_run(bare, tmp_path / "figs")
    assert report.failed == ["theta.png: RuntimeError: no ink"]
    assert sorted(p.name for p in report.written) == ["hidden-to-output.png",
                                                      "receptive-fields.png"]
    assert not (tmp_path / "figs" / "theta.png").exists()
    run = _main(["--mode", "plot", "--run", str(bare)])
    assert run.code == 1
    assert run.err.strip() == "WARNING: figure theta.png failed: RuntimeError: no ink"
    assert "2 figures written" in run.out and "1 failed" in run.out


def test_figures_failing_never_fail_training(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(run_dir: Path) -> None:
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(runner, "load_dataset", _fake_load)
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    monkeypatch.setattr(cli, "draw_run", broken)
    run = _main([*TRAIN[:-2], "--samples", "10", "--out", str(tmp_path / "run")])
    assert run.code == 0, run.err
    assert "figures not drawn: RuntimeError: matplotlib exploded" in run.err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").meta["driver"][
        "samples_seen"] == 10
    assert (tmp_path / "run" / "evaluation.npz").is_file()


def test_draw_safely_without_matplotlib(monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(plotting.run, "matplotlib_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert plotting.draw_safely(lambda: pytest.fail("must not draw")) is None
    assert "matplotlib is not installed" in caplog.text


def test_test_mode_writes_record_and_figures_to_out(trained: tuple[Run, Path],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, run_dir = trained
    monkeypatch.setattr(runner, "load_dataset", _fake_load)
    out = tmp_path / "tested"
    before = (run_dir / "evaluation.npz").read_bytes()
    run = _main(["--mode", "test", "--checkpoint", str(run_dir / "checkpoint.npz"),
                 "--eval-samples", "12", "--no-progress", "--out", str(out)])
    assert run.code == 0, run.err
    rec = load_evaluation(out / "evaluation.npz")
    assert rec.n == 12 and rec.meta["tag"] == "test"
    figures = out / "figures"
    for name in ("receptive-fields.png", "hidden-to-output.png", "theta.png", "confusion.png",
                 "hidden-spikes.png", "accuracy.png"):
        assert _is_png(figures / name), name
    assert not (figures / "weight-evolution.gif").exists()  # snapshots: --mode plot
    assert (run_dir / "evaluation.npz").read_bytes() == before  # the run's own is untouched
    # the same test pass, same numbers: the first 12 of the final pass's 20 predictions
    final = load_evaluation(run_dir / "evaluation.npz")
    np.testing.assert_array_equal(rec.supervised, final.supervised[:12])
    np.testing.assert_array_equal(rec.hidden_counts, final.hidden_counts[:12])


# ------------------------------------------------------------------------------------------
# issue 8 item 19: an accuracy figure a reader needs; receptive fields grouped by class
# ------------------------------------------------------------------------------------------


def _default_run_events(periodic: bool, split: str | None = None) -> list[dict[str, object]]:
    """A default-settings run: running accuracy every 1000 samples, one final evaluation
    (plus periodic evaluations when asked)."""
    events: list[dict[str, object]] = []
    for k in range(1000, 20001, 1000):
        events.append({"event": "train", "samples_seen": k,
                       "running_accuracy": 0.88 - 0.2 * np.exp(-k / 4000)})
        if periodic and k % 5000 == 0 and k < 20000:
            events.append({"event": "evaluation", "tag": "periodic", "samples_seen": k,
                           "n": 1000, "supervised_accuracy": 0.85 - 0.1 * np.exp(-k / 5000),
                           "assignment_accuracy": 0.83 - 0.1 * np.exp(-k / 5000),
                           **({"split": split} if split else {})})
    events.append({"event": "evaluation", "tag": "final", "samples_seen": 20000, "n": 10000,
                   "supervised_accuracy": 0.8889, "assignment_accuracy": 0.8847,
                   **({"split": split} if split else {})})
    return events


def _legend_texts(fig: object) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_accuracy_figure_draws_both_readouts_fitted_and_legend_outside() -> None:
    curves = plotting.accuracy_curves(_default_run_events(periodic=True, split="validation"))
    assert curves.split == {"periodic": "validation", "final": "validation"}
    refs = plotting.reference_lines("mnist", 400)
    fig = plotting.accuracy_figure(curves, refs, "t", running_window=1000)
    (ax,) = fig.axes
    texts = _legend_texts(fig)
    assert texts == [
        "running training accuracy (assignment readout of the last 1,000 training images)",
        "the same, smoothed (mean of 5 neighbouring points, 5,000 training images)",
        "supervised readout, periodic evaluation on 1,000 validation images",
        "assignment readout, periodic evaluation on 1,000 validation images",
        "supervised readout, final evaluation on 10,000 validation images",
        "assignment readout, final evaluation on 10,000 validation images",
    ]
    lo, hi = ax.get_ylim()
    data = curves.all_y()
    assert 0 < lo < data.min() and data.max() < hi < 100  # fitted, not 0..100
    assert hi - lo < 40
    # the legend sits under the axes, not beside them: the data keep the width
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    (legend,) = fig.legends
    lbox = legend.get_window_extent(renderer)
    assert lbox.y1 <= box.y0 and box.width >= 0.8 * fig.bbox.width
    # references are labelled by source on their lines; "(verified)" is not shown
    labels = [t.get_text() for t in ax.texts if t.get_text().startswith("published")]
    assert labels == ["published, Diehl & Cook 2015: 87 %, assignment readout"]
    assert not any("verified" in t for t in texts + labels)


def test_accuracy_figure_without_periodic_evaluations_and_reference_labels() -> None:
    curves = plotting.accuracy_curves(_default_run_events(periodic=False))
    fig = plotting.accuracy_figure(curves, [], "t")
    assert _legend_texts(fig) == [
        "running training accuracy (assignment readout of recent training images)",
        "the same, smoothed (mean of 5 neighbouring points, 5,000 training images)",
        "supervised readout, final evaluation on 10,000 test images",
        "assignment readout, final evaluation on 10,000 test images",
    ]
    values = sorted(t.get_text() for t in fig.axes[0].texts)
    assert values == ["88.47 %", "88.89 %"]
    # two values 0.4 points apart get labels pushed apart instead of on top of each other
    a, b = sorted(fig.axes[0].texts, key=lambda t: t.get_text())
    assert a.xyann[1] < b.xyann[1]
    ref = plotting.reference_lines("mnist", 100)
    assert [plotting.reference_label(r) for r in ref] == [
        "Diehl & Cook 2015: 82.9 %, assignment readout",
        "BindsNET port (third party): 80–82 %, supervised readout (after 1 epoch)"]


def test_accuracy_figure_draws_the_selected_checkpoint_where_it_was_selected() -> None:
    events = _default_run_events(periodic=True, split="validation")
    events[-1]["split"] = "test"  # the final pass scores the test set
    events.append({"event": "evaluation", "tag": "best", "split": "test", "n": 10000,
                   "samples_seen": 20000, "selected_at": 10000,
                   "supervised_accuracy": 0.8911, "assignment_accuracy": 0.8802})
    curves = plotting.accuracy_curves(events)
    assert curves.best["supervised"].x.tolist() == [10000]  # not 20000, where the run ended
    np.testing.assert_allclose(curves.best["supervised"].y, [89.11])
    assert curves.final["supervised"].x.tolist() == [20000]
    fig = plotting.accuracy_figure(curves, [], "t")
    texts = _legend_texts(fig)
    assert ("supervised readout, final evaluation on 10,000 test images (last checkpoint)"
            in texts)
    assert ("supervised readout, selected checkpoint on 10,000 test images (drawn where it "
            "was selected)") in texts
    # every label fits the figure: the legend is no wider than the figure
    fig.canvas.draw()
    (legend,) = fig.legends
    assert legend.get_window_extent(fig.canvas.get_renderer()).width <= fig.bbox.width
    values = sorted(t.get_text() for t in fig.axes[0].texts)
    assert values == ["88.02 %", "88.47 %", "88.89 %", "89.11 %"]
    # a run without a selected checkpoint keeps its plain labels
    plain = _legend_texts(plotting.accuracy_figure(
        plotting.accuracy_curves(_default_run_events(periodic=False)), [], "t"))
    assert not any("last checkpoint" in t or "selected" in t for t in plain)


def test_y_range_limits() -> None:
    flat = plotting.AccuracyCurves(plotting.Curve(np.array([1, 2]), np.array([99.0, 99.5])),
                                   {}, {})
    assert plotting.y_range(flat, []) == (90.0, 100.0)  # at least 10 points, within 100
    empty = plotting.accuracy_curves([])
    assert plotting.y_range(empty, []) == (0.0, 100.0)


def test_tile_layout_groups_by_assigned_class() -> None:
    assignments = np.array([3, 0, 3, SILENT, 3, 0, 9, 3, 3], dtype=np.int64)
    layout = plotting.tile_layout(9, assignments)  # 3 columns
    assert layout.cols == 3 and layout.by_class
    assert layout.groups == [(0, 0, 1, 2), (3, 1, 3, 5), (9, 3, 4, 1), (SILENT, 4, 5, 1)]
    assert layout.rows == 5
    assert layout.position.tolist() == [[1, 0], [0, 0], [1, 1], [4, 0], [1, 2], [0, 1],
                                        [3, 0], [2, 0], [2, 1]]
    plain = plotting.tile_layout(9, np.full(9, SILENT))
    assert not plain.by_class and plain.position.tolist()[4] == [1, 1]
    w = np.zeros((784, 9))
    w[:, 3] = 1.0  # the silent neuron: last block
    grid = plotting.receptive_field_grid(w, gap=1, layout=layout)
    assert grid.shape == (5 * 29 - 1, 3 * 29 - 1)
    assert np.all(grid[4 * 29: 4 * 29 + 28, :28] == 1.0)
    assert np.nansum(grid) == 784


def test_receptive_fields_figure_labels_classes_by_default() -> None:
    rng = np.random.default_rng(0)
    w = rng.random((784, 12))
    assignments = np.array([2, 2, 7, 7, 7, 0, 0, 0, 0, 2, SILENT, 7])
    fig = plotting.receptive_fields_figure(w, 100, assignments=assignments,
                                           dataset="fashion-mnist")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == ["0 T-shirt/top (4)", "2 Pullover (3)", "7 Sneaker (4)", "none (1)"]
    assert "grouped by assigned class" in fig.axes[0].get_xlabel()
    fig = plotting.receptive_fields_figure(w, 100, assignments=assignments, by_class=False)
    assert fig.axes[0].get_yticklabels() == []
    assert "index order" in fig.axes[0].get_xlabel()


@pytest.mark.slow  # several seconds: left out of the quick run
def test_plot_mode_rf_order_index_keeps_neuron_order(trained: tuple[Run, Path],
                                                     tmp_path: Path) -> None:
    _, run_dir = trained
    ckpt = load_checkpoint(run_dir / "checkpoint.npz")
    assert np.any(ckpt.arrays["assignments"] != SILENT)  # so the default groups by class
    target = run_dir / "figures" / "receptive-fields.png"
    by_class = target.read_bytes()
    run = _main(["--mode", "plot", "--run", str(run_dir), "--rf-order", "index"])
    assert run.code == 0, run.err
    by_index = target.read_bytes()
    assert _is_png(target) and by_index != by_class
    plotting.draw_receptive_fields(tmp_path / "i.png", ckpt.arrays["input_to_hidden.g"],
                                   plotting.run._samples_seen(ckpt), by_class=False)
    assert (tmp_path / "i.png").read_bytes() == by_index
    run = _main(["--mode", "plot", "--run", str(run_dir)])
    assert run.code == 0 and target.read_bytes() == by_class


def test_reference_labels_do_not_overlap() -> None:
    refs = plotting.reference_lines("mnist", 100)  # a line at 82.9 over a band 80-82
    places = plotting.accuracy.reference_label_places(refs, 60.0)
    assert places == [(82.9, True), (80.0, False)]  # the band's label goes under it
    assert plotting.accuracy.reference_label_places(refs, 6.0) == [(82.9, True), (82.0, True)]
