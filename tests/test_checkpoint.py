"""Tests of checkpoint files: round trips, determinism, atomic writes, errors, original import."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

import symstdp_genn
from symstdp_genn.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    META_KEY,
    Checkpoint,
    CheckpointWriteError,
    check_size,
    import_original,
    load_checkpoint,
    save_checkpoint,
)
from symstdp_genn.config import config_from_dict, load_config
from symstdp_genn.errors import UserError

N = 4


def _arrays(seed: int = 0, n: int = N) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "input_to_hidden.g": rng.random((784, n), dtype=np.float32),
        "hidden_to_output.g": rng.random((n, 10), dtype=np.float32) * 8,
        "hidden.theta": rng.random((1, n), dtype=np.float32) * 20,
        "assignments": np.array([3, -1, 9, 0][:n], dtype=np.int16),
        # not a network's array (those are checked against the layout): extremes of uint64
        "extra.words": np.array([[0, 1, 2**63, 2**64 - 1]], dtype=np.uint64),
        "hidden.spikes": rng.integers(-(2**31), 2**31 - 1, (1, n), dtype=np.int32),
    }


META = {"config": {"name": "mnist-100", "network": {"n_hidden": N, "theta_decay": "float32",
                                                    "subnormals": "keep"}},
        "driver": {"samples_seen": 1234, "stage": "joint"}}


def _assert_same_arrays(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype, key
        assert got[key].shape == value.shape, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def _write_original(folder: Path, n: int = N, g_rows: int = 784, c_rows: int | None = None,
                    ) -> dict[str, np.ndarray]:
    """The original code's text checkpoint: gP2E (784×n), gE2C (n×10), theta (n)."""
    folder.mkdir(parents=True, exist_ok=True)
    gp2e = (np.arange(g_rows * n, dtype=np.float64).reshape(g_rows, n) / 1000.0)
    ge2c = (np.arange((c_rows or n) * 10, dtype=np.float64).reshape(c_rows or n, 10) / 8.0)
    theta = np.linspace(20.0, 21.5, n)[None, :]  # imported as one batch lane
    np.savetxt(folder / "gP2E", gp2e, fmt="%.6f", delimiter=" ")
    np.savetxt(folder / "gE2C", ge2c, fmt="%.6f", delimiter="\t")
    np.savetxt(folder / "theta", theta[0], fmt="%.6f")
    return {"input_to_hidden.g": gp2e, "hidden_to_output.g": ge2c, "hidden.theta": theta}


# ------------------------------------------------------------------------------------------
# save / load
# ------------------------------------------------------------------------------------------


def test_round_trip_of_arrays_and_meta(tmp_path: Path) -> None:
    arrays = _arrays()
    path = save_checkpoint(tmp_path / "sub" / "checkpoint.npz", arrays, META)
    assert path == tmp_path / "sub" / "checkpoint.npz"
    ckpt = load_checkpoint(path)
    _assert_same_arrays(ckpt.arrays, arrays)
    assert META_KEY not in ckpt.arrays
    assert ckpt.meta["config"] == META["config"]
    assert ckpt.meta["driver"] == {"samples_seen": 1234, "stage": "joint"}
    assert ckpt.n_hidden == N


def test_zero_dimensional_arrays_keep_their_shape(tmp_path: Path) -> None:
    """Scalars such as the backend's ``__step__`` counter must come back as 0-d arrays."""
    arrays = {**_arrays(), "__step__": np.array(700_123, dtype=np.int64)}
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "c.npz", arrays, META))
    assert ckpt.arrays["__step__"].shape == ()
    assert int(ckpt.arrays["__step__"]) == 700_123


def test_non_contiguous_arrays_are_saved_by_value(tmp_path: Path) -> None:
    base = np.arange(784 * 8, dtype=np.float32).reshape(784, 8)
    arrays = {**_arrays(), "input_to_hidden.g": base[:, ::2]}
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "c.npz", arrays, META))
    np.testing.assert_array_equal(ckpt.arrays["input_to_hidden.g"], base[:, ::2])


