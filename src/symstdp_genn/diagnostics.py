"""Why an output layer reads out well or badly: measures of hidden→output weights and of
the output layer's responses.

The supervised readout is the output layer's spike counts, highest wins, ties to the
lowest class. It can fail in ways the accuracy alone does not tell apart:

- *diffuse weights*: each output listens to thousands of hidden neurons a little, so
  every image drives every output (measured by the participation ratio of each weight
  column and the synapses at the cap);
- *saturation and ties*: outputs driven hard all fire at their maximum rate, the counts
  tie and the lowest class wins (tie fraction, top-count margin, predicted-class
  histogram);
- *a spiking readout behind its own drive*: the argmax of the summed synaptic drive,
  ``hidden_counts @ g``, is what the output layer would answer without spike-count
  quantisation and thresholds; when it is right where the spikes are wrong, the weights
  carry the answer and the spiking layer loses it.

A last question is whether *any* output layer could do better on a given hidden layer:
:func:`readout_rules` fits readout rules on one set of frozen hidden spike counts and
scores them on another (the template the symmetric-STDP output layer converges to, a
soft assignment, and a linear least-squares classifier as the ceiling).

These functions take arrays only (a checkpoint's weights, a pass's spike counts), so
they cost no simulation; ``benchmarks/diagnose_output.py`` and
``benchmarks/readout_ceiling.py`` run the passes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .evaluation import (
    SILENT,
    argmax_or_silent,
    assign_from_means,
    assignment_predictions,
    class_means,
    class_responses,
    supervised_predictions,
)


@dataclass
class WeightConcentration:
    """How concentrated each output's incoming weights are (one value per output class)."""

    #: (Σw)² / Σw²: the number of equal weights with the same sum and spread; the whole
    #: hidden layer when every weight is equal, 1 when one synapse holds everything
    effective_inputs: list[float]
    #: synapses within 1 % of the weight cap
    at_cap: list[int]
    #: share of the column's sum held by its largest 1 % of weights
    top_percent_share: list[float]

    def summary(self) -> dict[str, float]:
        return {"effective_inputs_mean": float(np.mean(self.effective_inputs)),
                "at_cap_mean": float(np.mean(self.at_cap)),
                "top_percent_share_mean": float(np.mean(self.top_percent_share))}


def weight_concentration(g: np.ndarray, w_max: float) -> WeightConcentration:
    """Measures of the ``[n_hidden, 10]`` hidden→output weights ``g``."""
    g = np.asarray(g, dtype=np.float64)
    total = g.sum(axis=0)
    squares = (g * g).sum(axis=0)
    effective = np.where(squares > 0, total * total / np.where(squares > 0, squares, 1), 0.0)
    k = max(1, g.shape[0] // 100)
    top = -np.sort(-g, axis=0)[:k].sum(axis=0)
    share = np.where(total > 0, top / np.where(total > 0, total, 1), 0.0)
    return WeightConcentration(effective.tolist(), (g >= 0.99 * w_max).sum(axis=0).tolist(),
                               share.tolist())


@dataclass
class ReadoutDiagnosis:
    """How one pass's output layer answered, beyond its accuracy."""

    n: int
    supervised_accuracy: float
    #: accuracy of argmax(hidden_counts @ g): the answer the weights carry
    drive_accuracy: float
    silent_fraction: float
    #: images whose two highest output counts are equal (the lowest class wins)
    tie_fraction: float
    #: images wrong by the spikes but right by the drive
    lost_by_spiking: float
    mean_output_spikes: float
    #: mean (highest - second highest) output count over non-silent images
    mean_margin: float
    #: mean number of outputs that fired at least once
    mean_active_outputs: float
    #: how often each class was predicted (supervised readout; silent images left out)
    predicted_histogram: list[int]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def diagnose_readout(labels: np.ndarray, hidden_counts: np.ndarray, output_counts: np.ndarray,
                     g: np.ndarray) -> ReadoutDiagnosis:
    """Tie, margin, silence and drive measures of a pass (``[n, n_hidden]`` hidden and
    ``[n, 10]`` output spike counts; ``g`` the hidden→output weights it ran with)."""
    labels = np.asarray(labels)
    out = np.asarray(output_counts)
    n = len(labels)
    predicted = supervised_predictions(out)
    drive = np.asarray(hidden_counts, dtype=np.float64) @ np.asarray(g, dtype=np.float64)
    by_drive = drive.argmax(axis=1)
    ordered = -np.sort(-out, axis=1)
    spiking = ordered[:, 0] > 0
    ties = spiking & (ordered[:, 0] == ordered[:, 1])
    right = predicted == labels
    hist = np.bincount(predicted[predicted != SILENT].astype(np.int64), minlength=10)
    margin = (ordered[:, 0] - ordered[:, 1])[spiking]
    return ReadoutDiagnosis(
        n=n,
        supervised_accuracy=float(right.mean()) if n else float("nan"),
        drive_accuracy=float((by_drive == labels).mean()) if n else float("nan"),
        silent_fraction=float((~spiking).mean()) if n else float("nan"),
        tie_fraction=float(ties.mean()) if n else float("nan"),
        lost_by_spiking=float((~right & (by_drive == labels)).mean()) if n else float("nan"),
        mean_output_spikes=float(out.sum(axis=1).mean()) if n else float("nan"),
        mean_margin=float(margin.mean()) if margin.size else float("nan"),
        mean_active_outputs=float((out > 0).sum(axis=1).mean()) if n else float("nan"),
        predicted_histogram=hist.tolist(),
    )


# ------------------------------------------------------------------------------------------
# readout rules on frozen spike counts: what any output layer could read from a hidden layer
# ------------------------------------------------------------------------------------------

#: ridge penalties :func:`ridge_readout` chooses among, on a held-out tenth of its fitting data
RIDGE_ALPHAS = (1e1, 1e2, 1e3, 1e4, 1e5)


def capped_templates(means: np.ndarray, budget: float, cap: float, rounds: int = 100
                     ) -> np.ndarray:
    """``[10, n_hidden]``: each class's mean hidden counts (``means``, ``[n_hidden, 10]``)
    scaled to sum ``budget`` with no entry above ``cap``, the excess spread over the rest
    in proportion. Under the teacher only the target output fires, and symmetric STDP only
    potentiates, so each output's weights grow with its class's hidden counts; the
    rescaling to ``norm_hidden_to_output`` and the cap at ``w_max_hidden_to_output`` then
    give these templates, what the output layer converges to (less the forgetting of
    early samples)."""
    templates = np.zeros((means.shape[1], means.shape[0]))
    for c in range(means.shape[1]):
        w = np.asarray(means[:, c], dtype=np.float64).copy()
        if w.sum() <= 0:
            continue
        w *= budget / w.sum()
        capped = np.zeros(w.size, bool)
        for _ in range(rounds):
            over = (w > cap) & ~capped
            if not over.any():
                break
            capped |= over
            w[capped] = cap
            rest = budget - cap * capped.sum()
            free = ~capped & (w > 0)
            if rest <= 0 or not free.any():
                break
            w[free] *= rest / w[free].sum()
        templates[c] = w
    return templates


def class_posteriors(means: np.ndarray) -> np.ndarray:
    """``[n_hidden, 10]``: each neuron's mean responses normalised over the classes, the
    soft version of the assignment readout's one class per neuron."""
    totals = means.sum(axis=1, keepdims=True)
    return np.divide(means, totals, out=np.zeros_like(means, dtype=np.float64),
                     where=totals > 0)


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((x.shape[0], 1))])


