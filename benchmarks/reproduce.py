#!/usr/bin/env python3
"""Reproduce a preset exactly as ``python run.py --mode train`` does, and report one table row.

Runs the command line's own training path (``symstdp_genn.cli.main``) with the
preset's settings — nothing tuned — into a fresh run folder, then prints one
Markdown row: preset, backend, epochs (or the stated shorter protocol), training
samples/s, supervised and assignment accuracy, wall time, and the exact
``run.py`` command that trains the same network. ``--table FILE`` appends the
row (and a header, if the file is new or empty).

    python benchmarks/reproduce.py --preset mnist-400 --epochs 1 --table results.md
    python benchmarks/reproduce.py --preset mnist-400 --schedule layerwise --table results.md
    python benchmarks/reproduce.py --preset mnist-100 --samples 200 \\
        --eval-samples 500 --label-samples 1000        # a quick check, stated in the row
    python benchmarks/reproduce.py --preset mnist-400 --epochs 3 --validation \\
        --eval-every 10000                              # select on the validation split

A run with periodic evaluation reports the selected checkpoint (``best.npz``) and
the last one, both tested once on the test set, and names the split that selected
it; a test-selected run (``--select-split test``, the original's protocol) says
"selected on the test set (optimistic; the original's protocol)" in its row.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn import cli  # noqa: E402
from symstdp_genn.checkpoint import load_checkpoint  # noqa: E402
from symstdp_genn.config import BACKENDS, DEFAULT_PRESET, list_presets  # noqa: E402
from symstdp_genn.selection import selection_label  # noqa: E402

HEADER = ("| preset | backend | protocol | selection | selected: supervised | selected: assignment "
          "| last: supervised | last: assignment | training samples/s | wall time | command |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def _relative(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def train_argv(args: argparse.Namespace, out: Path) -> list[str]:
    """The ``run.py`` arguments of this reproduction (paths relative to the repository)."""
    argv = ["--mode", "train", "--preset", args.preset, "--epochs", str(args.epochs)]
    if args.samples is not None:
        argv += ["--samples", str(args.samples)]
    if args.schedule == "layerwise":
        argv += ["--set", "training.schedule=layerwise",
                 "--set", f"training.output_epochs={args.output_epochs}"]
    if args.backend is not None:
        argv += ["--backend", args.backend]
    if args.eval_samples is not None:
        argv += ["--eval-samples", str(args.eval_samples)]
    if args.label_samples is not None:
        argv += ["--set", f"evaluation.assignment_samples={args.label_samples}"]
    if args.validation:
        argv += ["--set", "training.validation=true"]
    if args.eval_every:
        argv += ["--set", f"training.eval_every={args.eval_every}"]
    if args.select_split is not None:
        argv += ["--set", f"evaluation.select_split={args.select_split}"]
    return [*argv, "--out", _relative(out)]


def read_results(run_dir: Path) -> dict[str, object]:
    """Speed and final accuracies from the run's ``metrics.jsonl``; backend from its checkpoint."""
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if line.strip()]
    train = [e for e in events if e.get("event") == "train"]
    final = [e for e in events if e.get("event") == "evaluation" and e.get("tag") == "final"]
    best = [e for e in events if e.get("event") == "evaluation" and e.get("tag") == "best"]
    selection = [e for e in events if e.get("event") == "selection"]
    if not train or not final:
        raise SystemExit(f"error: {run_dir / 'metrics.jsonl'} has no training or final "
                         "evaluation record; the run did not finish")
    meta = load_checkpoint(run_dir / "checkpoint.npz").meta
    return {"samples_seen": train[-1]["samples_seen"], "samples_per_s": train[-1]["samples_per_s"],
            "final": final[-1], "backend": meta.get("backend", "?"),
            "test_images": final[-1]["n"], "labelled": final[-1].get("labelled"),
            "best": best[-1] if best else None,
            "selection": selection[-1] if selection else None}


def _pct(value: object) -> str:
    return "n/a" if value is None else f"{100 * float(value):.2f} %"


