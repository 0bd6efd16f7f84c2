#!/usr/bin/env python3
"""Throughput of every backend available here, against the builtin backend in this process.

For each preset (default ``mnist-400`` and ``mnist-6400``) and each backend that
can run on this machine (``builtin`` always; ``genn-cpu`` with PyGeNN;
``genn-cuda`` with PyGeNN, a CUDA toolkit and a GPU) it prints

- training samples/s (batch 1, plasticity on, normalisation before every
  presentation, the retry rule) and the share of that time spent in synaptic
  scaling;
- test samples/s at each batch size tried, and the best;
- the ratio of each number to the builtin backend's.

Model build / compile time is excluded from the rates and printed separately
(GeNN keeps its build between runs, so only a first run pays it).

    python benchmarks/backends.py
    python benchmarks/backends.py --presets mnist-400 --train-samples 300 --test-samples 400
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn.backends import genn_backend_available  # noqa: E402
from symstdp_genn.config import load_config  # noqa: E402
from symstdp_genn.data import load_dataset  # noqa: E402
from symstdp_genn.training import Trainer  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from speed import test_speed  # noqa: E402

BATCHES = {"builtin": (1, 8, 16), "genn-cpu": (1,), "genn-cuda": (1, 16, 64, 256)}


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


def train_rate(preset: str, backend: str, n: int, data) -> dict[str, float]:
    config = load_config(preset, overrides=[f"training.samples={n}", f"backend={backend}",
                                            "training.checkpoint_every=0"])
    with tempfile.TemporaryDirectory() as tmp:
        tic = time.perf_counter()
        trainer = Trainer(config, data, Path(tmp))  # builds the backend
        build = time.perf_counter() - tic
        tic = time.perf_counter()
        trainer.train(show_progress=False, final_evaluation=False)
        wall = time.perf_counter() - tic
        state = trainer.checkpoint_arrays()
        b = trainer.backend
    return {"build_s": build, "samples_per_s": n / wall,
            "normalize_share": getattr(b, "normalize_seconds", 0.0) / wall, "state": state}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["mnist-400", "mnist-6400"])
    p.add_argument("--backends", nargs="+", default=None, help="default: every one available")
    p.add_argument("--train-samples", type=int, default=None,
                   help="default: 400 for N ≤ 1600, 60 above")
    p.add_argument("--test-samples", type=int, default=None,
                   help="default: 800 for N ≤ 1600, 200 above")
    p.add_argument("--data-dir", default=str(ROOT / "data"))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    backends = args.backends or available_backends()
    data = load_dataset("mnist", Path(args.data_dir))
    rows = []
    for preset in args.presets:
        n_hidden = load_config(preset).network.n_hidden
        n_train = args.train_samples or (400 if n_hidden <= 1600 else 60)
        n_test = args.test_samples or (800 if n_hidden <= 1600 else 200)
        base = None
        for backend in backends:
            tr = train_rate(preset, backend, n_train, data)
            tests = {b: test_speed(preset, n_test, b, data, tr["state"], backend)
                     for b in BATCHES[backend]}
            best = max(tests, key=tests.get)
            if base is None:
                base = (tr["samples_per_s"], tests[best])
            rows.append((preset, backend, tr["build_s"], tr["samples_per_s"],
                         tr["samples_per_s"] / base[0], tr["normalize_share"], best, tests[best],
                         tests[best] / base[1]))
            detail = ", ".join(f"batch {b}: {r:.0f}/s" for b, r in tests.items())
            print(f"{preset:11s} {backend:9s} build {tr['build_s']:6.1f} s | train "
                  f"{tr['samples_per_s']:7.1f} samples/s ({100 * tr['normalize_share']:.1f} % "
                  f"scaling) | test {detail}", flush=True)
    print()
    print("| preset | backend | build (s) | train samples/s | × builtin | scaling share "
          "| best test batch | test samples/s | × builtin |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.2f} | {100 * r[5]:.1f} % "
              f"| {r[6]} | {r[7]:.0f} | {r[8]:.2f} |")


if __name__ == "__main__":
    main()
