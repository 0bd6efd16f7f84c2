"""The accuracy-during-training figure, from ``metrics.jsonl``.
"""

from __future__ import annotations

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
    evaluated_on: dict[str, int] = field(default_factory=dict)  # tag -> test images (last)

    @property
    def empty(self) -> bool:
        return not (len(self.running) or any(len(c) for c in (*self.periodic.values(),
                                                               *self.final.values())))


def _curve(points: dict[int, float]) -> Curve:
    xs = sorted(points)
    return Curve(np.array(xs, dtype=np.int64), np.array([points[x] for x in xs], dtype=float))


def accuracy_curves(events: Iterable[dict[str, Any]]) -> AccuracyCurves:
    """Accuracy (percent) against samples seen, from metrics events.

    An event repeated for the same sample count (a run resumed from an earlier
    checkpoint logs those samples again) counts once: the last one wins. Missing
    values (null: NaN when logged) are left out.
    """
    running: dict[int, float] = {}
    evals: dict[tuple[str, str], dict[int, float]] = {}
    evaluated_on: dict[str, int] = {}
    for e in events:
        x = e.get("samples_seen")
        if not isinstance(x, int):
            continue
        if e.get("event") == "train":
            if isinstance(e.get("running_accuracy"), (int, float)):
                running[x] = 100.0 * e["running_accuracy"]
            else:
                running.pop(x, None)
        elif e.get("event") == "evaluation":
            tag = str(e.get("tag", ""))
            for readout in ("supervised", "assignment"):
                value = e.get(f"{readout}_accuracy")
                points = evals.setdefault((tag, readout), {})
                if isinstance(value, (int, float)):
                    points[x] = 100.0 * value
                else:
                    points.pop(x, None)
            if isinstance(e.get("n"), int):
                evaluated_on[tag] = e["n"]
    return AccuracyCurves(
        running=_curve(running),
        periodic={r: _curve(evals.get(("periodic", r), {})) for r in ("supervised", "assignment")},
        final={r: _curve(evals.get(("final", r), {})) for r in ("supervised", "assignment")},
        evaluated_on=evaluated_on)


def reference_lines(dataset: str, n_hidden: int) -> list[Reference]:
    """The spec §6 targets to draw for a run (see ``evaluation.REFERENCE_RESULTS``)."""
    return reference_results(dataset, n_hidden)


def draw_accuracy(path: Path, curves: AccuracyCurves, references: Sequence[Reference],
                  title: str) -> Path:
    fig = _figure(12.0, 5.5)
    ax = fig.add_subplot()
    colours = {"supervised": "tab:blue", "assignment": "tab:orange"}
    if len(curves.running):
        ax.plot(curves.running.x, curves.running.y, ".-", color="0.55", lw=1.2, ms=3,
                label="running training accuracy (assignment readout, last samples)")
    for readout, colour in colours.items():
        c = curves.periodic[readout]
        if len(c):
            n = curves.evaluated_on.get("periodic")
            ax.plot(c.x, c.y, "o-", color=colour, ms=4, lw=1.5,
                    label=f"{readout} readout, periodic evaluation"
                          + (f" ({n:,} images)" if n else ""))
        c = curves.final[readout]
        if len(c):
            n = curves.evaluated_on.get("final")
            ax.plot(c.x, c.y, "*", color=colour, ms=14, mec="black", mew=0.6,
                    label=f"{readout} readout, final evaluation"
                          + (f" ({n:,} images)" if n else ""))
            for x, y in zip(c.x, c.y, strict=True):
                ax.annotate(f"{y:.2f} %", (x, y), textcoords="offset points",
                            xytext=(6, -12 if readout == "assignment" else 6), fontsize=8,
                            color=colour)
    for ref in references:
        colour = colours.get(ref.readout, "black")
        if ref.low == ref.high:
            ax.axhline(ref.low, color=colour, ls="--", lw=1.0, label=ref.label)
        else:
            ax.axhspan(ref.low, ref.high, color=colour, alpha=0.15, label=ref.label)
    ax.set_xlabel("training samples seen")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    xs = [c.x for c in (curves.running, *curves.periodic.values(), *curves.final.values())]
    right = max((int(x.max()) for x in xs if x.size), default=1)
    ax.set_xlim(0, right * 1.08)
    ax.grid(alpha=0.3)
    ax.set_title(title, wrap=True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    return _save(fig, path)
