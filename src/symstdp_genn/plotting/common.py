"""Shared pieces of every figure: sizes, class names, an Agg figure without pyplot,
and the atomic PNG write.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_path
from ..encoding import N_CLASSES

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


def _integer_counts(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="#b0b8c0")  # gaps, empty tiles