def markdown_row(args: argparse.Namespace, results: dict[str, object], wall_s: float,
                 command: str) -> str:
    final = results["final"]
    protocol = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    if args.schedule == "layerwise":
        protocol = (f"layerwise: {protocol} joint + {args.output_epochs} hidden→output "
                    f"epoch{'s' if args.output_epochs != 1 else ''}")
    if args.samples is not None:
        protocol = f"{results['samples_seen']} samples (shortened)"
    notes = []
    if args.eval_samples is not None:
        notes.append(f"first {results['test_images']} test images")
    if args.label_samples is not None:
        notes.append(f"labelled on {results['labelled']} training images")
    if notes:
        protocol += "; " + ", ".join(notes)
    speed = results["samples_per_s"]
    selection, best = results.get("selection"), results.get("best")
    if selection is None or selection.get("selected_at") is None:
        chosen, best = "none: the last checkpoint", None
    else:
        chosen = (f"{selection_label(str(selection['split']))}, best {selection['readout']} "
                  f"after {selection['selected_at']} samples")
    cells = [args.preset, str(results["backend"]), protocol, chosen,
             _pct(best.get("supervised_accuracy")) if best else "—",
             _pct(best.get("assignment_accuracy")) if best else "—",
             _pct(final.get("supervised_accuracy")), _pct(final.get("assignment_accuracy")),
             "n/a" if speed is None else f"{float(speed):.0f}",
             f"{wall_s:.0f} s" if wall_s < 120 else f"{wall_s / 60:.1f} min", f"`{command}`"]
    return "| " + " | ".join(cells) + " |"


def append_row(table: Path, row: str) -> None:
    table = Path(table)
    new = not table.is_file() or not table.read_text().strip()
    with table.open("a") as handle:
        if new:
            handle.write(HEADER + "\n")
        handle.write(row + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list_presets())
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--samples", type=int, default=None,
                   help="stop after N training samples (a stated shorter protocol)")
    p.add_argument("--schedule", choices=("joint", "layerwise"), default="joint",
                   help="joint (default) or the original's layerwise schedule")
    p.add_argument("--output-epochs", type=int, default=1,
                   help="hidden→output-only epochs of the layerwise schedule")
    p.add_argument("--backend", choices=BACKENDS, default=None)
    p.add_argument("--eval-samples", type=int, default=None,
                   help="test on the first N test images only (stated in the row)")
    p.add_argument("--label-samples", type=int, default=None,
                   help="label hidden neurons on N training images instead of the preset's "
                        "(stated in the row)")
    p.add_argument("--validation", action="store_true",
                   help="three-way split: train on 50 000 images, select on the last 10 000")
    p.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="periodic evaluation (and selection of best.npz) every N samples")
    p.add_argument("--select-split", choices=("validation", "test"), default=None,
                   help="split that selects best.npz (test: the original's, optimistic)")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default models/repro-<preset>-...; never overwritten)")
    p.add_argument("--table", type=Path, default=None, help="Markdown file to append the row to")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset cache (default ./data)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    length = f"n{args.samples}" if args.samples is not None else f"e{args.epochs}"
    base = args.out or ROOT / "models" / f"repro-{args.preset}-{length}"
    out = cli._fresh_run_dir(Path(base).resolve())
    run_argv = train_argv(args, out)
    command = shlex.join(["python", "run.py", *run_argv])
    extra = ["--data-dir", str(args.data_dir or ROOT / "data")]
    if not sys.stderr.isatty():
        extra.append("--no-progress")
    print(f"$ {command}", flush=True)
    tic = time.perf_counter()
    code = cli.main([*run_argv[:-1], str(out), *extra])
    wall = time.perf_counter() - tic
    if code != 0:
        print(f"training exited with code {code}; no row written", file=sys.stderr)
        return code
    row = markdown_row(args, read_results(out), wall, command)
    print(row)
    if args.table is not None:
        append_row(args.table, row)
        print(f"appended to {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
