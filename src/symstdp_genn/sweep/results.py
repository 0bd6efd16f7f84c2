"""The sweep's tables and figure: results.csv, results.md, sweep.png.

Every table names the split it was measured on; a sweep on the test set says so loudly,
because choosing hyper-parameters on the test set makes its numbers optimistic.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_path
from .spec import SweepSpec, Trial

log = logging.getLogger(__name__)

READOUTS = ("supervised_accuracy", "assignment_accuracy")
BASE_COLUMNS = ("trial", "point", "name")
TAIL_COLUMNS = ("seed", "status", "split", *READOUTS, "silent_fraction", "samples_per_s",
                "wall_s", "reason", "run_dir")


@dataclass
class ResultFiles:
    csv: Path
    markdown: Path
    figure: Path | None
    failed_figure: str = ""
    written: list[Path] = field(default_factory=list)


def trial_row(spec: SweepSpec, trial: Trial, result: dict[str, Any] | None,
              folder: Path) -> dict[str, Any]:
    result = result or {}
    row: dict[str, Any] = {"trial": trial.trial_id, "point": trial.point_id, "name": trial.name}
    for key in spec.swept_keys:
        row[key] = trial.params.get(key)
    row.update(seed=trial.seed, status=result.get("status", "not run"), split=spec.split,
               supervised_accuracy=result.get("supervised_accuracy"),
               assignment_accuracy=result.get("assignment_accuracy"),
               silent_fraction=result.get("silent_fraction"),
               samples_per_s=result.get("samples_per_s"), wall_s=result.get("wall_s"),
               reason=result.get("reason", ""), run_dir=str(folder))
    return row


def _split_note(spec: SweepSpec) -> str:
    if spec.split == "test":
        return ("**Measured on the TEST set** (split: test was asked for): these numbers were "
                "used for selection and are optimistic.")
    return "Measured on the validation split (the last 10 000 training images)."


def _number(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class PointSummary:
    point: str
    name: str
    params: dict[str, Any]
    n: int
    failed: int
    mean: dict[str, float]
    sd: dict[str, float]


def summarise(spec: SweepSpec, rows: list[dict[str, Any]]) -> list[PointSummary]:
    """Per point: mean ± sd over its finished seeds; best supervised mean first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["point"], []).append(row)
    out = []
    for point, members in groups.items():
        done = [r for r in members if r["status"] == "finished"]
        mean, sd = {}, {}
        for key in READOUTS:
            values = np.array([_number(r[key]) for r in done])
            values = values[np.isfinite(values)]
            mean[key] = float(values.mean()) if values.size else math.nan
            sd[key] = float(values.std(ddof=1)) if values.size > 1 else math.nan
        out.append(PointSummary(point, members[0]["name"],
                                {k: members[0].get(k) for k in spec.swept_keys}, len(done),
                                sum(r["status"] == "failed" for r in members), mean, sd))
    out.sort(key=lambda s: (-s.mean["supervised_accuracy"]
                            if math.isfinite(s.mean["supervised_accuracy"]) else math.inf))
    return out


