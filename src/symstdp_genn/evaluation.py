"""Readouts: supervised (the paper's) and assignment (Diehl & Cook 2015), from spike counts.

Both work on counts only, so they are tested on synthetic numbers and used
identically by every backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import write_npz
from .encoding import N_CLASSES
from .errors import UserError

SILENT = -1  # prediction when a readout has no evidence at all
#: test samples whose whole hidden spike-count vector an evaluation record keeps (t-SNE)
KEEP_HIDDEN_COUNTS = 2000
EVALUATION_FORMAT = "symstdp-genn-evaluation"
EVALUATION_FILE = "evaluation.npz"


def argmax_or_silent(scores: np.ndarray) -> np.ndarray:
    """Per row the first highest score, ``SILENT`` where no score is above 0 (no evidence
    for any class): the decision every readout shares."""
    scores = np.asarray(scores)
    pred = scores.argmax(axis=1)
    pred[~(scores.max(axis=1) > 0)] = SILENT
    return pred


def supervised_predictions(output_counts: np.ndarray) -> np.ndarray:
    """Argmax of the output neurons' counts; a silent output layer predicts ``SILENT``.

    Ties go to the lowest class index, as in the original; silence is *not* sent to
    class 0 (the original's quirk), it counts as wrong.
    """
    return argmax_or_silent(output_counts)


def class_responses(hidden_counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Summed hidden responses per class, ``[n_hidden, 10]`` (float64)."""
    hidden_counts = np.asarray(hidden_counts, dtype=np.float64)
    sums = np.zeros((hidden_counts.shape[1], N_CLASSES))
    np.add.at(sums.T, np.asarray(labels, dtype=np.int64), hidden_counts)
    return sums


def assign_neurons(response_sums: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Each hidden neuron's class: the label with its highest *mean* response.

    Neurons that never fired get ``SILENT`` (no class) instead of class 0.
    """
    return assign_from_means(class_means(response_sums, label_counts))


def class_means(response_sums: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Mean response per neuron and class, ``[n_hidden, 10]``; 0 for unseen classes."""
    label_counts = np.asarray(label_counts, dtype=np.float64)
    return np.divide(response_sums, label_counts[None, :], out=np.zeros_like(response_sums),
                     where=label_counts[None, :] > 0)


def assign_from_means(means: np.ndarray) -> np.ndarray:
    """Per row of :func:`class_means`: the first class of highest mean, ``SILENT`` where
    every mean is 0."""
    return argmax_or_silent(means).astype(np.int16)


def assignment_predictions(hidden_counts: np.ndarray, assignments: np.ndarray) -> np.ndarray:
    """Class with the highest mean count of its assigned neurons; classes without
    neurons are skipped (the original produced NaN); no evidence → ``SILENT``."""
    hidden_counts = np.asarray(hidden_counts, dtype=np.float64)
    assignments = np.asarray(assignments)
    members = np.zeros((assignments.size, N_CLASSES))
    assigned = assignments != SILENT
    members[np.flatnonzero(assigned), assignments[assigned]] = 1.0
    sizes = members.sum(axis=0)
    scores = np.full((hidden_counts.shape[0], N_CLASSES), -np.inf)
    present = sizes > 0
    scores[:, present] = (hidden_counts @ members[:, present]) / sizes[present]
    return argmax_or_silent(scores)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """``[10, 11]`` counts: rows true class, columns predicted class, last column silent."""
    cm = np.zeros((N_CLASSES, N_CLASSES + 1), dtype=np.int64)
    pred = np.where(predictions == SILENT, N_CLASSES, predictions)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), pred), 1)
    return cm


