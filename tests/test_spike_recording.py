"""Decoding GeNN's spike-recording ring (symstdp_genn.backends.spike_recording), without
PyGeNN: buffers are encoded here from known spikes, bit by bit."""

from __future__ import annotations

import numpy as np
import pytest

from symstdp_genn.backends.spike_recording import count_recorded_spikes

RING, BATCH, N = 10, 3, 70  # 70 neurons: three words per lane, the last one part-used
WORDS = -(-N // 32)


def encode(spikes: list[tuple[int, int, int]]) -> np.ndarray:
    """GeNN's layout: row = step, then lane-major words, neuron i in bit i % 32."""
    buffer = np.zeros((RING, BATCH, WORDS), np.uint32)
    for step, lane, neuron in spikes:
        buffer[step, lane, neuron // 32] |= np.uint32(1 << (neuron % 32))
    return buffer.reshape(-1)


@pytest.fixture
def spikes() -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(7)
    steps, lanes, neurons = (rng.integers(0, RING, 200), rng.integers(0, BATCH, 200),
                             rng.integers(0, N, 200))
    events = {(int(s), int(lane), int(i))
              for s, lane, i in zip(steps, lanes, neurons, strict=True)}
    return sorted(events | {(0, 0, 0), (9, 2, 69), (5, 1, 31), (5, 1, 32)})


def naive(spikes: list[tuple[int, int, int]], rows: set[int]) -> np.ndarray:
    counts = np.zeros((BATCH, N), np.int64)
    for step, lane, neuron in spikes:
        if step in rows:
            counts[lane, neuron] += 1
    return counts


@pytest.mark.parametrize(("first", "rows"), [(0, 10), (0, 4), (3, 5), (7, 6), (9, 1), (4, 0)])
def test_counts_every_spike_of_the_rows_asked_for(spikes, first: int, rows: int) -> None:
    got = count_recorded_spikes(encode(spikes), first, rows, BATCH, N, ring=RING)
    expected = naive(spikes, {(first + k) % RING for k in range(rows)})
    assert got.shape == (BATCH, N)
    np.testing.assert_array_equal(got, expected)


def test_a_wrapped_read_equals_its_two_halves(spikes) -> None:
    buffer = encode(spikes)
    whole = count_recorded_spikes(buffer, 8, 5, BATCH, N, ring=RING)
    halves = (count_recorded_spikes(buffer, 8, 2, BATCH, N, ring=RING)
              + count_recorded_spikes(buffer, 0, 3, BATCH, N, ring=RING))
    np.testing.assert_array_equal(whole, halves)
    assert whole.sum() == sum(1 for s, _, _ in spikes if s in (8, 9, 0, 1, 2))


def test_lanes_and_word_boundaries_are_kept_apart() -> None:
    spikes = [(2, 0, 31), (2, 1, 32), (2, 2, 63), (2, 2, 64), (3, 2, 64)]
    got = count_recorded_spikes(encode(spikes), 0, RING, BATCH, N, ring=RING)
    assert got[0, 31] == 1 and got[1, 32] == 1 and got[2, 63] == 1 and got[2, 64] == 2
    assert got.sum() == 5


def test_rows_outside_the_ring_are_refused() -> None:
    with pytest.raises(ValueError, match="ring of 10"):
        count_recorded_spikes(encode([]), 10, 1, BATCH, N, ring=RING)
    with pytest.raises(ValueError, match="ring of 10"):
        count_recorded_spikes(encode([]), 0, 11, BATCH, N, ring=RING)
