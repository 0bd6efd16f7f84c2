#!/usr/bin/env python3
"""Training and test throughput of a preset on the builtin backend, with a cost breakdown.

Prints samples/s for training (batch 1, plasticity on, the retry rule) and for
testing at several batch sizes, the cost per simulated time step, the share of
wall time spent in Python, and ratios against baselines run in this process:
the same code compiled for the baseline instruction set (SSE2 only) and the
evaluation at batch size 1.

    python benchmarks/speed.py                      # mnist-400, 2000 training samples
    python benchmarks/speed.py --preset mnist-1600 --train-samples 500
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn.config import load_config  # noqa: E402
from symstdp_genn.data import load_dataset  # noqa: E402
from symstdp_genn.evaluator import Evaluator  # noqa: E402
from symstdp_genn.network import build_network  # noqa: E402
from symstdp_genn.training import Trainer  # noqa: E402


def train_speed(preset: str, n: int, data, isa: str) -> dict[str, float]:
    os.environ["SYMSTDP_GENN_ISA"] = isa
    config = load_config(preset, overrides=[f"training.samples={n}", "backend=builtin",
                                            "training.checkpoint_every=0"])
    trainer = Trainer(config, data, Path("/tmp") / f"symstdp-bench-{os.getpid()}")
    tic = time.perf_counter()
    trainer.train(show_progress=False, final_evaluation=False)
    wall = time.perf_counter() - tic
    b = trainer.backend
    steps = trainer.sim.presentations * (trainer.sim.present_steps + trainer.sim.rest_steps)
    return {"samples_per_s": n / wall, "wall_s": wall, "presentations": trainer.sim.presentations,
            "us_per_step": 1e6 * b.run_seconds / steps,
            "normalize_share": b.normalize_seconds / wall,
            "python_share": 1 - (b.run_seconds + b.normalize_seconds) / wall,
            "state": trainer.checkpoint_arrays()}


def test_speed(preset: str, n: int, batch: int, data, state, backend: str = "builtin",
               threads: int | None = None, extra: tuple[str, ...] = ()) -> float:
    sets = [f"evaluation.batch_size={batch}", f"backend={backend}", *extra]
    config = load_config(preset, overrides=sets + ([f"threads={threads}"] if threads else []))
    ev = Evaluator(config, build_network(config), backend)
    _ = ev.backend  # compile outside the timing
    _, _, _, _, seconds = ev.run_pass(state, data.test_images[:n], "test")
    return n / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mnist-400")
    p.add_argument("--train-samples", type=int, default=2000)
    p.add_argument("--test-samples", type=int, default=1000)
    p.add_argument("--batch-sizes", default="1,2,4,8,16")
    args = p.parse_args()
    config = load_config(args.preset)
    data = load_dataset(config.dataset, ROOT / "data")
    print(f"preset {args.preset}: {config.network.n_hidden} hidden neurons, "
          f"{os.cpu_count()} CPU cores")

    auto = train_speed(args.preset, args.train_samples, data, "auto")
    base = train_speed(args.preset, args.train_samples, data, "baseline")
    for name, r in (("builtin", auto), ("builtin, baseline ISA", base)):
        print(f"train [{name}]: {r['samples_per_s']:.1f} samples/s over {args.train_samples} "
              f"samples ({r['presentations']} presentations), {r['us_per_step']:.2f} us/step, "
              f"python {100 * r['python_share']:.1f} %, normalisation "
              f"{100 * r['normalize_share']:.1f} % of wall time")
    print(f"train speed-up from vector instructions: "
          f"{auto['samples_per_s'] / base['samples_per_s']:.2f}x")
    os.environ["SYMSTDP_GENN_ISA"] = "auto"
    rates = {}
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        rates[batch] = test_speed(args.preset, args.test_samples, batch, data, auto["state"])
        print(f"test  [builtin, batch {batch:3d}]: {rates[batch]:.1f} samples/s")
    best = max(rates, key=rates.get)
    print(f"best test batch size {best}: {rates[best]:.1f} samples/s, "
          f"{rates[best] / rates[min(rates)]:.2f}x batch {min(rates)}; "
          f"full 10 000-image test pass ~{10000 / rates[best]:.0f} s; one 60 000-sample epoch "
          f"~{60000 / auto['samples_per_s'] / 60:.1f} min")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