def test_format_and_versions_are_added(tmp_path: Path) -> None:
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "c.npz", _arrays(), META))
    assert ckpt.meta["format"] == FORMAT == "symstdp-genn-checkpoint"
    assert ckpt.meta["format_version"] == FORMAT_VERSION
    versions = ckpt.meta["versions"]
    assert versions["symstdp_genn"] == symstdp_genn.__version__
    assert versions["numpy"] == np.__version__
    assert versions["python"].count(".") == 2


def test_file_is_a_plain_npz_without_pickles(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.npz", _arrays(), META)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert names == sorted(names)
    assert f"{META_KEY}.npy" in names
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos)
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
    with np.load(path, allow_pickle=False) as data:
        assert data["hidden.theta"].dtype == np.float32


def test_identical_content_gives_identical_bytes(tmp_path: Path) -> None:
    a = save_checkpoint(tmp_path / "a" / "checkpoint.npz", _arrays(seed=5), META)
    b = save_checkpoint(tmp_path / "b" / "other-name.npz", _arrays(seed=5), dict(META))
    c = save_checkpoint(tmp_path / "c.npz", _arrays(seed=6), META)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_meta_key_order_does_not_change_the_bytes(tmp_path: Path) -> None:
    meta_a = {"x": 1, "y": {"b": 2, "a": 3}}
    meta_b = {"y": {"a": 3, "b": 2}, "x": 1}
    a = save_checkpoint(tmp_path / "a.npz", _arrays(), meta_a)
    b = save_checkpoint(tmp_path / "b.npz", _arrays(), meta_b)
    assert a.read_bytes() == b.read_bytes()


def test_overwrite_replaces_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save_checkpoint(path, _arrays(seed=1), META)
    save_checkpoint(path, _arrays(seed=2), {"driver": {"samples_seen": 2}})
    ckpt = load_checkpoint(path)
    _assert_same_arrays(ckpt.arrays, _arrays(seed=2))
    assert ckpt.meta["driver"] == {"samples_seen": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


@pytest.mark.parametrize(("exc_type", "raised"), [(OSError, CheckpointWriteError),
                                                  (KeyboardInterrupt, KeyboardInterrupt)])
def test_failed_write_leaves_previous_checkpoint_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc_type: type[BaseException],
        raised: type[BaseException]) -> None:
    """A disk error becomes one user error saying the old checkpoint is kept; Ctrl-C stays
    Ctrl-C. Either way the previous file is byte-identical and no temporary is left."""
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, _arrays(seed=1), META)
    before = path.read_bytes()

    real_write = np.lib.format.write_array
    calls = {"n": 0}

    def failing_write(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise exc_type("disk full (simulated)")
        real_write(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(raised, match="simulated") as info:
        save_checkpoint(path, _arrays(seed=2), {"driver": {"samples_seen": 99}})
    if raised is CheckpointWriteError:
        assert "previous checkpoint.npz there is unchanged" in str(info.value)
    monkeypatch.undo()

    assert calls["n"] == 2
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]
    assert not list(tmp_path.glob("*.tmp"))
    _assert_same_arrays(load_checkpoint(path).arrays, _arrays(seed=1))


def test_failed_first_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           ) -> None:
    def failing_write(*args: object, **kwargs: object) -> None:
        raise OSError("simulated")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(CheckpointWriteError, match="simulated; nothing was saved"):
        save_checkpoint(tmp_path / "run" / "checkpoint.npz", _arrays(), META)
    assert list((tmp_path / "run").iterdir()) == []


# ------------------------------------------------------------------------------------------
# unreadable checkpoints
# ------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.npz"
    with pytest.raises(UserError, match="does not exist") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_random_bytes_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(UserError, match="corrupt") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_checkpoint_is_corrupt(tmp_path: Path, keep: float) -> None:
    path = save_checkpoint(tmp_path / "checkpoint.npz", _arrays(), META)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UserError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "corrupt" in str(info.value)