@dataclass
class EvaluationRecord:
    """Per-sample results of one test pass, compact enough to keep next to a checkpoint."""

    labels: np.ndarray  # [n] true class
    supervised: np.ndarray  # [n] supervised prediction, SILENT for a silent output layer
    assignment: np.ndarray  # [n] assignment prediction, SILENT without evidence
    hidden_spikes: np.ndarray  # [n] hidden-layer spikes of the accepted presentation
    retries: np.ndarray  # [n] extra presentations (fewer than min_hidden_spikes spikes)
    forced: np.ndarray  # [n] accepted at maximum intensity with too few spikes
    hidden_counts: np.ndarray  # [min(n, KEEP_HIDDEN_COUNTS), n_hidden] spikes per neuron
    assignments: np.ndarray  # [n_hidden] each hidden neuron's class (SILENT: none)
    meta: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("labels", "supervised", "assignment", "hidden_spikes", "retries", "forced",
              "hidden_counts", "assignments")

    @classmethod
    def from_counts(cls, labels: np.ndarray, hidden_counts: np.ndarray,
                    supervised: np.ndarray, assignment: np.ndarray, retries: np.ndarray,
                    forced: np.ndarray, assignments: np.ndarray) -> EvaluationRecord:
        """A record of one test pass's per-sample arrays in the compact dtypes that
        ``evaluation.npz`` keeps (hidden counts of the first :data:`KEEP_HIDDEN_COUNTS`
        samples only, to keep the file small)."""
        hidden_counts = np.asarray(hidden_counts)
        head = hidden_counts[:KEEP_HIDDEN_COUNTS]
        return cls(
            labels=np.asarray(labels).astype(np.uint8),
            supervised=np.asarray(supervised).astype(np.int8),
            assignment=np.asarray(assignment).astype(np.int8),
            hidden_spikes=hidden_counts.sum(axis=1, dtype=np.int64).astype(np.int32),
            retries=np.asarray(retries).astype(np.int16),
            forced=np.asarray(forced).astype(bool),
            hidden_counts=np.clip(head, 0, np.iinfo(np.uint16).max).astype(np.uint16),
            assignments=np.asarray(assignments).astype(np.int16))

    @property
    def n(self) -> int:
        """How many samples the pass scored."""
        return int(self.labels.size)

    @property
    def supervised_confusion(self) -> np.ndarray:
        """The supervised readout's confusion matrix (:func:`confusion_matrix`)."""
        return confusion_matrix(self.labels, self.supervised)

    @property
    def assignment_confusion(self) -> np.ndarray:
        """The assignment readout's confusion matrix (:func:`confusion_matrix`)."""
        return confusion_matrix(self.labels, self.assignment)


def save_evaluation(path: Path, record: EvaluationRecord, **meta: Any) -> Path:
    """Write ``record`` (and ``meta``: JSON values) to ``path`` atomically; returns it."""
    meta = {"format": EVALUATION_FORMAT, "format_version": 1, **record.meta, **meta}
    arrays: dict[str, np.ndarray] = {k: getattr(record, k) for k in record.ARRAYS}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    return write_npz(path, arrays)


