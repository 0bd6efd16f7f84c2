"""THE model definitions: neurons, postsynaptic and weight-update models as plain data.

Nothing else in the project defines model behaviour. Each definition carries
parameter names, variables and code strings written in GeNN 5's code dialect
(plain C expressions; ``Isyn``, ``dt``, ``addToPost``, ``injectCurrent`` and
``gennrand_uniform()`` as GeNN provides them), so the same objects are handed to
PyGeNN's ``create_*_model`` functions unchanged or compiled by the builtin C
code generator. Derived parameters are Python callables ``(params, dt) -> value``
exactly as PyGeNN expects them.

Runtime switches (learning on/off, teacher or readout mode of the output layer)
are ordinary parameters that a network marks *dynamic*: GeNN 5 can change a
dynamic parameter between runs without rebuilding, and so can the builtin
backend. ``learning`` is 1.0 or 0.0 because GeNN's parameters are numbers.

Mapping to the original code (``src/add_model.cc``): ``input`` = PPoi,
``hidden`` = LIF_Exc, ``inhibitory`` = LIF_Inh, ``output_*`` = LIF_Cla,
``sym_stdp`` = DA_STDP.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DerivedParam = tuple[str, Callable[[Mapping[str, float], float], float]]
Var = tuple[str, str]  # (name, C type) as PyGeNN's ``vars=[("V", "scalar")]``
#: the variable types both backends implement: ``scalar`` is the network's precision
VAR_TYPES = ("scalar", "float", "double")


@dataclass(frozen=True)
class NeuronModel:
    """A neuron model in the form of ``pygenn.create_neuron_model``'s arguments."""

    name: str
    params: tuple[str, ...]
    vars: tuple[Var, ...]
    sim_code: str
    threshold_condition_code: str
    reset_code: str = ""
    derived_params: tuple[DerivedParam, ...] = ()


@dataclass(frozen=True)
class PostsynapticModel:
    """A postsynaptic model in the form of ``pygenn.create_postsynaptic_model``'s arguments.

    ``inSyn`` is the accumulated synaptic input (GeNN's name); ``neuron_var_refs``
    are the target neuron's variables the code reads (``V`` for conductances).
    """

    name: str
    params: tuple[str, ...]
    sim_code: str
    neuron_var_refs: tuple[Var, ...] = ()
    derived_params: tuple[DerivedParam, ...] = ()


@dataclass(frozen=True)
class WeightUpdateModel:
    """A weight-update model in the form of ``pygenn.create_weight_update_model``'s arguments.

    ``pre_vars``/``post_vars`` are per-neuron variables of the projection (GeNN 5
    keeps them with the weight update, not in the neuron), updated by the
    ``*_spike_code`` once per spike and by ``*_dynamics_code`` every step.
    """

    name: str
    params: tuple[str, ...] = ()
    vars: tuple[Var, ...] = ()
    pre_vars: tuple[Var, ...] = ()
    post_vars: tuple[Var, ...] = ()
    derived_params: tuple[DerivedParam, ...] = ()
    pre_spike_syn_code: str = ""
    post_spike_syn_code: str = ""
    pre_spike_code: str = ""
    post_spike_code: str = ""
    pre_dynamics_code: str = ""
    post_dynamics_code: str = ""


# ---------------------------------------------------------------------------
# Neurons
# ---------------------------------------------------------------------------

#: Poisson generator with the original's forced silent step after each spike.
#: ``rate`` (Hz) is a variable so a new sample needs no rebuild. Drawing no random
#: number for a zero rate changes nothing (the spike probability is 0) and saves
#: most draws on MNIST's black background.
POISSON_INPUT = NeuronModel(
    name="poisson_input",
    params=("Vspike", "Vrest"),
    vars=(("V", "scalar"), ("rate", "scalar")),
    sim_code="""
if (V > Vrest) {
    V = Vrest;
}
else if (rate > 0.0 && gennrand_uniform() < rate * dt * 0.001) {
    V = Vspike;
}
""",
    threshold_condition_code="V >= Vspike",
)

