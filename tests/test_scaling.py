"""Synaptic scaling on the builtin backend remembers which columns changed.

``normalize_columns`` skips columns that no write touched since its last call and
whose factor rounds to 1. Every test here checks the weights bit for bit against
the plain rule — sum every column in row order in double, scale every column by
``float(target / sum)`` — computed in numpy from the weights before the call.
"""

from __future__ import annotations

import numpy as np
from conftest import small_config

from symstdp_genn.backends.builtin import BuiltinBackend
from symstdp_genn.network import build_network

TARGET = 78.4


def plain_scaling(g: np.ndarray, target: float) -> np.ndarray:
    """The rule without memory: every column, row order, double sums."""
    sums = np.zeros(g.shape[1])
    for row in g:
        sums += row.astype(np.float64)
    factor = np.ones(g.shape[1], np.float32)
    positive = sums > 0.0
    factor[positive] = (target / sums[positive]).astype(np.float32)
    return g * factor


def learning_backend(n_hidden: int = 40, threads: int = 1) -> BuiltinBackend:
    b = BuiltinBackend(build_network(small_config(n_hidden)), 1, seed=5, threads=threads)
    b.set_var("input", "rate", np.random.default_rng(2).random(784) * 100.0)
    # the first half can fire; the second never does, so learning leaves its columns
    b.set_var("hidden", "theta", np.where(np.arange(n_hidden) < n_hidden // 2, 0.0, 1e4))
    b.set_var("hidden", "V", np.linspace(-60.0, -45.0, n_hidden))
    b.set_var("hidden", "timer", 10.0)
    b.set_var("input_to_hidden", "xPost", 0.0)
    b.set_dynamic_param("input_to_hidden", "learning", 1.0)
    b.set_dynamic_param("hidden", "learning", 1.0)
    return b


def scale_and_check(b: BuiltinBackend) -> np.ndarray:
    before = b.get_weights("input_to_hidden")
    b.normalize("input_to_hidden", TARGET)
    after = b.get_weights("input_to_hidden")
    expected = plain_scaling(before, TARGET)
    assert after.tobytes() == expected.tobytes()
    return after


def test_scaling_after_learning_equals_scaling_every_column() -> None:
    b = learning_backend()
    scale_and_check(b)
    touched = []
    for _ in range(6):
        b.run(40)
        touched.append(int(b._changed["input_to_hidden"].sum()))
        scale_and_check(b)
    # learning changed some columns and not others, so both paths ran
    assert 0 < max(touched) <= 20


def test_untouched_weights_reach_a_fixed_point_and_stay_there() -> None:
    b = learning_backend()
    g = np.random.default_rng(7).random((784, 40)).astype(np.float32)
    g[:, 5] = 0.0
    b.set_weights("input_to_hidden", g)
    first = scale_and_check(b)
    second = scale_and_check(b)
    third = scale_and_check(b)
    assert third.tobytes() == second.tobytes()
    assert not np.array_equal(first, g)
    assert not b._changed["input_to_hidden"].any()


def test_weights_written_from_python_are_scaled_again() -> None:
    b = learning_backend()
    scale_and_check(b)
    scale_and_check(b)
    g = b.get_weights("input_to_hidden")
    g[100:200, 7] *= 3.0  # one column's sum is now far from the target
    b.set_weights("input_to_hidden", g)
    after = scale_and_check(b)
    assert abs(after[:, 7].sum(dtype=np.float64) - TARGET) < 1e-3
    state = b.get_state()
    state["input_to_hidden.g"] = np.asarray(state["input_to_hidden.g"]) * np.float32(0.5)
    b.set_state(state)
    scale_and_check(b)


def test_scaling_with_memory_is_the_same_on_two_threads() -> None:
    one, two = learning_backend(threads=1), learning_backend(threads=2)
    for b in (one, two):
        for _ in range(3):
            b.normalize("input_to_hidden", TARGET)
            b.run(30)
    assert one.get_weights("input_to_hidden").tobytes() == \
        two.get_weights("input_to_hidden").tobytes()
