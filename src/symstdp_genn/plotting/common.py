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


def _save(fig: Any, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``fig`` as a PNG atomically; ``metadata``: text chunks kept in the file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=metadata)
    return path


def png_text(path: Path, key: str) -> str | None:
    """A text chunk of a PNG written by :func:`_save` (None if absent or unreadable)."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            value = image.info.get(key)
    except Exception:  # any unreadable file just means "draw it again"
        return None
    return value if isinstance(value, str) else None


def _samples_text(samples: int | None) -> str:
    return "imported weights" if samples is None else f"after {samples:,} training samples"


def _integer_counts(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _cmap(name: str) -> Any:
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="#b0b8c0")  # gaps, empty tiles
