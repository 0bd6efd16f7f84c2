"""Figures of a run folder: PNG files (and one GIF) drawn with matplotlib's Agg renderer.

Every figure has a *data* function, which computes the arrays it draws from
checkpoints, snapshots, ``metrics.jsonl`` or ``evaluation.npz`` (pure numpy, tested),
and a *draw* function, which writes the file atomically (temporary file, then
rename). :func:`draw_run` draws everything a run folder allows into
``<run>/figures/``; a figure whose input is missing is skipped with one log line.

matplotlib is imported only inside the draw functions, and never through pyplot, so
importing this module is cheap and changes no global matplotlib state.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import Checkpoint, atomic_path, load_checkpoint
from .config import Config, config_from_dict, load_config
from .encoding import N_CLASSES
from .errors import UserError
from .evaluation import (
    EVALUATION_FILE,
    SILENT,
    EvaluationRecord,
    Reference,
    load_evaluation,
    reference_results,
)

log = logging.getLogger(__name__)

DPI = 120
GIF_DPI = 100
FIGURES_DIR = "figures"
SIDE = 28  # input image side (pixels)
MAX_GIF_FRAMES = 60
TSNE_SAMPLES = 2000
WEIGHT_LABEL = "weight g (dimensionless conductance)"
SNAPSHOT_RE = re.compile(r"samples-(\d+)\.npz$")
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")
TSNE_INSTALL = "pip install -e '.[plots]' (or: pip install scikit-learn)"


def class_names(dataset: str) -> list[str]:
    if dataset == "fashion-mnist":
        return [f"{k} {name}" for k, name in enumerate(FASHION_NAMES)]
    return [str(k) for k in range(N_CLASSES)]


# ==========================================================================================
# Data functions (no matplotlib)
# ==========================================================================================


def grid_shape(n: int) -> tuple[int, int]:
    """``ceil(√n) × ceil(√n)`` tiles (rows, columns)."""
    side = max(1, math.ceil(math.sqrt(n)))
    return side, side


def receptive_field_grid(weights: np.ndarray, gap: int = 1) -> np.ndarray:
    """Input→hidden weights ``[784, N]`` as one image of 28×28 tiles.

    Tile (r, c) is column ``r·cols + c`` reshaped row-major to 28×28, at pixel offset
    ``(r·(28+gap), c·(28+gap))``; gaps and tiles without a neuron are NaN.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != SIDE * SIDE:
        raise ValueError(f"input->hidden weights must be [784, N], got {w.shape}")
    n = w.shape[1]
    rows, cols = grid_shape(n)
    step = SIDE + gap
    grid = np.full((rows * step - gap, cols * step - gap), np.nan)
    for j in range(n):
        r, c = divmod(j, cols)
        grid[r * step: r * step + SIDE, c * step: c * step + SIDE] = w[:, j].reshape(SIDE, SIDE)
    return grid


@dataclass
class HiddenOutputData:
    """Hidden→output weights with rows grouped by class (``classes[i]`` of row ``i``)."""

    matrix: np.ndarray  # [N, 10] rows in display order
    order: np.ndarray  # [N] original neuron index of each row
    classes: np.ndarray  # [N] class of each row (SILENT: none)
    groups: list[tuple[int, int, int]]  # (class, first row, end row) of each non-empty group
    ordered_by: str  # "assigned class" or "strongest output weight"


def hidden_output_order(weights: np.ndarray, assignments: np.ndarray | None) -> HiddenOutputData:
    """Order the rows of ``weights`` ``[N, 10]`` by each neuron's class: its assignment
    when there are any (neurons without one last), else its strongest output weight;
    within a class, by descending weight to that class's output neuron."""
    w = np.asarray(weights, dtype=np.float64)
    n = w.shape[0]
    has = assignments is not None and np.any(np.asarray(assignments) != SILENT)
    if has:
        classes = np.asarray(assignments, dtype=np.int64)
        if classes.shape != (n,):
            raise ValueError(f"assignments must be [{n}], got {classes.shape}")
        ordered_by = "assigned class"
    else:
        classes = w.argmax(axis=1)
        ordered_by = "strongest output weight"
    key = np.where(classes == SILENT, N_CLASSES, classes)
    own = np.where(classes == SILENT, 0.0, w[np.arange(n), np.clip(classes, 0, N_CLASSES - 1)])
    order = np.lexsort((np.arange(n), -own, key))
    sorted_key = key[order]
    groups = []
    for k in range(N_CLASSES + 1):
        idx = np.flatnonzero(sorted_key == k)
        if idx.size:
            groups.append((SILENT if k == N_CLASSES else k, int(idx[0]), int(idx[-1]) + 1))
    return HiddenOutputData(w[order], order, classes[order], groups, ordered_by)


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


