"""The small things a new user ran into: misspellings get a "did you mean", ``--set key
value`` gets told how to write it, a run folder is a checkpoint for ``--mode test``, and
log.txt and the figures read the way a user expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from symstdp_genn import cli
from symstdp_genn.checkpoint import checkpoint_path, load_checkpoint
from symstdp_genn.config import load_config
from symstdp_genn.errors import UserError, did_you_mean
from symstdp_genn.sweep import build_sweep


def _message(**kwargs: object) -> str:
    with pytest.raises(UserError) as info:
        load_config(**kwargs)
    return str(info.value)


# -- b. "did you mean" -------------------------------------------------------------------


@pytest.mark.parametrize(("override", "suggestion"), [
    ("network.eta_input_to_hiden=0.01", "network.eta_input_to_hidden"),  # a typo
    ("netwrk.theta_plus=0.1", "network"),  # a misspelt section
    ("samples=10", "training.samples"),  # the right key in the wrong section
    ("training.n_hidden=10", "network.n_hidden"),
])
def test_misspelt_key_gets_a_suggestion(override: str, suggestion: str) -> None:
    msg = _message(overrides=[override])
    assert f"did you mean '{suggestion}'?" in msg
    assert "allowed keys here:" in msg  # the list is still there
    assert "\n" not in msg


def test_no_suggestion_when_nothing_is_close() -> None:
    msg = _message(overrides=["nonsense=1"])
    assert "did you mean" not in msg
    assert did_you_mean("zzzz", ["mnist-400"]) == ""


def test_misspelt_preset_gets_a_suggestion() -> None:
    msg = _message(preset="mnist400")
    assert "unknown preset 'mnist400'; did you mean 'mnist-400'?" in msg
    assert "paper-mnist-6400" in msg


def test_misspelt_choice_gets_a_suggestion() -> None:
    msg = _message(overrides=["backend=bultin"])
    assert msg.endswith("did you mean 'builtin'?")


def test_misspelt_sweep_key_gets_a_suggestion() -> None:
    with pytest.raises(UserError) as info:
        build_sweep({"base": "mnist-100", "gird": {"network.theta_plus": [0.1]}})
    assert "did you mean 'grid'?" in str(info.value)


# -- c. --set key value ------------------------------------------------------------------


def test_set_with_a_space_says_how_to_write_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--set", "training.samples", "10"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "write --set training.samples=10" in err
    assert "unrecognized" not in err


def test_set_with_equals_still_parses() -> None:
    parser = cli.build_parser()
    args = cli.parse_arguments(parser, ["--set", "training.samples=10", "--set", "seed=2"])
    assert args.overrides == ["training.samples=10", "seed=2"]
    with pytest.raises(SystemExit):  # other stray arguments: argparse's own message
        cli.parse_arguments(parser, ["--bogus"])


# -- a. a run folder as --checkpoint -------------------------------------------------------


def test_checkpoint_path_of_run_and_original_folders(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes(b"")
    assert checkpoint_path(run) == run / "checkpoint.npz"
    assert checkpoint_path(run / "checkpoint.npz") == run / "checkpoint.npz"
    both = tmp_path / "both"  # the original's files win, as before
    both.mkdir()
    for name in ("gP2E", "gE2C", "theta", "checkpoint.npz"):
        (both / name).write_text("1\n")
    assert checkpoint_path(both) == both
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError) as info:
        load_checkpoint(empty)
    assert "missing gP2E, gE2C, theta" in str(info.value)
    assert "no checkpoint.npz" in str(info.value)
