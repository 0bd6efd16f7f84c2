"""The running training accuracy updates its assignments incrementally; every sample's
prediction must equal the plain readout of the sums seen before it."""

from __future__ import annotations

import numpy as np

from symstdp_genn.evaluation import SILENT, assign_neurons, assignment_predictions
from symstdp_genn.training.running import RunningAccuracy


def plain_predictions(counts: np.ndarray, labels: np.ndarray) -> list[int | None]:
    sums, seen, out = np.zeros((counts.shape[1], 10)), np.zeros(10), []
    for h, label in zip(counts, labels, strict=True):
        if seen.min() > 0:
            out.append(int(assignment_predictions(h[None, :], assign_neurons(sums, seen))[0]))
        else:
            out.append(None)
        sums[:, label] += h
        seen[label] += 1
    return out


def test_incremental_assignments_give_the_plain_readout_sample_by_sample() -> None:
    rng = np.random.default_rng(4)
    n_samples, n_hidden = 600, 30
    labels = rng.integers(0, 10, n_samples)
    # sparse small counts: many ties, silent neurons, a few neurons that never fire
    counts = rng.poisson(0.4, (n_samples, n_hidden)) * (rng.random((n_samples, n_hidden)) < 0.5)
    counts[:, :3] = 0
    counts[rng.random(n_samples) < 0.1] = 0  # silent samples
    counts = counts.astype(np.int32)
    expected = plain_predictions(counts, labels)
    running = RunningAccuracy.fresh(n_hidden, window=10_000)
    hits = []
    for h, label, want in zip(counts, labels, expected, strict=True):
        before = running.recent.size
        running.update(h, int(label))
        if want is None:
            assert running.recent.size == before
        else:
            hits.append(int(want == label))
            assert running.recent[-1] == hits[-1]
    assert len(hits) > 500
    assert running.accuracy == np.mean(hits)
    assert any(p == SILENT for p in expected if p is not None)
    np.testing.assert_array_equal(running._assignments,
                                  assign_neurons(running.response_sums, running.label_counts))


def test_a_restored_running_accuracy_continues_identically() -> None:
    rng = np.random.default_rng(8)
    counts = rng.poisson(0.5, (300, 20)).astype(np.int32)
    labels = rng.integers(0, 10, 300)
    whole = RunningAccuracy.fresh(20, window=50)
    for h, label in zip(counts, labels, strict=True):
        whole.update(h, int(label))
    part = RunningAccuracy.fresh(20, window=50)
    for h, label in zip(counts[:150], labels[:150], strict=True):
        part.update(h, int(label))
    resumed = RunningAccuracy(part.response_sums.copy(), part.label_counts.copy(),
                              part.recent.copy(), window=50)
    for h, label in zip(counts[150:], labels[150:], strict=True):
        resumed.update(h, int(label))
    assert resumed.recent.tobytes() == whole.recent.tobytes()
    assert resumed.recent.size == 50
