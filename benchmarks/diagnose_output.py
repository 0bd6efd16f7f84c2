#!/usr/bin/env python3
"""Diagnose a run's output layer snapshot by snapshot: weight concentration, ties, drive.

For every snapshot of a run (``RUN/snapshots/samples-*.npz``) this prints how
concentrated each output's hidden→output weights are (no simulation), and with
``--images N`` also runs the first N images of the split through the frozen network
and reports the output layer's ties, margins, silence, predicted-class histogram and
the accuracy of the drive readout argmax(hidden counts · g) beside the spiking one
(:mod:`symstdp_genn.diagnostics`). ``--scale-output F`` multiplies the hidden→output
weights by F before each pass: a what-if that costs no training (do the outputs answer
better when driven less?), and ``--theta-shift MV`` adds MV to every hidden neuron's θ:
a negative shift raises the hidden layer's activity, as more joint training does (does
the output layer's answer survive a busier hidden layer?). Writes
``RUN/diagnosis-<split>.json`` and, with matplotlib, ``RUN/figures/diagnosis-<split>.png``.

    python benchmarks/diagnose_output.py --run RUN --images 2000 --every 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn.backends import backend_for  # noqa: E402
from symstdp_genn.checkpoint import atomic_path, load_checkpoint  # noqa: E402
from symstdp_genn.config import config_from_dict  # noqa: E402
from symstdp_genn.diagnostics import diagnose_readout, weight_concentration  # noqa: E402
from symstdp_genn.errors import UserError, run_script  # noqa: E402
from symstdp_genn.evaluator import Evaluator  # noqa: E402
from symstdp_genn.network import HIDDEN_TO_OUTPUT, build_network  # noqa: E402
from symstdp_genn.plotting.accuracy import accuracy_curves, read_metrics  # noqa: E402
from symstdp_genn.plotting.weights import list_snapshots  # noqa: E402
from symstdp_genn.runner import load_data  # noqa: E402
from symstdp_genn.selection import TEST, VALIDATION  # noqa: E402
from symstdp_genn.training import network_state  # noqa: E402

WEIGHT_KEY = f"{HIDDEN_TO_OUTPUT}.g"


def stage_boundary(run: Path) -> int | None:
    """Samples at which stage 2 of a layerwise run started (its ``stage`` event)."""
    path = run / "metrics.jsonl"
    stage2 = accuracy_curves(read_metrics(path)).stage2 if path.is_file() else None
    return stage2[0] if stage2 is not None else None


def plot(rows: list[dict], boundary: int | None, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["samples_seen"] for r in rows]
    passes = [r for r in rows if "readout" in r]
    fig, axes = plt.subplots(1, 3 if passes else 1, figsize=(15 if passes else 5.5, 4),
                             squeeze=False)
    ax = axes[0][0]
    ax.plot(x, [r["effective_inputs_mean"] for r in rows], "o-", label="effective inputs")
    ax.plot(x, [r["at_cap_mean"] for r in rows], "s-", label="synapses at the cap")
    ax.set_yscale("log")
    ax.set_title("hidden→output weights (mean over outputs)")
    ax.legend()
    if passes:
        px = [r["samples_seen"] for r in passes]
        ax = axes[0][1]
        ax.plot(px, [100 * r["readout"]["supervised_accuracy"] for r in passes], "o-",
                label="supervised (spikes)")
        ax.plot(px, [100 * r["readout"]["drive_accuracy"] for r in passes], "s--",
                label="drive argmax(h·g)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("readouts")
        ax.legend()
        ax = axes[0][2]
        ax.plot(px, [100 * r["readout"]["tie_fraction"] for r in passes], "o-", label="ties")
        ax.plot(px, [100 * r["readout"]["silent_fraction"] for r in passes], "s-",
                label="silent output")
        ax.plot(px, [100 * r["readout"]["lost_by_spiking"] for r in passes], "^-",
                label="right by drive, wrong by spikes")
        ax.set_ylabel("% of images")
        ax.set_title("where the spiking readout loses")
        ax.legend()
    for row in axes:
        for a in row:
            a.set_xlabel("training samples")
            if boundary is not None:
                a.axvline(boundary, color="grey", ls=":", lw=1)
                a.text(boundary, a.get_ylim()[1], " stage 2", va="top", fontsize=8,
                       color="grey")
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a run folder with snapshots/")
    p.add_argument("--split", choices=(TEST, VALIDATION), default=VALIDATION)
    p.add_argument("--images", type=int, default=0,
                   help="run the first N images of the split through each snapshot (0: "
                        "weights only, no simulation)")
    p.add_argument("--every", type=int, default=None, help="only snapshots at multiples of N")
    p.add_argument("--scale-output", type=float, default=1.0,
                   help="multiply the hidden->output weights by F before each pass")
    p.add_argument("--theta-shift", type=float, default=0.0,
                   help="add MV to every hidden neuron's theta before each pass")
    p.add_argument("--snapshots", type=Path, nargs="*", default=None,
                   help="these checkpoints instead of the run's snapshots (e.g. RUN/best.npz)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args()
    if args.snapshots:
        shots = [(int(load_checkpoint(p).meta.get("driver", {}).get("samples_seen", 0)), p)
                 for p in args.snapshots]
    else:
        shots = [(seen, path) for seen, path in list_snapshots(args.run / "snapshots")
                 if not args.every or seen % args.every == 0]
    if not shots:
        raise UserError(f"{args.run} has no snapshots/samples-*.npz; train with "
                        "training.checkpoint_every > 0 to keep them")
    first = load_checkpoint(shots[0][1])
    config = config_from_dict(first.meta["config"])
    if args.threads is not None:
        config = dataclasses.replace(config, threads=args.threads)
    w_max = config.network.w_max_hidden_to_output
    evaluator = dataset = None
    if args.images:
        if args.split == VALIDATION and not config.training.validation:
            raise UserError(f"{args.run} has no validation split; use --split test")
        training, final = load_data(config, args.data_dir)
        dataset = final if args.split == TEST else training
        evaluator = Evaluator(config, build_network(config), backend_for(config))
    boundary = stage_boundary(args.run)
    print(f"{args.run}: {len(shots)} snapshots ({config.name}); weight cap {w_max:g}"
          + (f"; {args.images} {args.split} images per pass, output weights x"
             f"{args.scale_output:g}" if args.images else ""))
    print("| samples | effective inputs | at cap | top-1 % share | supervised | drive | "
          "ties | silent | lost by spiking | output spikes | margin | hidden spikes |")
    print("| --- " * 12 + "|")
    rows = []
    for seen, path in shots:
        ckpt = load_checkpoint(path)
        g = ckpt.arrays[WEIGHT_KEY]
        row: dict = {"samples_seen": seen, **weight_concentration(g, w_max).summary()}
        cells = [f"{seen:,}", f"{row['effective_inputs_mean']:.0f}",
                 f"{row['at_cap_mean']:.1f}", f"{100 * row['top_percent_share_mean']:.1f} %"]
        if evaluator is not None and dataset is not None:
            state = network_state(ckpt.arrays)
            scaled = (g * np.float32(args.scale_output)).astype(g.dtype)
            state[WEIGHT_KEY] = scaled
            if args.theta_shift:
                theta = ckpt.arrays["hidden.theta"]
                state["hidden.theta"] = (theta.astype(np.float64) + args.theta_shift).astype(
                    theta.dtype)
            n = min(args.images, len(dataset.test_images))
            tic = time.perf_counter()
            hidden, output, _, _, _ = evaluator.run_pass(state, dataset.test_images[:n], "test")
            d = diagnose_readout(dataset.test_labels[:n].astype(np.int64), hidden, output,
                                 scaled)
            row["readout"] = d.to_dict()
            row["mean_hidden_spikes"] = float(hidden.sum(axis=1).mean())
            row["seconds"] = round(time.perf_counter() - tic, 1)
            cells += [f"{100 * d.supervised_accuracy:.2f} %", f"{100 * d.drive_accuracy:.2f} %",
                      f"{100 * d.tie_fraction:.1f} %", f"{100 * d.silent_fraction:.1f} %",
                      f"{100 * d.lost_by_spiking:.1f} %", f"{d.mean_output_spikes:.1f}",
                      f"{d.mean_margin:.2f}", f"{row['mean_hidden_spikes']:.1f}"]
        else:
            cells += [""] * 8
        rows.append(row)
        print("| " + " | ".join(cells) + " |", flush=True)
    suffix = ("" if args.scale_output == 1.0 else f"-x{args.scale_output:g}") + (
        f"-theta{args.theta_shift:+g}" if args.theta_shift else "") + (
        "-" + "-".join(p.stem for p in args.snapshots) if args.snapshots else "")
    out = args.run / f"diagnosis-{args.split}{suffix}.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"run": str(args.run), "split": args.split,
                                   "images": args.images, "scale_output": args.scale_output,
                                   "theta_shift": args.theta_shift,
                                   "stage_boundary": boundary, "rows": rows}, indent=1) + "\n")
    print(f"written: {out}")
    try:
        figure = args.run / "figures" / f"diagnosis-{args.split}{suffix}.png"
        plot(rows, boundary, figure, f"{config.name}: output layer, {args.split} split")
        print(f"written: {figure}")
    except ImportError:
        print("matplotlib is not installed: no figure")
    return 0


if __name__ == "__main__":
    run_script(main)
