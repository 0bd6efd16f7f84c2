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

These functions take arrays only (a checkpoint's weights, a pass's spike counts), so
they cost no simulation; ``benchmarks/diagnose_output.py`` runs the passes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .evaluation import SILENT, supervised_predictions


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
