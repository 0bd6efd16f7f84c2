"""Testing a saved checkpoint: the steps ``--mode test`` and
[`evaluate`][symstdp_genn.api.evaluate] share, and how progress reaches a person.

[`prepare_evaluation`][symstdp_genn.tester.prepare_evaluation] loads and checks everything
(checkpoint, config, data, report folder) before any simulation;
[`PreparedEvaluation.run`][symstdp_genn.tester.PreparedEvaluation.run] labels, tests and
writes the report. The command line prints its header lines between the two.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as _checkpoint
from . import config as _config
from . import runner
from .backends import backend_for
from .checkpoint import RUN_CHECKPOINT, Checkpoint, check_size, checkpoint_path
from .config import Config, config_from_dict
from .errors import UserError
from .evaluation import EVALUATION_FILE, SILENT, EvaluationResult
from .evaluator import Evaluator, labelling_samples, save_record
from .network import build_network
from .plotting import FIGURES_DIR, FigureReport, draw_figures, draw_safely
from .progress import ConsoleFilter, ConsoleFormatter, notice
from .training import network_state

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """What [`evaluate`][symstdp_genn.api.evaluate] measured on one checkpoint.

    Attributes:
        checkpoint: The checkpoint file (or original-format folder) that was tested.
        n: Test images scored.
        supervised_accuracy: Output-layer readout accuracy, a fraction in [0, 1].
        assignment_accuracy: Neuron-assignment readout accuracy.
        silent_fraction: Share of test images on which the output layer stayed silent.
        labelled: Training images used to label the hidden neurons (0: the checkpoint's
            own labels were used).
        seconds: Wall-clock seconds of the whole call (compilation and labelling included).
        report_dir: Folder of ``evaluation.npz`` and ``figures/``; None with ``save=False``.
        record: The written ``evaluation.npz`` (per-sample results), or None.
        figures: Figure files drawn (``figures=True``), else empty.
        config: The configuration the checkpoint was tested with.
        result: Every number of the test pass (confusion matrices, per-sample record).
    """

    checkpoint: Path
    n: int
    supervised_accuracy: float
    assignment_accuracy: float
    silent_fraction: float
    labelled: int
    seconds: float
    report_dir: Path | None = None
    record: Path | None = None
    figures: list[Path] = field(default_factory=list)
    config: Config = field(default_factory=Config, repr=False)
    result: EvaluationResult | None = field(default=None, repr=False)


@contextmanager
def watched(progress: bool) -> Iterator[bool]:
    """With ``progress`` and no logging configured (a notebook, a plain script), show the
    package's notices and progress lines on stderr while the block runs; yields whether
    it does (the command line configures logging itself)."""
    root, package = logging.getLogger(), logging.getLogger("symstdp_genn")
    if not progress or root.handlers or package.handlers:
        yield False
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ConsoleFilter())
    handler.setFormatter(ConsoleFormatter())
    level = package.level
    package.addHandler(handler)
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    try:
        yield True
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


def say(shown: bool, message: str, *args: object) -> None:
    """A line for the person watching (when :func:`watched` shows them), else the log's."""
    if shown:
        notice(log, message, *args)
    else:
        log.info(message, *args)


def pct(x: float) -> str:
    """``88.85 %``, or ``n/a`` for NaN (no images scored)."""
    return "n/a" if np.isnan(x) else f"{100 * x:.2f} %"


def figure_paths(report: FigureReport | None) -> list[Path]:
    """The files a figure report wrote (none when no figures were drawn)."""
    return list(report.written) if report is not None else []


def default_report_dir(checkpoint: Path, n_test: int) -> Path:
    """Where a test reports by default; never over a training's own report.

    A run's ``checkpoint.npz`` -> ``RUN/tests/<n>-images/`` (``-2``, ``-3``... when taken);
    an original-format folder -> that folder; any other file (a shipped network, a
    snapshot) -> ``<name>-test/`` beside it."""
    if checkpoint.is_dir():
        return checkpoint
    if checkpoint.name != RUN_CHECKPOINT:
        return checkpoint.parent / f"{checkpoint.stem}-test"
    base = checkpoint.parent / "tests" / f"{n_test}-images"
    out, k = base, 2
    while out.exists():
        out, k = base.with_name(f"{base.name}-{k}"), k + 1
    return out


