"""``network.subnormals``: flush-to-zero (``flush``, the default) or IEEE subnormals.

Traces and conductances that decay below float32's smallest normal number (1.2e-38)
stay subnormal for ever (``x -= dt*x/tau`` stops changing them), and x86 divides
subnormals slowly: ``flush`` trades those last bits for speed (benchmarks/README.md).
These tests check that the switch does what it says, and only that.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_config
from test_threads import THREADED, assert_same_state

from symstdp_genn.backends import backend_for, create_backend, resolve
from symstdp_genn.backends.builtin import BuiltinBackend
from symstdp_genn.config import load_config
from symstdp_genn.errors import UserError
from symstdp_genn.network import build_network

TINY = np.finfo(np.float32).tiny


def quiet_after_input(mode: str, n_hidden: int = 16, threads: int = 1) -> BuiltinBackend:
    """A presentation, then a long rest: the traces and conductances decay away."""
    b = BuiltinBackend(build_network(small_config(n_hidden, **{"network.subnormals": mode})),
                       1, seed=5, threads=threads)
    b.set_var("input", "rate", (np.random.default_rng(0).random(784) < 0.3) * 80.0)
    b.set_var("hidden", "theta", 0.0)
    b.run(700)
    b.set_var("input", "rate", 0.0)
    b.run(2000)
    return b


def subnormal_count(b: BuiltinBackend) -> int:
    return sum(int(np.sum((np.abs(v) > 0) & (np.abs(v) < TINY)))
               for v in b.get_state().values() if v.dtype == np.float32)


def test_keep_holds_subnormals_and_flush_holds_none() -> None:
    keep, flush = quiet_after_input("keep"), quiet_after_input("flush")
    assert subnormal_count(keep) > 50  # traces and conductances stuck below 1.2e-38
    assert subnormal_count(flush) == 0
    # the same network up to those last bits: same spikes in the presentation
    np.testing.assert_array_equal(keep.spike_counts("hidden"), flush.spike_counts("hidden"))
    assert keep.spike_counts("hidden").sum() > 0


def test_flush_leaves_the_callers_arithmetic_ieee() -> None:
    """The mode register is per thread and the calling thread is Python's: after a run
    numpy must still produce subnormals (a leaked flush mode would silently change it)."""
    quiet_after_input("flush")
    assert np.float32(1.4e-45) * np.float32(1.0) > 0
    assert np.float32(TINY) / np.float32(4.0) > 0


@pytest.mark.slow  # the threaded step needs ~1 500 neurons: a few seconds
def test_flush_results_do_not_depend_on_threads() -> None:
    one = quiet_after_input("flush", THREADED, threads=1)
    two = quiet_after_input("flush", THREADED, threads=2)
    assert two.run_threads == 2
    assert_same_state(one.get_state(), two.get_state())


def test_subnormals_is_part_of_the_network() -> None:
    keep, flush = (build_network(small_config(8, **{"network.subnormals": m}))
                   for m in ("keep", "flush"))
    assert keep.fingerprint() != flush.fingerprint()
    assert not keep.flush_subnormals and flush.flush_subnormals
    # flush is the default; keep's fingerprint is what networks had before the switch
    assert build_network(small_config(8)).fingerprint() == flush.fingerprint()


def test_genn_cpu_refuses_flush_and_auto_does_not_depend_on_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import symstdp_genn.backends as backends

    # as on a machine with PyGeNN: the refusal is about the arithmetic, not the install
    monkeypatch.setattr(backends, "pygenn_available", lambda: True)
    monkeypatch.setattr(backends, "genn_backend_available", lambda: True)
    spec = build_network(small_config(8, **{"network.subnormals": "flush"}))
    with pytest.raises(UserError, match=r"network\.subnormals=keep"):
        create_backend("genn-cpu", spec)
    with pytest.raises(UserError, match=r"network\.subnormals"):
        resolve("genn-cpu", flush_subnormals=True)
    with pytest.raises(UserError, match=r"network\.subnormals=keep"):
        backend_for(load_config("mnist-100", overrides=["backend=genn-cpu"]))
    monkeypatch.undo()
    # GeNN's CUDA build flushes (-use_fast_math): flush is no reason to avoid it
    assert resolve("builtin", flush_subnormals=True) == "builtin"
    assert resolve("auto", flush_subnormals=True) == resolve("auto", flush_subnormals=False)
    # what every entry point (train, test, sweeps, snapshot scores) asks
    assert backend_for(load_config("mnist-100")) == resolve("auto", flush_subnormals=True)


def test_a_bad_value_names_the_key() -> None:
    with pytest.raises(UserError, match=r"network\.subnormals"):
        load_config("mnist-100", overrides=["network.subnormals=zero"])


def test_auto_is_the_builtin_backend_even_where_genn_cuda_could_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` never picks genn-cuda: measured on an H200 it trains mnist-6400 at about
    half the builtin backend's rate, and only the builtin backend reproduces a seed bit
    for bit, so a default run gives the same numbers on every machine."""
    import symstdp_genn.backends as backends
    from symstdp_genn.backends import cuda_env

    monkeypatch.setattr(backends, "pygenn_available", lambda: True)
    monkeypatch.setattr(backends, "genn_backend_available", lambda: True)
    monkeypatch.setattr(cuda_env, "cuda_problem", lambda: None)
    assert resolve("auto") == "builtin"
    assert backend_for(load_config("mnist-6400")) == "builtin"