def _normal_equations(x: np.ndarray, labels: np.ndarray, n_classes: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(XᵀX, XᵀY)`` of one-vs-rest least squares on ±1 targets, with a bias column."""
    xb = _with_bias(x)
    y = -np.ones((labels.size, n_classes))
    y[np.arange(labels.size), labels] = 1.0
    return xb.T @ xb, xb.T @ y


def _solve(gram: np.ndarray, rhs: np.ndarray, alpha: float) -> np.ndarray:
    penalised = gram.copy()
    penalised[np.diag_indices_from(penalised)] += alpha
    return np.linalg.solve(penalised, rhs)


def ridge_predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (_with_bias(x) @ weights).argmax(axis=1)


def ridge_readout(train_counts: np.ndarray, train_labels: np.ndarray,
                  alphas: tuple[float, ...] = RIDGE_ALPHAS, n_classes: int = 10
                  ) -> tuple[np.ndarray, float, float]:
    """A linear classifier on the counts: ``(weights, alpha, scale)``, with ``alpha`` chosen
    on the last tenth of the fitting images (never on the images it will be scored on) and
    the counts divided by ``scale`` (their mean) first. A reference ceiling for what a
    linear readout of the hidden layer can reach, not a biologically plausible rule.
    The normal equations are formed once per part (50 000 × 6 400 counts take a minute
    each) and solved for every penalty."""
    scale = max(float(np.mean(train_counts)), 1e-12)
    x = np.asarray(train_counts, dtype=np.float64) / scale
    labels = np.asarray(train_labels, dtype=np.int64)
    cut = int(0.9 * labels.size)
    gram, rhs = _normal_equations(x[:cut], labels[:cut], n_classes)
    scores = [float((ridge_predict(_solve(gram, rhs, a), x[cut:]) == labels[cut:]).mean())
              for a in alphas]
    alpha = alphas[int(np.argmax(scores))]
    gram_rest, rhs_rest = _normal_equations(x[cut:], labels[cut:], n_classes)
    return _solve(gram + gram_rest, rhs + rhs_rest, alpha), alpha, scale


def readout_rules(train_counts: np.ndarray, train_labels: np.ndarray, counts: np.ndarray,
                  budget: float, cap: float) -> dict[str, np.ndarray]:
    """Predictions for ``counts`` of readout rules fitted on ``train_counts``:
    ``assignment`` (the paper's unsupervised readout), ``template`` (what the
    symmetric-STDP output layer converges to, :func:`capped_templates`),
    ``template-nocap``, ``soft-assignment`` (h · :func:`class_posteriors`) and
    ``least-squares`` (:func:`ridge_readout`)."""
    labels = np.asarray(train_labels, dtype=np.int64)
    sums = class_responses(train_counts, labels)
    label_counts = np.bincount(labels, minlength=sums.shape[1])
    means = class_means(sums, label_counts)
    h = np.asarray(counts, dtype=np.float64)
    weights, _, scale = ridge_readout(train_counts, labels)
    return {
        "assignment": assignment_predictions(h, assign_from_means(means)),
        "template": argmax_or_silent(h @ capped_templates(means, budget, cap).T),
        "template-nocap": argmax_or_silent(h @ capped_templates(means, budget, np.inf).T),
        "soft-assignment": argmax_or_silent(h @ class_posteriors(means)),
        "least-squares": ridge_predict(weights, h / scale),
    }
