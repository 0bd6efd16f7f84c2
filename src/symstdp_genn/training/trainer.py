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

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import backend_for, create_backend
from ..checkpoint import (
    Checkpoint,
    CheckpointWriteError,
    atomic_path,
    check_size,
    load_checkpoint,
    save_checkpoint,
)
from ..config import Config
from ..data import Dataset
from ..errors import UserError
from ..evaluation import (
    EVALUATION_FILE,
    SILENT,
    EvaluationResult,
)
from ..evaluator import Evaluator, StopEvaluation, labelling_samples, save_record
from ..network import (
    HIDDEN_TO_OUTPUT,
    build_network,
    initial_weights,
    seed_for,
    seed_sequence,
)
from ..progress import ProgressBar
from ..selection import BEST_FILE, BEST_JOINT_FILE, TEST, Selection, check_protocol
from ..simulation import Simulation
from .metrics import MetricsLog
from .running import RunningAccuracy
from .stop import StopRequest

log = logging.getLogger(__name__)

DRIVER_PREFIX = "driver."


def network_state(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A checkpoint's arrays less the driver's bookkeeping (``driver.*``): the network
    state a backend's ``set_state`` and an evaluation pass take."""
    return {k: v for k, v in arrays.items() if not k.startswith(DRIVER_PREFIX)}

#: what stage 2 of a layerwise run takes from the joint stage's selected checkpoint
STAGE2_FROZEN = ("input_to_hidden.g", "hidden.theta")
#: network keys that only the output layer reads: all that may differ from the run a
#: stage 2 takes its hidden layer from (``training.hidden_layer_from``)
OUTPUT_LAYER_KEYS = ("eta_hidden_to_output", "w_max_hidden_to_output", "norm_hidden_to_output",
                     "supervision", "teacher_rate_hz", "supervision_current", "subnormals")
#: the labelling of stage 2's frozen hidden layer that its periodic evaluations share
STAGE2_LABELS = f"{DRIVER_PREFIX}stage2_assignments"
SNAPSHOT_KEYS = ("input_to_hidden.g", "hidden_to_output.g", "hidden.theta", "assignments")


@dataclass
class TrainingOutcome:
    """What a training session did. ``samples_seen`` counts from the run's start (a resumed
    run included); ``samples_trained``, ``train_seconds`` and ``samples_per_s`` are this
    session's alone, so the rate is never a total count over a partial time."""

    run_dir: Path
    checkpoint: Path
    samples_seen: int
    train_seconds: float
    samples_per_s: float
    presentations: int
    final: EvaluationResult | None
    interrupted: bool = False
    samples_trained: int = 0
    #: "" when not interrupted, else "training" or "final evaluation"
    interrupted_during: str = ""
    #: the signal that stopped the run ("SIGINT", "SIGTERM"), or "stop request"
    stopped_by: str = ""
    #: the selected checkpoint (``best.npz``) tested like ``final``; None without selection
    best: EvaluationResult | None = None
    #: the run's selection state (:meth:`Selection.to_meta`); None without periodic evaluation
    selection: dict[str, Any] | None = None


class Trainer:
    """Trains one network according to its config, writing into ``run_dir``."""

    def __init__(self, config: Config, dataset: Dataset, run_dir: Path,
                 resume: Checkpoint | None = None, resume_source: str = "",
                 final_dataset: Dataset | None = None):
        """``dataset``: training images (also labelled on) and, as its test images, what
        periodic evaluations score; ``final_dataset``: the dataset whose test images the
        final pass scores once (default ``dataset``; see :func:`selection.protocol_datasets`).
        """
        check_protocol(config)
        self.config = config
        self.dataset = dataset
        self.final_dataset = final_dataset if final_dataset is not None else dataset
        self.selection = Selection.for_config(config)
        #: layerwise runs that select: the joint stage's own selection (best-joint.npz)
        self.joint_selection = Selection.for_joint_stage(config)
        self.run_dir = Path(run_dir)
        self.spec = build_network(config)
        self.backend_name = backend_for(config)
        self.backend = create_backend(self.backend_name, self.spec, batch_size=1,
                                      seed=seed_for(config, "training"), threads=config.threads)
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
        self.running = RunningAccuracy.fresh(n, t.running_window)
        self.retries_total = 0
        self.forced_total = 0
        self.assignments = np.full(n, SILENT, dtype=np.int16)
        #: a periodic evaluation that a stop cut short: the checkpoint says so and a resumed
        #: run runs it first, so that it ends as if never stopped
        self.pending_evaluation = False
        #: ((periodic, images), assignments) of stage 2's frozen hidden layer
        self._stage2_labels: tuple[tuple[bool, int], np.ndarray] | None = None
        if resume is not None:
            self._restore(resume, resume_source)

    # -- state ---------------------------------------------------------------------
    def _restore(self, ckpt: Checkpoint, source: str) -> None:
        check_size(ckpt, self.config.network.n_hidden, source)
        self.backend.set_state(network_state(ckpt.arrays))
        driver = ckpt.meta.get("driver", {})
        self.samples_seen = int(driver.get("samples_seen", 0))
        self.stage = str(driver.get("stage", ""))
        self.retries_total = int(driver.get("retries_total", 0))
        self.forced_total = int(driver.get("forced_total", 0))
        self.sim.presentations = int(driver.get("presentations", 0))
        # (a resume that turned periodic evaluation off has none left to run)
        self.pending_evaluation = bool(driver.get("pending_evaluation")) and self.selecting
        arrays = ckpt.arrays
        if f"{DRIVER_PREFIX}response_sums" in arrays:
            self.running = RunningAccuracy(
                arrays[f"{DRIVER_PREFIX}response_sums"], arrays[f"{DRIVER_PREFIX}label_counts"],
                arrays[f"{DRIVER_PREFIX}recent"], self.config.training.running_window)
        if "assignments" in arrays:
            self.assignments = arrays["assignments"].astype(np.int16)
        labelled = driver.get("stage2_labels")
        if STAGE2_LABELS in arrays and isinstance(labelled, list) and len(labelled) == 2:
            self._stage2_labels = ((bool(labelled[0]), int(labelled[1])),
                                   arrays[STAGE2_LABELS].astype(np.int16))
        self.selection = Selection.from_meta(ckpt.meta.get("selection", {}), self.config)
        if self.joint_selection is not None:
            self.joint_selection = Selection.from_meta(
                ckpt.meta.get("joint_selection", {}), self.config, joint=True)
        log.info("resumed from %s at %d samples", source, self.samples_seen)

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = self.backend.get_state()
        arrays["assignments"] = self.assignments
        arrays[f"{DRIVER_PREFIX}response_sums"] = self.running.response_sums
        arrays[f"{DRIVER_PREFIX}label_counts"] = self.running.label_counts
        arrays[f"{DRIVER_PREFIX}recent"] = self.running.recent
        if self._stage2_labels is not None:
            arrays[STAGE2_LABELS] = self._stage2_labels[1]
        return arrays

    def checkpoint_meta(self) -> dict[str, Any]:
        return {
            "config": self.config.result_dict(),
            "backend": self.backend_name,
            "driver": {"samples_seen": self.samples_seen, "stage": self.stage,
                       "retries_total": self.retries_total, "forced_total": self.forced_total,
                       "presentations": self.sim.presentations,
                       **({"stage2_labels": list(self._stage2_labels[0])}
                          if self._stage2_labels is not None else {}),
                       **({"pending_evaluation": True} if self.pending_evaluation else {})},
            "selection": self.selection.to_meta(),
            **({"joint_selection": self.joint_selection.to_meta()}
               if self.joint_selection is not None else {}),
        }

    def save(self) -> Path:
        """Write the full checkpoint and a small weights-only snapshot for this sample count.

        Snapshots (weights, θ, assignments, config) feed weight-evolution plots and can be
        tested like any checkpoint; only ``checkpoint.npz`` can be resumed.
        """
        arrays = self.checkpoint_arrays()
        meta = self.checkpoint_meta()
        path = save_checkpoint(self.run_dir / "checkpoint.npz", arrays, meta)
        snapshot = self.run_dir / "snapshots" / f"samples-{self.samples_seen:08d}.npz"
        try:
            save_checkpoint(snapshot, {k: arrays[k] for k in SNAPSHOT_KEYS},
                            {**meta, "snapshot": True})
        except CheckpointWriteError as exc:
            raise UserError(f"cannot write snapshot {snapshot}: {exc.reason}; {path} itself "
                            "is saved: free some space and resume from it") from None
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

    @property
    def joint_total(self) -> int:
        """Samples of the joint stage (the first stage of every schedule)."""
        return self.stages[0][1]

    def enter_stage(self, stage: str) -> None:
        if stage == "output" and self.stage != "output":
            self._restore_selected_joint()
            rng = np.random.default_rng(seed_sequence(self.config, "stage2-weights"))
            self.backend.set_weights(HIDDEN_TO_OUTPUT,
                                     initial_weights(self.config, rng, HIDDEN_TO_OUTPUT))
            log.info("layerwise stage 2: input->hidden and theta frozen, hidden->output redrawn")
        self.stage = stage
        self._stage2_labels = None
        self.sim.set_mode(stage)

    def _load_hidden_layer(self, path: Path) -> None:
        """Stage 2 on the hidden layer of another run (``training.hidden_layer_from``): its
        input→hidden weights and θ, refused unless that run's hidden layer had the same
        parameters (a θ learnt under another threshold would mean another network)."""
        source = load_checkpoint(path)
        check_size(source, self.config.network.n_hidden, str(path))
        missing = [k for k in STAGE2_FROZEN if k not in source.arrays]
        if missing:
            raise UserError(f"training.hidden_layer_from: {path} holds no {missing[0]}; give "
                            "a checkpoint.npz, best*.npz or snapshot of a trained network")
        config = source.meta.get("config")
        network = config.get("network") if isinstance(config, dict) else None
        if isinstance(network, dict):
            mine = self.config.to_dict()["network"]
            for key in sorted(set(mine) - set(OUTPUT_LAYER_KEYS)):
                if key in network and network[key] != mine[key]:
                    raise UserError(
                        f"training.hidden_layer_from: {path} was trained with network.{key}="
                        f"{network[key]!r}, this run asks for {mine[key]!r}; only the output "
                        f"layer's keys may differ ({', '.join(OUTPUT_LAYER_KEYS)})")
        self.backend.set_state({k: source.arrays[k] for k in STAGE2_FROZEN})
        log.info("stage 2 on the hidden layer of %s", path)
        self.metrics.write("stage", stage="output", samples_seen=self.samples_seen,
                           start="checkpoint", start_samples=self.samples_seen,
                           checkpoint=str(path))

    def _restore_selected_joint(self) -> None:
        """Stage 2 starts from the joint stage's selected checkpoint (``best-joint.npz``):
        its input→hidden weights and θ, what stage 2 freezes. The neurons' transient state,
        the random streams and the driver's counters go on from where training is, so the
        run stays one deterministic sequence whether or not it was resumed."""
        if self.config.training.hidden_layer_from is not None:
            self._load_hidden_layer(Path(self.config.training.hidden_layer_from))
            return
        sel = self.joint_selection
        if (sel is None or self.config.training.output_stage_start != "selected"
                or sel.best_samples is None):
            self.metrics.write("stage", stage="output", samples_seen=self.samples_seen,
                               start="last", start_samples=self.samples_seen)
            return
        path = self.run_dir / BEST_JOINT_FILE
        if sel.best_samples != self.samples_seen:
            if not path.is_file():
                raise UserError(f"{path} is missing: stage 2 starts from the joint stage's "
                                "selected checkpoint; restore that file, or resume with "
                                "--set training.output_stage_start=last")
            selected = load_checkpoint(path)
            self.backend.set_state({k: selected.arrays[k] for k in STAGE2_FROZEN})
        log.info("stage 2 starts from the joint stage's checkpoint after %d samples (best "
                 "%s score %.2f %% on the %s split)", sel.best_samples, sel.readout,
                 100 * sel.best_score, sel.split)
        self.metrics.write("stage", stage="output", samples_seen=self.samples_seen,
                           start="selected", start_samples=sel.best_samples,
                           readout=sel.readout, score=sel.best_score, split=sel.split)

    def _running_update(self, hidden_counts: np.ndarray, label: int) -> None:
        """Running training accuracy: assignment readout of the current sample from the
        responses seen so far (a cheap, honest signal while the teacher drives the output)."""
        self.running.update(hidden_counts, label)

    @property
    def running_accuracy(self) -> float:
        return self.running.accuracy

    # -- evaluation ---------------------------------------------------------------------
    @property
    def selecting(self) -> bool:
        """Whether periodic evaluations run and select ``best.npz``."""
        return self.config.training.eval_every > 0

    def evaluate(self, n_label: int, n_test: int, tag: str, show: bool,
                 save_after_labelling: bool = False) -> EvaluationResult:
        """Label the hidden neurons on training images, then read out images of a split:
        periodic evaluations score ``dataset``'s test images (the validation split under
        the three-way protocol), every other pass ``final_dataset``'s (the test set).

        With ``save_after_labelling`` the checkpoint (now holding the assignments) is
        written before the test pass, so it is safe whatever happens during testing.
        """
        periodic = tag == "periodic"
        dataset = self.dataset if periodic else self.final_dataset
        split = self.selection.split if periodic else TEST
        n_label = labelling_samples(self.config, len(dataset.train_images), n_label)
        key = (periodic, n_label)

        def keep(assignments: np.ndarray) -> None:
            self.assignments = assignments
            if self.stage == "output":
                self._stage2_labels = (key, assignments)
            if save_after_labelling:
                self.save()

        # stage 2 freezes the hidden layer, so one labelling serves all of its periodic
        # evaluations (a third of each pass's presentations); the final pass labels anew
        cached = None
        if periodic and self._stage2_labels is not None and self._stage2_labels[0] == key:
            cached = self._stage2_labels[1]
            self.assignments = cached
        _, result = self.evaluator.label_and_test(
            self.backend.get_state(), dataset, n_label, n_test, show, tag,
            assignments=cached, after_labelling=keep)
        self._log_evaluation(tag, split, n_label, result, checkpoint="checkpoint.npz")
        return result

    def _log_evaluation(self, tag: str, split: str, n_label: int, result: EvaluationResult,
                        checkpoint: str, **fields: Any) -> None:
        """One ``evaluation`` event in metrics.jsonl (with the split it scored and, in a
        selecting run, how the run selects), the record of a test pass, and a log line."""
        if self.selecting:
            fields["selection"] = self.selection.label
            fields["select_on_readout"] = self.selection.readout
        self.metrics.write("evaluation", tag=tag, split=split, samples_seen=self.samples_seen,
                           labelled=n_label, checkpoint=checkpoint, **fields, **result.summary(),
                           supervised_confusion=result.supervised_confusion,
                           assignment_confusion=result.assignment_confusion)
        if tag in ("final", "best"):
            name = EVALUATION_FILE if tag == "final" else f"evaluation-{tag}.npz"
            save_record(self.run_dir / name, result, self.config, tag=tag,
                        samples_seen=fields.get("selected_at", self.samples_seen),
                        labelled=n_label, checkpoint=checkpoint)
        log.info("evaluation (%s, %s split) after %d samples on %d images, labelled on %d "
                 "training images: supervised %.2f %%, assignment %.2f %%, silent %.2f %%",
                 tag, split, self.samples_seen, result.n, n_label,
                 100 * result.supervised_accuracy, 100 * result.assignment_accuracy,
                 100 * result.silent_fraction)

    def periodic_evaluation(self, show: bool) -> EvaluationResult:
        """Score the selection split; keep ``best.npz`` (atomically, beside the checkpoint)
        when the selection readout improves."""
        ev = self.config.evaluation
        n_label = (ev.periodic_label_samples if ev.periodic_label_samples is not None
                   else ev.assignment_samples)
        n_test = ev.periodic_samples or len(self.dataset.test_images)
        result = self.evaluate(n_label, n_test, "periodic", show)
        if self.joint_selection is not None and self.stage == "joint":
            # the joint stage of a layerwise run chooses where stage 2 starts; best.npz
            # comes from stage 2's evaluations only
            if self.joint_selection.offer(self.samples_seen, result.summary()):
                save_checkpoint(self.run_dir / BEST_JOINT_FILE, self.checkpoint_arrays(),
                                {**self.checkpoint_meta(),
                                 "selected": self._selected_meta(self.joint_selection)})
                log.info("new best joint-stage %s score %.2f %% after %d samples: %s written",
                         self.joint_selection.readout, 100 * self.joint_selection.best_score,
                         self.samples_seen, BEST_JOINT_FILE)
            return result
        if self.selection.offer(self.samples_seen, result.summary()):
            arrays = self.checkpoint_arrays()
            save_checkpoint(self.run_dir / BEST_FILE, arrays,
                            {**self.checkpoint_meta(), "selected": self._selected_meta()})
            log.info("new best %s score %.2f %% after %d samples (%s): %s written",
                     self.selection.readout, 100 * self.selection.best_score,
                     self.samples_seen, self.selection.label, BEST_FILE)
        return result

    def _periodic_or_stop(self, show: bool, request: StopRequest) -> bool:
        """The periodic evaluation due now, which a stop request ends after the batch in
        progress (seconds, where the whole pass takes minutes at 6 400 neurons: longer than
        a batch system's grace period). False when stopped: nothing of it was kept (the
        selection is offered a score only at its end), and it is left pending for the
        checkpoint."""
        if not request.stop:
            self.pending_evaluation = False  # (best.npz, written in it, must not say pending)
            self.evaluator.should_stop = lambda: request.stop
            try:
                self.periodic_evaluation(show)
                return True
            except StopEvaluation:
                pass
            finally:
                self.evaluator.should_stop = None
        self.pending_evaluation = True
        log.info("periodic evaluation after %d samples stopped; a resumed run runs it first",
                 self.samples_seen)
        return False

    def _selected_meta(self, selection: Selection | None = None) -> dict[str, Any]:
        sel = selection if selection is not None else self.selection
        return {"selected_at": sel.best_samples, "readout": sel.readout, "split": sel.split,
                "score": sel.best_score, "label": sel.label}

    def test_best(self, n_label: int, n_test: int, show: bool,
                  last: EvaluationResult | None) -> EvaluationResult | None:
        """Label and test the selected checkpoint on the test set, once, like the last one.

        When the last checkpoint is the selected one its result is reused (an evaluation
        depends only on the state and the config's seed). ``best.npz`` is rewritten with
        the assignments of this labelling so that ``--mode test`` reproduces the number.
        """
        path = self.run_dir / BEST_FILE
        if self.selection.best_samples is None or not path.is_file():
            return None
        best = load_checkpoint(path)
        n_label = min(n_label, len(self.final_dataset.train_images))
        if self.selection.best_samples == self.samples_seen and last is not None:
            assignments, result = self.assignments, last
        else:
            assignments, result = self.evaluator.label_and_test(
                network_state(best.arrays), self.final_dataset, n_label, n_test, show, "best")
        save_checkpoint(path, {**best.arrays, "assignments": assignments}, best.meta)
        self._log_evaluation("best", TEST, n_label, result, checkpoint=BEST_FILE,
                             selected_at=self.selection.best_samples,
                             selection_score=self.selection.best_score)
        return result

    def write_config(self) -> Path:
        """``config.yaml``: the config as asked (it loads back to the same Config), and, as
        a comment, the backend ``auto`` resolved to (also in the checkpoint's metadata and
        in ``metrics.jsonl``'s ``start`` event)."""
        path = self.run_dir / "config.yaml"
        text = (self.config.to_yaml()
                + f"# backend used: {self.backend_name} (asked: {self.config.backend})\n")
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        return path

    # -- main loop -------------------------------------------------------------------------
    def train(self, show_progress: bool = True, final_evaluation: bool = True,
              stop_event: threading.Event | None = None) -> TrainingOutcome:
        """Train to ``self.total`` samples, save the checkpoint, then evaluate.

        Ctrl-C, SIGTERM or ``stop_event`` while training: the checkpoint is saved and the
        outcome says ``interrupted``. The final checkpoint is written before the final
        evaluation starts, so a stop during that evaluation loses no training."""
        request = StopRequest(stop_event)
        with request.installed():
            return self._train(show_progress, final_evaluation, request)

    def _train(self, show_progress: bool, final_evaluation: bool,
               request: StopRequest) -> TrainingOutcome:
        t, ev = self.config.training, self.config.evaluation
        ds = self.dataset
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        start_seen = self.samples_seen
        self.metrics.write("start", samples_seen=start_seen, total=self.total,
                           backend=self.backend_name, backend_requested=self.config.backend)
        if self.stage:
            self.sim.set_mode(self.stage)
        elapsed = 0.0
        # a periodic evaluation a stop cut short comes first, as it would have
        interrupted = (self.pending_evaluation
                       and not self._periodic_or_stop(show_progress, request))
        with ProgressBar(self.total, "training", show_progress,
                         initial=self.samples_seen) as bar:
            last_log = time.perf_counter()
            while self.samples_seen < self.total:
                if request.stop:  # checked before each sample: a stop asked early trains none
                    interrupted = True
                    break
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
                # before the checkpoint of the same sample count, so that the checkpoint
                # holds the selection state that matches best.npz (resume stays exact)
                if t.eval_every and (k % t.eval_every == 0 or k == self.total
                                     or (self.joint_selection is not None
                                         and k == self.joint_total)):
                    if not self._periodic_or_stop(show_progress, request):
                        interrupted = True
                        break
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
        done = self.samples_seen - start_seen
        rate = done / elapsed if elapsed > 0 else float("nan")
        path = self.save()  # before any final evaluation: a stop there loses no training

        def outcome(final: EvaluationResult | None, during: str = "",
                    best: EvaluationResult | None = None) -> TrainingOutcome:
            return TrainingOutcome(self.run_dir, path, self.samples_seen, elapsed, rate,
                                   self.sim.presentations, final, interrupted=bool(during),
                                   samples_trained=done, interrupted_during=during,
                                   stopped_by=request.source if during else "", best=best,
                                   selection=self.selection.to_meta() if self.selecting
                                   else None)

        if interrupted:
            self.metrics.write("interrupted", samples_seen=self.samples_seen,
                               during="periodic evaluation" if self.pending_evaluation
                               else "training", by=request.source)
            return outcome(None, "training")
        if not final_evaluation:
            return outcome(None)
        n_test = ev.samples if ev.samples is not None else len(self.final_dataset.test_images)
        request.immediate = True
        self.evaluator.should_stop = lambda: request.stop
        try:
            final = self.evaluate(ev.assignment_samples, n_test, "final", show_progress,
                                  save_after_labelling=True)
            best = (self.test_best(ev.assignment_samples, n_test, show_progress, final)
                    if self.selecting else None)
        except KeyboardInterrupt:
            log.info("final evaluation interrupted; the trained network is saved in %s", path)
            self.metrics.write("interrupted", samples_seen=self.samples_seen,
                               during="final evaluation", by=request.source or "SIGINT")
            return outcome(None, "final evaluation")
        finally:
            self.evaluator.should_stop = None
            request.immediate = False
        if self.selecting:
            self.metrics.write("selection", samples_seen=self.samples_seen,
                               selection=self.selection.label, **self._selected_meta())
        return outcome(final, best=best)
