"""The backend-neutral network spec: populations and projections built from a config.

The spec says *what* is simulated (sizes, model definitions from :mod:`models`,
parameter values, initial values, connectivity) and nothing about *how*; the
backends turn it into code. Initial weights are drawn here from the config's
seed so that every backend starts from the same numbers.

Names follow the project's table (original → ours): PPoi → ``input``,
PExc → ``hidden``, PInh → ``inhibitory``, PCla → ``output``, P2E →
``input_to_hidden``, E2I → ``hidden_to_inhibitory``, I2E →
``inhibitory_to_hidden``, E2C → ``hidden_to_output``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import models
from .config import Config

N_INPUT = 784
N_OUTPUT = 10
CONNECTIVITY = ("dense", "one_to_one", "all_but_self")

INPUT, HIDDEN, INHIBITORY, OUTPUT = "input", "hidden", "inhibitory", "output"
INPUT_TO_HIDDEN = "input_to_hidden"
HIDDEN_TO_INHIBITORY = "hidden_to_inhibitory"
INHIBITORY_TO_HIDDEN = "inhibitory_to_hidden"
HIDDEN_TO_OUTPUT = "hidden_to_output"
PLASTIC_PROJECTIONS = (INPUT_TO_HIDDEN, HIDDEN_TO_OUTPUT)
#: the per-synapse variable that holds a projection's weights: what synaptic scaling
#: rescales and the backends' ``get_weights`` / ``set_weights`` address
WEIGHT_VAR = "g"


@dataclass(frozen=True)
class Population:
    """A group of neurons of one model, with its parameters and initial values;
    ``dynamic_params`` may be changed between runs without recompiling."""

    name: str
    size: int
    model: models.NeuronModel
    params: Mapping[str, float]
    var_init: Mapping[str, float]
    dynamic_params: tuple[str, ...] = ()
    record_spikes: bool = False


@dataclass(frozen=True)
class Projection:
    """Synapses from one population to another: connectivity, weight-update and
    postsynaptic models with their parameters and initial values."""

    name: str
    source: str
    target: str
    connectivity: str
    weight_update: models.WeightUpdateModel
    wu_params: Mapping[str, float]
    postsynaptic: models.PostsynapticModel
    ps_params: Mapping[str, float]
    wu_var_init: Mapping[str, float | np.ndarray] = field(default_factory=dict)
    pre_var_init: Mapping[str, float] = field(default_factory=dict)
    post_var_init: Mapping[str, float] = field(default_factory=dict)
    dynamic_params: tuple[str, ...] = ()

    @property
    def scalable(self) -> bool:
        """Whether synaptic scaling can apply: dense connectivity with per-synapse
        weights (``WEIGHT_VAR``), whose columns are the targets' incoming weights."""
        return self.connectivity == "dense" and any(
            v == WEIGHT_VAR for v, _ in self.weight_update.vars)


@dataclass(frozen=True)
class NetworkSpec:
    """The whole network independent of any backend (time step, populations, projections,
    precision): what every backend compiles, so that they all simulate the same model."""

    dt: float
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    precision: str = "float"
    #: treat subnormal numbers as zero (``network.subnormals: flush``): a property of the
    #: arithmetic, so it is part of the network's fingerprint
    flush_subnormals: bool = False

    def population(self, name: str) -> Population:
        """The population called ``name`` (KeyError if there is none)."""
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    def projection(self, name: str) -> Projection:
        """The projection called ``name`` (KeyError if there is none)."""
        for proj in self.projections:
            if proj.name == name:
                return proj
        raise KeyError(name)

    def fingerprint(self) -> str:
        """Hash of everything that shapes generated code (not the initial values)."""
        def model_repr(m: object) -> dict:
            return {k: (v if not isinstance(v, tuple) else [
                (x[0] if isinstance(x, tuple) and callable(x[-1]) else x) for x in v])
                for k, v in vars(m).items()}

        desc = {
            "dt": self.dt, "precision": self.precision,
            **({"flush_subnormals": True} if self.flush_subnormals else {}),
            "populations": [[p.name, p.size, model_repr(p.model), dict(p.params),
                             sorted(p.var_init), list(p.dynamic_params), p.record_spikes]
                            for p in self.populations],
            "projections": [[j.name, j.source, j.target, j.connectivity,
                             model_repr(j.weight_update), dict(j.wu_params),
                             model_repr(j.postsynaptic), dict(j.ps_params),
                             list(j.dynamic_params)] for j in self.projections],
        }
        return hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()


def derived_values(model: object, params: Mapping[str, float], dt: float) -> dict[str, float]:
    """Evaluate a model's derived parameters once, in double precision, as PyGeNN does."""
    return {name: float(fn(params, dt)) for name, fn in getattr(model, "derived_params", ())}