#: Excitatory LIF with adaptive threshold θ. ``thetaRulePaper`` selects the
#: paper's constant increment instead of the code's ``θ₊·(offset−10)/|θ−10|``.
#: θ is a ``scalar`` (float32) here, exactly as in the original (GENN_FLOAT): its
#: per-step decay ``dt·θ/τ_θ`` (5·10⁻⁷ at θ = 20, τ_θ = 2·10⁷ ms) is then below
#: half an ulp of θ and rounded away. :data:`HIDDEN_LIF_EXACT_THETA` is the same
#: model with θ in double. ``theta_decay: float32`` selects this one.
HIDDEN_LIF = NeuronModel(
    name="hidden_adaptive_lif",
    params=(
        "tauM", "Vrest", "Vreset", "Vthresh", "Vmin", "tauRefrac",
        "tauTheta", "thetaPlus", "thetaOffset", "thetaRulePaper", "learning",
    ),
    vars=(("V", "scalar"), ("theta", "scalar"), ("timer", "scalar")),
    sim_code="""
if (timer > tauRefrac) {
    V += dt * (Vrest - V + Isyn) / tauM;
}
V = fmax(V, Vmin);
if (learning != 0.0) {
    theta -= dt * theta / tauTheta;
}
timer += dt;
""",
    threshold_condition_code="V > Vthresh + theta - thetaOffset && timer > tauRefrac",
    reset_code="""
if (learning != 0.0) {
    if (thetaRulePaper != 0.0) {
        theta += thetaPlus;
    }
    else {
        theta += thetaPlus * (thetaOffset - 10.0) / fabs(theta - 10.0);
    }
}
V = Vreset;
timer = 0.0;
""",
)

#: The hidden LIF with θ declared ``double`` (``theta_decay: exact``, the default).
#: Both backends follow C's usual arithmetic conversions, so every expression that
#: reads θ (the decay ``dt·θ/τ_θ``, the threshold, the increment ``…/fabs(θ−10)``)
#: is evaluated in double and θ decays exactly to far better than float32
#: accuracy; everything else stays single precision.
HIDDEN_LIF_EXACT_THETA = dataclasses.replace(
    HIDDEN_LIF, name="hidden_adaptive_lif_exact_theta",
    vars=tuple((name, "double" if name == "theta" else ctype) for name, ctype in HIDDEN_LIF.vars))

#: ``network.theta_decay`` → the hidden neuron model that implements it
HIDDEN_MODELS_BY_THETA_DECAY: dict[str, NeuronModel] = {
    "exact": HIDDEN_LIF_EXACT_THETA, "float32": HIDDEN_LIF}

#: Inhibitory LIF, one partner per hidden neuron.
INHIBITORY_LIF = NeuronModel(
    name="inhibitory_lif",
    params=("tauM", "Vrest", "Vreset", "Vthresh", "tauRefrac"),
    vars=(("V", "scalar"), ("timer", "scalar")),
    sim_code="""
if (timer > tauRefrac) {
    V += dt * (Vrest - V + Isyn) / tauM;
}
timer += dt;
""",
    threshold_condition_code="V > Vthresh && timer > tauRefrac",
    reset_code="""
V = Vreset;
timer = 0.0;
""",
)

#: Output neuron of the original: a 200 Hz Poisson teacher while training
#: (``teacher`` = 1; synaptic input ignored), a LIF readout without refractory
#: period while testing (``teacher`` = 0). ``rate`` holds the teacher rate (Hz).
OUTPUT_TEACHER = NeuronModel(
    name="output_teacher",
    params=("tauM", "Vrest", "Vreset", "Vthresh", "Vspike", "teacher"),
    vars=(("V", "scalar"), ("rate", "scalar")),
    sim_code="""
if (teacher != 0.0) {
    if (V > Vrest) {
        V = Vrest;
    }
    else if (rate > 0.0 && gennrand_uniform() < rate * dt * 0.001) {
        V = Vspike;
    }
}
else {
    V += dt * (Vrest - V + Isyn) / tauM;
}
""",
    threshold_condition_code="(teacher != 0.0 && V >= Vspike) || (teacher == 0.0 && V > Vthresh)",
    reset_code="""
if (teacher == 0.0) {
    V = Vreset;
}
""",
)

