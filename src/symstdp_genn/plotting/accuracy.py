"""The accuracy-during-training figure, from ``metrics.jsonl``.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation import (
    Reference,
    reference_results,
)
from .common import _figure, _save

log = logging.getLogger(__name__)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The events of a ``metrics.jsonl``; unreadable lines (a torn last line) are skipped."""
    events = []
    bad = 0
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(event, dict):
            events.append(event)
    if bad:
        log.info("%s: skipped %d unreadable line(s)", path, bad)
    return events


@dataclass
class Curve:
    x: np.ndarray  # training samples seen
    y: np.ndarray  # accuracy in percent

    def __len__(self) -> int:
        return int(self.x.size)


@dataclass
class AccuracyCurves:
    running: Curve  # running training accuracy (assignment readout of incoming samples)
    periodic: dict[str, Curve]  # readout -> periodic evaluations
    final: dict[str, Curve]  # readout -> final evaluations (one per training session)
    #: readout -> the selected checkpoint's test result, at the sample count it was selected
    best: dict[str, Curve] = field(default_factory=dict)
    evaluated_on: dict[str, int] = field(default_factory=dict)  # tag -> test images (last)
    #: tag -> the images an evaluation used, when its events say ("validation" or "test")
    split: dict[str, str] = field(default_factory=dict)
    #: a layerwise run's stage 2: (samples where it began, samples of the joint-stage
    #: checkpoint it started from)
    stage2: tuple[int, int] | None = None

    @property
    def empty(self) -> bool:
        return not any(len(c) for c in self._all())

    def _all(self) -> list[Curve]:
        return [self.running, *self.periodic.values(), *self.final.values(),
                *self.best.values()]

    def all_y(self) -> np.ndarray:
        return np.concatenate([c.y for c in self._all()])

    def last_x(self) -> int:
        xs = [c.x for c in self._all()]
        return max((int(x.max()) for x in xs if x.size), default=0)


def _curve(points: dict[int, float]) -> Curve:
    xs = sorted(points)
    return Curve(np.array(xs, dtype=np.int64), np.array([points[x] for x in xs], dtype=float))


def accuracy_curves(events: Iterable[dict[str, Any]]) -> AccuracyCurves:
    """Accuracy (percent) against samples seen, from metrics events.

    An event repeated for the same sample count (a run resumed from an earlier
    checkpoint logs those samples again) counts once: the last one wins. Missing
    values (null: NaN when logged) are left out. The selected checkpoint's test result
    (tag ``best``) is placed where it was selected (``selected_at``), not where the run
    ended, so it sits on the periodic curve point that chose it.
    """
    running: dict[int, float] = {}
    evals: dict[tuple[str, str], dict[int, float]] = {}
    evaluated_on: dict[str, int] = {}
    split: dict[str, str] = {}
    stage2: tuple[int, int] | None = None
    for e in events:
        x = e.get("samples_seen")
        if not isinstance(x, int):
            continue
        if e.get("event") == "stage" and e.get("stage") == "output":
            start = e.get("start_samples")
            stage2 = (x, start if isinstance(start, int) else x)
        elif e.get("event") == "train":
            if isinstance(e.get("running_accuracy"), (int, float)):
                running[x] = 100.0 * e["running_accuracy"]
            else:
                running.pop(x, None)
        elif e.get("event") == "evaluation":
            tag = str(e.get("tag", ""))
            if tag == "best" and isinstance(e.get("selected_at"), int):
                x = e["selected_at"]
            for readout in ("supervised", "assignment"):
                value = e.get(f"{readout}_accuracy")
                points = evals.setdefault((tag, readout), {})
                if isinstance(value, (int, float)):
                    points[x] = 100.0 * value
                else:
                    points.pop(x, None)
            if isinstance(e.get("n"), int):
                evaluated_on[tag] = e["n"]
            if isinstance(e.get("split"), str):
                split[tag] = e["split"]
    return AccuracyCurves(
        running=_curve(running),
        periodic={r: _curve(evals.get(("periodic", r), {})) for r in ("supervised", "assignment")},
        final={r: _curve(evals.get(("final", r), {})) for r in ("supervised", "assignment")},
        best={r: _curve(evals.get(("best", r), {})) for r in ("supervised", "assignment")},
        evaluated_on=evaluated_on, split=split, stage2=stage2)


