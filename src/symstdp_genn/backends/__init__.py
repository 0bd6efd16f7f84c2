"""Backend registry: ``builtin`` (generated C) and ``genn-cuda`` / ``genn-cpu`` (PyGeNN 5).

``auto`` is the builtin backend on every machine: it runs wherever a C compiler
does, reproduces a seed bit for bit, and on the one GPU machine measured (an H200
with 16 cores, docs/cuda.md) it trained mnist-6400 faster than GeNN's CUDA backend,
whose batch-1 training is bound by the fixed cost of each time step. ``genn-cuda``
is chosen by name (batched evaluation is where it is faster).
"""

from __future__ import annotations

import importlib.util
import logging

from ..config import BACKENDS, Config
from ..errors import UserError
from ..network import NetworkSpec
from .base import Backend

log = logging.getLogger(__name__)

GENN_INSTALL_DOCS = "https://genn-team.github.io/genn/documentation/5/installation.html"
NAMES = BACKENDS


def pygenn_available() -> bool:
    return importlib.util.find_spec("pygenn") is not None


def genn_backend_available() -> bool:
    """True when this package ships the GeNN backend module and PyGeNN is importable."""
    return pygenn_available() and importlib.util.find_spec(__name__ + ".genn") is not None


def resolve(name: str, flush_subnormals: bool = False) -> str:
    """Turn ``auto`` into a concrete backend name; check that the named one can run.

    ``flush_subnormals`` (``network.subnormals: flush``, the default): the builtin
    backend sets the CPU's flush-to-zero mode, GeNN's CUDA backend compiles with
    -use_fast_math (flush-to-zero), and GeNN's CPU backend cannot, so it is refused."""
    if name not in NAMES:
        raise UserError(f"unknown backend '{name}'; choose one of: {', '.join(NAMES)}")
    if name == "auto":
        return "builtin"
    if name.startswith("genn"):
        if not pygenn_available():
            raise UserError(f"backend '{name}' needs PyGeNN 5, which is not installed; install "
                            f"GeNN as described in {GENN_INSTALL_DOCS} or use --backend builtin")
        if not genn_backend_available():
            raise UserError(f"backend '{name}': this version of symstdp-genn has no GeNN "
                            "backend module yet; use --backend builtin")
        if name == "genn-cuda":
            from .genn import cuda_problem

            problem = cuda_problem()
            if problem is not None:
                raise UserError(f"backend 'genn-cuda' cannot run here: {problem}")
        if flush_subnormals and name == "genn-cpu":
            raise UserError("network.subnormals: flush (the default) is not available on "
                            "genn-cpu, which keeps IEEE subnormals; add --set "
                            "network.subnormals=keep, or use --backend builtin")
    return name


def backend_for(config: Config) -> str:
    """The concrete backend a run of ``config`` uses (its ``backend``, resolved for its
    network: ``network.subnormals: flush`` is refused on genn-cpu)."""
    return resolve(config.backend, config.network.flush_subnormals)


def create_backend(name: str, spec: NetworkSpec, batch_size: int = 1, seed: int = 0,
                   threads: int | None = None) -> Backend:
    """Build (compile or load from cache) a backend for ``spec`` with ``batch_size`` lanes.

    ``threads`` caps the builtin backend's threads (None: every core this process may
    use); GeNN chooses its own parallelism. A network with ``flush_subnormals`` cannot
    run on genn-cpu."""
    name = resolve(name, spec.flush_subnormals)
    if name == "builtin":
        from .builtin import BuiltinBackend

        return BuiltinBackend(spec, batch_size=batch_size, seed=seed, threads=threads)
    from .genn import GeNNBackend

    return GeNNBackend(spec, batch_size=batch_size, seed=seed,
                       device="cuda" if name == "genn-cuda" else "cpu")
