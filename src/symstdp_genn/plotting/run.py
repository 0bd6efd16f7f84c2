"""Every figure a run folder (or a test pass) allows, each failure isolated and reported.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import Checkpoint, load_checkpoint
from ..config import Config, config_from_dict, load_config
from ..errors import UserError
from ..evaluation import (
    EVALUATION_FILE,
    SILENT,
    EvaluationRecord,
    load_evaluation,
)
from ..progress import notice
from .accuracy import accuracy_curves, draw_accuracy, read_metrics, reference_lines
from .common import FIGURES_DIR, TSNE_INSTALL, TSNE_SAMPLES, png_text
from .responses import (
    confusions_from_metrics,
    draw_confusions,
    draw_hidden_spikes,
    draw_tsne,
    spike_summary,
    tsne_available,
    tsne_embedding,
)
from .weights import (
    ORDER_KEY,
    draw_hidden_output,
    draw_receptive_fields,
    draw_theta,
    draw_weight_evolution,
    layout_key,
    list_snapshots,
    theta_values,
    tile_layout,
)

log = logging.getLogger(__name__)


@dataclass
class FigureReport:
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def skip(self, message: str, *, tell: bool = False) -> None:
        """Record a figure left out; ``tell``: the user can fix it (a missing package), so
        the line also goes to the terminal, not only to the log."""
        if tell:
            notice(log, "figure skipped: %s", message)
        else:
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
                 label: str = "", rf_by_class: bool = True) -> FigureReport:
    """Draw every figure the given inputs allow into ``out_dir``.

    ``checkpoint`` feeds the receptive fields, hidden→output weights and θ; ``record``
    (``evaluation.npz``) the confusion matrices, the spike-count histogram and the
    t-SNE; ``metrics`` (``metrics.jsonl``) the accuracy curve (and the confusion
    matrices when there is no record); ``snapshot_dir`` the per-snapshot receptive
    fields and the weight-evolution GIF. A missing input skips its figures with one
    log line; a figure that fails is logged as a warning and reported. ``rf_by_class``
    groups the receptive-field tiles by assigned class when there are assignments; the
    per-snapshot grids and the GIF use the same order (the checkpoint's assignments:
    snapshots hold none), so a neuron's tile is in the same place in every picture.
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
    rf_assignments, assigned_at = None, None  # the tile order, for the snapshots too
    if checkpoint is None:
        report.skip("receptive fields, hidden→output weights, θ: no checkpoint")
    else:
        arrays = checkpoint.arrays
        samples = _samples_seen(checkpoint)
        assignments = arrays.get("assignments")
        if (assignments is None or np.all(assignments == SILENT)) and record is not None:
            assignments = record.assignments
        if rf_by_class and assignments is not None:
            rf_assignments, assigned_at = assignments, samples
        _attempt(report, "receptive-fields.png", lambda: draw_receptive_fields(
            out_dir / "receptive-fields.png", arrays["input_to_hidden.g"], samples,
            assignments=assignments, by_class=rf_by_class, dataset=dataset))
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

        order = layout_key(tile_layout(n_hidden, rf_assignments)) if n_hidden else None
        for samples, snap in snaps:
            target = out_dir / "receptive-fields" / f"samples-{samples:08d}.png"
            if (target.is_file() and target.stat().st_mtime_ns >= snap.stat().st_mtime_ns
                    and png_text(target, ORDER_KEY) == order):
                continue  # drawn from this very snapshot, in this order: large runs have many
            _attempt(report, str(target.relative_to(out_dir)),
                     lambda s=samples, p=snap, t=target: draw_receptive_fields(
                         t, load(p), s, assignments=rf_assignments, dataset=dataset,
                         assigned_at=assigned_at))
        _attempt(report, "weight-evolution.gif", lambda: draw_weight_evolution(
            out_dir / "weight-evolution.gif", snaps, load, assignments=rf_assignments,
            dataset=dataset, assigned_at=assigned_at))

    # 3. accuracy curve
    curves = accuracy_curves(events)
    if curves.empty:
        report.skip("accuracy curve: no metrics.jsonl with training or evaluation events")
    else:
        refs = reference_lines(dataset, n_hidden)
        _attempt(report, "accuracy.png", lambda: draw_accuracy(
            out_dir / "accuracy.png", curves, refs,
            f"{name}: accuracy during training (N={n_hidden}, {dataset})",
            config.training.running_window if config is not None else None))

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
        report.skip(f"t-SNE: scikit-learn is not installed; {TSNE_INSTALL}", tell=True)
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


def draw_run(run_dir: Path, out_dir: Path | None = None, rf_by_class: bool = True
             ) -> FigureReport:
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
                          snapshot_dir=run_dir / "snapshots", label=run_dir.name,
                          rf_by_class=rf_by_class)
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
