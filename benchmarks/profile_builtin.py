#!/usr/bin/env python3
"""Where a training presentation's time goes on the builtin backend, block by block.

Trains a preset for a few samples with a profiling build (timers around every block
of the time step, thread 0's view) and prints milliseconds per presentation for
each block, synaptic scaling and the Python driver, for each thread count asked.
With several threads, thread 0's waits for the others show as the barriers' time.

``--sizes`` instead measures where a split time step starts to pay: microseconds per
simulated step (input on, plasticity on, no Python in between) for each hidden-layer
size, one thread against the split step forced on N threads, interleaved. Below
``MIN_SPLIT_NEURONS`` hidden neurons nothing is split, and the N-thread column shows
what the barriers alone cost.

    python benchmarks/profile_builtin.py --preset mnist-6400 --samples 40 --threads 1 2
    python benchmarks/profile_builtin.py --sizes 100 200 400 800 1600 3200 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import symstdp_genn.training.trainer as training  # noqa: E402
from symstdp_genn.backends.builtin import BuiltinBackend  # noqa: E402
from symstdp_genn.backends.builtin.codegen import PROFILED_THREADS  # noqa: E402
from symstdp_genn.config import load_config  # noqa: E402
from symstdp_genn.data import load_dataset  # noqa: E402
from symstdp_genn.network import build_network  # noqa: E402


def profile_training(preset: str, samples: int, threads: int, data,
                     sets: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """(label, ms per presentation) rows for ``samples`` training samples."""
    config = load_config(preset, overrides=[f"training.samples={samples}", "backend=builtin",
                                            "training.checkpoint_every=0", f"threads={threads}",
                                            *sets])
    made: list[BuiltinBackend] = []

    def profiling_backend(name, spec, batch_size=1, seed=0, threads=None):
        made.append(BuiltinBackend(spec, batch_size, seed, threads=threads, profile=True))
        return made[-1]

    original = training.create_backend
    training.create_backend = profiling_backend
    try:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = training.Trainer(config, data, Path(tmp))
            trainer.save = lambda: Path(tmp)  # the final checkpoint is not part of training
            tic = time.perf_counter()
            trainer.train(show_progress=False, final_evaluation=False)
            wall = time.perf_counter() - tic
    finally:
        training.create_backend = original
    backend = made[0]
    n = trainer.sim.presentations
    rows = [(label, 1e3 * s / n) for label, s in backend.profile().items()]
    if threads > 1:  # the other threads' blocks: where thread 0's barrier waits come from
        for t in range(1, min(threads, PROFILED_THREADS)):
            other = backend.profile(t)
            rows += [(f"thread {t}: {label}", 1e3 * s / n) for label, s in other.items()
                     if 1e3 * s / n >= 0.005]
    rows.append(("synaptic scaling (normalisation, both projections)",
                 1e3 * backend.normalize_seconds / n))
    rows.append(("Python driver, ctypes, the rest",
                 1e3 * (wall - backend.run_seconds - backend.normalize_seconds) / n))
    rows.append((f"total ({samples / wall:.1f} samples/s, {n} presentations)", 1e3 * wall / n))
    return rows


def step_cost_us(n_hidden: int, threads: int, steps: int = 700) -> float:
    """µs per step of a presentation-like run with the step split on ``threads`` threads."""
    config = load_config("mnist-400", overrides=[f"network.n_hidden={n_hidden}",
                                                 f"network.norm_hidden_to_output={0.8 * n_hidden}"])
    b = BuiltinBackend(build_network(config), 1, seed=1, threads=threads)
    b.run_threads, b.chooser = threads, None  # forced, whatever the size threshold says
    b.set_var("input", "rate", np.random.default_rng(0).random(784).astype(np.float32) * 40)
    b.run(50)
    tic = time.perf_counter()
    b.run(steps)
    return 1e6 * (time.perf_counter() - tic) / steps


def scan_sizes(sizes: list[int], threads: list[int], repeats: int = 5) -> None:
    costs: dict[tuple[int, int], list[float]] = {}
    for _ in range(repeats):
        for n in sizes:
            for t in threads:
                costs.setdefault((n, t), []).append(step_cost_us(n, t))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"µs per step, median of {repeats}; load average {load} on {os.cpu_count()} cores")
    print("| hidden neurons | " + " | ".join(f"threads={t}" for t in threads)
          + f" | threads={threads[-1]} / threads={threads[0]} |")
    print("| --- |" + " --- |" * (len(threads) + 1))
    for n in sizes:
        med = [statistics.median(costs[(n, t)]) for t in threads]
        print(f"| {n} | " + " | ".join(f"{m:.1f}" for m in med) + f" | {med[-1] / med[0]:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mnist-6400")
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="measure the split step's pay-off at these hidden-layer sizes")
    p.add_argument("--data-dir", default=str(ROOT / "data"))
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set network.subnormals=keep")
    args = p.parse_args()
    if args.sizes:
        scan_sizes(args.sizes, args.threads)
        return
    data = load_dataset(load_config(args.preset).dataset, Path(args.data_dir))
    tables = {t: profile_training(args.preset, args.samples, t, data, tuple(args.sets))
              for t in args.threads}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.preset}{''.join(' --set ' + s for s in args.sets)}, {args.samples} "
          f"training samples; load average {load} "
          f"on {os.cpu_count()} cores")
    print("| block | " + " | ".join(f"threads={t}: ms/presentation (share)" for t in tables)
          + " |")
    print("| --- |" + " --- |" * len(tables))
    labels: list[str] = []  # every table's rows, in order; the total (last) stays last
    for rows in tables.values():
        labels += [label for label, _ in rows[:-1] if label not in labels]
    for label in [*labels, None]:
        cells = []
        for rows in tables.values():
            value = rows[-1][1] if label is None else dict(rows).get(label)
            cells.append("–" if value is None else
                         f"{value:.2f} ({100 * value / rows[-1][1]:.0f} %)")
        print(f"| {'total' if label is None else label} | {' | '.join(cells)} |")
    for t, rows in tables.items():
        print(f"threads={t}: {rows[-1][0]}")


if __name__ == "__main__":
    main()
