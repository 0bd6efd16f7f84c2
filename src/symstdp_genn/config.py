"""Configuration: one dataclass schema, YAML presets, validation and overrides.

A run is fully described by a :class:`Config` (the seed included), so a config
file plus the code version reproduces a run bit for bit on the builtin backend.
Presets in ``presets/*.yaml`` carry the per-size parameters of the original
code; everything else has the defaults below. Validation is strict:
an unknown key, a wrong type or an out-of-range value raises
:class:`~symstdp_genn.errors.UserError` naming the dotted key and what is allowed,
because a silently ignored typo in a 20-minute training run is the worst kind
of bug.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError, closest, did_you_mean

PRESET_DIR = Path(__file__).with_name("presets")
DEFAULT_PRESET = "mnist-400"
BACKENDS = ("auto", "builtin", "genn-cuda", "genn-cpu")
#: top-level keys that change how fast a run goes, never its results
EXECUTION_KEYS = ("threads",)
#: weights, their bounds and their column sums above this are refused: a checkpoint with
#: a weight beyond it is refused as damaged (``checkpoint.WEIGHT_LIMIT``), so a config that
#: could train one must be refused before the run instead of after it
WEIGHT_LIMIT = 1e6
#: most time steps of one presentation or rest period (5 000 s at 0.5 ms): beyond it a
#: sample would take days, and the step counts no longer fit the simulation's integers
MAX_STEPS = 10_000_000


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict:
    return {"range": (lo, hi, lo_open)}


def _choices(*values: str) -> dict:
    return {"choices": values}


@dataclass
class NetworkConfig:
    """Sizes, neuron and plasticity parameters."""

    #: N, the number of hidden (excitatory) neurons; the inhibitory layer has as many, one
    #: partner each
    n_hidden: int = field(default=400, metadata=_range(1, 100_000))
    #: the hidden neurons' firing threshold V_th (mV) before adaptation: a hidden neuron fires
    #: when V > V_th + θ − 20 mV
    hidden_v_threshold: float = field(default=-52.0, metadata=_range(-100.0, 0.0))
    #: τ_θ (ms), the time constant of the adaptive threshold θ's decay while learning
    tau_theta_ms: float = field(default=6e6, metadata=_range(0.0, None, lo_open=True))
    #: θ₊ (mV), the adaptive threshold's increment per hidden spike while learning, as
    #: ``threshold_rule`` applies it
    theta_plus: float = field(default=0.07, metadata=_range(0.0, 10.0))
    #: θ (mV) of every hidden neuron before training
    theta_init: float = field(default=20.0, metadata=_range(0.0, 1000.0))
    #: ``code``: θ grows by θ₊·10/|θ−10| per spike, as in the original code; ``paper``: by a
    #: constant θ₊, as the paper states it
    threshold_rule: str = field(default="code", metadata=_choices("code", "paper"))
    #: ``exact``: θ in double, so its slow decay (5·10⁻⁷ mV per step at τ_θ = 2·10⁷ ms) is
    #: computed exactly; ``float32``: the original's single-precision θ, whose decay rounds
    #: away at large τ_θ (θ then never decays)
    theta_decay: str = field(default="exact", metadata=_choices("exact", "float32"))
    #: ``flush`` (the default): subnormal results and inputs count as zero (the CPU's
    #: flush-to-zero mode), as in the original, whose GeNN build used -use_fast_math
    #: (flush-to-zero on the GPU), and as GeNN's CUDA backend here; traces and
    #: conductances that decay below 1.2e-38 would otherwise stay subnormal for ever, and
    #: x86 divides subnormals slowly (training ~1.4-1.8x faster). ``keep``: IEEE
    #: subnormals, as GeNN's CPU backend (which cannot flush). The default run's weights,
    #: thresholds and accuracy are the same either way; only values below 1.2e-38 differ.
    subnormals: str = field(default="flush", metadata=_choices("keep", "flush"))
    #: η of the input→hidden symmetric STDP: on each spike a weight grows by η times the other
    #: side's trace
    eta_input_to_hidden: float = field(default=0.005, metadata=_range(0.0, 10.0))
    #: η of the hidden→output symmetric STDP
    eta_hidden_to_output: float = field(default=0.04, metadata=_range(0.0, 10.0))
    #: upper bound of every input→hidden weight
    w_max_input_to_hidden: float = field(default=1.0,
                                         metadata=_range(0.0, WEIGHT_LIMIT, lo_open=True))
    #: upper bound of every hidden→output weight (the original's ``gEC_MAX``)
    w_max_hidden_to_output: float = field(default=8.0,
                                          metadata=_range(0.0, WEIGHT_LIMIT, lo_open=True))
    #: C, the sum each hidden neuron's incoming input→hidden weights are rescaled to before
    #: every presentation (synaptic scaling)
    norm_input_to_hidden: float = field(default=78.4,
                                        metadata=_range(0.0, WEIGHT_LIMIT, lo_open=True))
    #: the sum each output neuron's incoming hidden→output weights are rescaled to before every
    #: presentation
    norm_hidden_to_output: float = field(default=320.0,
                                         metadata=_range(0.0, WEIGHT_LIMIT, lo_open=True))
    #: initial plastic weights are drawn uniformly from [0, init_weight_max) with the config's
    #: seed
    init_weight_max: float = field(default=0.3,
                                   metadata=_range(0.0, WEIGHT_LIMIT, lo_open=True))
    #: ``a``, the STDP trace increment, once per spike (the original's ``a_plus``, ``a_minus``)
    trace_increment: float = field(default=0.1, metadata=_range(0.0, 10.0))
    #: time constant (ms) of the STDP traces' decay
    trace_tau_ms: float = field(default=20.0, metadata=_range(0.0, None, lo_open=True))
    #: fixed weight of the one-to-one synapse from each hidden neuron to its inhibitory partner
    hidden_to_inhibitory_weight: float = field(default=10.4, metadata=_range(0.0, 1000.0))
    #: fixed weight of the synapses from each inhibitory neuron to every hidden neuron but its
    #: partner
    inhibitory_to_hidden_weight: float = field(default=17.0, metadata=_range(0.0, 1000.0))
    #: ``teacher``: while training, the label's output neuron is a Poisson source at
    #: ``teacher_rate_hz`` (the original); ``current``: the output layer stays LIF and the
    #: label's neuron receives ``supervision_current``
    supervision: str = field(default="teacher", metadata=_choices("teacher", "current"))
    #: rate (Hz) of the teacher's Poisson spikes (``supervision: teacher``)
    teacher_rate_hz: float = field(default=200.0, metadata=_range(0.0, 1000.0))
    #: current injected into the label's output neuron while training (``supervision:
    #: current``)
    supervision_current: float = field(default=20.0, metadata=_range(0.0, 1000.0))

    @property
    def flush_subnormals(self) -> bool:
        """``subnormals: flush``, as the network spec and the backend choice need it."""
        return self.subnormals == "flush"


@dataclass
class TrainingConfig:
    """The presentation protocol and schedule."""

    #: passes over the training images (under ``layerwise``: the joint stage's)
    epochs: int = field(default=1, metadata=_range(0, 1000))
    #: ``joint``: both plastic projections learn together; ``layerwise``: after the joint
    #: epochs, input→hidden and θ freeze and hidden→output trains for ``output_epochs`` more
    schedule: str = field(default="joint", metadata=_choices("joint", "layerwise"))
    #: ``layerwise`` only: epochs of the second stage, in which only hidden→output learns
    output_epochs: int = field(default=1, metadata=_range(0, 1000))
    #: layerwise: where stage 2 starts. ``selected``: from the joint stage's checkpoint that
    #: periodic evaluation chose by ``evaluation.joint_select_on_readout`` (best-joint.npz),
    #: as the original trained its output layer on a hidden layer chosen from an earlier
    #: run; ``last``: from the joint stage's last state. Without periodic evaluation: last.
    output_stage_start: str = field(default="selected", metadata=_choices("selected", "last"))
    #: layerwise with ``epochs: 0``: a checkpoint (.npz) whose input→hidden weights and θ
    #: stage 2 keeps, as the original's last commit read its hidden layer from an earlier
    #: run's files; lets the output layer be retrained or tuned on one fixed hidden layer
    hidden_layer_from: str | None = None
    #: stop training after this many samples (None: all epochs); ``--samples N``
    samples: int | None = field(default=None, metadata=_range(1, None))
    #: the simulation time step (ms)
    dt_ms: float = field(default=0.5, metadata=_range(0.0, 10.0, lo_open=True))
    #: how long each image is shown (ms)
    present_ms: float = field(default=350.0, metadata=_range(0.0, None, lo_open=True))
    #: rest with no input after each presentation (ms)
    rest_ms: float = field(default=150.0, metadata=_range(0.0, None))
    #: input intensity of a first presentation: a pixel of value p (0-255) fires at
    #: p·intensity/8 Hz
    start_intensity: float = field(default=2.0, metadata=_range(0.0, None, lo_open=True))
    #: the highest intensity the retry rule raises to
    max_intensity: float = field(default=32.0, metadata=_range(0.0, None, lo_open=True))
    #: retry rule: a presentation in which the hidden layer fired fewer spikes is shown again
    #: with the intensity raised by 1, up to ``max_intensity``
    min_hidden_spikes: int = field(default=5, metadata=_range(0, None))
    #: write ``checkpoint.npz`` and a snapshot every N samples, and at the end (0: only at the
    #: end)
    checkpoint_every: int = field(default=10_000, metadata=_range(0, None))
    #: periodic evaluation every N samples (and at the end; 0: none): label, score both
    #: readouts, keep the best checkpoint as ``best.npz``; the final report tests the last and
    #: the best checkpoint on the test set
    eval_every: int = field(default=0, metadata=_range(0, None))
    #: three-way split: train on the first 50 000 images, score periodic evaluations on the
    #: last 10 000, the test set once at the end
    validation: bool = False
    #: the running training accuracy counts the last N samples
    running_window: int = field(default=1000, metadata=_range(1, None))


@dataclass
class EvaluationConfig:
    """How trained networks are read out."""

    #: independent network copies evaluated in parallel (plasticity off)
    batch_size: int = field(default=8, metadata=_range(1, 4096))
    #: test images the final evaluation scores (None: all); ``--eval-samples N``
    samples: int | None = field(default=None, metadata=_range(1, None))
    #: training images used to label the hidden neurons for the final evaluation's assignment
    #: readout; a run limited by ``training.samples`` labels on min(assignment_samples,
    #: max(1000, samples)) images and says so
    assignment_samples: int = field(default=10_000, metadata=_range(0, None))
    #: images each periodic evaluation scores (None: the whole split it scores)
    periodic_samples: int | None = field(default=None, metadata=_range(1, None))
    #: training images periodic evaluations label on (None: ``assignment_samples``)
    periodic_label_samples: int | None = field(default=None, metadata=_range(0, None))
    #: the readout whose periodic score selects ``best.npz``
    select_on_readout: str = field(default="supervised",
                                   metadata=_choices("supervised", "assignment"))
    #: layerwise schedule: the readout that selects the joint stage's checkpoint
    #: (``best-joint.npz``, where stage 2 starts). Assignment by default: the hidden layer is
    #: what stage 2 keeps, and the assignment readout scores it alone; ``select_on_readout``
    #: then selects ``best.npz`` among stage 2's evaluations only.
    joint_select_on_readout: str = field(default="assignment",
                                         metadata=_choices("supervised", "assignment"))
    #: the split whose periodic score selects ``best.npz``: ``validation`` (the three-way
    #: split) or ``test`` (the original's protocol; optimistic, and reported as such; needs
    #: ``training.validation: false``)
    select_split: str = field(default="validation", metadata=_choices("validation", "test"))


@dataclass
class Config:
    """A whole run. ``name`` names the preset it came from and the default run folder."""

    #: the preset this config came from; names the default run folder
    #: ``models/<name>-s<seed>/``
    name: str = DEFAULT_PRESET
    #: ``mnist`` or ``fashion-mnist``; fetched and checked on first use
    dataset: str = field(default="mnist", metadata=_choices("mnist", "fashion-mnist"))
    #: the one seed every random choice flows from (initial weights, Poisson inputs, teacher
    #: spikes); the builtin backend reproduces a run bit for bit from it
    seed: int = field(default=1, metadata=_range(0, 2**63 - 1))
    #: ``auto`` (the builtin backend on every machine: see Backends for why), ``builtin``,
    #: ``genn-cuda`` or ``genn-cpu``
    backend: str = field(default="auto", metadata=_choices(*BACKENDS))
    #: most threads the builtin backend uses; None (the default): every core this process
    #: may use (its affinity mask). Results do not depend on it, only speed does.
    threads: int | None = field(default=None, metadata=_range(1, 1024))
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def to_dict(self) -> dict[str, Any]:
        """Every key as plain nested dicts, defaults included: what a run's checkpoint and
        ``config.yaml`` store, so the run can be rebuilt exactly from them."""
        return dataclasses.asdict(self)

    def result_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the execution settings (``threads``), which change speed
        but never results: what a checkpoint records, so its bytes do not depend on the
        machine it was made on (a resumed run uses the new machine's cores)."""
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_KEYS}

    def to_yaml(self) -> str:
        """:meth:`to_dict` as YAML in the schema's key order (the text of ``config.yaml``)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------
# Building and validating
# ---------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, str):
            try:
                as_float = float(value)
                value = int(as_float) if as_float.is_integer() else value
            except (ValueError, OverflowError):
                pass
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e7" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer too large for a float
                number = math.inf
            if math.isnan(number):
                raise UserError(f"config key '{key}': NaN is not allowed")
            if math.isinf(number):  # no setting means anything at infinity here
                shown = repr(value) if len(repr(value)) < 30 else "the number given"
                raise UserError(f"config key '{key}': {shown} is not a finite number; "
                                "give a finite value")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    raise UserError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")


def _check_metadata(value: Any, meta: typing.Mapping[str, Any], key: str) -> None:
    if value is None:
        return
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(meta["choices"])
        hint = did_you_mean(value, meta["choices"]).strip()
        raise UserError(f"config key '{key}': {value!r} is not one of: {allowed}"
                        + (f"; {hint}" if hint else ""))
    if "range" in meta:
        lo, hi, lo_open = meta["range"]
        too_low = lo is not None and (value <= lo if lo_open else value < lo)
        too_high = hi is not None and value > hi
        if too_low or too_high:
            left = "(" if lo_open else "["
            lo_s = "-inf" if lo is None else f"{lo:g}"
            hi_s = "inf" if hi is None else f"{hi:g}"
            raise UserError(f"config key '{key}': {value!r} is outside the allowed range "
                            f"{left}{lo_s}, {hi_s}]")


def dotted_keys(cls: type | None = None, prefix: str = "") -> list[str]:
    """Every leaf key of the schema, dotted (``network.theta_plus``...): where a key put in
    the wrong section belongs."""
    cls = Config if cls is None else cls
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += dotted_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


def _suggest_key(name: str, prefix: str, fields: typing.Iterable[str]) -> str:
    """``"did you mean 'network.theta_plus'? "`` for an unknown key: the same key in another
    section (``--set samples=10`` means ``training.samples``), else a close key of this
    section, else a close key of another, else ``""``."""
    leaves = {key.rsplit(".", 1)[-1]: key for key in reversed(dotted_keys())}
    if name in leaves:
        return f"did you mean '{leaves[name]}'? "
    match = closest(name, fields)
    if match is not None:
        return f"did you mean '{prefix}{match}'? "
    match = closest(name, leaves)
    return f"did you mean '{leaves[match]}'? " if match is not None else ""


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        where = f"'{prefix.rstrip('.')}'" if prefix else "the top level"
        raise UserError(f"config: {where} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}{unknown[0]}"
        hint = _suggest_key(unknown[0], prefix, fields)
        raise UserError(f"config key '{key}' is unknown; {hint}allowed keys here: "
                        f"{', '.join(fields)}")
    kwargs = {}
    for name, raw in data.items():
        key = f"{prefix}{name}"
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, raw, f"{key}.")
        else:
            value = _coerce(raw, tp, key)
            _check_metadata(value, fields[name].metadata, key)
            kwargs[name] = value
    return cls(**kwargs)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a (possibly partial) mapping against the schema; defaults fill the rest."""
    config = _build(Config, data, "")
    _check_consistency(config)
    return config


