#!/usr/bin/env python3
"""Accuracy of the full protocol: train a preset, label, test; print numbers and a Markdown row.

Tunes nothing. ``--validation`` trains on the first 50 000 training images and
evaluates on the last 10 000 (for tuning without touching the test set).

    python benchmarks/accuracy.py                         # mnist-400, 1 epoch, full test set
    python benchmarks/accuracy.py --validation --set network.trace_increment=0.2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn.config import load_config  # noqa: E402
from symstdp_genn.data import load_dataset, validation_split  # noqa: E402
from symstdp_genn.training import Trainer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mnist-400")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--validation", action="store_true")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    sets = [f"training.epochs={args.epochs}", *args.overrides]
    if args.validation:
        sets.append("training.validation=true")
    config = load_config(args.preset, overrides=sets)
    data = load_dataset(config.dataset, ROOT / "data")
    if args.validation:
        data = validation_split(data)
    out = args.out or ROOT / "models" / f"bench-{config.name}-s{config.seed}"
    tic = time.perf_counter()
    outcome = Trainer(config, data, out).train(show_progress=sys.stderr.isatty())
    wall = time.perf_counter() - tic
    final = outcome.final
    where = "validation" if args.validation else "test"
    print(f"{config.name}: {outcome.samples_seen} training samples in "
          f"{outcome.train_seconds:.0f} s ({outcome.samples_per_s:.1f} samples/s); "
          f"{where} on {final.n} images in "
          f"{final.seconds:.0f} s ({final.n / final.seconds:.1f} samples/s)")
    print(f"  supervised {100 * final.supervised_accuracy:.2f} %  assignment "
          f"{100 * final.assignment_accuracy:.2f} %  silent {100 * final.silent_fraction:.2f} %  "
          f"retried {100 * final.retried_fraction:.2f} %")
    print(f"| {config.name} | {config.backend} | {args.epochs} | "
          f"{outcome.samples_per_s:.0f} | {100 * final.supervised_accuracy:.2f} | "
          f"{100 * final.assignment_accuracy:.2f} | {wall / 60:.1f} min |")


if __name__ == "__main__":
    main()
