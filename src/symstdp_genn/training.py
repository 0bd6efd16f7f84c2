"""The training driver: schedules, checkpoints, periodic and final evaluation (spec §4).

Training presents the training images in fixed dataset order, one at a time
(batch 1), with the retry rule; ``joint`` trains both plastic projections from
the first sample, ``layerwise`` adds a second stage that freezes input→hidden
and θ, re-draws hidden→output and trains only that. Everything that decides
the outcome is in the backend's state and a few driver counters, all of which
go into the checkpoint, so an interrupted and resumed run ends bit-identical to
an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backends import create_backend, resolve
from .checkpoint import Checkpoint, check_size, save_checkpoint
from .config import Config
from .data import Dataset
from .evaluation import (
    EVALUATION_FILE,
    SILENT,
    EvaluationResult,
    assign_neurons,
    assignment_predictions,
)
from .evaluator import Evaluator, save_record
from .network import (
    HIDDEN_TO_OUTPUT,
    build_network,
    initial_weights,
    seed_for,
    seed_sequence,
)
from .progress import ProgressBar
from .simulation import Simulation

log = logging.getLogger(__name__)

DRIVER_PREFIX = "driver."
SNAPSHOT_KEYS = ("input_to_hidden.g", "hidden_to_output.g", "hidden.theta", "assignments")


@dataclass
class TrainingOutcome:
    run_dir: Path
    checkpoint: Path
    samples_seen: int
    train_seconds: float
    samples_per_s: float
    presentations: int
    final: EvaluationResult | None
    interrupted: bool = False


class MetricsLog:
    """Append-only JSON lines; one object per event (train progress, evaluation)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, **{k: _finite(v) for k, v in fields.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True, default=_jsonable, allow_nan=False)
                         + "\n")