def _pm(mean: float, sd: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{100 * mean:.2f} ± {100 * sd:.2f}" if math.isfinite(sd) else f"{100 * mean:.2f}"


def _markdown(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    summaries = summarise(spec, rows)
    what = "test" if spec.split == "test" else "validation"
    plural = "s" if len(summaries) != 1 else ""
    lines = [f"# Sweep {spec.name}", "", _split_note(spec), "",
             f"{len(rows)} trials, {len(summaries)} point{plural}; accuracies in % on the {what} "
             "split, mean ± sd over seeds; best point first.", "",
             f"| point | name | seeds done | supervised ({what}) | assignment ({what}) | "
             "failed |", "| --- | --- | --- | --- | --- | --- |"]
    for s in summaries:
        lines.append(f"| {s.point} | {s.name} | {s.n} | "
                     f"{_pm(s.mean['supervised_accuracy'], s.sd['supervised_accuracy'])} | "
                     f"{_pm(s.mean['assignment_accuracy'], s.sd['assignment_accuracy'])} | "
                     f"{s.failed} |")
    failures = [r for r in rows if r["status"] == "failed"]
    if failures:
        lines += ["", "## Failed trials", ""]
        lines += [f"- {r['trial']} ({r['name']}, seed {r['seed']}): {r['reason']}"
                  for r in failures]
    return "\n".join(lines) + "\n"


def _csv(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    columns = [*BASE_COLUMNS, *spec.swept_keys, *TAIL_COLUMNS]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buf.getvalue()


def _axis_values(values: list[Any]) -> tuple[np.ndarray, bool]:
    """Numbers for a swept key's values (categories become positions); log axis or not."""
    numbers = np.array([_number(v) for v in values])
    if np.all(np.isfinite(numbers)):
        positive = numbers[numbers > 0]
        log_axis = positive.size == numbers.size and numbers.max() / numbers.min() >= 10
        return numbers, bool(log_axis)
    labels = sorted({str(v) for v in values})
    return np.array([labels.index(str(v)) for v in values], dtype=float), False


def _figure(spec: SweepSpec, rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = [s for s in summarise(spec, rows) if s.n > 0]
    keys = spec.swept_keys
    heat = len(spec.grid_keys) == 2 and len(keys) == 2
    panels = max(1, len(keys)) + (1 if heat else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.8), squeeze=False)
    what = "TEST set" if spec.split == "test" else "validation"
    if not keys:  # a seed study: every seed, and the mean ± sd band, per readout
        ax = axes[0][0]
        done = [r for r in rows if r["status"] == "finished"]
        x = np.arange(len(done))
        for readout, marker in (("supervised_accuracy", "o"), ("assignment_accuracy", "s")):
            ys = np.array([100 * _number(r[readout]) for r in done])
            line = ax.plot(x, ys, marker, label=readout.split("_")[0])[0]
            mean, sd = ys.mean(), ys.std(ddof=1) if ys.size > 1 else 0.0
            ax.axhline(mean, color=line.get_color(), lw=1)
            ax.axhspan(mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
        ax.set_xticks(x, [f"seed {r['seed']}" for r in done])
        ax.set_ylabel(f"accuracy on {what} (%)")
        ax.legend(fontsize="small")
    for ax, key in zip(axes[0], keys, strict=False):
        xs, log_axis = _axis_values([s.params[key] for s in summaries])
        for readout, marker in (("supervised_accuracy", "o"), ("assignment_accuracy", "s")):
            ys = np.array([100 * s.mean[readout] for s in summaries])
            err = np.nan_to_num(np.array([100 * s.sd[readout] for s in summaries]))
            ax.errorbar(xs, ys, yerr=err, fmt=marker, alpha=0.7, capsize=3,
                        label=readout.split("_")[0])
        if log_axis:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(f"accuracy on {what} (%)")
        ax.legend(fontsize="small")
    if heat:
        ax = axes[0][-1]
        kx, ky = keys
        xv = sorted({s.params[kx] for s in summaries}, key=_number)
        yv = sorted({s.params[ky] for s in summaries}, key=_number)
        grid = np.full((len(yv), len(xv)), np.nan)
        for s in summaries:
            grid[yv.index(s.params[ky]), xv.index(s.params[kx])] = 100 * s.mean[READOUTS[0]]
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(xv)), [f"{_number(v):g}" for v in xv])
        ax.set_yticks(range(len(yv)), [f"{_number(v):g}" for v in yv])
        ax.set_xlabel(kx)
        ax.set_ylabel(ky)
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="w",
                        fontsize="small")
        fig.colorbar(im, ax=ax, label="supervised (%), mean over seeds")
    fig.suptitle(f"sweep {spec.name} ({what} split)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def write_results(spec: SweepSpec, rows: list[dict[str, Any]], out_dir: Path) -> ResultFiles:
    files = ResultFiles(out_dir / "results.csv", out_dir / "results.md", out_dir / "sweep.png")
    for path, text in ((files.csv, _csv(spec, rows)), (files.markdown, _markdown(spec, rows))):
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        files.written.append(path)
    if any(r["status"] == "finished" for r in rows):
        try:
            _figure(spec, rows, files.figure)
            files.written.append(files.figure)
        except Exception as exc:  # a figure must never cost the tables
            log.warning("sweep.png not drawn: %s", exc)
            files.failed_figure = str(exc)
            files.figure = None
    else:
        files.figure = None
    return files
