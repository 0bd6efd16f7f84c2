"""Figures of a run folder: PNG files (and one GIF) drawn with matplotlib's Agg renderer.

Every figure has a *data* function, which computes the arrays it draws from
checkpoints, snapshots, ``metrics.jsonl`` or ``evaluation.npz`` (pure numpy, tested),
and a *draw* function, which writes the file atomically (temporary file, then
rename). :func:`draw_run` draws everything a run folder allows into
``<run>/figures/``; a figure whose input is missing is skipped with one log line.

matplotlib is imported only inside the draw functions, and never through pyplot, so
importing this package is cheap and changes no global matplotlib state.

Modules by figure family: :mod:`.weights` (receptive fields, hidden→output, θ),
:mod:`.accuracy` (accuracy during training), :mod:`.responses` (confusion matrices, spike
counts, t-SNE), :mod:`.run` (a whole run folder); :mod:`.common` holds what they share.
Public names are re-exported here.
"""

from __future__ import annotations

from .accuracy import (
    AccuracyCurves,
    Curve,
    accuracy_curves,
    accuracy_figure,
    draw_accuracy,
    read_metrics,
    reference_label,
    reference_lines,
    y_range,
)
from .common import (
    DPI,
    FASHION_NAMES,
    FIGURES_DIR,
    GIF_DPI,
    MAX_GIF_FRAMES,
    SIDE,
    SNAPSHOT_RE,
    TSNE_INSTALL,
    TSNE_SAMPLES,
    WEIGHT_LABEL,
    class_names,
)
from .responses import (
    SpikeSummary,
    confusions_from_metrics,
    draw_confusions,
    draw_hidden_spikes,
    draw_tsne,
    normalised_confusion,
    spike_summary,
    tsne_available,
    tsne_embedding,
)
from .run import FigureReport, draw_figures, draw_run, draw_safely, matplotlib_available
from .weights import (
    HiddenOutputData,
    TileLayout,
    draw_hidden_output,
    draw_receptive_fields,
    draw_theta,
    draw_weight_evolution,
    gif_frames,
    grid_shape,
    hidden_output_order,
    list_snapshots,
    receptive_field_grid,
    receptive_fields_figure,
    theta_values,
    tile_layout,
)

__all__ = [
    "DPI",
    "FASHION_NAMES",
    "FIGURES_DIR",
    "GIF_DPI",
    "MAX_GIF_FRAMES",
    "SIDE",
    "SNAPSHOT_RE",
    "TSNE_INSTALL",
    "TSNE_SAMPLES",
    "WEIGHT_LABEL",
    "AccuracyCurves",
    "Curve",
    "FigureReport",
    "HiddenOutputData",
    "SpikeSummary",
    "TileLayout",
    "accuracy_curves",
    "accuracy_figure",
    "class_names",
    "confusions_from_metrics",
    "draw_accuracy",
    "draw_confusions",
    "draw_figures",
    "draw_hidden_output",
    "draw_hidden_spikes",
    "draw_receptive_fields",
    "draw_run",
    "draw_safely",
    "draw_theta",
    "draw_tsne",
    "draw_weight_evolution",
    "gif_frames",
    "grid_shape",
    "hidden_output_order",
    "list_snapshots",
    "matplotlib_available",
    "normalised_confusion",
    "read_metrics",
    "receptive_field_grid",
    "receptive_fields_figure",
    "reference_label",
    "reference_lines",
    "spike_summary",
    "theta_values",
    "tile_layout",
    "tsne_available",
    "tsne_embedding",
    "y_range",
]
