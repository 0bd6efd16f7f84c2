"""The builtin backend: generated C, compiled once, driven through ctypes.

Python owns every array (numpy); the C library gets a table of pointers and runs
a whole presentation per call, so Python's cost is per sample, not per step.

Threads: several lanes run in parallel (one thread per lane); a single lane
(training) splits each time step across threads once a population is large enough
to be cut into per-thread blocks (:data:`~.codegen.MIN_SPLIT_NEURONS`), and only
while that measures faster than one thread (:mod:`.threads`). Results are
byte-identical for any thread count (see :mod:`.codegen`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import time
from collections.abc import Mapping

import numpy as np

from ...network import WEIGHT_VAR, NetworkSpec
from ..base import Backend, lane_values
from .codegen import (
    MAX_STEP_THREADS,
    MIN_SPLIT_NEURONS,
    PROFILED_THREADS,
    ArraySpec,
    generate,
    profile_labels,
)
from .compiler import compile_library
from .threads import EdgeBalancer, ThreadChooser

#: numpy dtypes of the generated code's C types (``scalar`` is float: single precision)
_NP_TYPES = {"scalar": np.float32, "float": np.float32, "double": np.float64,
             "int32_t": np.int32, "uint32_t": np.uint32, "uint8_t": np.uint8}

#: every array starts on a cache line: numpy's 16-byte alignment left the 64-byte vector
#: loads of the neuron loops straddling two lines each
ALIGN_BYTES = 64
#: synaptic scaling is split across threads from this many weights (784 × 1 600 up)
NORMALIZE_THREADS_MIN_WEIGHTS = 1_000_000


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count),
    capped by ``OMP_NUM_THREADS`` when set: Dask workers, batch schedulers and users set
    it to share a machine between processes, and more threads would only oversubscribe."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        cores = max(1, os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores


def aligned_zeros(shape: tuple[int, ...], dtype: type, align: int = ALIGN_BYTES) -> np.ndarray:
    """Zeros whose data starts on an ``align``-byte boundary (numpy guarantees 16)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class BuiltinBackend(Backend):
    name = "builtin"
    supports_active_mask = True

    def __init__(self, spec: NetworkSpec, batch_size: int = 1, seed: int = 0,
                 threads: int | None = None, profile: bool = False):
        """``threads``: most threads to use (default: every core this process may use);
        ``profile``: a build that times every block of the time step (:meth:`profile`)."""
        super().__init__(spec, batch_size, seed)
        if spec.precision != "float":
            raise ValueError("the builtin backend compiles single precision only")
        self.threads = max(1, min(threads or available_cores(), MAX_STEP_THREADS))
        largest = max(p.size for p in spec.populations)
        #: most threads per run call: one per lane, or a split step for one lane with a
        #: population large enough to split (mnist-1600 up; below, a thread would only
        #: wait at the barriers)
        self.run_threads = (min(self.threads, batch_size) if batch_size > 1 else
                            self.threads if largest >= MIN_SPLIT_NEURONS else 1)
        #: a split step runs on whichever of 1 and run_threads threads measures faster
        self.chooser = (ThreadChooser(self.run_threads) if batch_size == 1 and
                        self.run_threads > 1 else None)
        #: where the split step's blocks start, moved towards the thread that waits
        self.balancer = EdgeBalancer(self.run_threads) if self.chooser else None
        self._busy = np.zeros(MAX_STEP_THREADS)
        source, self._layout, self._dynamic = generate(spec, profile=profile)
        self._profile_labels = profile_labels(spec) if profile else []
        #: the library's timers where this backend started: two backends of one network
        #: share one loaded library, and with it the timers
        self._profile_start: dict[int, dict[str, float]] = {}
        self.library_path = compile_library(source, "symstdp_net-profile" if profile
                                            else "symstdp_net")
        self._lib = ctypes.CDLL(str(self.library_path))
        self._lib.sim_run.argtypes = [
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
            ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
            ctypes.c_void_p]
        self._lib.sim_run.restype = ctypes.c_int
        self._lib.normalize_columns.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
            ctypes.c_double, ctypes.c_int]
        self._arrays: dict[str, np.ndarray] = {}
        for arr in self._layout:
            shape = (batch_size, *arr.shape) if arr.batched else arr.shape
            self._arrays[arr.key] = aligned_zeros(shape, _NP_TYPES[arr.ctype])
        self._specs: dict[str, ArraySpec] = {a.key: a for a in self._layout}
        #: per scaled projection, its columns changed since the last synaptic scaling
        self._changed = {a.key.removesuffix(".changed"): self._arrays[a.key]
                         for a in self._layout if a.kind == "scaling"
                         and a.key.endswith(".changed")}
        self._pointers = (ctypes.c_void_p * len(self._layout))(
            *[self._arrays[a.key].ctypes.data for a in self._layout])
        self._dyn = np.zeros(max(1, len(self._dynamic)), dtype=np.float32)
        self.step = 0
        # time inside the compiled code, for the benchmarks' cost breakdown
        self.run_seconds = 0.0
        self.normalize_seconds = 0.0
        self._initialise()
        if profile:
            self._profile_start = {t: self._profile_read(t) for t in range(PROFILED_THREADS)}

    # -- set-up ----------------------------------------------------------------
    def reset(self) -> None:
        """Back to the spec's initial values (weights included) and fresh streams."""
        for arr in self._arrays.values():
            arr.fill(0)
        self.step = 0
        self._initialise()
        self._weights_changed()

    def _initialise(self) -> None:
        for pop in self.spec.populations:
            for var, value in pop.var_init.items():
                self.set_var(pop.name, var, value)
            for param in pop.dynamic_params:
                self.set_dynamic_param(pop.name, param, pop.params[param])
        for proj in self.spec.projections:
            for inits in (proj.wu_var_init, proj.pre_var_init, proj.post_var_init):
                for var, value in inits.items():
                    self.set_var(proj.name, var, value)
            for param in proj.dynamic_params:
                self.set_dynamic_param(proj.name, param, proj.wu_params[param])

        self.reseed(self.seed)

    def reseed(self, seed: int) -> None:
        """One independent xoshiro128+ stream per neuron and lane, from ``seed``."""
        self.seed = seed
        for pop in self.spec.populations:
            arr = self._arrays.get(f"{pop.name}.rng")
            if arr is not None:
                tag = int.from_bytes(hashlib.sha256(pop.name.encode()).digest()[:4], "little")
                seq = np.random.SeedSequence([seed, tag])
                words = seq.generate_state(arr.size, np.uint32).reshape(arr.shape)
                words[..., 0, :] |= words[..., 0, :] == 0  # an all-zero state never moves
                arr[...] = words

    def _key(self, target: str, var: str) -> str:
        key = f"{target}.{var}"
        if key not in self._arrays:
            raise KeyError(f"{target} has no variable '{var}'")
        return key

    # -- Backend interface -------------------------------------------------------
    def run(self, steps: int, record: bool = True, active: np.ndarray | None = None) -> None:
        if steps <= 0:
            return
        mask = None
        if active is not None:
            mask = np.ascontiguousarray(active, dtype=np.uint8)
            if mask.shape != (self.batch_size,):
                raise ValueError(f"active mask must have shape ({self.batch_size},)")
        key = (int(steps), bool(record))
        threads = self.chooser.pick(key) if self.chooser else self.run_threads
        split = self.balancer is not None and threads > 1
        cut = self.balancer.cut if split else None
        tic = time.perf_counter()
        self._lib.sim_run(self._pointers, self._dyn.ctypes.data, self.batch_size, int(steps),
                          self.step, None if mask is None else mask.ctypes.data, int(record),
                          threads, None if cut is None else cut.ctypes.data,
                          self._busy.ctypes.data if split else None)
        seconds = time.perf_counter() - tic
        if self.chooser:
            self.chooser.record(key, threads, seconds / steps)
        if split and threads == self.balancer.threads:
            self.balancer.record(self._busy)
        self.run_seconds += seconds
        self.step += int(steps)

    def spike_counts(self, population: str) -> np.ndarray:
        return self._arrays[self._key(population, "counts")].copy()

    def reset_counts(self) -> None:
        for spec in self._layout:
            if spec.kind == "counts":
                self._arrays[spec.key].fill(0)

    def get_var(self, target: str, var: str) -> np.ndarray:
        return self._arrays[self._key(target, var)].copy()

    def set_var(self, target: str, var: str, values: np.ndarray | float) -> None:
        # copyto broadcasts and converts (as asarray(values, dtype) would) in one step,
        # a few times faster than broadcast_to + assignment: it runs 4 times per sample
        np.copyto(self._arrays[self._key(target, var)], values, casting="unsafe")
        if var == WEIGHT_VAR:
            self._weights_changed(target)

    def _weights_changed(self, projection: str | None = None) -> None:
        """Weights written from here: synaptic scaling must look at every column of
        ``projection`` (of all projections when None) again, as it does not know which
        changed (see ``normalize_columns``)."""
        for name, changed in self._changed.items():
            if projection is None or name == projection:
                changed.fill(1)

    def set_dynamic_param(self, target: str, param: str, value: float) -> None:
        try:
            index = self._dynamic.index((target, param))
        except ValueError:
            raise KeyError(f"{target}.{param} is not a dynamic parameter") from None
        self._dyn[index] = value

    def normalize(self, projection: str, target_sum: float) -> None:
        g = self._arrays[self._key(projection, WEIGHT_VAR)]
        if g.ndim != 2:
            raise ValueError(f"{projection}: normalisation needs dense weights")
        changed = self._changed[projection]
        column_sum = self._arrays[f"{projection}.column_sum"]
        # as the time step: a small matrix is not worth waking another thread for, and
        # where the split step found one thread faster (a busy machine), so is this
        threads = self.threads if g.size >= NORMALIZE_THREADS_MIN_WEIGHTS else 1
        if self.chooser:
            threads = min(threads, self.chooser.best())
        tic = time.perf_counter()
        self._lib.normalize_columns(g.ctypes.data, changed.ctypes.data, column_sum.ctypes.data,
                                    g.shape[0], g.shape[1], float(target_sum), threads)
        self.normalize_seconds += time.perf_counter() - tic

    def get_state(self) -> dict[str, np.ndarray]:
        state = {k: a.copy() for k, a in self._arrays.items() if self._specs[k].kind == "state"}
        state["__step__"] = np.array(self.step, dtype=np.int64)
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        for key, arr in self._arrays.items():
            if self._specs[key].kind != "state" or key not in state:
                continue
            value = lane_values(key, state[key], arr.shape, self._specs[key].batched)
            arr[...] = np.broadcast_to(value.astype(arr.dtype, copy=False), arr.shape)
        self._weights_changed()
        if "__step__" in state:
            self.step = int(state["__step__"])

    def profile(self, thread: int = 0) -> dict[str, float]:
        """Seconds spent in each block of the time step so far, on ``thread`` (a
        ``profile`` build only; with several threads a thread's waits for the others
        show as the barriers' time)."""
        if not self._profile_labels:
            raise RuntimeError("not a profiling build: create the backend with profile=True")
        start = self._profile_start.get(thread, {})
        return {k: v - start.get(k, 0.0) for k, v in self._profile_read(thread).items()}

    def _profile_read(self, thread: int) -> dict[str, float]:
        out = (ctypes.c_double * len(self._profile_labels))()
        self._lib.profile_read(thread, out, len(self._profile_labels))
        return dict(zip(self._profile_labels, out, strict=True))

    def state_keys(self) -> list[str]:
        return [a.key for a in self._layout if a.kind == "state"]
