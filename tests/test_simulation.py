"""The presentation protocol and the retry rule (spec §3), on a scripted backend."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from conftest import small_config

from symstdp_genn.backends.base import Backend
from symstdp_genn.network import build_network
from symstdp_genn.simulation import Simulation


class ScriptedBackend(Backend):
    """Returns scripted hidden spike totals per presentation and records what it was told."""

    name = "scripted"
    supports_active_mask = True

    def __init__(self, spikes_per_presentation: list[list[int]], batch: int = 1):
        super().__init__(build_network(small_config(4)), batch)
        self.script = list(spikes_per_presentation)
        self.rates: list[np.ndarray] = []
        self.runs: list[tuple[int, bool, np.ndarray | None]] = []
        self.normalised: list[tuple[str, float]] = []
        self.params: dict[tuple[str, str], float] = {}
        self.vars: dict[tuple[str, str], np.ndarray] = {}
        self._counts = np.zeros((batch, 4), np.int32)

    def run(self, steps: int, record: bool = True, active: np.ndarray | None = None) -> None:
        self.runs.append((steps, record, None if active is None else active.copy()))
        if record:
            totals = self.script.pop(0)
            self._counts = np.zeros((self.batch_size, 4), np.int32)
            self._counts[:, 0] = totals

    def spike_counts(self, population: str) -> np.ndarray:
        return self._counts.copy() if population == "hidden" else np.zeros(
            (self.batch_size, 10), np.int32)

    def reset_counts(self) -> None:
        pass

    def get_var(self, target: str, var: str) -> np.ndarray:
        return self.vars[(target, var)]

    def set_var(self, target: str, var: str, values: np.ndarray | float) -> None:
        value = np.broadcast_to(np.asarray(values, np.float32),
                                (self.batch_size, 784 if target == "input" else 10)).copy()
        self.vars[(target, var)] = value
        if target == "input" and value.any():
            self.rates.append(value)

    def set_dynamic_param(self, target: str, param: str, value: float) -> None:
        self.params[(target, param)] = value

    def normalize(self, projection: str, target_sum: float) -> None:
        self.normalised.append((projection, target_sum))

    def get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        pass

    def reseed(self, seed: int) -> None:
        pass

    def reset(self) -> None:
        pass


IMAGE = np.full((1, 784), 80, np.uint8)


def test_retry_raises_intensity_until_five_hidden_spikes() -> None:
    backend = ScriptedBackend([[0], [3], [4], [5]])
    sim = Simulation(backend, small_config(4))
    sim.set_mode("joint")
    result = sim.present(IMAGE, np.array([3]))
    assert result.retries[0] == 3 and not result.forced[0]
    assert result.hidden_counts[0, 0] == 5
    # intensities 2, 3, 4, 5 → pixel 80 at 80·I/8 Hz
    assert [r[0, 0] for r in backend.rates] == [20.0, 30.0, 40.0, 50.0]
    # each presentation: 700 counted steps, then 300 rest steps
    assert [(s, rec) for s, rec, _ in backend.runs] == [(700, True), (300, False)] * 4
    # training normalises both projections before every presentation
    assert backend.normalised == [("input_to_hidden", 78.4), ("hidden_to_output", 3.2)] * 4
    assert backend.vars[("output", "rate")][0].sum() == 0.0  # teacher off while resting


def test_sample_is_accepted_at_intensity_32_whatever_happened() -> None:
    backend = ScriptedBackend([[0]] * 40)
    sim = Simulation(backend, small_config(4))
    sim.set_mode("joint")
    result = sim.present(IMAGE, np.array([0]))
    assert result.retries[0] == 30  # intensities 2..32
    assert result.forced[0]
    assert len(backend.rates) == 31


def test_only_lanes_that_need_it_are_presented_again() -> None:
    backend = ScriptedBackend([[9, 2, 7], [0, 6, 0]], batch=3)
    sim = Simulation(backend, small_config(4))
    sim.set_mode("frozen")
    result = sim.present(np.repeat(IMAGE, 3, axis=0), None)
    np.testing.assert_array_equal(result.retries, [0, 1, 0])
    np.testing.assert_array_equal(result.hidden_counts[:, 0], [9, 6, 7])
    np.testing.assert_array_equal(backend.runs[2][2], [False, True, False])
    assert backend.normalised == []  # frozen: the evaluator normalises once
    assert backend.params[("output", "teacher")] == 0.0
    assert backend.params[("input_to_hidden", "learning")] == 0.0


def test_modes_switch_learning_per_projection() -> None:
    backend = ScriptedBackend([])
    sim = Simulation(backend, small_config(4))
    sim.set_mode("output")
    assert backend.params[("hidden", "learning")] == 0.0
    assert backend.params[("input_to_hidden", "learning")] == 0.0
    assert backend.params[("hidden_to_output", "learning")] == 1.0
    assert backend.params[("output", "teacher")] == 1.0