def reference_lines(dataset: str, n_hidden: int) -> list[Reference]:
    """The spec §6 targets to draw for a run (see ``evaluation.REFERENCE_RESULTS``)."""
    return reference_results(dataset, n_hidden)


COLOURS = {"supervised": "tab:blue", "assignment": "tab:orange"}
#: Fewest accuracy points the y-axis spans, so a flat curve is not magnified into noise.
MIN_Y_SPAN = 10.0


def reference_label(ref: Reference) -> str:
    """``Diehl & Cook 2015: 87 %, assignment readout``; a status other than "verified"
    (the number was checked against the publication) is kept, e.g. "(after 1 epoch)"."""
    status = "" if ref.status == "verified" else f" ({ref.status})"
    return f"{ref.source}: {ref.value_text}, {ref.readout} readout{status}"


def y_range(curves: AccuracyCurves, references: Sequence[Reference]) -> tuple[float, float]:
    """The accuracy axis fitted to what is drawn (data and references), padded, within
    0..100 and at least :data:`MIN_Y_SPAN` points tall."""
    values = [curves.all_y()] + [np.array([r.low, r.high]) for r in references]
    ys = np.concatenate(values) if values else np.array([])
    ys = ys[np.isfinite(ys)]
    if not ys.size:
        return 0.0, 100.0
    lo, hi = float(ys.min()), float(ys.max())
    pad = max(0.08 * (hi - lo), 1.0)
    lo, hi = lo - pad, hi + pad
    if hi - lo < MIN_Y_SPAN:
        mid = (lo + hi) / 2
        lo, hi = mid - MIN_Y_SPAN / 2, mid + MIN_Y_SPAN / 2
    if lo < 0:
        lo, hi = 0.0, min(100.0, hi - lo)
    if hi > 100:
        lo, hi = max(0.0, lo - (hi - 100)), 100.0
    return lo, hi


def reference_label_places(references: Sequence[Reference], span: float,
                           height: float = 0.05) -> list[tuple[float, bool]]:
    """(y, above) for each reference's label: above its line (or band), unless that would
    overlap the label of a higher reference (within ``height`` of the axis span), then
    under it."""
    places: list[tuple[float, bool]] = [(r.high, True) for r in references]
    boxes: list[tuple[float, float]] = []  # (bottom, top) of each placed label
    for i in sorted(range(len(references)), key=lambda k: -references[k].high):
        ref = references[i]
        y, above = ref.high, True
        box = (y, y + height * span)
        if any(b[0] < box[1] and box[0] < b[1] for b in boxes):
            y, above = ref.low, False
            box = (y - height * span, y)
        boxes.append(box)
        places[i] = (y, above)
    return places


def _images_text(curves: AccuracyCurves, tag: str) -> str:
    n = curves.evaluated_on.get(tag)
    split = curves.split.get(tag, "test")
    return f" on {n:,} {split} images" if n else f" ({split} images)"


def _label_offsets(values: Sequence[float], span: float, min_gap: float = 0.045
                   ) -> list[float]:
    """Vertical offsets (points) that keep value labels at nearly equal heights apart."""
    offsets = [0.0] * len(values)
    order = np.argsort(values)
    for a, b in itertools.pairwise(order):
        if abs(values[b] - values[a]) < min_gap * span:
            offsets[a] -= 6.0
            offsets[b] += 6.0
    return offsets