def test_damaged_member_is_corrupt(tmp_path: Path) -> None:
    """A flipped byte inside a compressed member fails its CRC; that is a UserError too."""
    path = save_checkpoint(tmp_path / "checkpoint.npz", _arrays(), META)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("input_to_hidden.g.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value)


def test_npz_without_metadata_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, **{"hidden.theta": np.zeros(4, np.float32)})
    with pytest.raises(UserError, match="not a symstdp-genn checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_npz_with_foreign_metadata_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.npz", _arrays(), {"format": "something-else"})
    with pytest.raises(UserError, match="not a symstdp-genn checkpoint"):
        load_checkpoint(path)


def test_unreadable_metadata(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, **_arrays(), **{META_KEY: np.frombuffer(b"{not json", np.uint8)})
    with pytest.raises(UserError, match="metadata") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickle.npz"
    np.savez(path, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.npz", _arrays(), {"format_version": FORMAT_VERSION + 1})
    with pytest.raises(UserError, match="newer") as info:
        load_checkpoint(path)
    assert f"format {FORMAT_VERSION + 1}" in str(info.value)


@pytest.mark.parametrize("key", ["input_to_hidden.g", "hidden_to_output.g", "hidden.theta"])
def test_incomplete_checkpoint_names_the_missing_array(tmp_path: Path, key: str) -> None:
    arrays = _arrays()
    del arrays[key]
    path = save_checkpoint(tmp_path / "c.npz", arrays, META)
    with pytest.raises(UserError, match="lacks") as info:
        load_checkpoint(path)
    assert f"'{key}'" in str(info.value)


# ------------------------------------------------------------------------------------------
# sizes
# ------------------------------------------------------------------------------------------


def test_n_hidden_is_read_off_theta() -> None:
    assert Checkpoint({"hidden.theta": np.zeros((1, 16), np.float32)}).n_hidden == 16
    assert Checkpoint({"hidden.theta": np.zeros(7, np.float32)}).n_hidden == 7


def test_check_size_accepts_the_matching_size() -> None:
    check_size(Checkpoint(_arrays()), N, "c.npz")


def test_check_size_mismatch_names_both_sizes() -> None:
    ckpt = Checkpoint({"hidden.theta": np.zeros((1, 16), np.float32)})
    with pytest.raises(UserError) as info:
        check_size(ckpt, 400, "models/x/checkpoint.npz")
    msg = str(info.value)
    assert "16 hidden" in msg
    assert "asks for 400" in msg
    assert "models/x/checkpoint.npz" in msg
    assert "mnist-16" in msg


# ------------------------------------------------------------------------------------------
# the original code's text checkpoints
# ------------------------------------------------------------------------------------------


def test_import_original_reads_row_major_text(tmp_path: Path) -> None:
    want = _write_original(tmp_path / "orig")
    ckpt = import_original(tmp_path / "orig")
    assert ckpt.n_hidden == N
    assert ckpt.arrays["input_to_hidden.g"].shape == (784, N)
    assert ckpt.arrays["hidden_to_output.g"].shape == (N, 10)
    assert ckpt.arrays["hidden.theta"].shape == (1, N)
    for key, value in want.items():
        assert ckpt.arrays[key].dtype == np.float32, key
        np.testing.assert_allclose(ckpt.arrays[key], value, rtol=1e-6, err_msg=key)
    # row-major: the second number in the file is gP2E[0, 1], not gP2E[1, 0]
    assert ckpt.arrays["input_to_hidden.g"][0, 1] == pytest.approx(0.001)
    assert ckpt.arrays["input_to_hidden.g"][1, 0] == pytest.approx(N / 1000.0)
    assert ckpt.arrays["hidden_to_output.g"][1, 0] == pytest.approx(10 / 8.0)
    assert ckpt.meta["format"] == FORMAT
    assert "config" not in ckpt.meta


def test_load_checkpoint_of_a_folder_imports_it(tmp_path: Path) -> None:
    want = _write_original(tmp_path / "orig", n=3)
    ckpt = load_checkpoint(tmp_path / "orig")
    assert ckpt.n_hidden == 3
    np.testing.assert_allclose(ckpt.arrays["hidden.theta"], want["hidden.theta"], rtol=1e-6)


def test_import_original_single_neuron(tmp_path: Path) -> None:
    _write_original(tmp_path / "orig", n=1)
    ckpt = import_original(tmp_path / "orig")
    assert ckpt.arrays["input_to_hidden.g"].shape == (784, 1)
    assert ckpt.arrays["hidden_to_output.g"].shape == (1, 10)
    assert ckpt.arrays["hidden.theta"].shape == (1, 1)


def test_import_original_missing_files(tmp_path: Path) -> None:
    folder = tmp_path / "orig"
    folder.mkdir()
    (folder / "theta").write_text("1 2 3 4\n")
    with pytest.raises(UserError) as info:
        import_original(folder)
    msg = str(info.value)
    assert str(folder) in msg
    assert "missing gP2E, gE2C" in msg


def test_import_original_wrong_weight_rows(tmp_path: Path) -> None:
    _write_original(tmp_path / "orig", g_rows=783)
    with pytest.raises(UserError) as info:
        import_original(tmp_path / "orig")
    msg = str(info.value)
    assert "gP2E" in msg
    assert f"{783 * N} numbers" in msg
    assert f"expected {784 * N}" in msg


def test_import_original_output_weights_for_another_size(tmp_path: Path) -> None:
    _write_original(tmp_path / "orig", c_rows=N + 1)
    with pytest.raises(UserError) as info:
        import_original(tmp_path / "orig")
    msg = str(info.value)
    assert "gE2C" in msg
    assert f"expected {N * 10}" in msg


def test_import_original_theta_for_another_size(tmp_path: Path) -> None:
    _write_original(tmp_path / "orig")
    (tmp_path / "orig" / "theta").write_text("20.0\n20.1\n20.2\n")
    with pytest.raises(UserError) as info:
        import_original(tmp_path / "orig")
    assert "gP2E" in str(info.value)
    assert f"expected {784 * 3}" in str(info.value)


def test_import_original_non_numeric_text(tmp_path: Path) -> None:
    _write_original(tmp_path / "orig")
    (tmp_path / "orig" / "gE2C").write_text("0.1 0.2 abc\n")
    with pytest.raises(UserError) as info:
        import_original(tmp_path / "orig")
    assert "gE2C" in str(info.value)
    assert "cannot read" in str(info.value)


# ------------------------------------------------------------------------------------------
# issue 8 item 11: values no training can produce are refused on load, by name and index
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key,index,value,what", [
    ("input_to_hidden.g", (5, 2), np.nan, "NaN or infinity"),
    ("input_to_hidden.g", (700, 3), np.inf, "NaN or infinity"),
    ("hidden_to_output.g", (1, 7), -0.5, "outside [0, 1e+06]"),
    ("hidden_to_output.g", (3, 0), 1e30, "outside [0, 1e+06]"),
    ("hidden.theta", (0, 2), np.nan, "NaN or infinity"),
    ("hidden.theta", (0, 1), -1e30, "outside ±1e+06 mV"),
])
def test_absurd_values_are_refused_naming_array_and_index(
        tmp_path: Path, key: str, index: tuple[int, int], value: float, what: str) -> None:
    arrays = _arrays()
    arrays[key] = arrays[key].copy()
    arrays[key][index] = value
    arrays[key][-1, -1] = value  # a second bad value: the first one is named
    save_checkpoint(tmp_path / "c.npz", arrays, META)
    with pytest.raises(UserError) as info:
        load_checkpoint(tmp_path / "c.npz")
    msg = str(info.value)
    assert "\n" not in msg
    assert f"'{key}'" in msg and what in msg
    assert f"index {list(index)}" in msg and "2 bad values in all" in msg


