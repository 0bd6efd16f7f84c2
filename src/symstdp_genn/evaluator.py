"""Evaluation passes with plasticity off: neuron labelling and test-set readouts.

An evaluation never touches the training network: it copies the state into a
separate backend with ``evaluation.batch_size`` lanes, restarts that backend's
random streams from a seed derived from the config (one stream per pass kind),
and runs. So the accuracy printed at the end of training and the one printed
later by ``--mode test`` on the saved checkpoint are the same number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .backends import create_backend
from .backends.base import Backend
from .config import Config
from .data import Dataset
from .evaluation import (
    EvaluationResult,
    assign_neurons,
    class_responses,
    save_evaluation,
    score,
)
from .network import INPUT_TO_HIDDEN, NetworkSpec, seed_for
from .progress import ProgressBar, notice
from .simulation import Simulation

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


class StopEvaluation(KeyboardInterrupt):
    """A pass cut short by :attr:`Evaluator.should_stop` (a stop request between batches),
    told apart from a Ctrl-C that interrupts wherever it lands."""

#: Fewest training images a scaled-down labelling pass uses: below about a thousand, some
#: neurons see too few images of their class to be labelled reliably.
MIN_LABELLING = 1000


def labelling_samples(config: Config, n_train: int, requested: int | None = None) -> int:
    """How many training images label the hidden neurons.

    ``requested`` defaults to ``evaluation.assignment_samples`` (10 000). A run limited by
    ``training.samples`` labels on ``min(requested, max(1000, training.samples))`` images:
    a quick look (``--samples 2000``) should not spend most of its time labelling on more
    images than it trained on. Never more than the training set holds.
    """
    n = config.evaluation.assignment_samples if requested is None else requested
    limit = config.training.samples
    if limit is not None:
        n = min(n, max(MIN_LABELLING, limit))
    return min(n, n_train)


class Evaluator:
    def __init__(self, config: Config, spec: NetworkSpec, backend_name: str):
        self.config = config
        self.spec = spec
        self.backend_name = backend_name
        self._backend: Backend | None = None
        #: polled after every batch; True aborts the pass with KeyboardInterrupt, as Ctrl-C
        #: would (how a stop requested from another thread ends a long final evaluation)
        self.should_stop: Callable[[], bool] | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = create_backend(self.backend_name, self.spec,
                                           batch_size=self.config.evaluation.batch_size,
                                           seed=seed_for(self.config, "evaluation"),
                                           threads=self.config.threads)
        return self._backend

    def run_pass(self, state: Mapping[str, np.ndarray], images: np.ndarray, purpose: str,
                 progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                            np.ndarray, float]:
        """Present ``images`` to a frozen copy of ``state``; counts and retry statistics."""
        backend = self.backend
        # a pass depends only on (state, images, seed): what ``state`` lacks (an
        # imported or weights-only checkpoint) starts from the initial values, not
        # from wherever the previous pass left it
        backend.reset()
        backend.set_state(state)
        backend.reseed(seed_for(self.config, f"evaluation/{purpose}"))
        sim = Simulation(backend, self.config)
        sim.set_mode("frozen")
        # frozen weights: one normalisation is what "before every presentation" amounts to
        backend.normalize(INPUT_TO_HIDDEN, self.config.network.norm_input_to_hidden)
        n, batch = len(images), backend.batch_size
        n_hidden = self.spec.population("hidden").size
        hidden = np.zeros((n, n_hidden), np.int32)
        output = np.zeros((n, 10), np.int32)
        retries = np.zeros(n, np.int32)
        forced = np.zeros(n, bool)
        start = time.perf_counter()
        for lo in range(0, n, batch):
            hi = min(lo + batch, n)
            chunk = np.zeros((batch, images.shape[1]), images.dtype)
            chunk[: hi - lo] = images[lo:hi]
            valid = np.arange(batch) < hi - lo
            result = sim.present(chunk, None, valid)
            hidden[lo:hi] = result.hidden_counts[: hi - lo]
            output[lo:hi] = result.output_counts[: hi - lo]
            retries[lo:hi] = result.retries[: hi - lo]
            forced[lo:hi] = result.forced[: hi - lo]
            if progress is not None:
                progress(hi - lo)
            if self.should_stop is not None and self.should_stop():
                raise StopEvaluation
        return hidden, output, retries, forced, time.perf_counter() - start

    def label_neurons(self, state: Mapping[str, np.ndarray], images: np.ndarray,
                      labels: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Assign each hidden neuron the class it responds to most (frozen network)."""
        hidden, _, _, _, _ = self.run_pass(state, images, "labelling", progress)
        return assign_neurons(class_responses(hidden, labels), np.bincount(labels, minlength=10))

    def evaluate(self, state: Mapping[str, np.ndarray], images: np.ndarray, labels: np.ndarray,
                 assignments: np.ndarray, progress: Progress | None = None) -> EvaluationResult:
        hidden, output, retries, forced, seconds = self.run_pass(state, images, "test", progress)
        return score(labels, hidden, output, assignments, retries, forced, seconds)

    def label_and_test(self, state: Mapping[str, np.ndarray], dataset: Dataset, n_label: int,
                       n_test: int, show: bool = False, tag: str = "",
                       assignments: np.ndarray | None = None,
                       after_labelling: Callable[[np.ndarray], None] | None = None,
                       ) -> tuple[np.ndarray, EvaluationResult]:
        """Label hidden neurons on the first ``n_label`` training images (unless
        ``assignments`` are given), then read out the first ``n_test`` test images,
        with progress bars. ``after_labelling`` receives the new assignments before the
        test pass (the trainer saves its checkpoint there)."""
        suffix = f" ({tag})" if tag else ""
        if assignments is None:
            n_label = min(n_label, len(dataset.train_images))
            if tag == "final":
                notice(log, "final evaluation: labelling hidden neurons on %d training images, "
                       "then testing on %d", n_label, min(n_test, len(dataset.test_images)))
            with ProgressBar(n_label, "labelling" + suffix, show) as bar:
                assignments = self.label_neurons(
                    state, dataset.train_images[:n_label],
                    dataset.train_labels[:n_label].astype(np.int64), bar.advance)
            if after_labelling is not None:
                after_labelling(assignments)
        n_test = min(n_test, len(dataset.test_images))
        with ProgressBar(n_test, "testing" + suffix, show) as bar:
            result = self.evaluate(state, dataset.test_images[:n_test],
                                   dataset.test_labels[:n_test].astype(np.int64),
                                   assignments, bar.advance)
        return assignments, result


def save_record(path: Path, result: EvaluationResult, config: Config, **meta: Any) -> Path | None:
    """Keep the per-sample results of a test pass (``evaluation.npz``, for the figures).

    The record is a by-product: a failed write is logged as a warning and returns None.
    """
    if result.record is None:
        return None
    try:
        return save_evaluation(path, result.record, dataset=config.dataset,
                               n_hidden=config.network.n_hidden, seed=config.seed,
                               min_hidden_spikes=config.training.min_hidden_spikes,
                               validation=False, **meta)  # records are test-set passes
    except OSError as exc:
        log.warning("could not write the evaluation record %s: %s", path, exc)
        return None
