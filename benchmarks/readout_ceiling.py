#!/usr/bin/env python3
"""How well could any output layer read this hidden layer? Readout rules on frozen spikes.

The supervised output layer of a two-stage run learns on a frozen hidden layer, so its
accuracy is bounded by what the hidden spike counts carry. This script presents
``--train-images`` training images and ``--images`` validation images to a checkpoint's
frozen network once, keeps the hidden and output spike counts, and scores readout rules
fitted on the training counts against the validation counts, all from the same spikes:

* ``spiking``: the checkpoint's own output layer (the supervised readout it would report);
* ``assignment``: the hard per-neuron class vote (the paper's unsupervised readout);
* ``template``: argmax of h·m_c with m_c each class's mean hidden counts scaled to the
  output layer's weight budget and clipped at its cap, which is what the symmetric-STDP
  output layer converges to under the teacher (potentiation only, every presentation
  rescaled to ``norm_hidden_to_output``); ``template-nocap`` is the same without the cap;
* ``soft-assignment``: argmax of h·P(c | neuron), each neuron's vote spread over the
  classes by how it responds to them (a per-neuron, i.e. presynaptic, normalisation);
* ``least-squares``: a ridge-regularised linear classifier on the counts, the ceiling of a
  linear readout (not biologically plausible; a reference, not a proposal).

The counts are kept in ``--cache`` so that further rules cost no simulation. Nothing is
trained; the test set is never touched.

    python benchmarks/readout_ceiling.py --checkpoint RUN/best-joint.npz \\
        --train-images 10000 --images 5000 --cache RUN/readout-counts.npz
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
from symstdp_genn.config import Config, config_from_dict  # noqa: E402
from symstdp_genn.diagnostics import readout_rules  # noqa: E402
from symstdp_genn.errors import UserError, run_script  # noqa: E402
from symstdp_genn.evaluation import supervised_predictions  # noqa: E402
from symstdp_genn.evaluator import Evaluator  # noqa: E402
from symstdp_genn.network import build_network  # noqa: E402
from symstdp_genn.runner import load_data  # noqa: E402
from symstdp_genn.training import network_state  # noqa: E402


def readouts(config: Config, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every rule's predictions for the validation images, the checkpoint's own first."""
    net = config.network
    return {"spiking": supervised_predictions(arrays["val_output"]),
            **readout_rules(arrays["train_hidden"], arrays["train_labels"],
                            arrays["val_hidden"], net.norm_hidden_to_output,
                            net.w_max_hidden_to_output)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--train-images", type=int, default=10_000,
                   help="training images the rules are fitted on")
    p.add_argument("--images", type=int, default=5_000, help="validation images scored")
    p.add_argument("--cache", type=Path, default=None,
                   help="keep the spike counts here; an existing file is reused")
    p.add_argument("--json", type=Path, default=None, help="write the scores here too")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    config = config_from_dict(ckpt.meta["config"])
    if args.threads is not None:
        config = dataclasses.replace(config, threads=args.threads)
    if not config.training.validation:
        raise UserError(f"{args.checkpoint} was trained without a validation split; this "
                        "script scores validation images only, never the test set")
    if args.cache is not None and args.cache.is_file():
        cached = np.load(args.cache)
        arrays = {k: cached[k] for k in cached.files}
        print(f"counts from {args.cache}")
    else:
        training, _ = load_data(config, args.data_dir)
        state = network_state(ckpt.arrays)
        evaluator = Evaluator(config, build_network(config), backend_for(config))
        n_train = min(args.train_images, len(training.train_images))
        n_val = min(args.images, len(training.test_images))
        start = time.perf_counter()
        train_hidden, _, _, _, _ = evaluator.run_pass(
            state, training.train_images[:n_train], "labelling")
        val_hidden, val_output, _, _, _ = evaluator.run_pass(
            state, training.test_images[:n_val], "test")
        print(f"{n_train + n_val} presentations in {time.perf_counter() - start:.0f} s")
        arrays = {"train_hidden": train_hidden.astype(np.uint16),
                  "train_labels": training.train_labels[:n_train].astype(np.int64),
                  "val_hidden": val_hidden.astype(np.uint16),
                  "val_output": val_output.astype(np.int32),
                  "val_labels": training.test_labels[:n_val].astype(np.int64)}
        if args.cache is not None:
            with atomic_path(args.cache) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, **arrays)
    preds = readouts(config, arrays)
    labels = arrays["val_labels"]
    scores = {name: float((pred == labels).mean()) for name, pred in preds.items()}
    print(f"{args.checkpoint}: fitted on {arrays['train_labels'].size} "
          f"training images, scored on {labels.size} validation images")
    for name, acc in scores.items():
        print(f"  {name:16s} {100 * acc:6.2f} %")
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps({
                "checkpoint": str(args.checkpoint),
                "train_images": int(arrays["train_labels"].size),
                "validation_images": int(labels.size), "accuracy": scores}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_script(main)
