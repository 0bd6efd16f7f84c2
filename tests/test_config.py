"""Tests of the config schema: presets (spec §5), overrides, validation and YAML round trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from symstdp_genn.config import (
    DEFAULT_PRESET,
    Config,
    NetworkConfig,
    config_from_dict,
    list_presets,
    load_config,
    parse_override,
)
from symstdp_genn.errors import UserError

# Spec §5, typed in from the table (not read from the preset files):
# N, V_th, tau_theta (ms), theta_plus, eta in->hid, eta hid->out, gEC_MAX, C in->hid, C hid->out
SPEC_TABLE = {
    "mnist-100": (100, -52.0, 6e6, 0.07, 0.005, 0.04, 8.0, 78.4, 80.0),
    "mnist-400": (400, -52.0, 6e6, 0.07, 0.005, 0.04, 8.0, 78.4, 320.0),
    "mnist-1600": (1600, -52.0, 8e6, 0.07, 0.02, 0.08, 8.0, 78.4, 1280.0),
    "mnist-6400": (6400, -52.0, 2e7, 0.05, 0.01, 0.04, 8.0, 78.4, 5120.0),
    "mnist-10000": (10000, -52.0, 2e7, 0.05, 0.0075, 0.04, 8.0, 78.4, 8000.0),
    "fashion-400": (400, -60.0, 5e7, 0.05, 0.02, 0.32, 40.0, 19.6, 800.0),
    # the spec's fashion-6400 row; the preset named fashion-6400 is tuned (TUNED below)
    "fashion-6400-spec": (6400, -52.0, 2e7, 0.05, 0.0005, 0.08, 8.0, 19.6, 5120.0),
}
TABLE_KEYS = ("n_hidden", "hidden_v_threshold", "tau_theta_ms", "theta_plus",
              "eta_input_to_hidden", "eta_hidden_to_output", "w_max_hidden_to_output",
              "norm_input_to_hidden", "norm_hidden_to_output")


def _user_error(**kwargs: object) -> str:
    """The message of the UserError that ``load_config(**kwargs)`` must raise."""
    with pytest.raises(UserError) as info:
        load_config(**kwargs)
    return str(info.value)


# ------------------------------------------------------------------------------------------
# presets
# ------------------------------------------------------------------------------------------


#: presets tuned on the validation split: (base preset, the values that differ from it)
TUNED = {"fashion-400-tuned": ("fashion-400", {"theta_plus": 0.2, "eta_input_to_hidden": 0.05,
                                               "norm_input_to_hidden": 78.4}),
         "fashion-6400": ("fashion-6400-spec", {
             "hidden_v_threshold": -60.0, "tau_theta_ms": 5e7, "theta_plus": 0.2,
             "eta_input_to_hidden": 0.05, "eta_hidden_to_output": 0.32,
             "w_max_hidden_to_output": 40.0, "norm_input_to_hidden": 78.4,
             "norm_hidden_to_output": 12800.0}),
         "mnist-6400-tuned": ("mnist-6400", {"theta_plus": 0.3})}


#: presets that are a network preset under another protocol: (base preset, training and
#: evaluation values that differ from it)
PROTOCOLS = {"mnist-6400-two-stage": ("mnist-6400", {
    "training.schedule": "layerwise", "training.epochs": 1, "training.output_epochs": 1,
    "training.validation": True, "training.eval_every": 10_000,
    "training.checkpoint_every": 5000, "evaluation.periodic_label_samples": 5000})}


#: the ``paper-`` twin of each network a user trains: the spec's rows, except that
#: fashion-6400's twin runs the values that learn (the spec's leave it nearly silent)
PAPER_TWINS = {**{f"paper-{p}": p for p in SPEC_TABLE if p != "fashion-6400-spec"},
               "paper-fashion-6400": "fashion-6400"}


def test_preset_list_is_exactly_the_spec_table() -> None:
    """The network presets are the spec's table; each has a ``paper-`` twin (the protocol);
    the only others are the tuned and protocol presets below."""
    assert sorted(list_presets()) == sorted([*SPEC_TABLE, *PAPER_TWINS, *TUNED, *PROTOCOLS])


@pytest.mark.parametrize("preset", sorted(PROTOCOLS))
def test_protocol_preset_is_its_network_preset_with_these_settings(preset: str) -> None:
    base_name, settings = PROTOCOLS[preset]
    config = load_config(preset)
    same = load_config(base_name, overrides=[f"{k}={v}" for k, v in settings.items()])
    assert config.name == preset
    assert dataclasses.replace(config, name=base_name) == same


@pytest.mark.parametrize("preset", sorted(TUNED))
def test_tuned_preset_differs_from_its_base_in_the_tuned_values_only(preset: str) -> None:
    """A tuned preset is its spec preset with a few network values changed, nothing else:
    the same dataset, size and protocol, so its README row compares like with like."""
    base_name, changed = TUNED[preset]
    base, tuned = load_config(base_name), load_config(preset)
    assert tuned.name == preset
    for key, value in changed.items():
        assert getattr(tuned.network, key) == value != getattr(base.network, key)
    assert dataclasses.replace(tuned.network, **{k: getattr(base.network, k) for k in changed}) \
        == base.network
    assert (tuned.dataset, tuned.training, tuned.evaluation) == \
        (base.dataset, base.training, base.evaluation)


@pytest.mark.parametrize("paper_name", sorted(PAPER_TWINS))
def test_paper_preset_is_the_network_preset_under_the_original_protocol(paper_name: str) -> None:
    """The original's two stages: the first commit's joint-training budget for the size
    (train.cc), then 20 epochs of hidden→output training on the frozen hidden layer from
    stage 1's last state (the last commit's FIXED_HIDDEN_LAYER run), the full test set
    scored every 10 000 samples, selection on the test set."""
    base, paper = load_config(PAPER_TWINS[paper_name]), load_config(paper_name)
    assert paper.name == paper_name
    assert paper.network == base.network and paper.dataset == base.dataset
    t, ev = paper.training, paper.evaluation
    budget = {100: 3, 400: 5, 1600: 7, 6400: 15, 10_000: 20}[base.network.n_hidden]
    assert (t.schedule, t.epochs, t.output_epochs) == ("layerwise", budget, 20)
    assert t.output_stage_start == "last"
    assert (t.eval_every, t.validation) == (10_000, False)
    assert (ev.select_split, ev.select_on_readout, ev.periodic_samples) == (
        "test", "supervised", None)


@pytest.mark.parametrize("preset", sorted(SPEC_TABLE))
def test_preset_carries_spec_values(preset: str) -> None:
    config = load_config(preset)
    net = config.network
    for key, expected in zip(TABLE_KEYS, SPEC_TABLE[preset], strict=True):
        value = getattr(net, key)
        assert value == pytest.approx(expected, rel=1e-12), f"{preset}: network.{key}"
        assert type(value) is type(expected), f"{preset}: network.{key} has type {type(value)}"
    assert config.dataset == ("fashion-mnist" if preset.startswith("fashion") else "mnist")
    assert config.name == preset


@pytest.mark.parametrize("preset", sorted(SPEC_TABLE))
def test_mnist_output_norm_is_a_tenth_of_n_times_gec_max(preset: str) -> None:
    """Spec §2: C hid->out = 0.1·N·gEC_MAX for MNIST (Fashion-MNIST uses its own values)."""
    net = load_config(preset).network
    if preset.startswith("mnist"):
        assert net.norm_hidden_to_output == pytest.approx(
            0.1 * net.n_hidden * net.w_max_hidden_to_output)
    else:
        assert net.norm_input_to_hidden == pytest.approx(19.6)


def test_presets_keep_common_defaults() -> None:
    """Parameters outside the §5 table are the schema defaults in every preset."""
    defaults = NetworkConfig()
    for preset in SPEC_TABLE:
        net = load_config(preset).network
        for f in dataclasses.fields(NetworkConfig):
            if f.name not in TABLE_KEYS:
                assert getattr(net, f.name) == getattr(defaults, f.name), (preset, f.name)
        assert load_config(preset).training.dt_ms == 0.5


def test_default_preset_is_mnist_400() -> None:
    assert DEFAULT_PRESET == "mnist-400"
    config = load_config()
    assert config.name == "mnist-400"
    assert config.network.n_hidden == 400
    assert config.network.norm_hidden_to_output == 320.0
    assert config == load_config("mnist-400")


def test_unknown_preset_lists_available_ones() -> None:
    msg = _user_error(preset="mnist-123")
    assert "mnist-123" in msg
    for name in SPEC_TABLE:
        assert name in msg


# ------------------------------------------------------------------------------------------
# overrides
# ------------------------------------------------------------------------------------------


def test_overrides_set_dotted_keys_with_yaml_types() -> None:
    config = load_config("mnist-100", overrides=[
        "network.n_hidden=16",
        "network.theta_plus=1",
        "network.threshold_rule=paper",
        "training.validation=true",
        "training.samples=250",
        "evaluation.samples=null",
        "seed=42",
        "backend=builtin",
    ])
    assert config.network.n_hidden == 16
    assert config.network.theta_plus == 1.0
    assert type(config.network.theta_plus) is float
    assert config.network.threshold_rule == "paper"
    assert config.training.validation is True
    assert config.training.samples == 250
    assert config.evaluation.samples is None
    assert config.seed == 42
    assert config.backend == "builtin"
    # untouched values still come from the preset
    assert config.network.norm_hidden_to_output == 80.0
    assert config.name == "mnist-100"


def test_later_override_wins() -> None:
    config = load_config(overrides=["network.n_hidden=16", "network.n_hidden=32"])
    assert config.network.n_hidden == 32


def test_integral_float_is_accepted_for_int() -> None:
    assert load_config(overrides=["network.n_hidden=16.0"]).network.n_hidden == 16
    assert type(load_config(overrides=["network.n_hidden=16.0"]).network.n_hidden) is int


def test_parse_override_splits_key_and_parses_value() -> None:
    assert parse_override("network.eta_input_to_hidden=0.01") == (
        ["network", "eta_input_to_hidden"], 0.01)
    assert parse_override(" seed = 7") == (["seed"], 7)
    assert parse_override("training.samples=") == (["training", "samples"], None)


@pytest.mark.parametrize("text", ["network.n_hidden", "=5", ""])
def test_malformed_override_is_a_user_error(text: str) -> None:
    msg = _user_error(overrides=[text])
    assert "--set" in msg
    assert "dotted.key=value" in msg


def test_override_below_a_scalar_is_refused() -> None:
    msg = _user_error(overrides=["network.n_hidden.size=3"])
    assert "n_hidden" in msg
    assert "not a section" in msg


# ------------------------------------------------------------------------------------------
# validation errors name the dotted key
# ------------------------------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    msg = _user_error(overrides=["nonsense=1"])
    assert "'nonsense'" in msg
    assert "unknown" in msg
    for allowed in ("name", "dataset", "seed", "backend", "network", "training", "evaluation"):
        assert allowed in msg


def test_unknown_nested_key_lists_allowed_keys() -> None:
    msg = _user_error(overrides=["network.n_hiden=10"])
    assert "'network.n_hiden'" in msg
    assert "unknown" in msg
    for allowed in ("n_hidden", "theta_plus", "eta_input_to_hidden", "norm_hidden_to_output"):
        assert allowed in msg
    assert "epochs" not in msg  # a training key is not allowed under network


def test_unknown_section() -> None:
    msg = _user_error(overrides=["nonsense.key=1"])
    assert "'nonsense'" in msg


@pytest.mark.parametrize(("override", "key", "expected_type"), [
    ("network.theta_plus=abc", "network.theta_plus", "float"),
    ("network.n_hidden=true", "network.n_hidden", "int"),
    ("network.n_hidden=1.5", "network.n_hidden", "int"),
    ("training.validation=1", "training.validation", "bool"),
    ("dataset=3", "dataset", "str"),
    ("network.hidden_v_threshold=[1, 2]", "network.hidden_v_threshold", "float"),
    ("training.samples=ten", "training.samples", "int"),
])
def test_wrong_type(override: str, key: str, expected_type: str) -> None:
    msg = _user_error(overrides=[override])
    assert f"'{key}'" in msg
    assert f"expected {expected_type}" in msg


@pytest.mark.parametrize(("override", "key", "allowed"), [
    ("network.n_hidden=0", "network.n_hidden", "[1, 100000]"),
    ("network.n_hidden=100001", "network.n_hidden", "[1, 100000]"),
    ("training.dt_ms=0", "training.dt_ms", "(0, 10]"),
    ("training.dt_ms=-0.5", "training.dt_ms", "(0, 10]"),
    ("network.tau_theta_ms=0", "network.tau_theta_ms", "(0, inf]"),
    ("network.theta_plus=-0.01", "network.theta_plus", "[0, 10]"),
    ("evaluation.batch_size=4097", "evaluation.batch_size", "[1, 4096]"),
    ("seed=-1", "seed", "[0, "),
])
def test_out_of_range(override: str, key: str, allowed: str) -> None:
    msg = _user_error(overrides=[override])
    assert f"'{key}'" in msg
    assert "outside the allowed range" in msg
    assert allowed in msg


@pytest.mark.parametrize("override", [
    "network.n_hidden=1",
    "network.n_hidden=100000",
    "network.theta_plus=0",
    "training.dt_ms=10",
    "training.rest_ms=0",
    f"seed={2**63 - 1}",
])
def test_range_boundaries_are_accepted(override: str) -> None:
    key, value = override.split("=")
    section, _, name = key.rpartition(".")
    config = load_config(overrides=[override])
    node = getattr(config, section) if section else config
    assert getattr(node, name) == yaml.safe_load(value)


def test_nan_is_out_of_range() -> None:
    """NaN compares False with every bound, so it must be refused explicitly."""
    msg = _user_error(overrides=["network.theta_plus=.nan"])
    assert "'network.theta_plus'" in msg


def test_bad_choice_lists_allowed_values() -> None:
    msg = _user_error(overrides=["network.threshold_rule=foo"])
    assert "'network.threshold_rule'" in msg
    assert "'foo'" in msg
    assert "code" in msg
    assert "paper" in msg
    msg = _user_error(overrides=["backend=cuda"])
    for allowed in ("auto", "builtin", "genn-cuda", "genn-cpu"):
        assert allowed in msg


def test_section_must_be_a_mapping() -> None:
    msg = _user_error(overrides=["network=5"])
    assert "network" in msg
    assert "mapping" in msg


def test_intensity_and_timing_consistency() -> None:
    msg = _user_error(overrides=["training.max_intensity=1"])
    assert "training.max_intensity" in msg
    msg = _user_error(overrides=["training.present_ms=350.25"])
    assert "training.present_ms" in msg
    assert "multiples" in msg
    # 0.25 ms steps make 350.25 ms a whole number of steps again
    config = load_config(overrides=["training.present_ms=350.25", "training.dt_ms=0.25"])
    assert config.training.present_ms == 350.25


# ------------------------------------------------------------------------------------------
# config files
# ------------------------------------------------------------------------------------------


def test_config_file_with_preset_base_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("preset: mnist-100\nseed: 9\nnetwork:\n  theta_plus: 0.1\n"
                    "training:\n  epochs: 3\n")
    config = load_config(config_file=path, overrides=["training.epochs=5"])
    assert config.name == "mnist-100"
    assert config.network.n_hidden == 100  # from the preset
    assert config.network.norm_hidden_to_output == 80.0  # from the preset
    assert config.network.theta_plus == 0.1  # file beats preset
    assert config.seed == 9
    assert config.training.epochs == 5  # --set beats the file


def test_explicit_preset_beats_the_files_preset(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("preset: mnist-100\nnetwork:\n  theta_plus: 0.1\n")
    config = load_config("mnist-1600", path)
    assert config.network.n_hidden == 1600
    assert config.network.theta_plus == 0.1


def test_empty_config_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_config(config_file=path) == Config()


def test_config_file_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("preset: mnist-100\ntraining:\n  epochz: 3\n")
    msg = _user_error(config_file=path)
    assert "'training.epochz'" in msg


def test_config_file_with_unknown_preset(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("preset: mnist-7\n")
    msg = _user_error(config_file=path)
    assert "unknown preset 'mnist-7'" in msg


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_yaml_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text)
    msg = _user_error(config_file=path)
    assert str(path) in msg
    assert "mapping" in msg


def test_invalid_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("network:\n  n_hidden: [1, 2\n")
    msg = _user_error(config_file=path)
    assert str(path) in msg
    assert "not valid YAML" in msg
    assert "\n" not in msg


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    msg = _user_error(config_file=path)
    assert "cannot read config file" in msg
    assert str(path) in msg


# ------------------------------------------------------------------------------------------
# serialisation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(SPEC_TABLE))
def test_to_yaml_round_trips(preset: str) -> None:
    config = load_config(preset, overrides=["seed=12345", "training.samples=77",
                                            "network.eta_input_to_hidden=1.0e-7",
                                            "network.tau_theta_ms=123456789.5"])
    text = config.to_yaml()
    again = config_from_dict(yaml.safe_load(text))
    assert again == config
    assert again.network.eta_input_to_hidden == 1e-7
    assert again.to_yaml() == text


def test_to_dict_is_complete() -> None:
    data = load_config("fashion-400").to_dict()
    assert set(data) == {f.name for f in dataclasses.fields(Config)}
    assert data["network"]["n_hidden"] == 400
    assert data["dataset"] == "fashion-mnist"
    assert data["training"]["samples"] is None
