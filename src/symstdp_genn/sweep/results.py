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
from ..selection import N_VALIDATION
from .spec import SweepSpec, Trial

log = logging.getLogger(__name__)

READOUTS = ("supervised_accuracy", "assignment_accuracy")
BASE_COLUMNS = ("trial", "point", "name")
TAIL_COLUMNS = ("seed", "status", "split", "eval_samples", *READOUTS, "silent_fraction",
                "samples_per_s", "wall_s", "reason", "run_dir")
VALIDATION_TEXT = f"the last {N_VALIDATION:,} training images".replace(",", " ")


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
               eval_samples=result.get("eval_samples"),
               supervised_accuracy=result.get("supervised_accuracy"),
               assignment_accuracy=result.get("assignment_accuracy"),
               silent_fraction=result.get("silent_fraction"),
               samples_per_s=result.get("samples_per_s"), wall_s=result.get("wall_s"),
               reason=result.get("reason", ""), run_dir=str(folder))
    return row


def _counts_text(counts: set[int]) -> str:
    """``100``, or ``100 to 500`` when trials differ."""
    low, high = min(counts), max(counts)
    return f"{low:,}".replace(",", " ") + ("" if low == high else
                                           f" to {high:,}".replace(",", " "))


def _scored_note(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    """How many images each trial was scored on, and labelled on: a score on 100 images
    is far noisier than one on 10 000, so the tables must not suggest the latter. The
    finished trials' results say what was scored; the trials' configs stand in for rows
    that have no count (not run, or written before the count was kept)."""
    scored = {int(n) for r in rows if r.get("status") == "finished"
              for n in [_number(r.get("eval_samples"))] if math.isfinite(n)}
    if not scored:
        asked = {t.config.evaluation.periodic_samples for t in spec.trials}
        if None in asked or not asked:
            return ""  # the whole split: the split's own description says how many
        scored = {int(n) for n in asked if n is not None}
    labels = {ev.periodic_label_samples if ev.periodic_label_samples is not None
              else ev.assignment_samples for ev in (t.config.evaluation for t in spec.trials)}
    what = "validation" if spec.split == "validation" else "test"
    note = f" Each trial was scored on the first {_counts_text(scored)} {what} images"
    if labels:
        note += f", its neurons labelled on {_counts_text(labels)} training images"
    return note + "."


def _split_note(spec: SweepSpec, rows: list[dict[str, Any]] | None = None) -> str:
    scored = _scored_note(spec, rows or [])
    if spec.split == "test":
        return ("**Measured on the TEST set** (split: test was asked for): these numbers were "
                "used for selection and are optimistic." + scored)
    return f"Measured on the validation split ({VALIDATION_TEXT})." + scored


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
    lines = [f"# Sweep {spec.name}", "", _split_note(spec, rows), "",
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


#: most lines a 1-D panel draws, one per value of the other swept keys; beyond it (a
#: random search, where every point has its own values) the points stand alone
MAX_LINES = 8


def _lines_of(summaries: list[PointSummary], key: str, keys: list[str]
              ) -> list[tuple[str | None, list[int]]]:
    """The lines of ``key``'s panel: ``(label, indices into summaries)``, one line per
    combination of the other swept keys' values, so that points which differ only in
    another key are told apart instead of sitting on top of one another. One unlabelled
    line when ``key`` is the only swept key; label None (points, no lines) when lines
    would not help: too many, or none joining two points."""
    others = [k for k in keys if k != key]
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, s in enumerate(summaries):
        groups.setdefault(tuple(_value_text(s.params[k]) for k in others), []).append(i)
    if len(groups) > MAX_LINES or all(len(g) == 1 for g in groups.values()):
        return [(None, list(range(len(summaries))))]
    ordered = sorted(groups.items(), key=lambda item: [_sort_key(v) for v in item[0]])
    return [(", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(others, values,
                                                                        strict=True)),
             members) for values, members in ordered]


def _panel_legend(ax: Any, labels: list[str | None]) -> None:
    """Under the panel, off the data: the readouts' marker and line style, then one colour
    per line (the other keys' values)."""
    from matplotlib.lines import Line2D

    coloured = len(labels) > 1
    black = "0.2" if coloured else "C0"
    handles = [Line2D([], [], color=black, marker="o", ls="-", label="supervised"),
               Line2D([], [], color=black, marker="s", mfc="white", ls="--",
                      label="assignment")]
    if coloured:
        handles += [Line2D([], [], color=f"C{k % 10}", lw=3, label=label)
                    for k, label in enumerate(labels)]
    ax.legend(handles=handles, fontsize="small", loc="upper center", frameon=False,
              bbox_to_anchor=(0.5, -0.2), ncol=_legend_columns(labels))


def _legend_columns(labels: list[str | None]) -> int:
    """Two columns while the labels are short enough to sit side by side under a panel."""
    return 2 if max((len(label or "") for label in labels), default=0) <= 28 else 1


def _legend_rows(labels: list[str | None]) -> int:
    entries = 2 + (len(labels) if len(labels) > 1 else 0)
    return math.ceil(entries / _legend_columns(labels))


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _sort_key(text: str) -> tuple[float, str]:
    number = _number(text)
    return (number if math.isfinite(number) else math.inf, text)


def _figure(spec: SweepSpec, rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = [s for s in summarise(spec, rows) if s.n > 0]
    keys = spec.swept_keys
    heat = len(spec.grid_keys) == 2 and len(keys) == 2
    panels = max(1, len(keys)) + (1 if heat else 0)
    panel_lines = {key: _lines_of(summaries, key, keys) for key in keys}
    legend_rows = max((_legend_rows([label for label, _ in lines])
                       for lines in panel_lines.values()), default=0)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.8 + 0.2 * legend_rows),
                             squeeze=False)
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
        lines = panel_lines[key]
        for k, (label, members) in enumerate(lines):
            members = sorted(members, key=lambda i: xs[i])
            colour = f"C{k % 10}"
            for readout, style in (("supervised_accuracy", "o-"),
                                   ("assignment_accuracy", "s--")):
                ys = np.array([100 * summaries[i].mean[readout] for i in members])
                err = np.nan_to_num(np.array([100 * summaries[i].sd[readout]
                                              for i in members]))
                ax.errorbar(xs[members], ys, yerr=err, fmt=style if label is not None
                            else style[0], color=colour, alpha=0.8, capsize=3, ms=5,
                            mfc="white" if readout == "assignment_accuracy" else None)
        if not np.all(np.isfinite([_number(s.params[key]) for s in summaries])):
            names = sorted({str(s.params[key]) for s in summaries})
            ax.set_xticks(range(len(names)), names)
        if log_axis:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(f"accuracy on {what} (%)")
        _panel_legend(ax, [label for label, _ in lines])
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
