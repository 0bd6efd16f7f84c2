"""Figures of the learned state: receptive fields (and their evolution), hidden→output
weights, θ.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_path
from ..encoding import N_CLASSES
from ..evaluation import (
    SILENT,
)
from .common import (
    DPI,
    GIF_DPI,
    MAX_GIF_FRAMES,
    SIDE,
    SNAPSHOT_RE,
    WEIGHT_LABEL,
    _cmap,
    _figure,
    _integer_counts,
    _samples_text,
    _save,
    class_names,
)

#: PNG text chunk that records a receptive-field figure's tile order (:func:`layout_key`),
#: so a figure drawn in another order (``--rf-order``, new assignments) is drawn again
ORDER_KEY = "symstdp-tile-order"
#: The weight-evolution GIF's tile grid: at most this many pixels along its longer side,
#: and at most :data:`GIF_MAX_SCALE` screen pixels per weight, so that a tile of a small
#: network is drawn large and a 6 400-neuron grid still makes a GIF of sensible size
GIF_MAX_PX = 1200
GIF_MAX_SCALE = 3.0


def grid_shape(n: int) -> tuple[int, int]:
    """``ceil(√n) × ceil(√n)`` tiles (rows, columns)."""
    side = max(1, math.ceil(math.sqrt(n)))
    return side, side


@dataclass
class TileLayout:
    """Where each hidden neuron's 28×28 tile goes in a receptive-field grid."""

    rows: int
    cols: int
    position: np.ndarray  # [N, 2] (tile row, tile column) of neuron j
    #: (class, first tile row, end tile row, neurons) of each class block; empty when the
    #: tiles are in neuron order. SILENT: neurons without an assignment.
    groups: list[tuple[int, int, int, int]]

    @property
    def by_class(self) -> bool:
        return bool(self.groups)


def tile_layout(n: int, assignments: np.ndarray | None = None) -> TileLayout:
    """Neuron order (tile ``j`` at row ``j // cols``, column ``j % cols``) or, given
    assignments with at least one class, one block of rows per assigned class (0..9, then
    neurons without a class), each block starting on a new row, neurons in index order
    within it: tiles of a class side by side show what that class learned."""
    rows, cols = grid_shape(n)
    if assignments is None or not np.any(np.asarray(assignments) != SILENT):
        position = np.array([divmod(j, cols) for j in range(n)], dtype=np.int64).reshape(n, 2)
        return TileLayout(rows, cols, position, [])
    classes = np.asarray(assignments, dtype=np.int64)
    if classes.shape != (n,):
        raise ValueError(f"assignments must be [{n}], got {classes.shape}")
    position = np.zeros((n, 2), dtype=np.int64)
    groups = []
    row = 0
    for k in [*range(N_CLASSES), SILENT]:
        members = np.flatnonzero(classes == k)
        if not members.size:
            continue
        for i, j in enumerate(members):
            r, c = divmod(i, cols)
            position[j] = (row + r, c)
        block = math.ceil(members.size / cols)
        groups.append((k, row, row + block, int(members.size)))
        row += block
    return TileLayout(row, cols, position, groups)


def layout_key(layout: TileLayout) -> str:
    """A short fingerprint of where every neuron's tile goes: equal keys, same picture
    order."""
    digest = hashlib.sha256(np.ascontiguousarray(layout.position, dtype=np.int64).tobytes())
    return f"{layout.rows}x{layout.cols}-{digest.hexdigest()[:16]}"


def receptive_field_grid(weights: np.ndarray, gap: int = 1,
                         layout: TileLayout | None = None) -> np.ndarray:
    """Input→hidden weights ``[784, N]`` as one image of 28×28 tiles.

    Neuron ``j``'s column, reshaped row-major to 28×28, goes to tile
    ``layout.position[j]`` (default: neuron order, tile (r, c) = column ``r·cols + c``)
    at pixel offset ``(r·(28+gap), c·(28+gap))``; gaps and tiles without a neuron are NaN.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != SIDE * SIDE:
        raise ValueError(f"input->hidden weights must be [784, N], got {w.shape}")
    n = w.shape[1]
    layout = layout if layout is not None else tile_layout(n)
    step = SIDE + gap
    grid = np.full((layout.rows * step - gap, layout.cols * step - gap), np.nan)
    for j in range(n):
        r, c = layout.position[j]
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


def theta_values(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Each hidden neuron's θ (mV) from a checkpoint's arrays (first batch lane)."""
    theta = np.asarray(arrays["hidden.theta"], dtype=np.float64)
    return theta.reshape(-1, theta.shape[-1])[0]


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


