"""Pixels → Poisson rates, and the supervision signal (spec §3).

Kept apart from the driver so the mapping from an image to what the network
sees is one small, testable function.
"""

from __future__ import annotations

import numpy as np

N_CLASSES = 10


def input_rates(images: np.ndarray, intensity: float | np.ndarray) -> np.ndarray:
    """Rates in Hz: pixel · intensity / 8 (intensity 2 → at most 63.75 Hz).

    ``images`` is ``[batch, 784]`` (or one image); ``intensity`` a scalar or one
    value per image.
    """
    images = np.asarray(images, dtype=np.float32)
    scale = np.asarray(intensity, dtype=np.float32) / np.float32(8.0)
    if images.ndim == 2 and scale.ndim == 1:
        scale = scale[:, None]
    return images * scale


def one_hot(labels: np.ndarray | int, value: float) -> np.ndarray:
    """``value`` at each label's output neuron, 0 elsewhere (teacher rate or current)."""
    labels = np.atleast_1d(np.asarray(labels, dtype=np.int64))
    out = np.zeros((labels.size, N_CLASSES), dtype=np.float32)
    out[np.arange(labels.size), labels] = value
    return out