def initial_weights(config: Config, rng: np.random.Generator, projection: str) -> np.ndarray:
    """U[0, init_weight_max) weights for a plastic projection, float32, [pre, post]."""
    n = config.network.n_hidden
    shape = {INPUT_TO_HIDDEN: (N_INPUT, n), HIDDEN_TO_OUTPUT: (n, N_OUTPUT)}[projection]
    return (rng.random(shape) * config.network.init_weight_max).astype(np.float32)


def seed_sequence(config: Config, purpose: str) -> np.random.SeedSequence:
    """An independent, named random stream derived from the config's one seed."""
    key = int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:4], "little")
    return np.random.SeedSequence([config.seed, key])


def seed_for(config: Config, purpose: str) -> int:
    """A 63-bit integer seed for one purpose (a backend's random streams)."""
    return int(seed_sequence(config, purpose).generate_state(1, np.uint64)[0] >> 1)


def build_network(config: Config) -> NetworkSpec:
    """The four-population network for ``config``: populations, projections, initial weights."""
    net = config.network
    n = net.n_hidden
    rng = np.random.default_rng(seed_sequence(config, "initial-weights"))
    w_in = initial_weights(config, rng, INPUT_TO_HIDDEN)
    w_out = initial_weights(config, rng, HIDDEN_TO_OUTPUT)

    lif_fast = {"tauM": 10.0, "Vrest": -60.0, "Vreset": -45.0, "Vthresh": -40.0}
    populations = [
        Population(INPUT, N_INPUT, models.POISSON_INPUT, {"Vspike": 20.0, "Vrest": -60.0},
                   {"V": -60.0, "rate": 0.0}),
        Population(
            HIDDEN, n, models.HIDDEN_MODELS_BY_THETA_DECAY[net.theta_decay],
            {"tauM": 100.0, "Vrest": -65.0, "Vreset": -65.0, "Vthresh": net.hidden_v_threshold,
             "Vmin": -100.0, "tauRefrac": 2.0, "tauTheta": net.tau_theta_ms,
             "thetaPlus": net.theta_plus, "thetaOffset": 20.0,
             "thetaRulePaper": 1.0 if net.threshold_rule == "paper" else 0.0, "learning": 1.0},
            {"V": -105.0, "theta": net.theta_init, "timer": 10.0},
            dynamic_params=("learning",), record_spikes=True),
        Population(INHIBITORY, n, models.INHIBITORY_LIF, {**lif_fast, "tauRefrac": 2.0},
                   {"V": -100.0, "timer": 10.0}),
    ]
    if net.supervision == "teacher":
        populations.append(Population(
            OUTPUT, N_OUTPUT, models.OUTPUT_TEACHER, {**lif_fast, "Vspike": 20.0, "teacher": 1.0},
            {"V": -60.0, "rate": 0.0}, dynamic_params=("teacher",), record_spikes=True))
    else:
        populations.append(Population(
            OUTPUT, N_OUTPUT, models.OUTPUT_CURRENT, lif_fast, {"V": -60.0, "Isup": 0.0},
            record_spikes=True))

    def stdp(eta: float, w_max: float) -> dict[str, float]:
        return {"eta": eta, "wMax": w_max, "a": net.trace_increment,
                "tauTrace": net.trace_tau_ms, "learning": 1.0}

    excitatory = {"tau": 1.0, "E": 0.0}
    projections = [
        Projection(INPUT_TO_HIDDEN, INPUT, HIDDEN, "dense", models.SYM_STDP,
                   stdp(net.eta_input_to_hidden, net.w_max_input_to_hidden),
                   models.EXP_CONDUCTANCE, excitatory, wu_var_init={"g": w_in},
                   pre_var_init={"xPre": 1.0}, post_var_init={"xPost": 1.0},
                   dynamic_params=("learning",)),
        Projection(HIDDEN_TO_INHIBITORY, HIDDEN, INHIBITORY, "one_to_one",
                   models.STATIC_PULSE_CONSTANT_WEIGHT, {"g": net.hidden_to_inhibitory_weight},
                   models.EXP_CONDUCTANCE, excitatory),
        Projection(INHIBITORY_TO_HIDDEN, INHIBITORY, HIDDEN, "all_but_self",
                   models.STATIC_PULSE_CONSTANT_WEIGHT, {"g": net.inhibitory_to_hidden_weight},
                   models.EXP_CONDUCTANCE, {"tau": 2.0, "E": -100.0}),
        Projection(HIDDEN_TO_OUTPUT, HIDDEN, OUTPUT, "dense", models.SYM_STDP,
                   stdp(net.eta_hidden_to_output, net.w_max_hidden_to_output),
                   models.EXP_CONDUCTANCE, excitatory, wu_var_init={"g": w_out},
                   pre_var_init={"xPre": 1.0}, post_var_init={"xPost": 1.0},
                   dynamic_params=("learning",)),
    ]
    return NetworkSpec(dt=config.training.dt_ms, populations=tuple(populations),
                       projections=tuple(projections),
                       flush_subnormals=net.flush_subnormals)