@dataclass
class PreparedEvaluation:
    """A checkpoint ready to test: its config, data and report folder, all checked.

    [`evaluate`][symstdp_genn.api.evaluate] is ``prepare_evaluation(...).run(...)``; the
    command line prints its header lines between the two.
    """

    path: Path
    #: the checkpoint file as the report and the command line name it
    source: str
    checkpoint: Checkpoint
    config: Config
    backend: str
    n_label: int
    n_test: int
    assignments: np.ndarray | None
    report_dir: Path | None
    dataset: Any = field(repr=False)

    def run(self, *, progress: bool = True, figures: bool = False) -> EvalResult:
        """Label the hidden neurons (unless the checkpoint has labels), test, and save
        ``evaluation.npz`` (and figures) into ``report_dir`` when there is one."""
        tic = time.perf_counter()
        state = network_state(self.checkpoint.arrays)
        evaluator = Evaluator(self.config, build_network(self.config), self.backend)
        with watched(progress) as shown:
            with (runner.writable_folder(self.report_dir) if self.report_dir is not None
                  else nullcontext()):  # a report that cannot be written fails now, not after
                _, result = evaluator.label_and_test(state, self.dataset, self.n_label,
                                                     self.n_test, show=progress,
                                                     assignments=self.assignments)
            record = None
            labelled = 0 if self.assignments is not None else self.n_label
            if self.report_dir is not None:
                record = save_record(self.report_dir / EVALUATION_FILE, result, self.config,
                                     tag="test", samples_seen=self.checkpoint.meta.get(
                                         "driver", {}).get("samples_seen"),
                                     labelled=labelled, checkpoint=self.source)
            tested = EvalResult(
                checkpoint=self.path, n=result.n,
                supervised_accuracy=result.supervised_accuracy,
                assignment_accuracy=result.assignment_accuracy,
                silent_fraction=result.silent_fraction, labelled=labelled,
                seconds=time.perf_counter() - tic, report_dir=self.report_dir, record=record,
                config=self.config, result=result)
            if figures:
                tested.figures = figure_paths(self.draw_figures(tested))
            say(shown, "tested %s on %d images: supervised %s, assignment %s", self.source,
                result.n, pct(result.supervised_accuracy), pct(result.assignment_accuracy))
        return tested

    def draw_figures(self, tested: EvalResult) -> FigureReport | None:
        """Draw the test's figures into ``report_dir/figures`` (None without a report
        folder, without matplotlib, or when drawing failed: logged, never raised)."""
        if self.report_dir is None or tested.result is None:
            return None
        folder = self.path if self.path.is_dir() else self.path.parent
        metrics = folder / "metrics.jsonl"
        report_dir, record = self.report_dir, tested.result.record
        return draw_safely(lambda: draw_figures(
            report_dir / FIGURES_DIR, self.checkpoint, config=self.config, record=record,
            metrics=metrics if metrics.is_file() else None))


def _imported_config(ckpt: Checkpoint, preset: str | None, config_file: Path | None,
                     sets: list[str]) -> Config:
    if preset is None and config_file is None:
        preset = f"mnist-{ckpt.n_hidden}"
        if preset not in _config.list_presets():
            raise UserError(f"no preset for an original checkpoint with {ckpt.n_hidden} hidden "
                            "neurons; pass --preset or --config")
    return _config.load_config(preset, config_file, sets)


def prepare_evaluation(checkpoint: str | os.PathLike[str], *, preset: str | None = None,
                       config_file: str | os.PathLike[str] | None = None,
                       overrides: list[str] | None = None,
                       out: str | os.PathLike[str] | None = None, save: bool = True,
                       data_dir: str | os.PathLike[str] | None = None) -> PreparedEvaluation:
    """Load and check everything a test needs before it simulates.

    Args:
        checkpoint: A ``.npz``, a run folder or an original-format folder.
        preset: A preset name to test under instead of the checkpoint's config.
        config_file: A YAML config file to test under (with or instead of ``preset``).
        overrides: ``KEY=VALUE`` strings on top (``evaluation.samples=500``...).
        out: Report folder (default:
            [`default_report_dir`][symstdp_genn.tester.default_report_dir]).
        save: False: no report folder, nothing written.
        data_dir: Dataset folder (default: the data layer's).

    Returns:
        The checked checkpoint, config, dataset and report folder.

    Raises:
        UserError: Anything the user can fix, before any simulation starts.
    """
    path = checkpoint_path(checkpoint)
    ckpt = _checkpoint.load_checkpoint(path)
    sets = list(overrides or [])
    file = Path(config_file) if config_file is not None else None
    data = ckpt.meta.get("config")
    if isinstance(data, dict) and preset is None and file is None:
        config = config_from_dict(_config.apply_overrides(config_from_dict(data).to_dict(),
                                                          sets))
    elif isinstance(data, dict):
        config = _config.load_config(preset, file, sets)
    else:
        config = _imported_config(ckpt, preset, file, sets)
    check_size(ckpt, config.network.n_hidden, str(path))
    dataset = runner.load_data(config, Path(data_dir) if data_dir is not None else None)[1]
    backend = backend_for(config)
    assignments = ckpt.arrays.get("assignments")
    if assignments is not None and np.all(assignments == SILENT):
        assignments = None
    n_label = labelling_samples(config, len(dataset.train_images))
    n_test = min(config.evaluation.samples or len(dataset.test_images), len(dataset.test_images))
    report_dir = None
    if save:
        report_dir = Path(out) if out is not None else default_report_dir(path, n_test)
        runner.check_path(report_dir)
        if report_dir.exists() and not report_dir.is_dir():
            raise UserError(f"--out {report_dir} is a file, not a folder; choose another --out")
        if runner.is_run_folder(report_dir):
            raise UserError(f"--out {report_dir} is a training run folder; a test report would "
                            "replace the report of its training. Leave out --out (reports go "
                            "to RUN/tests/) or choose another folder")
    return PreparedEvaluation(path=path, source=str(path), checkpoint=ckpt, config=config,
                              backend=backend, n_label=n_label, n_test=n_test,
                              assignments=assignments, report_dir=report_dir, dataset=dataset)
