"""Checkpoint selection: which split periodic evaluations score, and the best checkpoint.

The original trained for many epochs, scored the full *test* set every 10 000
samples and reported one of those scores: a figure selected on the test set,
which is optimistic. The honest protocol (the default once periodic evaluation
is on) is a three-way split: train on the first 50 000 training images, score
periodic evaluations on the last 10 000 (the validation split), keep the
checkpoint with the best validation score as ``best.npz``, and touch the test
set exactly once, at the end, for both the last and the selected checkpoint.
``evaluation.select_split: test`` keeps the original's protocol for comparison
with the paper, and every output of such a run says so (:data:`TEST_SELECTED`).

This module holds the protocol's data and rules; the trainer calls it. The
selection state (best score so far, the curve) travels in the checkpoint's
metadata so it survives an interruption and resume.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .data import Dataset, validation_split
from .errors import UserError

BEST_FILE = "best.npz"
#: a layerwise run's selected joint-stage checkpoint, where its stage 2 starts
BEST_JOINT_FILE = "best-joint.npz"
VALIDATION, TEST = "validation", "test"
#: the words every output of a test-selected run carries (stdout, metrics.jsonl, README rows)
TEST_SELECTED = "selected on the test set (optimistic; the original's protocol)"
VALIDATION_SELECTED = "selected on the validation split"
#: images the validation split holds (the last ones of the training set)
N_VALIDATION = 10_000


def selection_label(split: str) -> str:
    """How a selected checkpoint was chosen, in the words every output uses."""
    return TEST_SELECTED if split == TEST else VALIDATION_SELECTED


def periodic_split(config: Config) -> str:
    """The split periodic evaluations score: ``validation`` with the three-way split,
    otherwise the test set (allowed only when the run says it selects on the test set)."""
    return VALIDATION if config.training.validation else TEST


def check_protocol(config: Config) -> None:
    """Refuse a config whose periodic evaluations would look at the test set silently."""
    ev, t = config.evaluation, config.training
    if t.eval_every and not t.validation and ev.select_split == VALIDATION:
        raise UserError(
            "config: training.eval_every is set but training.validation is false, so periodic "
            "evaluations would score the test set while evaluation.select_split says "
            "'validation'; set training.validation=true (train on 50 000 images, select on "
            "the last 10 000, test once at the end) or evaluation.select_split=test (the "
            "original's protocol, reported as selected on the test set)")
    if t.validation and ev.select_split == TEST:
        raise UserError(
            "config: evaluation.select_split=test needs training.validation=false (the "
            "original's protocol trains on all 60 000 images and scores the test set); with "
            "training.validation=true select on the validation split")


def protocol_datasets(full: Dataset, config: Config) -> tuple[Dataset, Dataset]:
    """``(training, final)`` datasets for a run.

    ``training``'s training images are what the network learns from (and labels on);
    its test images are what periodic evaluations score. ``final``'s test images are
    the real test set, scored once at the end. With ``training.validation`` the
    training set is the first 50 000 images and periodic evaluations score the last
    10 000; otherwise both passes use the test set.
    """
    if not config.training.validation:
        return full, full
    training = validation_split(full, N_VALIDATION)
    final = dataclasses.replace(full, train_images=training.train_images,
                                train_labels=training.train_labels)
    return training, final


def score(summary: Mapping[str, Any], readout: str) -> float:
    """The selection metric of one evaluation summary (NaN/None: no score)."""
    value = summary.get(f"{readout}_accuracy")
    return float("nan") if value is None else float(value)


#: what the curve keeps of each periodic evaluation (a sweep's trial result reads it back)
CURVE_FIELDS = ("supervised_accuracy", "assignment_accuracy", "silent_fraction", "n")


@dataclass
class Selection:
    """Best periodic score so far and the curve, for one readout on one split.

    A later evaluation replaces the best only when it is strictly better, so ties keep
    the earlier (shorter-trained) checkpoint.
    """

    readout: str
    split: str
    best_score: float | None = None
    best_samples: int | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_config(cls, config: Config) -> Selection:
        return cls(config.evaluation.select_on_readout, periodic_split(config))

    @classmethod
    def for_joint_stage(cls, config: Config) -> Selection | None:
        """The joint stage's own selection in a layerwise run that evaluates periodically
        (None otherwise): it picks where stage 2 starts."""
        t = config.training
        if t.schedule != "layerwise" or not t.eval_every:
            return None
        return cls(config.evaluation.joint_select_on_readout, periodic_split(config))

    @property
    def label(self) -> str:
        return selection_label(self.split)

    def offer(self, samples_seen: int, summary: Mapping[str, Any]) -> bool:
        """Record one periodic evaluation; True when it is the new best."""
        value = score(summary, self.readout)
        self.curve.append({"samples_seen": int(samples_seen),
                           **{k: summary.get(k) for k in CURVE_FIELDS}})
        if math.isnan(value) or (self.best_score is not None and value <= self.best_score):
            return False
        self.best_score, self.best_samples = value, int(samples_seen)
        return True

    def to_meta(self) -> dict[str, Any]:
        return {"readout": self.readout, "split": self.split, "best_score": self.best_score,
                "best_samples": self.best_samples, "curve": list(self.curve)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], config: Config,
                  joint: bool = False) -> Selection:
        """The state a checkpoint saved; a fresh one when it saved none or selected
        differently (another readout or split starts the comparison again). ``joint``:
        the joint stage's selection of a layerwise run."""
        fresh = cls.for_joint_stage(config) if joint else cls.for_config(config)
        assert fresh is not None
        if not meta or meta.get("readout") != fresh.readout or meta.get("split") != fresh.split:
            return fresh
        return cls(fresh.readout, fresh.split, meta.get("best_score"),
                   meta.get("best_samples"), [dict(c) for c in meta.get("curve", [])])


def best_of_history(events: Iterable[Mapping[str, Any]], readout: str, split: str
                    ) -> Mapping[str, Any] | None:
    """The periodic evaluation a run selected, from its ``metrics.jsonl`` events:
    the best ``readout`` score among periodic evaluations on ``split`` (earliest on ties)."""
    selection = Selection(readout, split)
    best = None
    for event in events:
        if (event.get("event") == "evaluation" and event.get("tag") == "periodic"
                and event.get("split") == split
                and selection.offer(int(event.get("samples_seen", 0)), event)):
            best = event
    return best
