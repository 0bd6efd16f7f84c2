"""The output-layer diagnostics: numbers checked against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from symstdp_genn.diagnostics import diagnose_readout, weight_concentration


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