def test_nan_in_other_state_is_refused_too(tmp_path: Path) -> None:
    arrays = {**_arrays(), "hidden.V": np.array([[-65.0, np.nan, -60.0, -61.0]], np.float32)}
    save_checkpoint(tmp_path / "c.npz", arrays, META)
    with pytest.raises(UserError, match=r"'hidden.V' holds NaN or infinity at index \[0, 1\]"):
        load_checkpoint(tmp_path / "c.npz")


def test_trained_extremes_are_accepted(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays["input_to_hidden.g"][0, 0] = 0.0
    arrays["hidden_to_output.g"][0, 0] = 8000.0  # a whole column's normalised sum
    arrays["hidden.timer"] = np.full((1, N), 8.388608e6, np.float32)  # saturated timers
    save_checkpoint(tmp_path / "c.npz", arrays, META)
    _assert_same_arrays(load_checkpoint(tmp_path / "c.npz").arrays, arrays)


@pytest.mark.parametrize("name,text,what", [
    ("gP2E", None, "NaN"), ("gE2C", "-1", "outside [0"), ("theta", "nan", "NaN")])
def test_import_original_refuses_absurd_values(tmp_path: Path, name: str, text: str | None,
                                               what: str) -> None:
    want = _write_original(tmp_path / "orig")
    values = want[{"gP2E": "input_to_hidden.g", "gE2C": "hidden_to_output.g",
                   "theta": "hidden.theta"}[name]].copy()
    values.ravel()[2] = np.nan if text in (None, "nan") else float(text)
    np.savetxt(tmp_path / "orig" / name, values if name != "theta" else values[0], fmt="%.6f")
    with pytest.raises(UserError) as info:
        import_original(tmp_path / "orig")
    msg = str(info.value)
    assert "\n" not in msg and what in msg and "index" in msg


@pytest.mark.parametrize("name", ["gP2E", "gE2C", "theta"])
def test_import_original_empty_file_is_one_line_without_warnings(
        tmp_path: Path, name: str, capfd: pytest.CaptureFixture[str]) -> None:
    _write_original(tmp_path / "orig")
    (tmp_path / "orig" / name).write_text("")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy warning fails the test
        with pytest.raises(UserError) as info:
            import_original(tmp_path / "orig")
    msg = str(info.value)
    assert "\n" not in msg and name in msg and "empty" in msg
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(("dtype", "pinned"), [(np.float32, "float32"), (np.float64, None)])
def test_a_checkpoint_from_before_theta_decay_loads_as_a_float32_theta_run(
        tmp_path: Path, dtype: type, pinned: str | None) -> None:
    """Issue 10: a config without ``network.theta_decay`` and a float32 θ is a checkpoint
    trained before exact θ decay existed; it keeps those dynamics (not the new default)."""
    arrays = {**_arrays(), "hidden.theta": _arrays()["hidden.theta"].astype(dtype)}
    meta = {"config": {"name": "mnist-100", "network": {"n_hidden": N}}}
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "old.npz", arrays, meta))
    assert ckpt.meta["config"]["network"].get("theta_decay") == pinned


@pytest.mark.parametrize(("saved", "loaded"), [(None, "keep"), ("keep", "keep"),
                                               ("flush", "flush")])
def test_a_checkpoint_from_before_subnormals_loads_as_an_ieee_run(
        tmp_path: Path, saved: str | None, loaded: str) -> None:
    """A config without ``network.subnormals`` was trained with IEEE subnormals (the key's
    first default); testing or resuming it keeps them, not today's default ``flush``."""
    network = {"n_hidden": N, **({"subnormals": saved} if saved else {})}
    meta = {"config": {"name": "mnist-100", "network": network}}
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "old.npz", _arrays(), meta))
    assert ckpt.meta["config"]["network"]["subnormals"] == loaded
    assert config_from_dict(ckpt.meta["config"]).network.subnormals == loaded
    assert load_config("mnist-100").network.subnormals == "flush"
