"""The output-layer diagnostics: numbers checked against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from symstdp_genn.diagnostics import (
    capped_templates,
    class_posteriors,
    diagnose_readout,
    readout_rules,
    ridge_predict,
    ridge_readout,
    weight_concentration,
)


def test_weight_concentration_of_equal_and_concentrated_columns() -> None:
    g = np.zeros((200, 10), np.float32)
    g[:, 0] = 0.5                      # every input equal: 200 effective inputs
    g[0, 1] = 8.0                      # one synapse holds everything: 1 effective input
    g[:4, 2] = 8.0                     # four at the cap
    g[:, 3] = np.r_[np.full(2, 6.0), np.full(198, 0.0)]
    c = weight_concentration(g, w_max=8.0)
    assert c.effective_inputs[0] == pytest.approx(200)
    assert c.effective_inputs[1] == pytest.approx(1)
    assert c.effective_inputs[2] == pytest.approx(4)
    assert c.at_cap[:4] == [0, 1, 4, 0]
    # largest 1 % (2 of 200) of the weights: all of column 3, half of column 2
    assert c.top_percent_share[3] == pytest.approx(1.0)
    assert c.top_percent_share[2] == pytest.approx(0.5)
    assert c.top_percent_share[0] == pytest.approx(0.01)
    assert c.effective_inputs[9] == 0  # an empty column


def test_diagnose_readout_counts_ties_silence_and_drive() -> None:
    labels = np.array([0, 1, 2, 3])
    output = np.array([[5, 0, 0, 0, 0, 0, 0, 0, 0, 0],     # right, margin 5
                       [3, 3, 0, 0, 0, 0, 0, 0, 0, 0],     # tie -> class 0: wrong
                       [0] * 10,                            # silent: wrong
                       [0, 0, 0, 4, 2, 0, 0, 0, 0, 0]])    # right, margin 2
    hidden = np.eye(4, 10, dtype=np.int32)                  # image i drives hidden i
    g = np.zeros((10, 10))
    g[0, 0] = g[1, 1] = g[2, 2] = g[3, 3] = 1.0             # the drive is always right
    d = diagnose_readout(labels, hidden, output, g)
    assert d.n == 4
    assert d.supervised_accuracy == 0.5
    assert d.drive_accuracy == 1.0
    assert d.tie_fraction == 0.25
    assert d.silent_fraction == 0.25
    assert d.lost_by_spiking == 0.5
    assert d.mean_output_spikes == pytest.approx((5 + 6 + 0 + 6) / 4)
    assert d.mean_margin == pytest.approx((5 + 0 + 2) / 3)
    assert d.mean_active_outputs == pytest.approx((1 + 2 + 0 + 2) / 4)
    assert d.predicted_histogram == [2, 0, 0, 1, 0, 0, 0, 0, 0, 0]


def test_capped_templates_keep_the_budget_and_the_cap() -> None:
    means = np.zeros((6, 10))
    means[:, 0] = [10.0, 1.0, 1.0, 1.0, 1.0, 0.0]   # one neuron far above the rest
    means[:, 1] = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]    # four equal neurons
    t = capped_templates(means, budget=8.0, cap=4.0)
    assert t.shape == (10, 6)
    # column 0: 10/14·8 = 5.7 > 4 is capped, the other 4 share the remaining 4 equally
    assert t[0] == pytest.approx([4.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    assert t[1] == pytest.approx([2.0, 2.0, 2.0, 2.0, 0.0, 0.0])
    assert np.all(t[2:] == 0)  # classes never seen get no weights
    assert capped_templates(means, 8.0, np.inf)[0] == pytest.approx(
        [80 / 14, 8 / 14, 8 / 14, 8 / 14, 8 / 14, 0.0])


def test_readout_rules_on_counts_with_known_answers() -> None:
    """Two classes, each driving its own half of 8 neurons, plus a 'hub' neuron (index 8)
    that fires for both: every rule separates them, the hub notwithstanding."""
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 2, n)
    counts = rng.poisson(0.2, (n, 9)).astype(float)
    counts[labels == 0, :4] += rng.poisson(2.0, ((labels == 0).sum(), 4))
    counts[labels == 1, 4:8] += rng.poisson(2.0, ((labels == 1).sum(), 4))
    counts[:, 8] += rng.poisson(3.0, n)
    rules = readout_rules(counts[:300], labels[:300], counts[300:], budget=9.0, cap=np.inf)
    assert set(rules) == {"assignment", "template", "template-nocap", "soft-assignment",
                          "least-squares"}
    for name, pred in rules.items():
        assert pred.shape == (100,)
        assert (pred == labels[300:]).mean() > 0.9, name
    post = class_posteriors(np.array([[3.0, 1.0], [0.0, 0.0]]))
    assert post == pytest.approx(np.array([[0.75, 0.25], [0.0, 0.0]]))


def test_ridge_readout_chooses_its_penalty_on_its_own_fitting_data() -> None:
    """Pure noise features: whatever alpha is chosen, it comes from the alphas offered,
    and a perfectly separable feature is found."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 30)
    x = rng.random((300, 20))
    x[np.arange(300), labels] += 5.0  # feature c marks class c
    weights, alpha, scale = ridge_readout(x, labels, alphas=(1.0, 1e6))
    assert alpha == 1.0  # the huge penalty flattens every score: it loses on held-out data
    assert scale == pytest.approx(x.mean())
    assert (ridge_predict(weights, x / scale) == labels).mean() == 1.0