def normalised_confusion(counts: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (each row with samples sums to 1; empty rows stay 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def confusions_from_metrics(events: Sequence[dict[str, Any]]) -> dict[str, np.ndarray] | None:
    """The confusion matrices of the last final evaluation in ``metrics.jsonl``."""
    for e in reversed(events):
        if e.get("event") == "evaluation" and e.get("tag") == "final":
            try:
                out = {r: np.asarray(e[f"{r}_confusion"], dtype=np.int64)
                       for r in ("supervised", "assignment")}
            except (KeyError, TypeError, ValueError):
                return None
            if all(cm.shape == (N_CLASSES, N_CLASSES + 1) for cm in out.values()):
                return out
            return None
    return None


def theta_values(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Each hidden neuron's θ (mV) from a checkpoint's arrays (first batch lane)."""
    theta = np.asarray(arrays["hidden.theta"], dtype=np.float64)
    return theta.reshape(-1, theta.shape[-1])[0]


@dataclass
class SpikeSummary:
    spikes: np.ndarray  # [n] hidden spikes per test sample (accepted presentation)
    n: int
    retried: int  # samples presented more than once (fewer than min_spikes spikes at first)
    retries: int  # extra presentations in all
    forced: int  # samples accepted at maximum intensity with too few spikes
    min_spikes: int


def spike_summary(record: EvaluationRecord, min_spikes: int) -> SpikeSummary:
    return SpikeSummary(spikes=np.asarray(record.hidden_spikes, dtype=np.int64), n=record.n,
                        retried=int((record.retries > 0).sum()),
                        retries=int(record.retries.sum()), forced=int(record.forced.sum()),
                        min_spikes=int(min_spikes))


def tsne_available() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def tsne_embedding(counts: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of hidden spike-count vectors ``[n, N]`` (needs scikit-learn).

    Each response is scaled to unit sum (the pattern, not the overall rate, is what
    codes the class), then reduced to at most 50 principal components.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(counts, dtype=np.float64)
    if x.shape[0] < 10:
        raise ValueError(f"t-SNE needs at least 10 samples, got {x.shape[0]}")
    sums = x.sum(axis=1, keepdims=True)
    x = np.divide(x, sums, out=np.zeros_like(x), where=sums > 0)
    n_comp = min(50, x.shape[0] - 1, x.shape[1])
    if x.shape[1] > n_comp:
        x = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, (x.shape[0] - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed
                ).fit_transform(x)


def list_snapshots(folder: Path) -> list[tuple[int, Path]]:
    """``(samples seen, path)`` of ``samples-XXXXXXXX.npz`` files, in order of samples."""
    found = []
    for path in Path(folder).glob("samples-*.npz"):
        m = SNAPSHOT_RE.search(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def gif_frames(n: int, limit: int = MAX_GIF_FRAMES) -> list[int]:
    """Indices of at most ``limit`` evenly spread frames, first and last included."""
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


# ==========================================================================================
# Draw functions (matplotlib, Agg, atomic files)
# ==========================================================================================


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _samples_text(samples: int | None) -> str:
    return "imported weights" if samples is None else f"after {samples:,} training samples"


def _grid_axes(ax: Any, n: int) -> None:
    rows, cols = grid_shape(n)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"tile column: neuron j at row j // {cols}, column j % {cols}")
    ax.set_ylabel(f"tile row ({rows}×{cols} tiles of 28×28 input pixels)")


def _rf_size(n: int, limit: float) -> float:
    rows, _ = grid_shape(n)
    return float(np.clip(rows * (SIDE + 1) / DPI * 1.1, 5.0, limit))


def draw_receptive_fields(path: Path, weights: np.ndarray, samples: int | None,
                          vmax: float | None = None) -> Path:
    grid = receptive_field_grid(weights)
    n = np.asarray(weights).shape[1]
    size = _rf_size(n, 20.0)
    fig = _figure(size + 1.2, size + 0.4)
    ax = fig.add_subplot()
    cmap = _cmap("hot_r")
    top = vmax if vmax is not None else (float(np.nanmax(grid)) if np.isfinite(grid).any()
                                         else 1.0)
    im = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=top or 1.0, interpolation="nearest")
    _grid_axes(ax, n)
    ax.set_title(f"input→hidden receptive fields (N={n})\n{_samples_text(samples)}")
    fig.colorbar(im, ax=ax, shrink=0.8, label=WEIGHT_LABEL)
    return _save(fig, path)


def _integer_counts(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="#b0b8c0")  # gaps, empty tiles


def draw_weight_evolution(path: Path, snapshots: Sequence[tuple[int, Path]],
                          load: Callable[[Path], np.ndarray], fps: float = 2.0) -> Path:
    """Animated GIF of the receptive fields across ``snapshots`` (in the given order),
    loading one snapshot at a time; one colour scale (the first and last frames' range)
    for all frames."""
    from matplotlib.animation import PillowWriter

    picks = [snapshots[i] for i in gif_frames(len(snapshots))]
    first, last = load(picks[0][1]), load(picks[-1][1])
    vmax = float(max(first.max(), last.max())) or 1.0
    n = first.shape[1]
    size = _rf_size(n, 9.0)
    fig = _figure(size + 1.2, size + 0.4)
    ax = fig.add_subplot()
    im = ax.imshow(receptive_field_grid(first), cmap=_cmap("hot_r"), vmin=0.0, vmax=vmax,
                   interpolation="nearest")
    _grid_axes(ax, n)
    title = ax.set_title("")
    fig.colorbar(im, ax=ax, shrink=0.8, label=WEIGHT_LABEL)
    writer = PillowWriter(fps=fps)
    with atomic_path(Path(path)) as tmp, writer.saving(fig, str(tmp), dpi=GIF_DPI):
        for k, (samples, snap) in enumerate(picks):
            w = first if k == 0 else last if k == len(picks) - 1 else load(snap)
            im.set_data(receptive_field_grid(w))
            title.set_text(f"input→hidden receptive fields (N={n})\nafter {samples:,} "
                           f"training samples (frame {k + 1} of {len(picks)})")
            writer.grab_frame()
    return Path(path)


def draw_hidden_output(path: Path, weights: np.ndarray, assignments: np.ndarray | None,
                       samples: int | None, dataset: str = "mnist") -> Path:
    data = hidden_output_order(weights, assignments)
    n = data.matrix.shape[0]
    fig = _figure(7.0, float(np.clip(3.0 + n / 60, 5.0, 10.0)))
    ax = fig.add_subplot()
    im = ax.imshow(data.matrix, aspect="auto", cmap="viridis", vmin=0.0,
                   interpolation="nearest" if n <= 600 else "antialiased")
    names = class_names(dataset)
    for _, _, end in data.groups[:-1]:
        ax.axhline(end - 0.5, color="white", lw=1.2)
    ax.set_yticks([(lo + hi - 1) / 2 for _, lo, hi in data.groups],
                  [f"{'none' if k == SILENT else names[k]} ({hi - lo})"
                   for k, lo, hi in data.groups], fontsize=8)
    ax.set_xticks(range(N_CLASSES), names, rotation=45 if dataset != "mnist" else 0,
                  ha="right" if dataset != "mnist" else "center")
    ax.set_xlabel("output neuron (class)")
    ax.set_ylabel(f"hidden neurons grouped by {data.ordered_by} (neurons per group)")
    ax.set_title(f"hidden→output weights {_samples_text(samples)} (N={n})")
    fig.colorbar(im, ax=ax, label=WEIGHT_LABEL)
    return _save(fig, path)


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


def draw_confusions(path: Path, confusions: dict[str, np.ndarray], dataset: str = "mnist",
                    title: str = "", passname: str = "test") -> Path:
    names = class_names(dataset)
    fig = _figure(14.0, 6.4)
    axes = fig.subplots(1, 2)
    im = None
    for ax, readout in zip(axes, ("supervised", "assignment"), strict=True):
        counts = np.asarray(confusions[readout])
        frac = normalised_confusion(counts)
        im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
        for (i, j), count in np.ndenumerate(counts):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
        total = int(counts.sum())
        accuracy = 100.0 * np.trace(counts[:, :N_CLASSES]) / total if total else float("nan")
        ax.set_title(f"{readout} readout: {accuracy:.2f} % of {total:,} {passname} images")
        ax.set_xticks(range(N_CLASSES + 1), [*names, "silent"], rotation=45, ha="right")
        ax.set_yticks(range(N_CLASSES), names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    fig.colorbar(im, ax=axes, shrink=0.85,
                 label="fraction of the true class (row-normalised); numbers: image counts")
    if title:
        fig.suptitle(title, wrap=True)
    return _save(fig, path)


def draw_theta(path: Path, theta: np.ndarray, samples: int | None, theta_init: float | None,
               ) -> Path:
    theta = np.asarray(theta, dtype=np.float64)
    fig = _figure(7.5, 4.8)
    ax = fig.add_subplot()
    ax.hist(theta, bins=min(60, max(10, theta.size // 8)), color="tab:purple", alpha=0.85)
    if theta_init is not None:
        ax.axvline(theta_init, color="black", ls="--", lw=1, label=f"initial θ = {theta_init:g} mV")
        ax.legend(fontsize=8)
    ax.text(0.02, 0.97, f"mean {theta.mean():.2f} mV\nmin {theta.min():.2f} mV\n"
            f"max {theta.max():.2f} mV", transform=ax.transAxes, va="top", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})
    _integer_counts(ax)
    ax.set_xlabel("adaptive threshold θ (mV; spike threshold = V_th + θ − 20 mV)")
    ax.set_ylabel("hidden neurons")
    ax.set_title(f"hidden-neuron θ {_samples_text(samples)} (N={theta.size})")
    return _save(fig, path)


def draw_hidden_spikes(path: Path, summary: SpikeSummary, title: str, passname: str = "test"
                       ) -> Path:
    s = summary
    fig = _figure(7.5, 4.8)
    ax = fig.add_subplot()
    top = int(s.spikes.max()) if s.n else 1
    step = max(1, math.ceil((top + 1) / 80))
    ax.hist(s.spikes, bins=np.arange(0, top + step + 1, step) - 0.5, color="tab:green",
            alpha=0.85)
    ax.axvline(s.min_spikes - 0.5, color="tab:red", ls="--", lw=1,
               label=f"retry below {s.min_spikes} spikes")
    share = 100.0 * s.retried / s.n if s.n else 0.0
    ax.text(0.98, 0.97, f"needed a retry (fewer than {s.min_spikes} spikes): "
            f"{s.retried:,} of {s.n:,} ({share:.1f} %)\nextra presentations: {s.retries:,}\n"
            f"accepted at maximum intensity anyway: {s.forced:,}",
            transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
    _integer_counts(ax)
    ax.set_xlabel(f"hidden-layer spikes per {passname} image (accepted presentation)")
    ax.set_ylabel(f"{passname} images")
    ax.set_title(title, wrap=True)
    ax.legend(loc="center right", fontsize=8)
    return _save(fig, path)


def draw_tsne(path: Path, embedding: np.ndarray, labels: np.ndarray, dataset: str,
              title: str) -> Path:
    import matplotlib

    fig = _figure(8.0, 6.8)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10"]
    labels = np.asarray(labels)
    names = class_names(dataset)
    for k in range(N_CLASSES):
        sel = labels == k
        if sel.any():
            ax.scatter(embedding[sel, 0], embedding[sel, 1], s=6, color=cmap(k), label=names[k],
                       alpha=0.8, linewidths=0)
    ax.set_xlabel("t-SNE dimension 1 (arbitrary units)")
    ax.set_ylabel("t-SNE dimension 2 (arbitrary units)")
    ax.set_title(title, wrap=True)
    ax.legend(title="true class", markerscale=2.5, fontsize=8, loc="center left",
              bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


# ==========================================================================================
# A whole run folder
# ==========================================================================================


@dataclass
class FigureReport:
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def skip(self, message: str) -> None:
        log.info("figure skipped: %s", message)
        self.skipped.append(message)


def _samples_seen(ckpt: Checkpoint) -> int | None:
    driver = ckpt.meta.get("driver")
    if isinstance(driver, dict) and isinstance(driver.get("samples_seen"), int):
        return driver["samples_seen"]
    return None


def _config_of(ckpt: Checkpoint | None, run_dir: Path | None) -> Config | None:
    """The run's config: the checkpoint's own, else ``config.yaml``; None if neither reads."""
    data = ckpt.meta.get("config") if ckpt is not None else None
    try:
        if isinstance(data, dict):
            return config_from_dict(data)
        if run_dir is not None and (Path(run_dir) / "config.yaml").is_file():
            return load_config(config_file=Path(run_dir) / "config.yaml")
    except UserError as exc:
        log.info("config not readable for the figures (%s); using defaults", exc)
    return None


class FigureWriteError(UserError):
    """A figure file could not be written (disk full, read-only folder)."""


def _attempt(report: FigureReport, name: str, draw: Callable[[], Path | list[Path] | None]
             ) -> None:
    try:
        out = draw()
    except OSError as exc:  # the disk, not the figure: every other figure would fail too
        raise FigureWriteError(f"cannot write figure {report.out_dir / name}: "
                               f"{exc.strerror or exc}; free some space (or fix the folder's "
                               "permissions) and draw the figures again with --mode plot"
                               ) from None
    except Exception as exc:  # one broken figure must not stop the others
        log.warning("figure %s failed: %s: %s", name, type(exc).__name__, exc)
        report.failed.append(f"{name}: {type(exc).__name__}: {exc}")
        return
    if isinstance(out, list):
        report.written.extend(out)
    elif out is not None:
        report.written.append(out)


def draw_figures(out_dir: Path, checkpoint: Checkpoint | None, *,
                 config: Config | None = None, record: EvaluationRecord | None = None,
                 metrics: Path | None = None, snapshot_dir: Path | None = None,
                 label: str = "") -> FigureReport:
    """Draw every figure the given inputs allow into ``out_dir``.

    ``checkpoint`` feeds the receptive fields, hidden→output weights and θ; ``record``
    (``evaluation.npz``) the confusion matrices, the spike-count histogram and the
    t-SNE; ``metrics`` (``metrics.jsonl``) the accuracy curve (and the confusion
    matrices when there is no record); ``snapshot_dir`` the per-snapshot receptive
    fields and the weight-evolution GIF. A missing input skips its figures with one
    log line; a figure that fails is logged as a warning and reported.
    """
    out_dir = Path(out_dir)
    report = FigureReport(out_dir)
    dataset = config.dataset if config is not None else str((record.meta if record else {})
                                                             .get("dataset", "mnist"))
    name = label or (config.name if config is not None else "network")
    events: list[dict[str, Any]] = []
    if metrics is not None and Path(metrics).is_file():
        try:
            events = read_metrics(Path(metrics))
        except (OSError, UnicodeDecodeError) as exc:
            report.skip(f"{metrics} is not readable ({exc})")
    validation = bool(config.training.validation if config is not None
                      else (record.meta.get("validation") if record is not None else False))
    passname = "validation" if validation else "test"
    evaluated = ""
    if record is not None and isinstance(record.meta.get("samples_seen"), int):
        evaluated = f", after {record.meta['samples_seen']:,} training samples"

    # 1. receptive fields, 2. hidden->output, 5a. theta: from the checkpoint
    if checkpoint is None:
        report.skip("receptive fields, hidden→output weights, θ: no checkpoint")
    else:
        arrays = checkpoint.arrays
        samples = _samples_seen(checkpoint)
        _attempt(report, "receptive-fields.png", lambda: draw_receptive_fields(
            out_dir / "receptive-fields.png", arrays["input_to_hidden.g"], samples))
        assignments = arrays.get("assignments")
        if (assignments is None or np.all(assignments == SILENT)) and record is not None:
            assignments = record.assignments
        _attempt(report, "hidden-to-output.png", lambda: draw_hidden_output(
            out_dir / "hidden-to-output.png", arrays["hidden_to_output.g"], assignments,
            samples, dataset))
        _attempt(report, "theta.png", lambda: draw_theta(
            out_dir / "theta.png", theta_values(arrays), samples,
            config.network.theta_init if config is not None else None))
    n_hidden = checkpoint.n_hidden if checkpoint is not None else (
        config.network.n_hidden if config is not None else 0)

    # 1b. snapshots
    snaps = list_snapshots(snapshot_dir) if snapshot_dir is not None else []
    if not snaps:
        report.skip("per-snapshot receptive fields and weight-evolution GIF: no snapshots"
                    + (f" in {snapshot_dir}" if snapshot_dir is not None else ""))
    else:
        def load(path: Path) -> np.ndarray:
            return load_checkpoint(path).arrays["input_to_hidden.g"]

        for samples, snap in snaps:
            target = out_dir / "receptive-fields" / f"samples-{samples:08d}.png"
            if target.is_file() and target.stat().st_mtime_ns >= snap.stat().st_mtime_ns:
                continue  # drawn from this very snapshot before: large runs have many
            _attempt(report, str(target.relative_to(out_dir)),
                     lambda s=samples, p=snap, t=target: draw_receptive_fields(t, load(p), s))
        _attempt(report, "weight-evolution.gif", lambda: draw_weight_evolution(
            out_dir / "weight-evolution.gif", snaps, load))

    # 3. accuracy curve
    curves = accuracy_curves(events)
    if curves.empty:
        report.skip("accuracy curve: no metrics.jsonl with training or evaluation events")
    else:
        refs = reference_lines(dataset, n_hidden)
        _attempt(report, "accuracy.png", lambda: draw_accuracy(
            out_dir / "accuracy.png", curves, refs,
            f"{name}: accuracy during training (N={n_hidden}, {dataset})"))

    # 4. confusion matrices
    if record is not None:
        confusions: dict[str, np.ndarray] | None = {
            "supervised": record.supervised_confusion, "assignment": record.assignment_confusion}
    else:
        confusions = confusions_from_metrics(events)
    if confusions is None:
        report.skip("confusion matrices: no evaluation.npz and no final evaluation in "
                    "metrics.jsonl")
    else:
        _attempt(report, "confusion.png", lambda: draw_confusions(
            out_dir / "confusion.png", confusions, dataset,
            f"{name}: confusion matrices, {passname} pass (N={n_hidden}{evaluated})", passname))

    # 5b, 6: per-sample results of the test pass
    if record is None:
        report.skip(f"hidden spike-count histogram and t-SNE: no {EVALUATION_FILE} "
                    "(written by the final evaluation of training and by --mode test)")
        return report
    min_spikes = int(record.meta.get("min_hidden_spikes",
                                     config.training.min_hidden_spikes if config else 5))
    _attempt(report, "hidden-spikes.png", lambda: draw_hidden_spikes(
        out_dir / "hidden-spikes.png", spike_summary(record, min_spikes),
        f"{name}: hidden spikes per {passname} image (N={n_hidden}{evaluated})", passname))
    if not tsne_available():
        report.skip(f"t-SNE: scikit-learn is not installed; {TSNE_INSTALL}")
    elif record.hidden_counts.shape[0] < 10:
        report.skip(f"t-SNE: only {record.hidden_counts.shape[0]} test responses kept "
                    "(needs at least 10)")
    else:
        counts = record.hidden_counts[:TSNE_SAMPLES]
        seed = int(record.meta.get("seed", config.seed if config else 0))
        _attempt(report, "tsne.png", lambda: draw_tsne(
            out_dir / "tsne.png", tsne_embedding(counts, seed), record.labels[:len(counts)],
            dataset, f"{name}: t-SNE of hidden spike counts, {len(counts):,} {passname} "
                     f"images\n(N={n_hidden}{evaluated})"))
    return report


def _load_record(path: Path, report_skip: Callable[[str], None]) -> EvaluationRecord | None:
    if not path.is_file():
        return None
    try:
        return load_evaluation(path)
    except UserError as exc:
        report_skip(str(exc))
        return None


def draw_run(run_dir: Path, out_dir: Path | None = None) -> FigureReport:
    """(Re)draw every figure of a training run folder into ``<run>/figures/``.

    Raises :class:`UserError` when the folder does not exist or holds no readable
    checkpoint.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist; pass a folder written by "
                        "training, e.g. --run models/mnist-400-s1")
    ckpt_path = run_dir / "checkpoint.npz"
    if not ckpt_path.is_file():
        raise UserError(f"run folder {run_dir} has no checkpoint.npz; pass a folder written "
                        "by training, e.g. --run models/mnist-400-s1")
    checkpoint = load_checkpoint(ckpt_path)
    skipped: list[str] = []
    record = _load_record(run_dir / EVALUATION_FILE, skipped.append)
    report = draw_figures(Path(out_dir) if out_dir else run_dir / FIGURES_DIR, checkpoint,
                          config=_config_of(checkpoint, run_dir), record=record,
                          metrics=run_dir / "metrics.jsonl",
                          snapshot_dir=run_dir / "snapshots", label=run_dir.name)
    for message in skipped:
        report.skip(message)
    return report


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def draw_safely(draw: Callable[[], FigureReport]) -> FigureReport | None:
    """Figures as a by-product (end of training, ``--mode test``): without matplotlib, or
    on any error, log one line and return None; never raise (Ctrl-C excepted) except
    :class:`FigureWriteError`: a full disk is an error the user must see and fix."""
    if not matplotlib_available():
        log.warning("figures not drawn: matplotlib is not installed (pip install matplotlib)")
        return None
    try:
        return draw()
    except FigureWriteError:
        raise
    except Exception as exc:
        log.warning("figures not drawn: %s: %s", type(exc).__name__, exc)
        return None