def _grid_axes(ax: Any, n: int, layout: TileLayout | None = None,
               dataset: str = "mnist") -> None:
    layout = layout if layout is not None else tile_layout(n)
    ax.set_xticks([])
    if not layout.by_class:
        ax.set_yticks([])
        ax.set_xlabel(f"hidden neurons in index order, {layout.cols} per row\n"
                      "(each tile: one neuron's weights from the 28×28 input pixels)")
        ax.set_ylabel(f"{layout.rows} rows of {layout.cols} neurons")
        return
    step = SIDE + 1
    names = class_names(dataset)
    ax.set_yticks([(lo + hi) / 2 * step - 1 for _, lo, hi, _ in layout.groups],
                  [f"{'none' if k == SILENT else names[k]} ({count})"
                   for k, _, _, count in layout.groups], fontsize=8)
    ax.tick_params(axis="y", length=0)
    for _, _, hi, _ in layout.groups[:-1]:
        ax.axhline(hi * step - 1, color="tab:blue", lw=1.5)
    ax.set_xlabel("hidden neurons grouped by assigned class, in index order within it\n"
                  "(each tile: one neuron's weights from the 28×28 input pixels)")
    ax.set_ylabel("assigned class (neurons)")


def _rf_size(n: int, limit: float, tiles: int | None = None) -> float:
    """Inches for ``tiles`` tiles side by side (default: the square grid's side)."""
    tiles = tiles if tiles is not None else grid_shape(n)[0]
    return float(np.clip(tiles * (SIDE + 1) / DPI * 1.1, 5.0, limit))


def draw_receptive_fields(path: Path, weights: np.ndarray, samples: int | None,
                          vmax: float | None = None, assignments: np.ndarray | None = None,
                          by_class: bool = True, dataset: str = "mnist",
                          assigned_at: int | None = None) -> Path:
    """Write :func:`receptive_fields_figure` to ``path``, its tile order (:func:`layout_key`)
    recorded in the PNG."""
    layout = tile_layout(np.asarray(weights).shape[1], assignments if by_class else None)
    return _save(receptive_fields_figure(weights, samples, vmax, assignments, by_class,
                                         dataset, assigned_at), path,
                 metadata={ORDER_KEY: layout_key(layout)})


def _assigned_note(layout: TileLayout, samples: int | None, assigned_at: int | None) -> str:
    """For a snapshot grouped by the classes of a later state: say which."""
    if not layout.by_class or assigned_at is None or assigned_at == samples:
        return ""
    return f"\n(grouped by the classes assigned after {assigned_at:,} samples)"


def receptive_fields_figure(weights: np.ndarray, samples: int | None,
                            vmax: float | None = None, assignments: np.ndarray | None = None,
                            by_class: bool = True, dataset: str = "mnist",
                            assigned_at: int | None = None) -> Any:
    """The receptive-field grid; with ``by_class`` (the default) and assignments that
    name at least one class, tiles are grouped by assigned class and labelled.
    ``assigned_at``: the samples after which ``assignments`` were made, when they are not
    this state's (a snapshot drawn in the final figure's order)."""
    n = np.asarray(weights).shape[1]
    layout = tile_layout(n, assignments if by_class else None)
    grid = receptive_field_grid(weights, layout=layout)
    width = _rf_size(n, 20.0, layout.cols) + 1.2 + (1.0 if layout.by_class else 0.0)
    fig = _figure(width, _rf_size(n, 20.0, layout.rows) + 0.6)
    ax = fig.add_subplot()
    cmap = _cmap("hot_r")
    top = vmax if vmax is not None else (float(np.nanmax(grid)) if np.isfinite(grid).any()
                                         else 1.0)
    im = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=top or 1.0, interpolation="nearest")
    _grid_axes(ax, n, layout, dataset)
    ax.set_title(f"input→hidden receptive fields (N={n})\n{_samples_text(samples)}"
                 f"{_assigned_note(layout, samples, assigned_at)}")
    fig.colorbar(im, ax=ax, shrink=0.8, label=WEIGHT_LABEL)
    return fig


