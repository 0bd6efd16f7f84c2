#!/usr/bin/env python3
"""Throughput of every backend available here, and of the builtin backend on 1 and N threads.

For each preset (default ``mnist-400`` and ``mnist-6400``) it measures, side by side
in one process and interleaved so that a change in the machine's load hits every
variant alike:

- the builtin backend with ``threads=1`` and with ``threads=N`` (default: every core
  this process may use), both as configured by default (``network.subnormals: flush``)
  and with ``network.subnormals=keep`` (IEEE subnormals, as GeNN's CPU backend: rows and
  targets of its own; ``--no-keep`` leaves it out), and each GeNN backend that can run
  here (``genn-cpu`` with PyGeNN, with ``keep``, the only arithmetic it has;
  ``genn-cuda`` with PyGeNN, a CUDA toolkit and a GPU);
- training samples/s (batch 1, plasticity on, normalisation before every
  presentation, the retry rule; the final checkpoint write is not timed) and the
  share of that time spent in synaptic scaling;
- test samples/s at each batch size tried, and the best.

Each number is the median of ``--repeats`` runs (default 3); the machine's load
average is printed beside every row, because a shared machine's numbers mean little
without it. Model build / compile time is excluded from the rates.

    python benchmarks/backends.py                       # ~3 min on an idle 2-core machine
    python benchmarks/backends.py --presets mnist-400 --repeats 1 --backends builtin
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn.backends import genn_backend_available  # noqa: E402
from symstdp_genn.backends.builtin.backend import available_cores  # noqa: E402
from symstdp_genn.config import load_config  # noqa: E402
from symstdp_genn.data import load_dataset  # noqa: E402
from symstdp_genn.training import Trainer  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from host_capacity import HostCapacity  # noqa: E402
from speed import test_speed  # noqa: E402

BATCHES = {"builtin": (1, 8, 16), "genn-cpu": (1,), "genn-cuda": (1, 16, 64, 256)}

#: issue 9's acceptance targets on an idle 2-core machine: (preset, what, samples/s)
TARGETS = (("mnist-6400", "train", 75.0), ("mnist-400", "train", 350.0),
           ("mnist-400", "test", 500.0), ("mnist-6400", "test", 80.0))
#: and threads=N against threads=1 for mnist-6400 training
TARGET_SPEEDUP = 1.6
#: the variant with IEEE subnormals (results differ below 1.2e-38: its own rows)
KEEP = "network.subnormals=keep"


@dataclass
class Variant:
    """One backend and thread setting, with every repeat's numbers."""

    backend: str
    threads: int | None
    #: extra config overrides (``network.subnormals=keep``): a named variant of the model
    sets: tuple[str, ...] = ()
    train: list[float] = field(default_factory=list)
    scaling: list[float] = field(default_factory=list)
    tests: dict[int, list[float]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    #: the host's capacity probe (host_capacity.py) around each training run: the mean
    #: of one probe right before and one right after it
    capacity: list[float] = field(default_factory=list)
    build_s: float = 0.0

    @property
    def name(self) -> str:
        name = self.backend if self.threads is None else f"{self.backend} threads={self.threads}"
        return " ".join([name, *(s.rpartition(".")[2] for s in self.sets)])

    def test_median(self) -> dict[int, float]:
        return {b: statistics.median(r) for b, r in self.tests.items()}


def available_backends() -> list[str]:
    names = ["builtin"]
    if genn_backend_available():
        from symstdp_genn.backends.genn import cuda_problem

        names.append("genn-cpu")
        problem = cuda_problem()
        if problem is None:
            names.append("genn-cuda")
        else:
            print(f"genn-cuda skipped: {problem}")
    else:
        print("genn-cpu / genn-cuda skipped: PyGeNN is not installed")
    return names


def load_now() -> float:
    return os.getloadavg()[0]


def train_rate(preset: str, backend: str, threads: int | None, n: int, data,
               extra: tuple[str, ...] = ()) -> dict[str, object]:
    sets = [f"training.samples={n}", f"backend={backend}", "training.checkpoint_every=0",
            *extra]
    config = load_config(preset, overrides=sets + ([f"threads={threads}"] if threads else []))
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        trainer = Trainer(config, data, Path(tmp))  # builds the backend
        build = time.perf_counter() - tic
        trainer.save = lambda: Path(tmp) / "checkpoint.npz"  # writing it is not training
        tic = time.perf_counter()
        trainer.train(show_progress=False, final_evaluation=False)
        wall = time.perf_counter() - tic
        state = trainer.checkpoint_arrays()
        b = trainer.backend
    return {"build_s": build, "samples_per_s": n / wall,
            "normalize_share": getattr(b, "normalize_seconds", 0.0) / wall, "state": state}


def measure(preset: str, variants: list[Variant], n_train: int, n_test: int, repeats: int,
            data, probe: HostCapacity | None) -> None:
    """Every variant once per repeat, interleaved; numbers appended to the variants. A
    builtin variant on several threads first probes what the host gives that many
    threads at the moment (the split step cannot beat it)."""
    for rep in range(repeats):
        for v in variants:
            load = load_now()
            probed = probe is not None and v.backend == "builtin" and (v.threads or 1) > 1
            before = probe.measure() if probed else None
            tr = train_rate(preset, v.backend, v.threads, n_train, data, v.sets)
            after = probe.measure() if probed else None
            host = ""
            if before is not None and after is not None:
                v.capacity.append((before + after) / 2)
                host = f" | host capacity {before:.2f} before, {after:.2f} after training"
            v.build_s = max(v.build_s, float(tr["build_s"]))
            v.train.append(float(tr["samples_per_s"]))
            v.scaling.append(float(tr["normalize_share"]))
            for batch in BATCHES[v.backend]:
                rate = test_speed(preset, n_test, batch, data, tr["state"], v.backend, v.threads,
                                  v.sets)
                v.tests.setdefault(batch, []).append(rate)
            v.loads.append((load + load_now()) / 2)
            detail = ", ".join(f"batch {b}: {r[-1]:.0f}/s" for b, r in v.tests.items())
            print(f"  [{rep + 1}/{repeats}] {preset:11s} {v.name:28s} train "
                  f"{v.train[-1]:7.1f} samples/s | test {detail} | load {v.loads[-1]:.2f}{host}",
                  flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["mnist-400", "mnist-6400"])
    p.add_argument("--backends", nargs="+", default=None, help="default: every one available")
    p.add_argument("--threads", type=int, default=None,
                   help="N for the builtin backend's threads=N (default: the cores this "
                        "process may use)")
    p.add_argument("--repeats", type=int, default=3, help="runs per number; the median counts")
    p.add_argument("--train-samples", type=int, default=None,
                   help="default: 400 for N ≤ 1600, 300 above (100 left the thread chooser's "
                        "and edge balancer's first calls a large share)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="default: 800 for N ≤ 1600, 200 above")
    p.add_argument("--data-dir", default=str(ROOT / "data"))
    p.add_argument("--no-keep", dest="keep", action="store_false",
                   help="leave out the builtin backend's network.subnormals=keep variants")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    backends = args.backends or available_backends()
    n_threads = args.threads or available_cores()
    data = load_dataset("mnist", Path(args.data_dir))
    load_before = os.getloadavg()
    print(f"{os.cpu_count()} cores, {available_cores()} usable; load average "
          f"{', '.join(f'{x:.2f}' for x in load_before)} (1, 5, 15 min) before the run")
    probe = HostCapacity(n_threads) if n_threads > 1 and "builtin" in backends else None
    results: dict[str, list[Variant]] = {}
    for preset in args.presets:
        n_hidden = load_config(preset).network.n_hidden
        n_train = args.train_samples or (400 if n_hidden <= 1600 else 300)
        n_test = args.test_samples or (800 if n_hidden <= 1600 else 200)
        variants = []
        for backend in backends:
            if backend == "builtin":
                for sets in ((), (KEEP,)) if args.keep else ((),):
                    variants += [Variant(backend, 1, sets)] + (
                        [Variant(backend, n_threads, sets)] if n_threads > 1 else [])
            else:
                variants.append(Variant(backend, None, (KEEP,) if backend == "genn-cpu" else ()))
        print(f"{preset}: {n_train} training and {n_test} test samples per run, "
              f"{args.repeats} runs")
        measure(preset, variants, n_train, n_test, args.repeats, data, probe)
        results[preset] = variants

    print()
    print(f"Medians of {args.repeats} runs; load = mean 1-min load average while measuring "
          f"({os.cpu_count()} cores); host capacity = what {n_threads} independent threads did "
          "against one, around each split-step training run (host_capacity.py: the mean of a "
          "probe before and one after).")
    print()
    print("| preset | variant | train samples/s | × threads=1 | scaling share | "
          "test samples/s by batch | best test | × threads=1 | load | host capacity |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for preset, variants in results.items():
        for v in variants:
            # against threads=1 of the same arithmetic (GeNN: the default's threads=1)
            base = next((u for u in variants if u.backend == "builtin" and u.threads == 1
                         and u.sets == v.sets), variants[0])
            base_test = max(base.test_median().values())
            tests = v.test_median()
            best = max(tests, key=tests.get)
            train = statistics.median(v.train)
            by_batch = ", ".join(f"{b}: {r:.0f}" for b, r in tests.items())
            print(f"| {preset} | {v.name} | {train:.1f} | "
                  f"{train / statistics.median(base.train):.2f} | "
                  f"{100 * statistics.median(v.scaling):.1f} % | {by_batch} | "
                  f"{tests[best]:.0f} (batch {best}) | {tests[best] / base_test:.2f} | "
                  f"{statistics.mean(v.loads):.2f} | "
                  f"{f'{statistics.median(v.capacity):.2f}' if v.capacity else '–'} |")
    print()
    for sets in ((), (KEEP,)):
        label = " with " + ", ".join(sets) if sets else " (the default, subnormals flushed)"
        rows = {p: [v for v in vs if v.backend == "builtin" and v.sets == sets]
                for p, vs in results.items()}
        if not any(rows.values()):
            continue
        print(f"Issue 9 targets (idle 2-core machine), builtin threads={n_threads}{label}:")
        for preset, what, target in TARGETS:
            if not rows.get(preset):
                continue
            v = rows[preset][-1]  # threads=N
            value = (statistics.median(v.train) if what == "train"
                     else max(v.test_median().values()))
            print(f"  {preset} {what}: {value:.1f} samples/s (target ≥ {target:.0f}) "
                  f"{'met' if value >= target else 'NOT met'}")
        many = rows.get("mnist-6400", [])
        one = [v for v in many if v.threads == 1]
        if one and many and many[-1].threads != 1:
            ratio = statistics.median(many[-1].train) / statistics.median(one[0].train)
            print(f"  mnist-6400 train {many[-1].name} / builtin threads=1: {ratio:.2f}× "
                  f"(target ≥ {TARGET_SPEEDUP}×) "
                  f"{'met' if ratio >= TARGET_SPEEDUP else 'NOT met'}")
            if many[-1].capacity:
                print(f"    the host's capacity on {n_threads} threads beside those runs: "
                      + ", ".join(f"{c:.2f}" for c in many[-1].capacity)
                      + f" (host_capacity.py: {n_threads} = whole cores, 1 = one core's worth)")
    print(f"load average after the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
