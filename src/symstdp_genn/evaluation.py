"""Readouts: supervised (the paper's) and assignment (Diehl & Cook 2015), from spike counts.

Both work on counts only, so they are tested on synthetic numbers and used
identically by every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encoding import N_CLASSES

SILENT = -1  # prediction when a readout has no evidence at all


def supervised_predictions(output_counts: np.ndarray) -> np.ndarray:
    """Argmax of the output neurons' counts; a silent output layer predicts ``SILENT``.

    Ties go to the lowest class index, as in the original; silence is *not* sent to
    class 0 (the original's quirk), it counts as wrong.
    """
    counts = np.asarray(output_counts)
    pred = counts.argmax(axis=1)
    pred[counts.max(axis=1) <= 0] = SILENT
    return pred


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
    label_counts = np.asarray(label_counts, dtype=np.float64)
    means = np.divide(response_sums, label_counts[None, :], out=np.zeros_like(response_sums),
                      where=label_counts[None, :] > 0)
    assignments = means.argmax(axis=1)
    assignments[means.max(axis=1) <= 0] = SILENT
    return assignments.astype(np.int16)


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
    pred = scores.argmax(axis=1)
    pred[~(scores.max(axis=1) > 0)] = SILENT
    return pred


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """``[10, 11]`` counts: rows true class, columns predicted class, last column silent."""
    cm = np.zeros((N_CLASSES, N_CLASSES + 1), dtype=np.int64)
    pred = np.where(predictions == SILENT, N_CLASSES, predictions)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), pred), 1)
    return cm


@dataclass
class EvaluationResult:
    """What one evaluation pass measured."""

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

    def summary(self) -> dict[str, float]:
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
        seconds=seconds)
