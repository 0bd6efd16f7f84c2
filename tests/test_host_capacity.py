"""benchmarks/host_capacity.py: the probe runs every thread it asks for and reports a ratio."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from symstdp_genn.backends.builtin import compiler

REPO = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("host_capacity", REPO / "benchmarks" /
                                                  "host_capacity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["host_capacity"] = module
    spec.loader.exec_module(module)
    return module


host_capacity = _load()


def test_one_thread_has_nothing_to_compare() -> None:
    assert host_capacity.HostCapacity(threads=1).measure() is None


@pytest.mark.skipif(not compiler._openmp_flags(compiler.find_compiler()),
                    reason="the C compiler has no OpenMP: one thread only")
def test_two_threads_both_run_and_give_a_ratio() -> None:
    probe = host_capacity.HostCapacity(threads=2)
    assert probe.reps >= 1
    # the kernel reports -1 unless every thread asked for ran
    assert probe._run(2, 10) > 0
    ratio = probe.measure()
    # two threads did twice the work in some time: their ratio is positive and cannot
    # reach twice the thread count without the one-thread run being grossly slow
    assert ratio is not None and 0.0 < ratio < 4.0


@pytest.mark.skipif(not compiler._openmp_flags(compiler.find_compiler()),
                    reason="the C compiler has no OpenMP: one thread only")
def test_sustained_probe_gives_each_thread_a_share_of_a_core() -> None:
    shares = host_capacity.HostCapacity(threads=2).sustained(0.05)
    assert shares is not None and len(shares) == 2
    # each thread worked, and none did more than a few times one thread's rate alone
    assert all(0.0 < x < 4.0 for x in shares)