#: Alternative supervision: the output layer stays a LIF readout and the label's
#: neuron receives an injected current ``Isup`` (set by the driver, 0 in testing).
OUTPUT_CURRENT = NeuronModel(
    name="output_current",
    params=("tauM", "Vrest", "Vreset", "Vthresh"),
    vars=(("V", "scalar"), ("Isup", "scalar")),
    sim_code="""
V += dt * (Vrest - V + Isyn + Isup) / tauM;
""",
    threshold_condition_code="V > Vthresh",
    reset_code="""
V = Vreset;
""",
)

# ---------------------------------------------------------------------------
# Postsynaptic model
# ---------------------------------------------------------------------------

#: Conductance with exponential decay: I = g·(E − V), then g ← g·exp(−dt/τ).
EXP_CONDUCTANCE = PostsynapticModel(
    name="exp_conductance",
    params=("tau", "E"),
    neuron_var_refs=(("V", "scalar"),),
    derived_params=(("expDecay", lambda p, dt: math.exp(-dt / p["tau"])),),
    sim_code="""
injectCurrent(inSyn * (E - V));
inSyn *= expDecay;
""",
)

# ---------------------------------------------------------------------------
# Weight updates
# ---------------------------------------------------------------------------

#: Fixed per-synapse weight ``g`` (no plasticity).
STATIC_PULSE = WeightUpdateModel(
    name="static_pulse",
    vars=(("g", "scalar"),),
    pre_spike_syn_code="addToPost(g);",
)

#: One weight shared by every synapse of a projection, as a parameter: the
#: all-but-self inhibition then needs no N² weight matrix.
STATIC_PULSE_CONSTANT_WEIGHT = WeightUpdateModel(
    name="static_pulse_constant_weight",
    params=("g",),
    pre_spike_syn_code="addToPost(g);",
)

#: Symmetric STDP (potentiation only). Each spike first delivers the weight,
#: then moves it by η times the other side's trace; traces decay with τ while
#: learning and grow by ``a`` once per spike (the original's race-prone
#: per-synapse increment is deliberately not reproduced).
SYM_STDP = WeightUpdateModel(
    name="sym_stdp",
    params=("eta", "wMax", "a", "tauTrace", "learning"),
    vars=(("g", "scalar"),),
    pre_vars=(("xPre", "scalar"),),
    post_vars=(("xPost", "scalar"),),
    pre_spike_syn_code="""
addToPost(g);
if (learning != 0.0) {
    g = fmin(g + eta * xPost, wMax);
}
""",
    post_spike_syn_code="""
if (learning != 0.0) {
    g = fmin(g + eta * xPre, wMax);
}
""",
    pre_spike_code="""
if (learning != 0.0) {
    xPre += a;
}
""",
    post_spike_code="""
if (learning != 0.0) {
    xPost += a;
}
""",
    pre_dynamics_code="""
if (learning != 0.0) {
    xPre -= dt * xPre / tauTrace;
}
""",
    post_dynamics_code="""
if (learning != 0.0) {
    xPost -= dt * xPost / tauTrace;
}
""",
)

NEURON_MODELS: dict[str, NeuronModel] = {
    m.name: m for m in (POISSON_INPUT, HIDDEN_LIF, HIDDEN_LIF_EXACT_THETA, INHIBITORY_LIF,
                        OUTPUT_TEACHER, OUTPUT_CURRENT)
}
