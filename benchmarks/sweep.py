#!/usr/bin/env python3
"""Sweep throughput: 8 trials of mnist-100 x 2000 samples through the local Dask cluster
against the same 8 trials run one after another in this process.

    PYTHONPATH=src python benchmarks/sweep.py [--workers N] [--samples 2000] [--data-dir data]

Both halves run the same trials (one point, seeds 1..8, validation split, 2000 training
samples, 1000 labelling and 1000 validation images) through the same code path
(``symstdp_genn.sweep.trial.run_trial``); the compile caches (this process's and every
worker's) are warmed first, so neither half pays for the compiler; the cluster's start is
printed apart. The result tables of both are compared: the sweep must not change
a single accuracy. Target (issue 11): ratio >= 1.7 on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from distributed import Client, LocalCluster

from symstdp_genn.sweep import build_sweep
from symstdp_genn.sweep.engine import PLUGIN_NAME, WorkerSetup, run_sweep
from symstdp_genn.sweep.trial import run_trial


def _warm(config: dict, root: str, data: str, dask_worker: object = None) -> None:
    """One 1-sample trial in this worker's own folder (and own compile cache)."""
    name = str(getattr(dask_worker, "name", "worker"))
    run_trial(config, str(Path(root) / f"warm-{name}"), data)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().handlers[0].setLevel(logging.WARNING)  # trials log INFO to log.txt
    spec = build_sweep({"name": "benchmark", "base": "mnist-100", "samples": args.samples,
                        "eval_samples": 1000, "seeds": list(range(1, args.trials + 1)),
                        "set": {"evaluation.assignment_samples": 1000}})
    data = args.data_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("SYMSTDP_GENN_CACHE", str(root / "cache"))
        warm = build_sweep({"base": "mnist-100", "samples": 1, "eval_samples": 1,
                            "set": {"evaluation.assignment_samples": 1}})
        run_trial(warm.trials[0].config.to_dict(), str(root / "warm"), str(data))

        tic = time.perf_counter()
        serial = [run_trial(t.config.to_dict(), str(root / "serial" / t.trial_id), str(data))
                  for t in spec.trials]
        serial_s = time.perf_counter() - tic

        tic = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            client.register_plugin(WorkerSetup(chain_sigint=False), name=PLUGIN_NAME)
            # every worker compiles into its own cache once, as the serial half did above
            client.run(_warm, warm.trials[0].config.to_dict(), str(root), str(data))
            start_s = time.perf_counter() - tic
            tic = time.perf_counter()
            report = run_sweep(spec, root / "sweep", data_dir=data, client=client,
                               show_progress=False)
            sweep_s = time.perf_counter() - tic

    same = [r["supervised_accuracy"] for r in serial] == \
        [r["supervised_accuracy"] for r in report.rows]
    print(f"{len(spec.trials)} trials of mnist-100 x {args.samples} samples "
          f"(+1000 labelling, 1000 validation images each)")
    serial_trial = sum(r["wall_s"] for r in serial) / len(serial)
    sweep_trial = sum(r["wall_s"] for r in report.rows) / len(report.rows)
    print(f"one after another (this process): {serial_s:7.1f} s  ({serial_trial:.1f} s a trial)")
    print(f"local Dask cluster, {args.workers} workers:  {sweep_s:7.1f} s  ({sweep_trial:.1f} s "
          f"a trial on a worker), after {start_s:.1f} s to start the cluster and compile")
    print(f"throughput ratio: {serial_s / sweep_s:.2f}x, with the start: "
          f"{serial_s / (sweep_s + start_s):.2f}x   (target >= 1.7x on an idle 2-core machine)")
    print(f"same accuracies in both: {same}; statuses: {report.counts}")
    return 0 if same and report.counts == {"finished": len(spec.trials)} else 1


if __name__ == "__main__":
    sys.exit(main())
