"""The running training accuracy: each sample read out by the assignment rule from the
responses seen before it.

Recomputing the assignments of every hidden neuron for every sample cost ~1.6 ms per
sample at 6 400 hidden neurons (about a tenth of a training step on two threads).
Between two samples only one class's column of mean responses changes, so only the
neurons whose best class could change are assigned again; the result is exactly
:func:`~symstdp_genn.evaluation.assign_neurons` of the sums so far (a test checks it
sample by sample).
"""

from __future__ import annotations

import numpy as np

from ..encoding import N_CLASSES
from ..evaluation import SILENT, assign_from_means, class_means


class RunningAccuracy:
    """Class response sums, label counts and the last ``window`` hits (0/1), which a
    checkpoint keeps, plus the means and assignments derived from them (rebuilt)."""

    def __init__(self, response_sums: np.ndarray, label_counts: np.ndarray,
                 recent: np.ndarray, window: int):
        self.response_sums = np.asarray(response_sums, dtype=np.float64)
        self.label_counts = np.asarray(label_counts, dtype=np.float64)
        self.recent = np.asarray(recent, dtype=np.int8)
        self.window = window
        self._means: np.ndarray | None = None
        self._assignments: np.ndarray | None = None

    @classmethod
    def fresh(cls, n_hidden: int, window: int) -> RunningAccuracy:
        return cls(np.zeros((n_hidden, N_CLASSES)), np.zeros(N_CLASSES),
                   np.zeros(0, dtype=np.int8), window)

    @property
    def accuracy(self) -> float:
        return float(self.recent.mean()) if self.recent.size else float("nan")

    def update(self, hidden_counts: np.ndarray, label: int) -> None:
        """Score ``hidden_counts`` against the assignments so far (once every class has
        been seen), then add it to class ``label``'s responses."""
        if self.label_counts.min() > 0:
            pred = self._predict(np.asarray(hidden_counts))
            self.recent = np.append(self.recent, np.int8(pred == label))[-self.window:]
        self.response_sums[:, label] += hidden_counts
        self.label_counts[label] += 1
        if self._means is not None:
            self._update_column(label)

    def _predict(self, hidden_counts: np.ndarray) -> int:
        """As :func:`~symstdp_genn.evaluation.assignment_predictions` for one sample: the
        class with the highest mean count over its neurons. Counts are integers, so the
        sums are exact in any order."""
        if self._means is None:
            self._means = class_means(self.response_sums, self.label_counts)
            self._assignments = assign_from_means(self._means)
        assignments = self._assignments
        assigned = assignments != SILENT
        sizes = np.bincount(assignments[assigned], minlength=N_CLASSES).astype(np.float64)
        fired = np.flatnonzero((hidden_counts != 0) & assigned)
        totals = np.bincount(assignments[fired], weights=hidden_counts[fired].astype(np.float64),
                             minlength=N_CLASSES)
        scores = np.full(N_CLASSES, -np.inf)
        present = sizes > 0
        scores[present] = totals[present] / sizes[present]
        pred = int(scores.argmax())
        return pred if scores.max() > 0 else SILENT

    def _update_column(self, label: int) -> None:
        """Class ``label``'s means changed: assign again the neurons assigned to it and
        those whose new mean for it reaches their best (ties go to the lower class)."""
        means, assignments = self._means, self._assignments
        column = self.response_sums[:, label] / self.label_counts[label]
        means[:, label] = column
        assigned = assignments != SILENT
        best = np.where(assigned, means[np.arange(len(means)), np.where(assigned, assignments,
                                                                         0)], 0.0)
        rows = np.flatnonzero((assignments == label) | ((column >= best) & (column > 0)))
        if rows.size:
            assignments[rows] = assign_from_means(means[rows])