def _check_consistency(config: Config) -> None:
    t = config.training
    if t.hidden_layer_from is not None and (t.schedule != "layerwise" or t.epochs != 0):
        raise UserError("config key 'training.hidden_layer_from' needs training.schedule="
                        "layerwise and training.epochs=0 (stage 2 alone, on that hidden layer)")
    if t.max_intensity < t.start_intensity:
        raise UserError("config key 'training.max_intensity' must be >= "
                        f"training.start_intensity ({t.start_intensity:g})")
    for name in ("present_ms", "rest_ms"):  # before round(), which a huge ratio overflows
        steps = getattr(t, name) / t.dt_ms
        if steps > MAX_STEPS:
            raise UserError(f"config key 'training.{name}': {getattr(t, name):g} ms is "
                            f"{steps:.3g} time steps of {t.dt_ms:g} ms; at most {MAX_STEPS:,} "
                            "are allowed")

    def whole(ms: float) -> bool:
        return abs(ms / t.dt_ms - round(ms / t.dt_ms)) < 1e-9

    if not (whole(t.present_ms) and whole(t.rest_ms)):
        raise UserError("config keys 'training.present_ms' and 'training.rest_ms' must be whole "
                        f"multiples of training.dt_ms ({t.dt_ms:g})")


def list_presets() -> list[str]:
    """The shipped presets' names (``--preset NAME``), sorted, as error messages list them."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def read_yaml(path: Path, what: str = "config file") -> Any:
    """A YAML file's contents; an unreadable file or bad YAML is one line naming ``what``."""
    try:
        text = path.read_text(encoding="utf-8")  # YAML's own encoding, whatever the locale
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # a binary file (a checkpoint, an image) given by mistake
        raise UserError(f"{what} {path} is not a YAML text file (byte {exc.object[exc.start]:#04x}"
                        f" at offset {exc.start} is not UTF-8); give a .yaml file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{what} {path} is not valid YAML: "
                        f"{str(exc).splitlines()[0]}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    return data


def preset_dict(name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset's values; a preset may name another as its base (``preset: NAME``), as the
    ``paper-*`` presets do: the original's protocol on top of a network preset."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown preset '{name}'; {did_you_mean(name, list_presets())}"
                        f"available: {', '.join(list_presets())}")
    if name in _seen:
        raise UserError(f"preset '{name}' names itself as its base (via {' -> '.join(_seen)})")
    data = _read_yaml(path)
    own_name = data.get("name", name)
    base = data.pop("preset", None)
    if base is not None:
        data = _merge(preset_dict(str(base), (*_seen, name)), data)
    data["name"] = own_name
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"network.eta_input_to_hidden=0.01"`` → (["network", "eta_input_to_hidden"], 0.01)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects dotted.key=value, got '{text}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = _merge({}, data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {text}: '{part}' is not a section")
        node[path[-1]] = value
    return out


def load_config(preset: str | None = None, config_file: Path | None = None,
                overrides: list[str] | None = None) -> Config:
    """Preset (default ``mnist-400``) ← config file ← ``--set`` overrides, then validate.

    A config file may name its own preset with ``preset: NAME`` as a base.
    """
    data: dict[str, Any] = {}
    file_data: dict[str, Any] = {}
    if config_file is not None:
        file_data = _read_yaml(Path(config_file))
        base = file_data.pop("preset", None)
        if base is not None and preset is None:
            preset = str(base)
    if preset is not None or config_file is None:
        data = preset_dict(preset or DEFAULT_PRESET)
    data = _merge(data, file_data)
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data)
