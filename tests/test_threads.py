"""Threads in the builtin backend: results must not depend on the thread count.

A single lane (training) splits its time step across threads once the network is
large enough; lanes run in parallel otherwise. Every test here compares bytes:
the same config and seed give the same state, spike lists and checkpoints with
1, 2 and 3 threads (3 makes uneven blocks, whatever cores the machine has).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import small_config
from test_training import synthetic_dataset

from symstdp_genn import cli
from symstdp_genn.backends.builtin import BuiltinBackend
from symstdp_genn.backends.builtin.backend import (
    NORMALIZE_THREADS_MIN_WEIGHTS,
    available_cores,
)
from symstdp_genn.backends.builtin.codegen import MIN_SPLIT_NEURONS, profile_labels
from symstdp_genn.backends.builtin.threads import CUT_ONE, EdgeBalancer, ThreadChooser
from symstdp_genn.config import load_config
from symstdp_genn.errors import UserError
from symstdp_genn.network import build_network
from symstdp_genn.training import Trainer

#: the smallest hidden layer that takes the threaded time step (784 inputs, hidden and
#: inhibitory layers of THREADED each, 10 outputs: only the hidden and inhibitory layers
#: are split)
THREADED = MIN_SPLIT_NEURONS


def busy_backend(threads: int, n_hidden: int = THREADED, steps: int = 60,
                 shares: tuple[float, ...] | None = None) -> BuiltinBackend:
    """A network mid-presentation: strong input, learning on, spikes in every list.
    ``shares``: every call on the split step, with its blocks fixed at these shares."""
    b = BuiltinBackend(build_network(small_config(n_hidden)), 1, seed=11, threads=threads)
    if shares is not None:
        b.chooser = None
        b.balancer.damping, b.balancer.floor = 0.0, 0.0
        b.balancer.set_shares(list(shares))
    rates = np.random.default_rng(3).random(784) * 120.0
    b.set_var("input", "rate", rates)
    b.set_var("hidden", "theta", 0.0)  # fire early, so inhibition and learning act too
    b.set_var("hidden", "V", np.linspace(-60.0, -45.0, n_hidden))
    b.set_var("hidden", "timer", 10.0)
    b.set_var("output", "rate", np.where(np.arange(10) == 3, 200.0, 0.0))
    b.normalize("input_to_hidden", 78.4)
    b.run(steps)
    b.normalize("input_to_hidden", 78.4)
    b.normalize("hidden_to_output", 0.8 * n_hidden)
    b.run(steps)
    return b


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tobytes() == b[key].tobytes(), key


@pytest.mark.slow  # several seconds: left out of the quick run
def test_a_large_lane_takes_the_threaded_step_and_a_small_one_does_not() -> None:
    assert busy_backend(2, steps=1).run_threads == 2
    assert BuiltinBackend(build_network(small_config(THREADED - 1)), 1,
                          threads=2).run_threads == 1
    assert BuiltinBackend(build_network(small_config(8)), 4, threads=2).run_threads == 2
    assert BuiltinBackend(build_network(small_config(8)), 4, threads=9).run_threads == 4


@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_step_state_is_byte_identical_to_one_thread(threads: int) -> None:
    one = busy_backend(1)
    many = busy_backend(threads)
    state = one.get_state()
    # the comparison means something: hidden and output neurons fired (so inhibition
    # and both learning rules acted) and the input's spike list is in use
    assert one.spike_counts("hidden").sum() > 0 and one.spike_counts("output").sum() > 0
    assert state["input.spike_count"][0, 0] > 0
    assert_same_state(state, many.get_state())
    np.testing.assert_array_equal(one.spike_counts("hidden"), many.spike_counts("hidden"))


@pytest.mark.parametrize("shares", [(0.3, 0.7), (0.72, 0.28), (0.2, 0.3, 0.5)])
def test_where_the_blocks_start_changes_no_value(shares: tuple[float, ...]) -> None:
    """The edge balancer moves block edges at run time; no value may depend on them."""
    one = busy_backend(1)
    skewed = busy_backend(len(shares), shares=shares)
    cut = skewed.balancer.cut
    assert cut[0] == 0 and cut[-1] == CUT_ONE and abs(cut[1] / CUT_ONE - shares[0]) < 1e-3
    assert_same_state(one.get_state(), skewed.get_state())
    np.testing.assert_array_equal(one.spike_counts("hidden"), skewed.spike_counts("hidden"))


def test_edge_balancer_moves_work_to_the_thread_that_waits() -> None:
    bal = EdgeBalancer(2)
    assert list(bal.cut) == [0, CUT_ONE // 2, CUT_ONE]
    # thread 1 is the slower one: busy 9 ms against thread 0's 6 ms, of a 10 ms call
    for _ in range(20):
        share0 = bal.shares[0]
        busy = np.array([6.0, 9.0]) * np.array([bal.shares[0] / 0.5, bal.shares[1] / 0.5])
        bal.record(1e-3 * busy)
    assert 0.59 < bal.shares[0] < 0.61  # speeds 1/6 and 1/9: equal busy at 0.6 / 0.4
    assert bal.shares[0] >= share0 - 1e-9
    assert 0 < bal.cut[1] < CUT_ONE and bal.cut[2] == CUT_ONE
    # a hopeless measurement moves nothing; no share leaves its bounds
    before = bal.cut.copy()
    bal.record(np.array([0.0, 10e-3]))
    np.testing.assert_array_equal(bal.cut, before)
    for _ in range(50):  # thread 0 five times as fast: its share stops at 0.75
        bal.record(np.array([2e-3, 10e-3]))
    assert 0.74 < bal.shares[0] <= 0.75 + 1e-12


def test_a_state_saved_with_one_thread_count_continues_identically_with_another() -> None:
    one = busy_backend(1)
    saved = one.get_state()
    assert saved["hidden.spike_count"][0, 0] + saved["input.spike_count"][0, 0] > 0
    other = BuiltinBackend(build_network(small_config(THREADED)), 1, seed=0, threads=3)
    other.set_state(saved)
    other.set_dynamic_param("hidden", "learning", 1.0)
    for b in (one, other):
        b.run(40)
    assert_same_state(one.get_state(), other.get_state())


def test_changing_the_thread_count_between_calls_changes_nothing() -> None:
    """The chooser may switch between 1 and N threads at any call."""
    steady = busy_backend(1, steps=30)
    switching = BuiltinBackend(build_network(small_config(THREADED)), 1, seed=11, threads=3)
    switching.set_state(steady.get_state())
    for b in (steady, switching):
        b.set_dynamic_param("hidden", "learning", 1.0)
    counts = iter([3, 1, 2, 3, 2, 1, 1, 3])
    switching.chooser.pick = lambda key: next(counts)
    for steps in (5, 1, 17, 2, 9, 1, 4, 6):
        steady.run(steps)
        switching.run(steps)
    assert_same_state(steady.get_state(), switching.get_state())


def test_threaded_normalisation_equals_one_thread() -> None:
    n = -(-NORMALIZE_THREADS_MIN_WEIGHTS // 784)  # large enough to be split
    g = (np.random.default_rng(0).random((784, n)) ** 3).astype(np.float32)
    g[:, 5] = 0.0  # a silent target stays silent
    results = []
    for threads in (1, 2, 3):
        b = BuiltinBackend(build_network(small_config(n)), 1, threads=threads)
        b.set_weights("input_to_hidden", g)
        b.normalize("input_to_hidden", 78.4)
        results.append(b.get_weights("input_to_hidden"))
    assert results[0].tobytes() == results[1].tobytes() == results[2].tobytes()
    np.testing.assert_allclose(results[0].sum(axis=0, dtype=np.float64)[6:], 78.4, rtol=1e-5)
    assert not results[0][:, 5].any()


def test_parallel_lanes_equal_lanes_run_one_at_a_time() -> None:
    def lanes(threads: int) -> dict[str, np.ndarray]:
        b = BuiltinBackend(build_network(small_config(16)), 3, seed=4, threads=threads)
        for target in ("hidden", "input_to_hidden", "hidden_to_output"):  # lanes share weights
            b.set_dynamic_param(target, "learning", 0.0)
        b.set_var("input", "rate", np.array([[60.0] * 784, [30.0] * 784, [90.0] * 784]))
        b.run(200)
        return b.get_state()

    assert_same_state(lanes(1), lanes(3))


def checkpoint_bytes(tmp: Path, threads: int, **extra: object) -> tuple[bytes, Trainer]:
    sets = {"training.samples": 6, "evaluation.samples": 10, "evaluation.assignment_samples": 10,
            "seed": 7, "training.checkpoint_every": 0, "threads": threads, **extra}
    trainer = Trainer(small_config(16, **sets), synthetic_dataset(), tmp)
    outcome = trainer.train(show_progress=False, final_evaluation=True)
    return outcome.checkpoint.read_bytes(), trainer


def test_mnist_100_checkpoint_is_byte_identical_for_1_and_2_threads(tmp_path: Path) -> None:
    sets = {"network.n_hidden": 100, "network.norm_hidden_to_output": 80.0}
    one, _ = checkpoint_bytes(tmp_path / "one", 1, **sets)
    two, trainer = checkpoint_bytes(tmp_path / "two", 2, **sets)
    assert trainer.backend.threads == 2 and trainer.evaluator.backend.run_threads == 2
    assert one == two


def test_threaded_training_checkpoint_is_byte_identical_to_one_thread(tmp_path: Path) -> None:
    sets = {"network.n_hidden": THREADED, "network.norm_hidden_to_output": 0.8 * THREADED,
            "training.samples": 3, "evaluation.batch_size": 1}
    one, _ = checkpoint_bytes(tmp_path / "one", 1, **sets)
    two, trainer = checkpoint_bytes(tmp_path / "two", 2, **sets)
    assert trainer.backend.run_threads == 2  # the threaded step was taken
    assert trainer.evaluator.backend.run_threads == 2
    assert one == two


def test_small_populations_are_not_split() -> None:
    # ten outputs and 784 inputs stay with one thread; the hidden layer is split
    assert 784 < MIN_SPLIT_NEURONS <= THREADED


def test_profile_build_times_every_block_and_both_barriers() -> None:
    spec = build_network(small_config(8))
    b = BuiltinBackend(spec, 1, threads=1, profile=True)
    b.set_var("input", "rate", 60.0)
    b.run(50)
    times = b.profile()
    assert list(times) == profile_labels(spec)
    assert "neuron update: hidden" in times and "barrier after the neuron phase" in times
    assert times["neuron update: hidden"] > 0.0
    with pytest.raises(RuntimeError, match="profiling build"):
        BuiltinBackend(spec, 1).profile()


def test_threads_key_defaults_to_every_available_core() -> None:
    config = load_config("mnist-100")
    assert config.threads is None
    b = BuiltinBackend(build_network(small_config(8)), 1, threads=config.threads)
    assert b.threads == min(available_cores(), 64)
    assert load_config("mnist-100", overrides=["threads=3"]).threads == 3


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "many"])
def test_bad_threads_value_is_a_user_error_naming_the_key(value: str) -> None:
    with pytest.raises(UserError, match="config key 'threads'"):
        load_config("mnist-100", overrides=[f"threads={value}"])


def test_threads_flag_sets_the_config_key(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser().parse_args(["--threads", "2"])
    assert "threads=2" in cli._flag_overrides(args)
    assert cli._config_for(args).threads == 2
    assert cli.main(["--mode", "train", "--preset", "mnist-100", "--threads", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config key 'threads'") and "\n" not in err


def _drive(chooser: ThreadChooser, key: tuple[int, bool], calls: int,
           seconds: Callable[[int, int], float]) -> list[int]:
    """Let ``chooser`` pick for ``calls`` calls, each costing ``seconds(call, threads)``;
    the thread counts it picked."""
    picks = []
    for i in range(calls):
        t = chooser.pick(key)
        picks.append(t)
        chooser.record(key, t, seconds(i, t))
    return picks


def test_chooser_settles_on_the_faster_count_and_probes_ever_more_rarely() -> None:
    chooser = ThreadChooser(2)
    # two threads twice as fast
    picks = _drive(chooser, (700, True), 300, lambda i, t: 1.0 if t == 2 else 2.0)
    probes = [i for i, t in enumerate(picks) if t == 1]
    assert picks[0] == 2 and len(probes) <= 8  # one first measurement, then rare probes
    gaps = np.diff(probes[1:])
    assert (gaps[1:] >= gaps[:-1]).all() and gaps[-1] >= 64
    assert chooser.best() == 2


def test_a_slow_first_call_on_n_threads_does_not_decide() -> None:
    """The first call on N threads starts the team and warms its caches: ten times
    slower here. Two threads, really 1.5x faster, must still win within a few calls."""
    chooser = ThreadChooser(2)
    first = {2: True}

    def seconds(i: int, t: int) -> float:
        if t == 2 and first.pop(2, False):
            return 10.0
        return 1.0 if t == 2 else 1.5

    picks = _drive(chooser, (700, True), 200, seconds)
    assert picks[:2] == [2, 1]  # each count measured once
    assert picks[20:].count(2) >= 170  # the warm-up did not keep it on one thread
    assert chooser.best() == 2


def test_chooser_follows_a_change_of_load_within_a_few_calls() -> None:
    chooser = ThreadChooser(2)
    key = (300, False)
    # from call 100 on, the second core is taken
    picks = _drive(chooser, key, 200,
                   lambda i, t: ((6.0 if i >= 100 else 1.0) if t == 2 else 2.0))
    assert picks[90:100].count(2) >= 9
    assert picks[104:200].count(2) <= 6
    assert chooser.best() == 1
    assert ThreadChooser(1).pick(key) == 1
