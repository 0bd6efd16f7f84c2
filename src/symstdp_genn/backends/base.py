"""The small interface the driver uses; every backend implements it.

All per-neuron quantities carry a leading batch axis (``[batch, n]``); weights
are ``[pre, post]`` and shared by the lanes of a batch. The driver never knows
how a backend stores or runs anything; it only uses these verbs.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import numpy as np

from ..network import WEIGHT_VAR, NetworkSpec


def lane_values(key: str, value: np.ndarray, shape: tuple[int, ...], batched: bool
                ) -> np.ndarray:
    """Shape a saved state array for an array of ``shape``: a batched array takes one
    lane's values (no batch axis) or lane 0 of another batch size; the rest must match."""
    value = np.asarray(value)
    if batched:
        if value.ndim == len(shape) - 1:
            value = value[None]
        elif value.shape[0] != shape[0]:
            value = value[:1]
    skip = 1 if batched else 0
    if value.shape[skip:] != tuple(shape[skip:]):
        raise ValueError(f"state '{key}' has shape {value.shape}, expected {shape}")
    return value


class Backend(abc.ABC):
    """A built, runnable network: one or more independent lanes of the same spec."""

    name: str = "abstract"

    def __init__(self, spec: NetworkSpec, batch_size: int = 1, seed: int = 0):
        self.spec = spec
        self.batch_size = batch_size
        self.seed = seed

    @abc.abstractmethod
    def run(self, steps: int, record: bool = True, active: np.ndarray | None = None) -> None:
        """Advance ``steps`` time steps; spikes of recorded populations are counted when
        ``record``. ``active`` (bool per lane) skips lanes entirely where supported."""

    @abc.abstractmethod
    def spike_counts(self, population: str) -> np.ndarray:
        """Counts since the last :meth:`reset_counts`, ``[batch, n]`` (a copy)."""

    @abc.abstractmethod
    def reset_counts(self) -> None: ...

    @abc.abstractmethod
    def get_var(self, target: str, var: str) -> np.ndarray:
        """A copy of a variable of a population (``[batch, n]``) or projection."""

    @abc.abstractmethod
    def set_var(self, target: str, var: str, values: np.ndarray | float) -> None:
        """Set a variable; values broadcast over the batch axis."""

    @abc.abstractmethod
    def set_dynamic_param(self, target: str, param: str, value: float) -> None:
        """Change a parameter declared dynamic in the spec (no rebuild)."""

    @abc.abstractmethod
    def normalize(self, projection: str, target_sum: float) -> None:
        """Synaptic scaling where the weights live: each target's incoming sum → target_sum."""

    @abc.abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue the simulation bit-identically (copies)."""

    @abc.abstractmethod
    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`'s output (lane-0 state broadcasts to all lanes)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Every variable back to the spec's initial value (weights included)."""

    @abc.abstractmethod
    def reseed(self, seed: int) -> None:
        """Restart every random stream from ``seed`` (evaluation passes use their own)."""

    #: whether :meth:`run` honours ``active`` by skipping lanes (otherwise the
    #: driver silences inactive lanes' input instead)
    supports_active_mask: bool = False

    def get_weights(self, projection: str) -> np.ndarray:
        return self.get_var(projection, WEIGHT_VAR)

    def set_weights(self, projection: str, weights: np.ndarray) -> None:
        self.set_var(projection, WEIGHT_VAR, weights)

    def close(self) -> None:
        """Release resources (no-op where nothing needs releasing)."""
