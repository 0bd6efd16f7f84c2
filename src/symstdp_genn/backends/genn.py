"""The GeNN backend: the model definitions of :mod:`symstdp_genn.models`, compiled by PyGeNN 5.

This is the only module that imports PyGeNN. It hands the definitions to
``create_neuron_model``, ``create_postsynaptic_model`` and
``create_weight_update_model`` unchanged, lets GeNN generate and compile CUDA
(``genn-cuda``) or single-threaded C++ (``genn-cpu``) code, and drives the
result through the same :class:`~symstdp_genn.backends.base.Backend` verbs as
the builtin backend.

How each part of the protocol maps onto GeNN 5:

- input and teacher rates, learning on/off and the output layer's mode change
  without rebuilding: rates are variables pushed once per presentation, the
  switches are dynamic parameters;
- spike counts come from GeNN's spike recording, pulled once per ``run`` (at
  most :data:`RECORDING_STEPS` steps at a time) and counted on the host;
- synaptic scaling: GeNN 5 custom updates cannot reduce a weight matrix over
  its presynaptic axis, so the column sums are taken on the host from the
  pulled weights and a custom update ``g *= scale[id_syn % num_post]`` applies
  the per-target factor where the weights live (only the N-element factor
  travels to the device);
- the all-but-self inhibition is Toeplitz connectivity generated on the fly
  (one diagonal per offset), so nothing of size N² is allocated.

GeNN compiles its random seed into the generated code, so the seed is part of
the build (and of the build folder's name); :meth:`GeNNBackend.reseed` restarts
GeNN's streams from that build seed. GeNN's CPU backend simulates one lane only.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pygenn import (
    GeNNModel,
    create_custom_update_model,
    create_neuron_model,
    create_postsynaptic_model,
    create_toeplitz_connect_init_snippet,
    create_weight_update_model,
    create_wu_var_ref,
    init_postsynaptic,
    init_sparse_connectivity,
    init_toeplitz_connectivity,
    init_weight_update,
)

from ..errors import UserError
from ..network import WEIGHT_VAR, NetworkSpec, Population, Projection
from . import cuda_env
from .base import Backend, lane_values
from .spike_recording import RECORDING_STEPS, count_recorded_spikes

log = logging.getLogger(__name__)

_GENN_BACKENDS = {"cuda": "cuda", "cpu": "single_threaded_cpu"}

#: all-but-self connectivity without a stored matrix: diagonal d connects
#: presynaptic i to postsynaptic (i + 1 + d) mod N, for d = 0 … N−2
_ALL_BUT_SELF = create_toeplitz_connect_init_snippet(
    "all_but_self",
    diagonal_build_code="""