def _thousands(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def draw_accuracy(path: Path, curves: AccuracyCurves, references: Sequence[Reference],
                  title: str, running_window: int | None = None) -> Path:
    """Write :func:`accuracy_figure` to ``path``."""
    return _save(accuracy_figure(curves, references, title, running_window), path)


#: Points of the running-accuracy curve averaged into its smoothed line (odd: centred).
SMOOTH_POINTS = 5
#: Fewest running-accuracy points for which a smoothed line is drawn.
MIN_SMOOTH_POINTS = 8
#: The axes' approximate size in inches (10 x 6.4 in figure, legend under it), to turn a
#: label's size in points into data units when looking for a free place for it.
AXES_INCHES = (8.6, 4.4)


def smoothed(curve: Curve, points: int = SMOOTH_POINTS) -> Curve | None:
    """The running accuracy averaged over ``points`` neighbouring points (centred; fewer
    at the ends), or None when the curve is too short to need it. Each point is already
    the accuracy over the last ``running_window`` images, but one window's count is
    noisy (±1 % at 1 000 images), so the raw line zigzags; the smoothed line shows the
    trend the raw one hides. Windows stay centred at the ends (the first and last points
    are the raw ones), so a rising start is not drawn higher than it was."""
    if len(curve) < MIN_SMOOTH_POINTS:
        return None
    n = len(curve)
    halves = [min(points // 2, i, n - 1 - i) for i in range(n)]  # symmetric at the ends too
    y = np.array([curve.y[i - h: i + h + 1].mean() for i, h in enumerate(halves)])
    return Curve(curve.x, y)


def _obstacles(curves: AccuracyCurves, lines: Sequence[Curve], right: float, lo: float,
               hi: float) -> np.ndarray:
    """``(x, y)`` points a reference label must not cover: the drawn lines sampled densely
    (so a label is not put across a segment either), and each evaluation marker with its
    value label to its right."""
    span_x, span_y = right, hi - lo
    pts = []
    for c in lines:
        if len(c) > 1:
            xs = np.linspace(c.x[0], c.x[-1], 600)
            pts.append(np.column_stack([xs, np.interp(xs, c.x, c.y)]))
        if len(c):
            pts.append(np.column_stack([c.x, c.y]))
    for group in (curves.final, curves.best):
        for c in group.values():
            for x, y in zip(c.x, c.y, strict=True):
                dx = np.linspace(-0.01, 0.09, 12) * span_x  # marker and "88.85 %"
                for dy in (-0.025 * span_y, 0.0, 0.025 * span_y):
                    pts.append(np.column_stack([x + dx, np.full(dx.size, y + dy)]))
    stage2 = getattr(curves, "stage2", None)
    if stage2 is not None:  # its note hangs from the top of the axes, right of the line
        gx, gy = np.meshgrid(stage2[0] + np.linspace(0, 0.4, 20) * span_x,
                             hi - np.linspace(0, 0.09, 5) * span_y)
        pts.append(np.column_stack([gx.ravel(), gy.ravel()]))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def free_label_place(text: str, ref: Reference, above: bool, obstacles: np.ndarray,
                     taken: list[tuple[float, float, float, float]], right: float, lo: float,
                     hi: float, fontsize: float = 7.5) -> tuple[float, float, bool]:
    """``(x, y, above)`` for a reference's label: the leftmost place along its line (or
    band), above or under it, whose box covers the fewest obstacle points and no label
    placed before (``taken``: their boxes, extended here), so that the label does not
    hide the curve it is compared with. The preferred side (``above``, from
    :func:`reference_label_places`) wins ties; the box is estimated from the text."""
    width = (len(text) * 0.52 + 1.0) * fontsize / 72 / AXES_INCHES[0] * right
    height = 1.5 * fontsize / 72 / AXES_INCHES[1] * (hi - lo)
    best: tuple[tuple[int, int, float], float, bool] | None = None
    for side in (above, not above):
        y0, y1 = (ref.high, ref.high + height) if side else (ref.low - height, ref.low)
        if y0 < lo or y1 > hi:
            continue
        for x0 in np.linspace(0.01 * right, max(0.01 * right, 0.99 * right - width), 40):
            box = (x0, x0 + width, y0, y1)
            if any(b[0] < box[1] and box[0] < b[1] and b[2] < box[3] and box[2] < b[3]
                   for b in taken):
                continue
            inside = ((obstacles[:, 0] >= box[0]) & (obstacles[:, 0] <= box[1])
                      & (obstacles[:, 1] >= box[2]) & (obstacles[:, 1] <= box[3]))
            key = (int(inside.sum()), 0 if side == above else 1, float(x0))
            if best is None or key < best[0]:
                best = (key, float(x0), side)
    if best is None:
        return 0.01 * right, ref.high if above else ref.low, above
    _, x0, side = best
    y0, y1 = (ref.high, ref.high + height) if side else (ref.low - height, ref.low)
    taken.append((x0, x0 + width, y0, y1))
    return x0, ref.high if side else ref.low, side


def accuracy_figure(curves: AccuracyCurves, references: Sequence[Reference], title: str,
                    running_window: int | None = None) -> Any:
    """Accuracy against training samples: both readouts at every periodic and final
    evaluation, the running training accuracy, published references labelled on their
    lines; the y-axis fitted to the data, the legend under the axes."""
    fig = _figure(10.0, 6.4)
    ax = fig.add_subplot()
    smooth = smoothed(curves.running)
    if len(curves.running):
        window = f" of the last {running_window:,}" if running_window else " of recent"
        ax.plot(curves.running.x, curves.running.y, ".-", color="0.72" if smooth else "0.6",
                lw=0.8 if smooth else 1.0, ms=2.5 if smooth else 3, zorder=1.8,
                label=f"running training accuracy (assignment readout{window} training "
                      "images)")
    if smooth is not None:
        step = np.diff(smooth.x)
        images = (f", {SMOOTH_POINTS * int(step[0]):,} training images"
                  if step.size and np.all(step[:-1] == step[0]) else "")  # last: the end
        ax.plot(smooth.x, smooth.y, "-", color="0.25", lw=2.0, zorder=1.9,
                label=f"the same, smoothed (mean of {SMOOTH_POINTS} neighbouring points"
                      f"{images})")
    for readout, colour in COLOURS.items():
        c = curves.periodic[readout]
        if len(c):
            ax.plot(c.x, c.y, "o-", color=colour, ms=4.5, lw=1.6,
                    label=f"{readout} readout, periodic evaluation"
                          f"{_images_text(curves, 'periodic')}")
    selected = any(len(c) for c in curves.best.values())
    finals = [(readout, x, y) for group in (curves.final, curves.best)
              for readout, c in group.items() for x, y in zip(c.x, c.y, strict=True)]
    lo, hi = y_range(curves, references)
    for readout, marker, size in (("supervised", "*", 15), ("assignment", "D", 7)):
        c = curves.final[readout]
        if len(c):
            ax.plot(c.x, c.y, marker, color=COLOURS[readout], ms=size, mec="black", mew=0.6,
                    zorder=4, label=f"{readout} readout, final evaluation"
                                    f"{_images_text(curves, 'final')}"
                                    + (" (last checkpoint)" if selected else ""))
        b = curves.best.get(readout)
        if b is not None and len(b):
            ax.plot(b.x, b.y, marker, color="white", ms=size, mec=COLOURS[readout], mew=1.6,
                    zorder=4, label=f"{readout} readout, selected checkpoint"
                                    f"{_images_text(curves, 'best')} (drawn where it "
                                    "was selected)")
    for x in sorted({x for _, x, _ in finals}):
        here = [(r, y) for r, xx, y in finals if xx == x]
        offsets = _label_offsets([y for _, y in here], hi - lo)
        for (readout, y), dy in zip(here, offsets, strict=True):
            ax.annotate(f"{y:.2f} %", (x, y), textcoords="offset points", xytext=(9, dy - 3),
                        fontsize=8, color=COLOURS[readout], fontweight="bold", zorder=6)
    right = max(curves.last_x(), 1) * 1.14
    if curves.stage2 is not None:
        at, start = curves.stage2
        ax.axvline(at, color="0.35", ls=":", lw=1.2, zorder=1)
        note = ("stage 2: hidden layer frozen, output layer retrained"
                + (f"\n(from the joint stage's checkpoint at {start:,})" if start != at else ""))
        ax.text(at, hi, " " + note, fontsize=7.5, color="0.3", va="top", ha="left")
    obstacles = _obstacles(curves, [curves.running, *([smooth] if smooth else []),
                                    *curves.periodic.values()], right, lo, hi)
    taken: list[tuple[float, float, float, float]] = []
    for ref, (_, above) in zip(references, reference_label_places(references, hi - lo),
                               strict=True):
        text = "published, " + reference_label(ref)
        x, y, above = free_label_place(text, ref, above, obstacles, taken, right, lo, hi)
        colour = COLOURS.get(ref.readout, "black")
        if ref.low == ref.high:
            ax.axhline(ref.low, color=colour, ls="--", lw=1.0, alpha=0.8)
        else:
            ax.axhspan(ref.low, ref.high, color=colour, alpha=0.12)
        ax.text(x, y, text, fontsize=7.5,
                color=colour, va="bottom" if above else "top", ha="left", zorder=5,
                bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.0})
    ax.set_xlabel("training images presented so far")
    ax.set_ylabel("accuracy (% of images classified correctly)")
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, right)
    _thousands(ax.xaxis)
    ax.grid(alpha=0.3)
    ax.set_title(title, wrap=True)
    if ax.get_legend_handles_labels()[0]:
        # two columns while they fit the figure's width, else one
        longest = max(len(t) for t in ax.get_legend_handles_labels()[1])
        fig.legend(loc="outside lower center", ncol=2 if longest <= 75 else 1, fontsize=8,
                   frameon=False)
    return fig
