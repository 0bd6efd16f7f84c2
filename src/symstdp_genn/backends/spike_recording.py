"""Spike counts from GeNN's spike-recording buffer, decoded on the host.

GeNN records one bit per neuron, lane and step in a ring of :data:`RECORDING_STEPS`
rows, each row ``batch × ⌈n / 32⌉`` 32-bit words (lane-major, neuron ``i`` in bit
``i % 32`` of word ``i // 32``). Pure numpy, so it is tested without PyGeNN.
"""

from __future__ import annotations

import numpy as np

#: steps recorded between two pulls of the spike-recording buffer (a 350 ms
#: presentation at dt = 0.5 ms is 700)
RECORDING_STEPS = 1000


def count_recorded_spikes(buffer: np.ndarray, first_row: int, rows: int, batch: int,
                          n: int, ring: int = RECORDING_STEPS) -> np.ndarray:
    """Spikes per lane and neuron (``batch × n``, int64) in ``rows`` recorded steps from
    ring row ``first_row`` (wrapping past the ring's end).

    Spikes are sparse (a hidden neuron fires a few times per presentation), so only the
    non-zero words are unpacked, and the rows are read in place in at most two runs of
    the ring: at batch 256 and 6 400 neurons the buffer is 200 MB, and copying and
    scanning it whole took most of a test batch's time.
    """
    if not 0 <= first_row < ring or not 0 <= rows <= ring:
        raise ValueError(f"rows {first_row}+{rows} do not fit a ring of {ring} steps")
    words = -(-n // 32)
    row_words = batch * words
    buffer = np.asarray(buffer, dtype=np.uint32).reshape(ring, row_words)
    counts = np.zeros(batch * n, np.int64)
    segments = [(first_row, min(first_row + rows, ring))]
    if first_row + rows > ring:
        segments.append((0, first_row + rows - ring))
    for start, stop in segments:
        block = buffer[start:stop].reshape(-1)
        where = np.flatnonzero(block)
        if len(where) == 0:
            continue
        bits = np.unpackbits(block[where].astype("<u4").view(np.uint8).reshape(-1, 4),
                             axis=1, bitorder="little").astype(bool)
        hit, bit = np.nonzero(bits)
        lane, word = np.divmod(where[hit] % row_words, words)
        counts += np.bincount(lane * n + word * 32 + bit, minlength=batch * n)
    return counts.reshape(batch, n)