def _finite(value: Any) -> Any:
    """NaN/inf become null: strict JSON readers (jq, browsers) reject the bare tokens."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value))


@contextmanager
def _interrupt_flag() -> Iterator[dict[str, bool]]:
    """First Ctrl-C sets a flag (the loop saves and stops at the next sample); a second
    one interrupts at once."""
    flag = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, KeyboardInterrupt as usual
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class Trainer:
    """Trains one network according to its config, writing into ``run_dir``."""

    def __init__(self, config: Config, dataset: Dataset, run_dir: Path,
                 resume: Checkpoint | None = None, resume_source: str = ""):
        self.config = config
        self.dataset = dataset
        self.run_dir = Path(run_dir)
        self.spec = build_network(config)
        self.backend_name = resolve(config.backend)
        self.backend = create_backend(self.backend_name, self.spec, batch_size=1,
                                      seed=seed_for(config, "training"))
        self.sim = Simulation(self.backend, config)
        self.evaluator = Evaluator(config, self.spec, self.backend_name)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        n_train = len(dataset.train_images)
        t = config.training
        self.stages = [("joint", t.epochs * n_train)]
        if t.schedule == "layerwise":
            self.stages.append(("output", t.output_epochs * n_train))
        self.total = sum(n for _, n in self.stages)
        if t.samples is not None:
            self.total = min(self.total, t.samples)
        n = config.network.n_hidden
        self.samples_seen = 0
        self.stage = ""
        self.response_sums = np.zeros((n, 10))
        self.label_counts = np.zeros(10)
        self.recent = np.zeros(0, dtype=np.int8)
        self.retries_total = 0
        self.forced_total = 0
        self.assignments = np.full(n, SILENT, dtype=np.int16)
        if resume is not None:
            self._restore(resume, resume_source)

    # -- state ---------------------------------------------------------------------
    def _restore(self, ckpt: Checkpoint, source: str) -> None:
        check_size(ckpt, self.config.network.n_hidden, source)
        self.backend.set_state({k: v for k, v in ckpt.arrays.items()
                                if not k.startswith(DRIVER_PREFIX)})
        driver = ckpt.meta.get("driver", {})
        self.samples_seen = int(driver.get("samples_seen", 0))
        self.stage = str(driver.get("stage", ""))
        self.retries_total = int(driver.get("retries_total", 0))
        self.forced_total = int(driver.get("forced_total", 0))
        self.sim.presentations = int(driver.get("presentations", 0))
        arrays = ckpt.arrays
        if f"{DRIVER_PREFIX}response_sums" in arrays:
            self.response_sums = arrays[f"{DRIVER_PREFIX}response_sums"].astype(np.float64)
            self.label_counts = arrays[f"{DRIVER_PREFIX}label_counts"].astype(np.float64)
            self.recent = arrays[f"{DRIVER_PREFIX}recent"].astype(np.int8)
        if "assignments" in arrays:
            self.assignments = arrays["assignments"].astype(np.int16)
        log.info("resumed from %s at %d samples", source, self.samples_seen)

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = self.backend.get_state()
        arrays["assignments"] = self.assignments
        arrays[f"{DRIVER_PREFIX}response_sums"] = self.response_sums
        arrays[f"{DRIVER_PREFIX}label_counts"] = self.label_counts
        arrays[f"{DRIVER_PREFIX}recent"] = self.recent
        return arrays

    def checkpoint_meta(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "backend": self.backend_name,
            "driver": {"samples_seen": self.samples_seen, "stage": self.stage,
                       "retries_total": self.retries_total, "forced_total": self.forced_total,
                       "presentations": self.sim.presentations},
        }

    def save(self) -> Path:
        """Write the full checkpoint and a small weights-only snapshot for this sample count.

        Snapshots (weights, θ, assignments, config) feed weight-evolution plots and can be
        tested like any checkpoint; only ``checkpoint.npz`` can be resumed.
        """
        arrays = self.checkpoint_arrays()
        meta = self.checkpoint_meta()
        path = save_checkpoint(self.run_dir / "checkpoint.npz", arrays, meta)
        save_checkpoint(self.run_dir / "snapshots" / f"samples-{self.samples_seen:08d}.npz",
                        {k: arrays[k] for k in SNAPSHOT_KEYS}, {**meta, "snapshot": True})
        return path

    # -- schedule ------------------------------------------------------------------------
    def position(self, k: int) -> tuple[str, int]:
        """Stage and training-image index of global sample ``k``."""
        n_train = len(self.dataset.train_images)
        for stage, count in self.stages:
            if k < count:
                return stage, k % n_train
            k -= count
        raise IndexError(k)

    def enter_stage(self, stage: str) -> None:
        if stage == "output" and self.stage != "output":
            rng = np.random.default_rng(seed_sequence(self.config, "stage2-weights"))
            self.backend.set_weights(HIDDEN_TO_OUTPUT,
                                     initial_weights(self.config, rng, HIDDEN_TO_OUTPUT))
            log.info("layerwise stage 2: input->hidden and theta frozen, hidden->output redrawn")
        self.stage = stage
        self.sim.set_mode(stage)

    def _running_update(self, hidden_counts: np.ndarray, label: int) -> None:
        """Running training accuracy: assignment readout of the current sample from the
        responses seen so far (a cheap, honest signal while the teacher drives the output)."""
        if self.label_counts.min() > 0:
            assignments = assign_neurons(self.response_sums, self.label_counts)
            pred = assignment_predictions(hidden_counts[None, :], assignments)[0]
            window = self.config.training.running_window
            self.recent = np.append(self.recent, np.int8(pred == label))[-window:]
        self.response_sums[:, label] += hidden_counts
        self.label_counts[label] += 1

    @property
    def running_accuracy(self) -> float:
        return float(self.recent.mean()) if self.recent.size else float("nan")

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, n_label: int, n_test: int, tag: str, show: bool,
                 save_after_labelling: bool = False) -> EvaluationResult:
        """Label the hidden neurons on training images, then read out test images.

        With ``save_after_labelling`` the checkpoint (now holding the assignments) is
        written before the test pass, so it is safe whatever happens during testing.
        """
        def keep(assignments: np.ndarray) -> None:
            self.assignments = assignments
            if save_after_labelling:
                self.save()

        n_label = min(n_label, len(self.dataset.train_images))
        _, result = self.evaluator.label_and_test(
            self.backend.get_state(), self.dataset, n_label, n_test, show, tag,
            after_labelling=keep)
        self.metrics.write("evaluation", tag=tag, samples_seen=self.samples_seen,
                           labelled=n_label, **result.summary(),
                           supervised_confusion=result.supervised_confusion,
                           assignment_confusion=result.assignment_confusion)
        if tag == "final":
            save_record(self.run_dir / EVALUATION_FILE, result, self.config, tag=tag,
                        samples_seen=self.samples_seen, labelled=n_label,
                        checkpoint="checkpoint.npz")
        log.info("evaluation (%s) after %d samples on %d images: supervised %.2f %%, "
                 "assignment %.2f %%, silent %.2f %%", tag, self.samples_seen, result.n,
                 100 * result.supervised_accuracy, 100 * result.assignment_accuracy,
                 100 * result.silent_fraction)
        return result

    # -- main loop -------------------------------------------------------------------------
    def train(self, show_progress: bool = True, final_evaluation: bool = True,
              stop_event: threading.Event | None = None) -> TrainingOutcome:
        """``stop_event`` (set from any thread) stops like Ctrl-C: checkpoint saved, interrupted."""
        t, ev = self.config.training, self.config.evaluation
        ds = self.dataset
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.config.to_yaml())
        start_seen = self.samples_seen
        if self.stage:
            self.sim.set_mode(self.stage)
        elapsed = 0.0
        interrupted = False
        with _interrupt_flag() as flag, ProgressBar(self.total, "training", show_progress,
                                                     initial=self.samples_seen) as bar:
            last_log = time.perf_counter()
            while self.samples_seen < self.total:
                stage, index = self.position(self.samples_seen)
                if stage != self.stage:
                    self.enter_stage(stage)
                label = int(ds.train_labels[index])
                tic = time.perf_counter()
                result = self.sim.present(ds.train_images[index][None, :], np.array([label]))
                elapsed += time.perf_counter() - tic
                hidden = result.hidden_counts[0]
                self.retries_total += int(result.retries[0])
                self.forced_total += int(result.forced[0])
                if result.forced[0]:
                    log.debug("sample %d accepted at maximum intensity with %d hidden spikes",
                              index, int(hidden.sum()))
                self._running_update(hidden, label)
                self.samples_seen += 1
                bar.advance(1, running=f"{100 * self.running_accuracy:.1f}%",
                            retries=self.retries_total)
                k = self.samples_seen
                if t.checkpoint_every and k % t.checkpoint_every == 0 and k < self.total:
                    self.save()
                if k % 1000 == 0 or k == self.total:
                    now = time.perf_counter()
                    done = k - start_seen
                    self.metrics.write(
                        "train", samples_seen=k, stage=self.stage,
                        running_accuracy=self.running_accuracy,
                        samples_per_s=done / elapsed if elapsed else float("nan"),
                        retries_total=self.retries_total, forced_total=self.forced_total,
                        presentations=self.sim.presentations)
                    if not show_progress or now - last_log > 60:
                        log.info("%d/%d samples, running accuracy %.1f %%, %.1f samples/s",
                                 k, self.total, 100 * self.running_accuracy,
                                 done / elapsed if elapsed else float("nan"))
                        last_log = now
                if t.eval_every and k % t.eval_every == 0 and k < self.total:
                    self.evaluate(ev.periodic_samples, ev.periodic_samples, "periodic",
                                  show_progress)
                if flag["stop"] or (stop_event is not None and stop_event.is_set()):
                    interrupted = True
                    break
        done = self.samples_seen - start_seen
        rate = done / elapsed if elapsed > 0 else float("nan")
        if interrupted:
            path = self.save()
            self.metrics.write("interrupted", samples_seen=self.samples_seen)
            return TrainingOutcome(self.run_dir, path, self.samples_seen, elapsed, rate,
                                   self.sim.presentations, None, interrupted=True)
        final = None
        if final_evaluation:
            n_test = ev.samples if ev.samples is not None else len(ds.test_images)
            final = self.evaluate(ev.assignment_samples, n_test, "final", show_progress,
                                  save_after_labelling=True)
            path = self.run_dir / "checkpoint.npz"
        else:
            path = self.save()
        return TrainingOutcome(self.run_dir, path, self.samples_seen, elapsed, rate,
                               self.sim.presentations, final)