def gif_scale(layout: TileLayout) -> float:
    """Screen pixels per weight in the GIF (see :data:`GIF_MAX_PX`)."""
    longest = max(layout.rows, layout.cols) * (SIDE + 1)
    return float(min(GIF_MAX_SCALE, GIF_MAX_PX / longest))


def draw_weight_evolution(path: Path, snapshots: Sequence[tuple[int, Path]],
                          load: Callable[[Path], np.ndarray], fps: float = 2.0,
                          assignments: np.ndarray | None = None, dataset: str = "mnist",
                          assigned_at: int | None = None) -> Path:
    """Animated GIF of the receptive fields across ``snapshots`` (in the given order),
    loading one snapshot at a time; one colour scale (the first and last frames' range)
    for all frames. With ``assignments`` (the final state's, made after ``assigned_at``
    samples) the tiles are grouped by class as in the final figure, every frame in the
    same places, so a tile can be followed; tiles are drawn :func:`gif_scale` screen
    pixels per weight."""
    picks = [snapshots[i] for i in gif_frames(len(snapshots))]
    first, last = load(picks[0][1]), load(picks[-1][1])
    vmax = float(max(first.max(), last.max())) or 1.0
    n = first.shape[1]
    layout = tile_layout(n, assignments)
    scale = gif_scale(layout)
    step = SIDE + 1
    grid_w = (layout.cols * step - 1) * scale / GIF_DPI
    grid_h = (layout.rows * step - 1) * scale / GIF_DPI
    fig = _figure(grid_w + 1.6 + (1.0 if layout.by_class else 0.0), grid_h + 1.3)
    ax = fig.add_subplot()
    im = ax.imshow(receptive_field_grid(first, layout=layout), cmap=_cmap("hot_r"), vmin=0.0,
                   vmax=vmax, interpolation="nearest")
    _grid_axes(ax, n, layout, dataset)
    note = _assigned_note(layout, None, assigned_at)
    title = ax.set_title("")
    fig.colorbar(im, ax=ax, shrink=0.8, label=WEIGHT_LABEL)
    fig.set_dpi(GIF_DPI)
    frames = []
    palette = None
    for k, (samples, snap) in reversed(list(enumerate(picks))):  # the last sets the palette
        w = first if k == 0 else last if k == len(picks) - 1 else load(snap)
        im.set_data(receptive_field_grid(w, layout=layout))
        title.set_text(f"input→hidden receptive fields (N={n})\nafter {samples:,} "
                       f"training samples (frame {k + 1} of {len(picks)}){note}")
        frame, palette = _gif_frame(fig, palette)
        frames.append(frame)
    frames.reverse()
    with atomic_path(Path(path)) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=round(1000 / fps), loop=0)
    return Path(path)


def _gif_frame(fig: Any, palette: Any) -> tuple[Any, Any]:
    """The figure as one GIF frame: 96 colours without dithering, in the palette of the
    first frame drawn (``palette``; None: make it from this one). Dithered frames with a
    palette each (matplotlib's PillowWriter) made the GIF about 1.5 times as large, for
    no visible gain."""
    from PIL import Image

    fig.canvas.draw()
    rgb = Image.frombuffer("RGBA", fig.canvas.get_width_height(),
                           fig.canvas.buffer_rgba()).convert("RGB")
    if palette is None:
        palette = rgb.quantize(colors=96, dither=Image.Dither.NONE)
    return rgb.quantize(palette=palette, dither=Image.Dither.NONE), palette


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
