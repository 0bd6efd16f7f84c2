"""The small things a new user ran into: misspellings get a "did you mean", ``--set key
value`` gets told how to write it, a run folder is a checkpoint for ``--mode test``, and
log.txt and the figures read the way a user expects."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from symstdp_genn import cli, progress, runner
from symstdp_genn.checkpoint import checkpoint_path, load_checkpoint
from symstdp_genn.config import load_config
from symstdp_genn.errors import UserError, did_you_mean
from symstdp_genn.sweep import build_sweep, load_sweep
from symstdp_genn.sweep.results import _lines_of, _markdown, summarise, trial_row, write_results


def _message(**kwargs: object) -> str:
    with pytest.raises(UserError) as info:
        load_config(**kwargs)
    return str(info.value)


# -- b. "did you mean" -------------------------------------------------------------------


@pytest.mark.parametrize(("override", "suggestion"), [
    ("network.eta_input_to_hiden=0.01", "network.eta_input_to_hidden"),  # a typo
    ("netwrk.theta_plus=0.1", "network"),  # a misspelt section
    ("samples=10", "training.samples"),  # the right key in the wrong section
    ("training.n_hidden=10", "network.n_hidden"),
])
def test_misspelt_key_gets_a_suggestion(override: str, suggestion: str) -> None:
    msg = _message(overrides=[override])
    assert f"did you mean '{suggestion}'?" in msg
    assert "allowed keys here:" in msg  # the list is still there
    assert "\n" not in msg


def test_no_suggestion_when_nothing_is_close() -> None:
    msg = _message(overrides=["nonsense=1"])
    assert "did you mean" not in msg
    assert did_you_mean("zzzz", ["mnist-400"]) == ""


def test_misspelt_preset_gets_a_suggestion() -> None:
    msg = _message(preset="mnist400")
    assert "unknown preset 'mnist400'; did you mean 'mnist-400'?" in msg
    assert "paper-mnist-6400" in msg


def test_misspelt_choice_gets_a_suggestion() -> None:
    msg = _message(overrides=["backend=bultin"])
    assert msg.endswith("did you mean 'builtin'?")


def test_misspelt_sweep_key_gets_a_suggestion() -> None:
    with pytest.raises(UserError) as info:
        build_sweep({"base": "mnist-100", "gird": {"network.theta_plus": [0.1]}})
    assert "did you mean 'grid'?" in str(info.value)


# -- c. --set key value ------------------------------------------------------------------


def test_set_with_a_space_says_how_to_write_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--set", "training.samples", "10"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "write --set training.samples=10" in err
    assert "unrecognized" not in err


def test_set_with_equals_still_parses() -> None:
    parser = cli.build_parser()
    args = cli.parse_arguments(parser, ["--set", "training.samples=10", "--set", "seed=2"])
    assert args.overrides == ["training.samples=10", "seed=2"]
    with pytest.raises(SystemExit):  # other stray arguments: argparse's own message
        cli.parse_arguments(parser, ["--bogus"])


# -- a. a run folder as --checkpoint -------------------------------------------------------


def test_checkpoint_path_of_run_and_original_folders(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes(b"")
    assert checkpoint_path(run) == run / "checkpoint.npz"
    assert checkpoint_path(run / "checkpoint.npz") == run / "checkpoint.npz"
    both = tmp_path / "both"  # the original's files win, as before
    both.mkdir()
    for name in ("gP2E", "gE2C", "theta", "checkpoint.npz"):
        (both / name).write_text("1\n")
    assert checkpoint_path(both) == both
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError) as info:
        load_checkpoint(empty)
    assert "missing gP2E, gE2C, theta" in str(info.value)
    assert "no checkpoint.npz" in str(info.value)


# -- e, f. a sweep's results.md and sweep.png -----------------------------------------------

SMOKE = Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml"


def _smoke_rows(spec: Any, result: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for t in spec.trials:
        accuracy = 0.5 + sum(t.params.values())
        rows.append(trial_row(spec, t, None if result is None else {
            **result, "supervised_accuracy": accuracy, "assignment_accuracy": accuracy - 0.1},
            Path("trials") / t.trial_id))
    return rows


def test_results_md_says_how_many_images_each_trial_scored(tmp_path: Path) -> None:
    spec = load_sweep(SMOKE)  # eval_samples: 100, labelled on 100
    rows = _smoke_rows(spec, {"status": "finished", "eval_samples": 100})
    files = write_results(spec, rows, tmp_path)
    note = files.markdown.read_text().splitlines()[2]
    assert "scored on the first 100 validation images" in note
    assert "labelled on 100 training images" in note
    assert "eval_samples" in files.csv.read_text().splitlines()[0]
    # before anything ran, the sweep file says what will be scored
    assert "first 100 validation images" in _markdown(spec, _smoke_rows(spec, None))
    # a whole-split sweep says no more than the split
    whole = build_sweep({**yaml.safe_load(SMOKE.read_text()), "eval_samples": None})
    assert "scored on" not in _markdown(whole, _smoke_rows(whole, None))


def test_sweep_panels_draw_one_line_per_value_of_the_other_key(tmp_path: Path) -> None:
    spec = load_sweep(SMOKE)
    summaries = summarise(spec, _smoke_rows(spec, {"status": "finished", "eval_samples": 100}))
    lines = _lines_of(summaries, "network.theta_plus", spec.swept_keys)
    assert [label for label, _ in lines] == ["eta_input_to_hidden=0.005",
                                            "eta_input_to_hidden=0.01"]
    for label, members in lines:
        assert len(members) == 2  # both theta_plus values on each line
        assert {summaries[i].params["network.eta_input_to_hidden"] for i in members} == \
            {float(label.split("=")[1])}
    # one swept key: one line through every point, no colour legend
    alone = build_sweep({"base": "mnist-100", "grid": {"network.theta_plus": [0.05, 0.07]}})
    one = summarise(alone, _smoke_rows(alone, {"status": "finished"}))
    assert _lines_of(one, "network.theta_plus", alone.swept_keys) == [("", [0, 1])]
    pytest.importorskip("matplotlib")
    files = write_results(spec, _smoke_rows(spec, {"status": "finished"}), tmp_path)
    assert files.figure is not None and files.figure.stat().st_size > 10_000


# -- d. one progress format in log.txt -------------------------------------------------------


def test_log_txt_has_the_trainer_lines_not_the_plain_progress_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal, progress lines go to the console (as notices) every 30 s; log.txt
    has the trainer's own lines, one format, instead of both."""
    from conftest import small_config
    from test_training import synthetic_dataset

    monkeypatch.setattr(runner, "load_dataset", lambda name, folder: synthetic_dataset())
    monkeypatch.setitem(progress.ProgressBar.__init__.__kwdefaults__, "interval_s", 0.0)
    console = io.StringIO()
    handler = logging.StreamHandler(console)
    handler.addFilter(progress.ConsoleFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    config = small_config(16, **{"training.samples": 20, "evaluation.samples": 12,
                                 "evaluation.assignment_samples": 20,
                                 "training.checkpoint_every": 0})
    try:
        runner.train_run(config, tmp_path / "shown", show_progress=True)
        runner.train_run(config, tmp_path / "quiet", show_progress=False)
    finally:
        root.removeHandler(handler)
    assert "training: 20 of 20 samples (100 %)" in console.getvalue()  # still on the console
    shown = (tmp_path / "shown" / "log.txt").read_text()
    assert " of 20 samples (" not in shown and "ETA" not in shown
    assert "symstdp_genn.progress" not in shown
    quiet = (tmp_path / "quiet" / "log.txt").read_text()
    assert "20/20 samples, running accuracy" in quiet


# -- g. the accuracy figure of a default run --------------------------------------------------


def _noisy_default_run() -> list[dict[str, Any]]:
    """Like the default run's metrics: 60 running-accuracy points that rise to ~89 % and
    zigzag around it, crossing the published 87 % early on, and the final evaluation."""
    rng = np.random.default_rng(1)
    events: list[dict[str, Any]] = []
    for k in range(1000, 60_001, 1000):
        accuracy = 0.89 - 0.35 * np.exp(-k / 6000) + rng.normal(0, 0.012)
        events.append({"event": "train", "samples_seen": k, "running_accuracy": accuracy})
    events.append({"event": "evaluation", "tag": "final", "samples_seen": 60_000, "n": 10_000,
                   "split": "test", "supervised_accuracy": 0.8885,
                   "assignment_accuracy": 0.8842})
    return events


def test_accuracy_figure_smooths_and_keeps_the_reference_label_off_the_data() -> None:
    pytest.importorskip("matplotlib")
    from symstdp_genn import plotting
    from symstdp_genn.plotting.accuracy import smoothed

    curves = plotting.accuracy_curves(_noisy_default_run())
    fig = plotting.accuracy_figure(curves, plotting.reference_lines("mnist", 400), "t",
                                   running_window=1000)
    (ax,) = fig.axes
    raw, smooth = ax.lines[0], ax.lines[1]
    assert smooth.get_linewidth() > raw.get_linewidth()
    wiggle = [float(np.abs(np.diff(np.diff(line.get_ydata()))).sum()) for line in (raw, smooth)]
    assert wiggle[1] < 0.5 * wiggle[0]
    assert smooth.get_ydata()[0] == raw.get_ydata()[0]  # no lift at the rising start
    assert any("smoothed" in t.get_text() for t in fig.legends[0].get_texts())
    assert smoothed(plotting.accuracy.Curve(np.arange(3), np.ones(3))) is None  # too short
    # the published reference's label covers no point of the curves
    fig.canvas.draw()
    (label,) = [t for t in ax.texts if t.get_text().startswith("published")]
    box = label.get_window_extent(fig.canvas.get_renderer())
    for line in (raw, smooth):
        x, y = line.get_xdata(), line.get_ydata()
        dense = np.linspace(x[0], x[-1], 3000)
        points = ax.transData.transform(np.column_stack([dense, np.interp(dense, x, y)]))
        inside = [(px, py) for px, py in points if box.contains(px, py)]
        assert not inside, f"the reference label covers the curve at {inside[:3]}"


# -- h. snapshots in the final figure's order; a GIF with readable tiles ----------------------


def _snapshots(folder: Path, n: int, counts: tuple[int, ...]) -> list[tuple[int, Path]]:
    from symstdp_genn.checkpoint import save_checkpoint

    rng = np.random.default_rng(3)
    out = []
    for samples in counts:
        path = save_checkpoint(folder / f"samples-{samples:08d}.npz",
                               {"input_to_hidden.g": rng.random((784, n)).astype(np.float32),
                                "hidden_to_output.g": np.zeros((n, 10), np.float32),
                                "hidden.theta": np.zeros((1, n), np.float32)},
                               {"snapshot": True})
        out.append((samples, path))
    return out


def test_snapshot_figures_and_gif_follow_the_final_figures_tile_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from symstdp_genn.checkpoint import Checkpoint
    from symstdp_genn.plotting import draw_figures, weights
    from symstdp_genn.plotting.common import png_text

    n = 16
    assignments = np.array([3, 1, 3, 0, 1, 2, 3, 0, 9, 9, 1, -1, 2, 0, 3, 1])
    snapshots = _snapshots(tmp_path / "snapshots", n, (10, 20))
    final = load_checkpoint(snapshots[-1][1])
    ckpt = Checkpoint({**final.arrays, "assignments": assignments},
                      {"driver": {"samples_seen": 20}})
    layouts: list[weights.TileLayout] = []
    real_grid = weights.receptive_field_grid

    def spy(w: np.ndarray, gap: int = 1, layout: weights.TileLayout | None = None) -> Any:
        layouts.append(layout)
        return real_grid(w, gap, layout)

    monkeypatch.setattr(weights, "receptive_field_grid", spy)
    by_class = weights.layout_key(weights.tile_layout(n, assignments))
    figures = tmp_path / "figures"
    draw_figures(figures, ckpt, snapshot_dir=tmp_path / "snapshots")
    pngs = sorted((figures / "receptive-fields").glob("*.png"))
    assert len(pngs) == 2
    assert [png_text(p, weights.ORDER_KEY) for p in pngs] == [by_class, by_class]
    assert layouts and all(layout is not None and layout.by_class for layout in layouts)
    # --rf-order index: every picture in neuron order, the snapshots' PNGs redrawn
    layouts.clear()
    draw_figures(figures, ckpt, snapshot_dir=tmp_path / "snapshots", rf_by_class=False)
    by_index = weights.layout_key(weights.tile_layout(n))
    assert [png_text(p, weights.ORDER_KEY) for p in pngs] == [by_index, by_index]
    assert layouts and not any(layout is not None and layout.by_class for layout in layouts)


def test_weight_evolution_gif_has_large_tiles(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    from symstdp_genn.plotting import weights

    n = 100
    snapshots = _snapshots(tmp_path / "snapshots", n, (10, 20))
    gif = weights.draw_weight_evolution(
        tmp_path / "evolution.gif", snapshots,
        lambda p: load_checkpoint(p).arrays["input_to_hidden.g"])
    layout = weights.tile_layout(n)
    assert weights.gif_scale(layout) == weights.GIF_MAX_SCALE  # 3 screen pixels a weight
    with Image.open(gif) as image:
        assert image.n_frames == 2
        width, height = image.size
    grid = layout.cols * (28 + 1) * weights.gif_scale(layout)
    assert width > grid and height > grid  # it was 620 x 540 pixels for the whole figure
    # the default run's 400 neurons: tiles about 40 pixels wide, not 20
    assert weights.gif_scale(weights.tile_layout(400, np.arange(400) % 10)) > 1.3


def test_run_script_turns_a_user_error_into_one_line_and_exit_2(capsys) -> None:
    from symstdp_genn.errors import UserError, run_script

    def bad() -> int:
        raise UserError("no such run: give --run a run folder")

    with pytest.raises(SystemExit) as info:
        run_script(bad)
    assert info.value.code == 2
    assert capsys.readouterr().err == "error: no such run: give --run a run folder\n"
    with pytest.raises(SystemExit) as info:
        run_script(lambda: 1)
    assert info.value.code == 1