def load_evaluation(path: Path) -> EvaluationRecord:
    """Read a file written by :func:`save_evaluation`; anything else is a :class:`UserError`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(bytes(arrays.pop("__meta__")).decode())
        if meta.get("format") != EVALUATION_FORMAT:
            raise ValueError(f"no '{EVALUATION_FORMAT}' metadata")
        return EvaluationRecord(**{k: arrays[k] for k in EvaluationRecord.ARRAYS}, meta=meta)
    except FileNotFoundError:
        raise UserError(f"evaluation file {path} does not exist") from None
    except Exception as exc:  # zipfile, KeyError, ValueError, OSError: not a valid record
        raise UserError(f"evaluation file {path} is corrupt or not an evaluation record "
                        f"({type(exc).__name__}: {exc})") from None


@dataclass
class EvaluationResult:
    """What one evaluation pass measured (``record``: the per-sample results)."""

    n: int
    supervised_accuracy: float
    assignment_accuracy: float
    silent_fraction: float
    supervised_confusion: np.ndarray
    assignment_confusion: np.ndarray
    retried_fraction: float
    forced_fraction: float
    mean_hidden_spikes: float
    seconds: float
    record: EvaluationRecord | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, float]:
        """The pass's numbers as one flat mapping (with samples/s): what ``metrics.jsonl``
        records and what checkpoint selection compares."""
        return {"n": self.n, "supervised_accuracy": self.supervised_accuracy,
                "assignment_accuracy": self.assignment_accuracy,
                "silent_fraction": self.silent_fraction, "retried_fraction": self.retried_fraction,
                "forced_fraction": self.forced_fraction,
                "mean_hidden_spikes": self.mean_hidden_spikes, "seconds": self.seconds,
                "samples_per_s": self.n / self.seconds if self.seconds > 0 else float("nan")}


def score(labels: np.ndarray, hidden_counts: np.ndarray, output_counts: np.ndarray,
          assignments: np.ndarray, retries: np.ndarray, forced: np.ndarray,
          seconds: float) -> EvaluationResult:
    """Both readouts of one pass over labelled samples."""
    labels = np.asarray(labels, dtype=np.int64)
    sup = supervised_predictions(output_counts)
    asg = assignment_predictions(hidden_counts, assignments)
    n = len(labels)
    return EvaluationResult(
        n=n,
        supervised_accuracy=float((sup == labels).mean()) if n else float("nan"),
        assignment_accuracy=float((asg == labels).mean()) if n else float("nan"),
        silent_fraction=float((sup == SILENT).mean()) if n else float("nan"),
        supervised_confusion=confusion_matrix(labels, sup),
        assignment_confusion=confusion_matrix(labels, asg),
        retried_fraction=float((np.asarray(retries) > 0).mean()) if n else 0.0,
        forced_fraction=float(np.asarray(forced).mean()) if n else 0.0,
        mean_hidden_spikes=float(np.asarray(hidden_counts).sum(axis=1).mean()) if n else 0.0,
        seconds=seconds,
        record=EvaluationRecord.from_counts(labels, hidden_counts, sup, asg, retries, forced,
                                            assignments))


# ------------------------------------------------------------------------------------------
# Published accuracies to compare with (spec §6): the one table of them
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A published test accuracy (percent; ``low < high`` for a stated range)."""

    dataset: str
    n_hidden: int
    readout: str  # "supervised" or "assignment"
    low: float
    high: float
    source: str
    status: str

    @property
    def value_text(self) -> str:
        """The accuracy as printed: ``96.73 %``, or a range such as ``95–96 %``."""
        if self.low == self.high:
            return f"{self.low:g} %"
        return f"{self.low:g}–{self.high:g} %"

    @property
    def label(self) -> str:
        """The reference line's label in ``accuracy.png``: source, readout, value, status."""
        return f"{self.source}, {self.readout}: {self.value_text} ({self.status})"


REFERENCE_RESULTS: tuple[Reference, ...] = (
    Reference("mnist", 6400, "supervised", 96.73, 96.73, "Hao et al. 2019",
              "recalled from the paper, unverified"),
    Reference("fashion-mnist", 6400, "supervised", 85.31, 85.31, "Hao et al. 2019",
              "recalled, unverified"),
    Reference("mnist", 100, "assignment", 82.9, 82.9, "Diehl & Cook 2015", "verified"),
    Reference("mnist", 400, "assignment", 87.0, 87.0, "Diehl & Cook 2015", "verified"),
    Reference("mnist", 1600, "assignment", 91.9, 91.9, "Diehl & Cook 2015", "verified"),
    Reference("mnist", 6400, "assignment", 95.0, 95.0, "Diehl & Cook 2015", "verified"),
    Reference("mnist", 100, "supervised", 80.0, 82.0, "BindsNET port (third party)",
              "after 1 epoch"),
)


def reference_results(dataset: str, n_hidden: int) -> list[Reference]:
    """The published accuracies for this dataset and hidden-layer size (maybe none)."""
    return [r for r in REFERENCE_RESULTS if r.dataset == dataset and r.n_hidden == n_hidden]
