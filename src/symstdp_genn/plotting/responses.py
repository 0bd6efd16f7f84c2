"""Figures of a test pass: confusion matrices, hidden spike counts, t-SNE.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..encoding import N_CLASSES
from ..evaluation import (
    EvaluationRecord,
)
from .common import _figure, _integer_counts, _save, class_names


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