for_each_synapse {
    addSynapse((id_pre + 1 + id_diag) % num_post, 0);
}
""",
    calc_max_row_len_func=lambda num_pre, num_post, pars: max(num_post - 1, 1),
    calc_kernel_size_func=lambda pars: [1],
)

#: synaptic scaling where the weights live: one factor per target neuron.
#: The target is written ``id_syn % num_post`` (a dense matrix is row-major), not
#: ``id_post``: GeNN 5.4.0's SIMT backend (CUDA) declares ``id_post`` for a custom
#: update over a dense synapse group with an initialiser that lacks its semicolon
#: (``const unsigned int idPost = lid % (N)``, backendSIMT.cc), so nvcc stops with
#: 'expected a ";"' in customUpdate.cc. Both spellings name the same neuron, and
#: genn-cpu's results are unchanged.
_COLUMN_SCALE = create_custom_update_model(
    "column_scale",
    var_refs=[("g", "scalar")],
    extra_global_params=[("scale", "scalar*")],
    update_code="g *= scale[id_syn % num_post];",
)


# ---------------------------------------------------------------------------
# Environment checks
# ---------------------------------------------------------------------------

def cuda_problem() -> str | None:
    """Why GeNN's CUDA backend cannot build and run here (one line), or None when it can;
    see :mod:`symstdp_genn.backends.cuda_env`, which checks without importing PyGeNN."""
    return cuda_env.cuda_problem()


def build_root() -> Path:
    """Where GeNN's generated code and binaries are kept between runs."""
    base = os.environ.get("SYMSTDP_GENN_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "symstdp-genn"
    return root / "genn"


# ---------------------------------------------------------------------------
# Model definitions → PyGeNN
# ---------------------------------------------------------------------------

def _neuron_model(m: Any) -> Any:
    return create_neuron_model(
        m.name, params=list(m.params), vars=list(m.vars),
        derived_params=list(m.derived_params), sim_code=m.sim_code,
        threshold_condition_code=m.threshold_condition_code, reset_code=m.reset_code or None)


def _postsynaptic_model(m: Any) -> Any:
    return create_postsynaptic_model(
        m.name, params=list(m.params), neuron_var_refs=list(m.neuron_var_refs),
        derived_params=list(m.derived_params), sim_code=m.sim_code)


def _weight_update_model(m: Any) -> Any:
    return create_weight_update_model(
        m.name, params=list(m.params), vars=list(m.vars), pre_vars=list(m.pre_vars),
        post_vars=list(m.post_vars), derived_params=list(m.derived_params),
        pre_spike_syn_code=m.pre_spike_syn_code or None,
        post_spike_syn_code=m.post_spike_syn_code or None,
        pre_spike_code=m.pre_spike_code or None, post_spike_code=m.post_spike_code or None,
        pre_dynamics_code=m.pre_dynamics_code or None,
        post_dynamics_code=m.post_dynamics_code or None)


def _var_values(values: Mapping[str, Any], types: tuple[tuple[str, str], ...] = ()
                ) -> dict[str, Any]:
    """Initial values as GeNN takes them: numbers, or flat arrays of each variable's type
    (``types``: the model's ``(name, type)`` pairs; float32 unless declared ``double``)."""
    dtypes = {name: np.float64 if vtype == "double" else np.float32 for name, vtype in types}
    out: dict[str, Any] = {}
    for name, value in values.items():
        out[name] = (np.ascontiguousarray(value, dtype=dtypes.get(name, np.float32)).ravel()
                     if isinstance(value, np.ndarray) else float(value))
    return out


def _genn_message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return re.sub(r"\s+", " ", text)


class GeNNBackend(Backend):
    """A network built and run by PyGeNN 5 (``device`` = ``cuda`` or ``cpu``)."""

    supports_active_mask = False

    def __init__(self, spec: NetworkSpec, batch_size: int = 1, seed: int = 0,
                 device: str = "cuda", load: bool = True):
        """``load=False`` generates and compiles the model without loading it (no
        memory allocated, no device touched after code generation): what the
        compile-only CUDA check needs on a machine without a GPU."""
        if device not in _GENN_BACKENDS:
            raise ValueError(f"device must be one of {sorted(_GENN_BACKENDS)}")
        if device == "cpu" and batch_size > 1:
            log.info("GeNN's single-threaded CPU backend simulates one lane; "
                     "using batch size 1 instead of %d", batch_size)
            batch_size = 1
        super().__init__(spec, batch_size, seed)
        self.name = f"genn-{device}"
        self.device = device
        # GeNN takes a 32-bit seed and treats 0 as "seed from the OS"
        self._build_seed = int(seed) % (2**32 - 1) + 1
        self.model_name = (f"symstdp_{spec.fingerprint()[:16]}_{device}"
                           f"_b{batch_size}_s{self._build_seed}")
        self.run_seconds = 0.0
        self.normalize_seconds = 0.0
        self.step = 0
        self._counts = {p.name: np.zeros((batch_size, p.size), np.int64)
                        for p in spec.populations if p.record_spikes}
        self._model = self._build()
        self.build_seconds = self._build_seconds
        if load:
            self._load()

    # -- build -------------------------------------------------------------------
    def _build(self) -> Any:
        spec = self.spec
        # optimize_code: -O3 -ffast-math for the CPU (no flush-to-zero in a shared
        # library), -O3 -use_fast_math for CUDA, which flushes subnormals to zero: CUDA
        # gets it only for network.subnormals: flush (the default; the original's GeNN
        # build used it too); keep builds CUDA with IEEE subnormals and division
        optimize = self.device == "cpu" or spec.flush_subnormals
        model = GeNNModel(spec.precision, self.model_name, backend=_GENN_BACKENDS[self.device],
                          optimize_code=optimize)
        model.dt = spec.dt
        model.batch_size = self.batch_size
        model.seed = self._build_seed
        self._pops: dict[str, Any] = {}
        self._syns: dict[str, Any] = {}
        self._scalers: dict[str, Any] = {}
        self._definitions: list[Any] = []
        for pop in spec.populations:
            self._pops[pop.name] = self._add_population(model, pop)
        for proj in spec.projections:
            self._syns[proj.name] = self._add_projection(model, proj)
        folder = build_root() / self.model_name
        folder.mkdir(parents=True, exist_ok=True)
        tic = time.perf_counter()
        # cuRAND's headers from an nvidia-curand Python package: nvcc reads CPATH
        # (PyGeNN has no preference for extra nvcc flags); GeNN's make and nvcc inherit it
        cpath = cuda_env.curand_cpath() if self.device == "cuda" else None
        saved_cpath = os.environ.get("CPATH")
        if cpath is not None:
            os.environ["CPATH"] = cpath
        try:
            model.build(str(folder))
        except subprocess.CalledProcessError as exc:
            raise UserError(
                f"GeNN could not compile model '{self.model_name}' ({exc.cmd[0]} exited with "
                f"{exc.returncode}); the compiler's messages are above, the generated code is "
                f"in {folder / (self.model_name + '_CODE')}") from None
        except Exception as exc:  # pybind surfaces GeNN's errors as plain exceptions
            raise UserError(f"GeNN could not generate code for model '{self.model_name}': "
                            f"{_genn_message(exc)}") from None
        finally:
            if cpath is not None:
                if saved_cpath is None:
                    os.environ.pop("CPATH", None)
                else:
                    os.environ["CPATH"] = saved_cpath
        self._build_seconds = time.perf_counter() - tic
        log.info("GeNN model %s ready in %.1f s (%s)", self.model_name,
                 self._build_seconds, folder)
        return model

    def _add_population(self, model: Any, pop: Population) -> Any:
        neuron_model = _neuron_model(pop.model)
        self._definitions.append(neuron_model)
        group = model.add_neuron_population(pop.name, pop.size, neuron_model,
                                            dict(pop.params),
                                            _var_values(pop.var_init, pop.model.vars))
        for param in pop.dynamic_params:
            group.set_param_dynamic(param)
        if pop.record_spikes:
            group.spike_recording_enabled = True
        return group

    def _add_projection(self, model: Any, proj: Projection) -> Any:
        source, target = self._pops[proj.source], self._pops[proj.target]
        # PyGeNN's initialisers do not keep the model objects alive: we do
        wu_model = _weight_update_model(proj.weight_update)
        ps_model = _postsynaptic_model(proj.postsynaptic)
        self._definitions += [wu_model, ps_model]
        m = proj.weight_update
        wu = init_weight_update(wu_model, dict(proj.wu_params),
                                _var_values(proj.wu_var_init, m.vars),
                                _var_values(proj.pre_var_init, m.pre_vars),
                                _var_values(proj.post_var_init, m.post_vars))
        var_refs = {name: name for name, _ in proj.postsynaptic.neuron_var_refs}
        ps = init_postsynaptic(ps_model, dict(proj.ps_params),
                               var_refs=var_refs)
        if proj.connectivity == "dense":
            syn = model.add_synapse_population(proj.name, "DENSE", source, target, wu, ps)
        elif proj.connectivity == "one_to_one":
            syn = model.add_synapse_population(proj.name, "SPARSE", source, target, wu, ps,
                                               init_sparse_connectivity("OneToOne"))
        elif proj.connectivity == "all_but_self":
            if proj.weight_update.vars:
                raise ValueError(f"projection {proj.name}: all_but_self connectivity needs a "
                                 "weight-update model without per-synapse variables")
            syn = model.add_synapse_population(proj.name, "TOEPLITZ", source, target, wu, ps,
                                               init_toeplitz_connectivity(_ALL_BUT_SELF))
        else:
            raise ValueError(f"projection {proj.name}: unknown connectivity {proj.connectivity}")
        for param in proj.dynamic_params:
            syn.set_wu_param_dynamic(param)
        if proj.scalable:
            scaler = model.add_custom_update(f"scale_{proj.name}", f"scale_{proj.name}",
                                             _COLUMN_SCALE, {}, {},
                                             {"g": create_wu_var_ref(syn, WEIGHT_VAR)})
            n_post = self.spec.population(proj.target).size
            scaler.extra_global_params["scale"].set_init_values(np.ones(n_post, np.float32))
            self._scalers[proj.name] = scaler
        return syn

    def _load(self) -> None:
        try:
            self._model.load(num_recording_timesteps=RECORDING_STEPS)
        except Exception as exc:
            raise UserError(f"GeNN could not load model '{self.model_name}': "
                            f"{_genn_message(exc)}") from None
        self._recording = {name: self._model._runtime.get_array(self._pops[name], "recordSpk")
                           for name in self._counts}
        self.step = 0
        self._streams_fresh = True  # no random number drawn since the load
        for pop in self.spec.populations:
            for param in pop.dynamic_params:
                self.set_dynamic_param(pop.name, param, pop.params[param])
        for proj in self.spec.projections:
            for param in proj.dynamic_params:
                self.set_dynamic_param(proj.name, param, proj.wu_params[param])

    # -- variable access -----------------------------------------------------------
    def _variable(self, target: str, var: str) -> tuple[Any, tuple[int, ...], bool]:
        """The PyGeNN variable object, the shape the interface uses, and whether it is
        a weight matrix (one lane's values are the interface's)."""
        if target in self._pops:
            group = self._pops[target]
            if var not in group.vars:
                raise KeyError(f"{target} has no variable '{var}'")
            return group.vars[var], (self.batch_size, self.spec.population(target).size), False
        if target not in self._syns:
            raise KeyError(f"no population or projection named '{target}'")
        syn, proj = self._syns[target], self.spec.projection(target)
        n_pre = self.spec.population(proj.source).size
        n_post = self.spec.population(proj.target).size
        if var == "inSyn":
            return syn.out_post, (self.batch_size, n_post), False
        if var in syn.vars:
            if proj.connectivity != "dense":
                raise KeyError(f"{target}: per-synapse '{var}' is only exposed for dense "
                               "projections")
            return syn.vars[var], (n_pre, n_post), True
        if var in syn.pre_vars:
            return syn.pre_vars[var], (self.batch_size, n_pre), False
        if var in syn.post_vars:
            return syn.post_vars[var], (self.batch_size, n_post), False
        raise KeyError(f"{target} has no variable '{var}'")

    def _pulled(self, target: str, var: str) -> np.ndarray:
        """The host view of a variable after a pull (not a copy)."""
        obj, shape, per_synapse = self._variable(target, var)
        obj.pull_from_device()
        view = np.asarray(obj.view)
        if per_synapse:  # lanes hold identical copies; the interface shows one
            return view.reshape(-1, *shape)[0]
        return view.reshape(shape)

    def get_var(self, target: str, var: str) -> np.ndarray:
        return self._pulled(target, var).copy()

    def set_var(self, target: str, var: str, values: np.ndarray | float) -> None:
        obj, shape, per_synapse = self._variable(target, var)
        view = np.asarray(obj.view)
        values = np.asarray(values, dtype=view.dtype)
        if per_synapse:
            lanes = view.reshape(-1, *shape)
            lanes[...] = np.broadcast_to(values, shape)
        else:
            view.reshape(shape)[...] = np.broadcast_to(values, shape)
        obj.push_to_device()

    def set_dynamic_param(self, target: str, param: str, value: float) -> None:
        dynamic = (self.spec.population(target).dynamic_params if target in self._pops
                   else self.spec.projection(target).dynamic_params)
        if param not in dynamic:
            raise KeyError(f"{target}.{param} is not a dynamic parameter")
        group = self._pops.get(target) or self._syns[target]
        group.set_dynamic_param_value(param, float(value))

    # -- simulation ------------------------------------------------------------------
    def run(self, steps: int, record: bool = True, active: np.ndarray | None = None) -> None:
        if active is not None:
            raise ValueError("the GeNN backend runs every lane (supports_active_mask is False)")
        tic = time.perf_counter()
        model = self._model
        self._streams_fresh = False
        remaining = int(steps)
        while remaining > 0:
            chunk = min(remaining, RECORDING_STEPS)
            first_row = model.timestep % RECORDING_STEPS
            for _ in range(chunk):
                model.step_time()
            if record and self._counts:
                self._count_spikes(first_row, chunk)
            remaining -= chunk
        self.step += int(steps)
        self.run_seconds += time.perf_counter() - tic

    def _count_spikes(self, first_row: int, rows: int) -> None:
        """Add the spikes of ``rows`` recorded steps, starting at ring row ``first_row``."""
        self._model.pull_recording_buffers_from_device()
        for name, array in self._recording.items():
            counts = self._counts[name]
            buffer = np.frombuffer(array.host_view, dtype=np.uint32)
            counts += count_recorded_spikes(buffer, first_row, rows, *counts.shape)

    def spike_counts(self, population: str) -> np.ndarray:
        if population not in self._counts:
            raise KeyError(f"spikes of {population} are not recorded")
        return self._counts[population].astype(np.int32)

    def reset_counts(self) -> None:
        for counts in self._counts.values():
            counts.fill(0)

    def normalize(self, projection: str, target_sum: float) -> None:
        if projection not in self._scalers:
            raise ValueError(f"{projection}: normalisation needs dense weights 'g'")
        tic = time.perf_counter()
        sums = self._pulled(projection, WEIGHT_VAR).sum(axis=0, dtype=np.float64)
        factor = np.ones_like(sums, dtype=np.float32)
        positive = sums > 0.0
        factor[positive] = (target_sum / sums[positive]).astype(np.float32)
        egp = self._scalers[projection].extra_global_params["scale"]
        egp.view[:] = factor
        egp.push_to_device()
        self._model.custom_update(f"scale_{projection}")
        self.normalize_seconds += time.perf_counter() - tic

    # -- state ---------------------------------------------------------------------
    def _state_keys(self) -> list[tuple[str, str]]:
        keys = []
        for pop in self.spec.populations:
            keys += [(pop.name, var) for var, _ in pop.model.vars]
        for proj in self.spec.projections:
            keys.append((proj.name, "inSyn"))
            wu = proj.weight_update
            if proj.connectivity == "dense":
                keys += [(proj.name, var) for var, _ in wu.vars]
            keys += [(proj.name, var) for var, _ in wu.pre_vars + wu.post_vars]
        return keys

    def state_keys(self) -> list[str]:
        return [f"{t}.{v}" for t, v in self._state_keys()]

    def get_state(self) -> dict[str, np.ndarray]:
        state = {f"{t}.{v}": self.get_var(t, v) for t, v in self._state_keys()}
        state["__step__"] = np.array(self.step, dtype=np.int64)
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        for target, var in self._state_keys():
            key = f"{target}.{var}"
            if key not in state:
                continue
            _, shape, per_synapse = self._variable(target, var)
            self.set_var(target, var, lane_values(key, state[key], shape, not per_synapse))
        if "__step__" in state:
            self.step = int(state["__step__"])

    def reset(self) -> None:
        """Reload: GeNN's initialisation sets the spec's initial values and restarts
        its random streams from the build seed."""
        self._model.unload()
        self._load()
        self.reset_counts()

    def reseed(self, seed: int) -> None:
        """Restart GeNN's random streams (from the build seed, which GeNN compiles in)."""
        if seed != self.seed:
            log.debug("GeNN compiles its seed in: streams restart from build seed %d, "
                      "not %d", self._build_seed, seed)
        if self._streams_fresh:
            return
        state = self.get_state()
        self.reset()
        self.set_state(state)

    def close(self) -> None:
        if self._model is not None and getattr(self._model, "_loaded", False):
            self._model.unload()
