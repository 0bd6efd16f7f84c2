#!/usr/bin/env python3
"""How many cores' worth of work the host gives this process right now.

A virtual machine's cores are not always the host's: on a shared host two virtual
cores may at times run on one physical core's two hardware threads, or wait for each
other's time slices. Then two threads do about the work of one, whatever the program.
This probe runs a fixed amount of vector arithmetic on one thread, then the same amount
on each of N threads at once (each on its own L1-sized array, nothing shared, no
synchronisation), and reports the throughput ratio: ~N on N real cores, ~1 when the
host gives one core's worth. ``benchmarks/backends.py`` runs it beside every split-step
measurement, since the host's state changes from one minute to the next (measured on
the 2-core test machine: mnist-6400 training on 2 threads at 50 samples/s with the two
threads' work each as long as a whole one-thread presentation, and at 97 samples/s a
few minutes later, same build).

    python benchmarks/host_capacity.py                  # five probes, ~0.5 s each
    python benchmarks/host_capacity.py --sustained 10   # 10 s alone, 10 s all busy
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn.backends.builtin.backend import available_cores  # noqa: E402
from symstdp_genn.backends.builtin.compiler import compile_library  # noqa: E402

#: each thread's array: 4 096 floats (16 KB), inside any L1 data cache
WORDS = 4096

SOURCE = """
#include <stddef.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* passes over each thread's own ``n`` floats on ``threads`` threads at once: ``reps``
   of them, or (``seconds`` > 0) as many as fit in ``seconds``; done[t] gets thread t's
   count (``done`` may be NULL); returns the wall time (seconds), or -1 when fewer
   threads than asked ran */
double capacity_kernel(float *buf, int n, long reps, double seconds, int threads,
                       double *done) {
    int ran = 1;
    const double t0 = now();
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num();
#pragma omp single
        ran = omp_get_num_threads();
#else
        const int t = 0;
#endif
        float *a = buf + (size_t)t * (size_t)n;
        long passes = 0;
        while (seconds > 0.0 ? now() - t0 < seconds : passes < reps) {
            const long chunk = seconds > 0.0 ? 100 : reps;
            for (long r = 0; r < chunk; r++) {
                for (int i = 0; i < n; i++) a[i] = a[i] * 0.999f + 0.001f;
                __asm__ volatile("" : : "r"(a) : "memory");
            }
            passes += chunk;
        }
        if (done != NULL) done[t] = (double)passes;
    }
    const double wall = now() - t0;
    return ran == threads ? wall : -1.0;
}
"""


class HostCapacity:
    """The probe, compiled once (with the builtin backend's compiler and flags)."""

    def __init__(self, threads: int | None = None):
        self.threads = threads or available_cores()
        self._lib = ctypes.CDLL(str(compile_library(SOURCE, "host_capacity")))
        self._lib.capacity_kernel.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long,
                                              ctypes.c_double, ctypes.c_int, ctypes.c_void_p]
        self._lib.capacity_kernel.restype = ctypes.c_double
        self._buf = (ctypes.c_float * (WORDS * self.threads))(*([1.0] * WORDS * self.threads))
        self.reps = self._calibrate()

    def _run(self, threads: int, reps: int) -> float:
        return self._lib.capacity_kernel(self._buf, WORDS, reps, 0.0, threads, None)

    def _calibrate(self, seconds: float = 0.1) -> int:
        reps = 1000
        while (wall := self._run(1, reps)) < seconds / 4:
            reps *= 4
        return max(1, int(reps * seconds / wall))

    def measure(self) -> float | None:
        """Work done per second on ``threads`` threads over that on one: ~threads on as
        many real cores. None when the threads could not all run (no OpenMP)."""
        if self.threads < 2:
            return None
        one = self._run(1, self.reps)
        many = self._run(self.threads, self.reps)
        if one <= 0 or many <= 0:
            return None
        return self.threads * one / many


    def sustained(self, seconds: float) -> list[float] | None:
        """Each thread's work rate over ``seconds`` with all of them busy, as a fraction
        of one thread's rate over ``seconds`` alone just before: a short probe can catch
        a host that gives both cores for a moment but not for a whole training run."""
        done = (ctypes.c_double * self.threads)()
        one = self._lib.capacity_kernel(self._buf, WORDS, 0, seconds, 1, done)
        alone = done[0] / one
        many = self._lib.capacity_kernel(self._buf, WORDS, 0, seconds, self.threads, done)
        if one <= 0 or many <= 0:
            return None
        return [done[t] / many / alone for t in range(self.threads)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sustained", type=float, default=0.0, metavar="SECONDS",
                   help="instead: one thread alone, then every thread busy, for SECONDS "
                        "each; prints each thread's share of a whole core")
    args = p.parse_args()
    probe = HostCapacity()
    if probe.threads < 2:
        print("one core usable: nothing to compare")
        return
    if args.sustained > 0:
        shares = probe.sustained(args.sustained)
        if shares is None:
            print("the probe's threads did not all run (compiled without OpenMP?)")
            sys.exit(2)
        print(f"over {args.sustained:g} s with {probe.threads} threads busy, each thread did "
              + ", ".join(f"{x:.2f}" for x in shares)
              + f" of one thread's work alone (sum {sum(shares):.2f})")
        return
    values = [probe.measure() for _ in range(5)]
    if any(v is None for v in values):
        print("the probe's threads did not all run (compiled without OpenMP?)")
        sys.exit(2)
    print(f"host capacity on {probe.threads} threads: "
          + ", ".join(f"{v:.2f}" for v in values)
          + f" (median {statistics.median(values):.2f}; {probe.threads} = every thread a "
            "whole core, 1 = one core's worth in all)")


if __name__ == "__main__":
    main()
