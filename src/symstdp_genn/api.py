"""The Python API: train, test and plot a network from a script or a notebook.

Every function here does what the matching ``run.py --mode`` does, with the same
numbers and the same files, and returns a typed result instead of printing:

```python
import symstdp_genn as sg

run = sg.train("mnist-100", samples=300, eval_samples=500, out="models/first")
print(run.supervised_accuracy, run.checkpoint)
test = sg.evaluate(run.checkpoint, samples=500)
assert test.supervised_accuracy == run.supervised_accuracy
sg.plot_run(run.run_dir)  # PNG files in models/first/figures/
```

Problems a user can fix (an unknown preset, a misspelt key, a missing checkpoint)
raise [`UserError`][symstdp_genn.errors.UserError] with a one-line message.
Progress goes to the ``symstdp_genn`` logger; with ``progress=True`` and no logging
set up (a notebook, a plain script), it is shown on stderr for the call's duration.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checkpoint as _checkpoint
from . import config as _config
from . import runner
from .checkpoint import Checkpoint
from .config import Config, config_from_dict
from .errors import UserError
from .evaluation import EvaluationResult
from .plotting import FigureReport, draw_run, draw_safely
from .plotting.run import matplotlib_available
from .progress import notice
from .selection import BEST_FILE
from .tester import (
    EvalResult,
    checkpoint_path,
    figure_paths,
    pct,
    prepare_evaluation,
    say,
    watched,
)
from .training import TrainingOutcome

log = logging.getLogger(__name__)

#: A file or folder name, as text or a ``pathlib.Path``.
PathLike = str | os.PathLike
#: ``{"network.eta_input_to_hidden": 0.01}`` or ``["network.eta_input_to_hidden=0.01"]``
Overrides = Mapping[str, Any] | Sequence[str]

__all__ = ["EvalResult", "TrainResult", "evaluate", "load_checkpoint", "load_config",
           "plot_run", "train"]


@dataclass
class TrainResult:
    """What [`train`][symstdp_genn.api.train] did: where the run is, how fast, how accurate.

    Attributes:
        run_dir: The run folder (checkpoint, ``config.yaml``, ``metrics.jsonl``, ``log.txt``).
        checkpoint: The final checkpoint, ``run_dir / "checkpoint.npz"``.
        supervised_accuracy: Test accuracy of the output layer (the paper's readout) on the
            final checkpoint, a fraction in [0, 1]; NaN when there was no final evaluation.
        assignment_accuracy: Test accuracy of the neuron-assignment readout (Diehl & Cook).
        samples_seen: Training samples since the run started (a resumed run included).
        samples_trained: Training samples of this call.
        train_seconds: Seconds this call spent training (evaluations excluded).
        samples_per_s: Training speed of this call.
        seconds: Wall-clock seconds of the whole call.
        interrupted: True when Ctrl-C, SIGTERM or a stop request ended the run early; the
            checkpoint is saved and the run can be continued with ``train(resume=...)``.
        best_checkpoint: ``best.npz`` of a run that selects a checkpoint, else None.
        figures: Figure files drawn (``figures=True``), else empty.
        config: The complete configuration the run used.
        final: Every number of the final test pass (confusion matrices, per-sample record).
        best: The same for ``best_checkpoint``; None without selection.
        outcome: The trainer's own report (selection curve, stop reason).
    """

    run_dir: Path
    checkpoint: Path
    supervised_accuracy: float
    assignment_accuracy: float
    samples_seen: int
    samples_trained: int
    train_seconds: float
    samples_per_s: float
    seconds: float
    interrupted: bool = False
    best_checkpoint: Path | None = None
    figures: list[Path] = field(default_factory=list)
    config: Config = field(default_factory=Config, repr=False)
    final: EvaluationResult | None = field(default=None, repr=False)
    best: EvaluationResult | None = field(default=None, repr=False)
    outcome: TrainingOutcome | None = field(default=None, repr=False)


def _override_list(overrides: Overrides | None) -> list[str]:
    """``KEY=VALUE`` strings (what ``--set`` takes) from a mapping or a list of them."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        # JSON is YAML that reads back as the same value ("1e3" stays a string)
        return [f"{key}={json.dumps(value, default=str)}" for key, value in overrides.items()]
    if isinstance(overrides, (str, bytes)) or not all(isinstance(s, str) for s in overrides):
        raise UserError(f"overrides must be a mapping {{'dotted.key': value}} or a list of "
                        f"'dotted.key=value' strings, got {overrides!r}")
    return list(overrides)


def _preset_or_file(preset: PathLike | None) -> tuple[str | None, Path | None]:
    """A preset name, or a YAML file when it is a path (a ``.yaml``/``.yml`` name or a
    name with a folder in it)."""
    if preset is None:
        return None, None
    text = os.fspath(preset)
    if isinstance(preset, os.PathLike) or text.endswith((".yaml", ".yml")) or os.sep in text:
        return None, Path(text)
    return text, None


def load_config(preset: PathLike | None = None, overrides: Overrides | None = None) -> Config:
    """Build and validate a run's configuration.

    Args:
        preset: A preset name (``"mnist-100"``, ``"fashion-400"``...; default ``mnist-400``)
            or the path of a YAML config file, which may name its own base preset with
            ``preset: NAME``.
        overrides: Values that replace the preset's, by dotted key, as a mapping
            ``{"network.eta_input_to_hidden": 0.01}`` or as ``--set`` strings
            ``["network.eta_input_to_hidden=0.01"]``.

    Returns:
        The validated configuration.

    Raises:
        UserError: An unknown preset, a missing file, an unknown key or a value of the
            wrong type or out of range; the message names the key and what is allowed.
    """
    name, path = _preset_or_file(preset)
    return _config.load_config(name, path, _override_list(overrides))


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint: a ``.npz`` written by training, a run folder (its
    ``checkpoint.npz``), or a folder of the original code's text files.

    Args:
        path: The file or folder.

    Returns:
        The checkpoint: ``arrays`` (weights ``input_to_hidden.g`` [784, N],
        ``hidden_to_output.g`` [N, 10], thresholds ``hidden.theta``, ``assignments``...)
        and ``meta`` (the config it was trained with, versions, samples seen).

    Raises:
        UserError: The path does not exist, or holds no readable checkpoint.
    """
    return _checkpoint.load_checkpoint(checkpoint_path(path))


def fresh_run_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``...: the first that holds no run and is not in
    use, so a default run folder never lands in an earlier run."""
    def taken(folder: Path) -> bool:
        return runner.is_run_folder(folder) or runner.is_locked(folder)

    k, folder = 2, base
    while taken(folder):
        folder, k = base.parent / f"{base.name}-{k}", k + 1
    return folder


def train(preset: PathLike | None = None, *, samples: int | None = None,
          eval_samples: int | None = None, seed: int | None = None,
          overrides: Overrides | None = None, config: Config | None = None,
          out: PathLike | None = None, resume: PathLike | None = None,
          data_dir: PathLike | None = None, progress: bool = True,
          figures: bool = False) -> TrainResult:
    """Train a network, save it, and test it on the test set, as ``--mode train`` does.

    Args:
        preset: Preset name or YAML config file (see [`load_config`][symstdp_genn.api.load_config]);
            default ``mnist-400``, or the checkpoint's own config with ``resume``.
        samples: Stop after this many training samples (``training.samples``).
        eval_samples: Test on the first N test images only (``evaluation.samples``).
        seed: Random seed (``seed``); the same config and seed give the same numbers.
        overrides: Further config values by dotted key (mapping or ``KEY=VALUE`` strings).
        config: A ready configuration instead of ``preset`` and ``overrides``.
        out: Run folder; default ``models/<preset>-s<seed>`` under the working directory
            (``-2``, ``-3``... when taken). An existing run is never overwritten.
        resume: A run's ``checkpoint.npz`` (or its folder) to continue training from.
        data_dir: Dataset folder (default: ``$SYMSTDP_DATA``, the checkout's ``data/``,
            else a user cache); MNIST is fetched and verified there when missing.
        progress: Show progress lines and notices where a person watches.
        figures: Also draw the run's figures into ``<out>/figures/`` (needs matplotlib).

    Returns:
        The run's folder, checkpoint, accuracies and timings.

    Raises:
        UserError: Bad configuration, an occupied run folder, missing data or compiler.
    """
    tic = time.perf_counter()
    if config is not None and (preset is not None or overrides is not None):
        raise UserError("train(): pass either config= or preset=/overrides=, not both")
    sets = _override_list(overrides)
    for key, value in (("seed", seed), ("training.samples", samples),
                       ("evaluation.samples", eval_samples)):
        if value is not None:
            sets.append(f"{key}={value}")
    resume_path = checkpoint_path(resume) if resume is not None else None
    if config is not None:
        config = config_from_dict(_config.apply_overrides(config.to_dict(), sets))
    elif resume_path is not None and preset is None:
        base = runner.resumable_checkpoint(resume_path)[1]
        config = config_from_dict(_config.apply_overrides(base.to_dict(), sets))
    else:
        name, path = _preset_or_file(preset)
        config = _config.load_config(name, path, sets)
    if out is not None:
        run_dir = Path(out)
    elif resume_path is not None:
        run_dir = resume_path.parent
    else:
        run_dir = fresh_run_dir(Path.cwd() / "models" / f"{config.name}-s{config.seed}")
    with watched(progress) as shown:
        say(shown, "training %s (%d hidden neurons, %s) -> %s", config.name,
            config.network.n_hidden, config.dataset, run_dir)
        outcome = runner.train_run(config, run_dir, resume=resume_path,
                                   data_dir=Path(data_dir) if data_dir is not None else None,
                                   show_progress=progress)
        if outcome.interrupted and shown:  # the command line prints its own hint
            notice(log, "training interrupted after %d samples; continue it with "
                   "train(resume=%r)", outcome.samples_seen, str(outcome.checkpoint))
        report = None
        if figures and not outcome.interrupted:
            with runner.run_log(run_dir / runner.LOG_FILE):
                report = draw_safely(lambda: draw_run(run_dir))
        final = outcome.final
        if final is not None:
            say(shown, "trained %d samples in %.1f s; test on %d images: supervised %s, "
                "assignment %s", outcome.samples_trained, outcome.train_seconds, final.n,
                pct(final.supervised_accuracy), pct(final.assignment_accuracy))
    best_path = run_dir / BEST_FILE
    return TrainResult(
        run_dir=run_dir, checkpoint=outcome.checkpoint,
        supervised_accuracy=final.supervised_accuracy if final else float("nan"),
        assignment_accuracy=final.assignment_accuracy if final else float("nan"),
        samples_seen=outcome.samples_seen, samples_trained=outcome.samples_trained,
        train_seconds=outcome.train_seconds, samples_per_s=outcome.samples_per_s,
        seconds=time.perf_counter() - tic, interrupted=outcome.interrupted,
        best_checkpoint=best_path if best_path.is_file() else None,
        figures=figure_paths(report), config=config, final=final, best=outcome.best,
        outcome=outcome)


def evaluate(checkpoint: PathLike, *, samples: int | None = None,
             preset: PathLike | None = None, overrides: Overrides | None = None,
             out: PathLike | None = None, save: bool = True,
             data_dir: PathLike | None = None, progress: bool = True,
             figures: bool = False) -> EvalResult:
    """Test a checkpoint on the test set, as ``--mode test`` does (the same numbers).

    The hidden neurons keep the labels saved with the checkpoint; one without them
    (an imported original) is labelled on training images first.

    Args:
        checkpoint: A ``.npz`` written by training, a run folder, or a folder of the
            original code's ``gP2E``, ``gE2C`` and ``theta`` text files.
        samples: Test on the first N test images (default: all 10 000).
        preset: Test under this preset or YAML file instead of the checkpoint's own
            config (needed for an original-format folder of an unusual size).
        overrides: Config values by dotted key, on top of the checkpoint's config.
        out: Report folder for ``evaluation.npz`` and ``figures/``; default
            ``RUN/tests/<n>-images/`` for a run's checkpoint, ``<name>-test/`` beside
            any other file.
        save: False writes nothing (``out`` is ignored).
        data_dir: Dataset folder, as for [`train`][symstdp_genn.api.train].
        progress: Show progress lines and notices where a person watches.
        figures: Also draw the test's figures into ``<out>/figures/`` (needs matplotlib).

    Returns:
        The accuracies, the number of images, the timing and the files written.

    Raises:
        UserError: A missing or damaged checkpoint, a config of another network size,
            missing data, or a report folder that is a training run.
    """
    sets = _override_list(overrides)
    if samples is not None:
        sets.append(f"evaluation.samples={samples}")
    tic = time.perf_counter()
    name, path = _preset_or_file(preset)
    prepared = prepare_evaluation(checkpoint, preset=name, config_file=path, overrides=sets,
                                  out=out, save=save, data_dir=data_dir)
    result = prepared.run(progress=progress, figures=figures)
    return dataclasses.replace(result, seconds=time.perf_counter() - tic)


def plot_run(run_dir: PathLike, out: PathLike | None = None, rf_order: str = "class"
             ) -> FigureReport:
    """Draw every figure of a training run folder, as ``--mode plot`` does.

    Args:
        run_dir: A run folder written by [`train`][symstdp_genn.api.train].
        out: Figure folder (default ``<run_dir>/figures``).
        rf_order: ``"class"`` groups the receptive-field tiles by assigned class,
            ``"index"`` keeps neuron order.

    Returns:
        The folder, and the figures written, skipped (a missing input or package) and
        failed.

    Raises:
        UserError: No such run folder, no checkpoint in it, or matplotlib missing.
    """
    if rf_order not in ("class", "index"):
        raise UserError(f"rf_order must be 'class' or 'index', got {rf_order!r}")
    if not matplotlib_available():
        raise UserError("plot_run needs matplotlib: pip install matplotlib")
    return draw_run(Path(run_dir), Path(out) if out is not None else None,
                    rf_by_class=rf_order == "class")
