"""One presentation of a sample, and the retry rule, on any backend (spec §3).

This is the protocol the paper's network is trained and tested with:
normalise (training), set rates for 350 ms and count spikes, rest 150 ms with
all rates at 0 (no explicit reset), and present again with a higher intensity
while the hidden layer fired fewer than 5 spikes. It is batch-aware: each lane
of the backend is an independent copy of the network, and only the lanes that
need a retry present again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends.base import Backend
from .config import Config
from .encoding import input_rates, one_hot
from .network import (
    HIDDEN,
    HIDDEN_TO_OUTPUT,
    INPUT,
    INPUT_TO_HIDDEN,
    OUTPUT,
)

#: learning switches per mode: (θ adapts, input→hidden learns, hidden→output learns)
MODES = {
    "joint": (True, True, True),
    "output": (False, False, True),
    "frozen": (False, False, False),
}


@dataclass
class Presented:
    """Counts of the accepted presentation of each lane, and how it was reached."""

    hidden_counts: np.ndarray  # [batch, n_hidden]
    output_counts: np.ndarray  # [batch, 10]
    retries: np.ndarray  # [batch] extra presentations
    forced: np.ndarray  # [batch] accepted at max intensity with too few spikes


class Simulation:
    """Drives a backend through presentations; knows the protocol, not the backend."""

    def __init__(self, backend: Backend, config: Config):
        self.backend = backend
        self.config = config
        t = config.training
        self.present_steps = round(t.present_ms / t.dt_ms)
        self.rest_steps = round(t.rest_ms / t.dt_ms)
        self.teacher = config.network.supervision == "teacher"
        self.mode = ""
        self.presentations = 0

    def set_mode(self, mode: str) -> None:
        """``joint``/``output`` (training, supervision on) or ``frozen`` (testing)."""
        theta, learn_in, learn_out = MODES[mode]
        b = self.backend
        b.set_dynamic_param(HIDDEN, "learning", float(theta))
        b.set_dynamic_param(INPUT_TO_HIDDEN, "learning", float(learn_in))
        b.set_dynamic_param(HIDDEN_TO_OUTPUT, "learning", float(learn_out))
        if self.teacher:
            b.set_dynamic_param(OUTPUT, "teacher", 0.0 if mode == "frozen" else 1.0)
        self.mode = mode

    @property
    def training(self) -> bool:
        return self.mode != "frozen"

    def normalize(self) -> None:
        net = self.config.network
        self.backend.normalize(INPUT_TO_HIDDEN, net.norm_input_to_hidden)
        if self.training:
            self.backend.normalize(HIDDEN_TO_OUTPUT, net.norm_hidden_to_output)

    def _supervise(self, labels: np.ndarray | None) -> None:
        net = self.config.network
        if labels is None or not self.training:
            value = np.zeros((self.backend.batch_size, 10), dtype=np.float32)
        elif self.teacher:
            value = one_hot(labels, net.teacher_rate_hz)
        else:
            value = one_hot(labels, net.supervision_current)
        self.backend.set_var(OUTPUT, "rate" if self.teacher else "Isup", value)

    def present_once(self, images: np.ndarray, labels: np.ndarray | None,
                     intensity: np.ndarray, active: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """350 ms of input (counted), then 150 ms of rest; returns the counts."""
        b = self.backend
        rates = input_rates(images, intensity)
        if active is not None and not b.supports_active_mask:
            rates = rates * active[:, None]
        b.set_var(INPUT, "rate", rates)
        self._supervise(labels)
        b.reset_counts()
        mask = active if b.supports_active_mask else None
        b.run(self.present_steps, record=True, active=mask)
        b.set_var(INPUT, "rate", 0.0)
        self._supervise(None)
        b.run(self.rest_steps, record=False, active=mask)
        self.presentations += 1
        return b.spike_counts(HIDDEN), b.spike_counts(OUTPUT)

    def present(self, images: np.ndarray, labels: np.ndarray | None,
                valid: np.ndarray | None = None) -> Presented:
        """Present one sample per lane with the retry rule of spec §3.

        ``valid`` marks lanes holding a sample (a last, partial batch has empty lanes).
        """
        t = self.config.training
        batch = self.backend.batch_size
        images = np.asarray(images).reshape(batch, -1)
        active = np.ones(batch, bool) if valid is None else np.asarray(valid, bool).copy()
        intensity = np.full(batch, t.start_intensity, dtype=np.float32)
        hidden = np.zeros((batch, self.backend.spec.population(HIDDEN).size), np.int32)
        output = np.zeros((batch, 10), np.int32)
        retries = np.zeros(batch, np.int32)
        forced = np.zeros(batch, bool)
        while True:
            if self.training:
                self.normalize()
            h, o = self.present_once(images, labels, intensity,
                                     None if active.all() else active)
            hidden[active] = h[active]
            output[active] = o[active]
            too_few = active & (h.sum(axis=1) < t.min_hidden_spikes)
            retry = too_few & (intensity + 1 <= t.max_intensity)
            forced |= too_few & ~retry
            if not retry.any():
                break
            intensity[retry] += 1
            retries[retry] += 1
            active = retry
        return Presented(hidden, output, retries, forced)
