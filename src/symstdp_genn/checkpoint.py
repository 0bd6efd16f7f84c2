"""Checkpoints: one ``.npz`` of plain arrays plus JSON metadata; no pickle.

A checkpoint holds the network's full simulation state (weights, θ, membrane
potentials, traces, random-generator states...), the driver's state (samples
seen, running statistics) and, as JSON, the complete config and the versions
that wrote it. That is enough to evaluate it with no other argument and to
resume training bit-identically.

Files are written atomically (temporary file + rename) and with fixed zip
timestamps, so the same run writes byte-identical checkpoints.
"""

from __future__ import annotations

import functools
import io
import json
import os
import platform
import secrets
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import UserError

FORMAT = "symstdp-genn-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__meta__"
ORIGINAL_FILES = ("gP2E", "gE2C", "theta")
#: the checkpoint a training run folder holds
RUN_CHECKPOINT = "checkpoint.npz"
#: The plastic weights. Training keeps them in [0, w_max] (at most 8 in any preset) and
#: normalises column sums to at most 8000, so a weight outside [0, WEIGHT_LIMIT] can only
#: come from a damaged or foreign file; it would make every pass report nonsense.
WEIGHT_KEYS = ("input_to_hidden.g", "hidden_to_output.g")
WEIGHT_LIMIT = 1e6
#: |θ| (mV) beyond this is no trained threshold (trained networks stay below ~100 mV).
THETA_LIMIT = 1e6


@dataclass
class Checkpoint:
    """A network's state as saved: ``arrays`` (weights, θ, assignments, the training
    driver's counters) and ``meta`` (format, versions, the complete config): everything a
    test or a bit-identical resume needs."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_hidden(self) -> int:
        """Hidden neurons, from θ's length (the layout every other array is checked against)."""
        return int(self.arrays["hidden.theta"].shape[-1])


class CheckpointWriteError(UserError):
    """A checkpoint could not be written; the file at ``path`` (if any) is unchanged."""

    def __init__(self, path: Path, reason: str, consequence: str):
        super().__init__(f"cannot write checkpoint {path}: {reason}; {consequence}")
        self.path = path
        self.reason = reason


def versions() -> dict[str, str]:
    """symstdp-genn's, NumPy's and Python's versions, kept in every checkpoint so that a
    result can be traced to the software that produced it."""
    return {"symstdp_genn": __version__, "numpy": np.__version__,
            "python": platform.python_version()}


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically; returns the path.

    A failed write (disk full, folder gone read-only) raises :class:`UserError` and
    leaves the file that was there before untouched: a full disk must cost the user
    the last few samples, never the checkpoint."""
    path = Path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(), **meta}
    payload = {**arrays, META_KEY: np.frombuffer(
        json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_npz(path, payload)
    except OSError as exc:
        kept = (f"the previous {path.name} there is unchanged; free some space (or fix the "
                "folder's permissions) and resume from it" if path.is_file() else
                "nothing was saved; free some space (or fix the folder's permissions) and "
                "start again")
        raise CheckpointWriteError(path, exc.strerror or str(exc), kept) from None
    return path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file next to ``path`` (same suffix, so writers that go by the file name
    pick the right format) that replaces ``path`` when the block ends without error; on an
    error or Ctrl-C it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # like tempfile.mkstemp, but with the umask's permissions, not 0600
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write plain arrays (no pickle) as a deflated ``.npz`` atomically, with fixed zip
    timestamps so equal arrays give equal bytes."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as zf:
            for key in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
                info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    return path


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """What ``path`` names as a checkpoint: a training run folder (``checkpoint.npz`` and
    none of the original's files) means its ``checkpoint.npz``, since that is what a user
    passing ``models/mnist-400-s1`` wants tested; anything else is returned unchanged (an
    original-format folder, a file).

    Raises:
        UserError: ``path`` is a training run folder that holds no ``checkpoint.npz`` (its
            training saved none), so it names nothing to load.
    """
    path = Path(path)
    if path.is_dir() and not any((path / f).is_file() for f in ORIGINAL_FILES):
        if (path / RUN_CHECKPOINT).is_file():
            return path / RUN_CHECKPOINT
        from .runner import is_run_folder  # runner imports this module

        if is_run_folder(path):
            raise UserError(f"run folder {path} holds no {RUN_CHECKPOINT} (its training saved "
                            "none); pass another run folder or a .npz checkpoint")
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (a run folder: its
    ``checkpoint.npz``), or import an original folder."""
    path = checkpoint_path(path)
    if path.is_dir():
        return import_original(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass the .npz file written by "
                        "training (e.g. models/<run>/checkpoint.npz)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile, ValueError, OSError: all mean "not a checkpoint"
        raise UserError(f"checkpoint {path} is corrupt or not a checkpoint ({type(exc).__name__}: "
                        f"{exc}); use another checkpoint or retrain") from None
    raw = arrays.pop(META_KEY, None)
    try:
        meta = json.loads(bytes(raw).decode()) if raw is not None else {}
    except ValueError:
        raise UserError(f"checkpoint {path} has unreadable metadata; it is corrupt") from None
    if not isinstance(meta, dict):
        raise UserError(f"checkpoint {path} has metadata that is not a mapping; it is corrupt")
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a symstdp-genn checkpoint (no '{FORMAT}' metadata)")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"checkpoint {path} was written by a newer symstdp-genn "
                        f"(format {meta['format_version']}); upgrade to read it")
    for key in ("input_to_hidden.g", "hidden_to_output.g", "hidden.theta"):
        if key not in arrays:
            raise UserError(f"checkpoint {path} lacks '{key}'; it is incomplete or corrupt")
    check_meta(meta, str(path))
    check_layout(arrays, str(path))
    check_values(arrays, str(path))
    _pin_theta_decay(meta, arrays["hidden.theta"])
    _pin_subnormals(meta)
    _pin_select_split(meta)
    return Checkpoint(arrays, meta)


def _pin_theta_decay(meta: dict[str, Any], theta: np.ndarray) -> None:
    """A checkpoint written before ``network.theta_decay`` existed was trained with θ in
    float32: its config says so from now on, so that testing it reproduces its numbers
    and resuming it continues the same dynamics (the new default would be ``exact``)."""
    network = _saved_network(meta)
    if network is not None and "theta_decay" not in network and theta.dtype == np.float32:
        network["theta_decay"] = "float32"


def _pin_subnormals(meta: dict[str, Any]) -> None:
    """A checkpoint written before ``network.subnormals`` existed was trained with IEEE
    subnormals (``keep``, the key's first default; ``flush`` is today's): its config says
    so from now on, so that testing or resuming it reproduces what it did."""
    network = _saved_network(meta)
    if network is not None and "subnormals" not in network:
        network["subnormals"] = "keep"


def _pin_select_split(meta: dict[str, Any]) -> None:
    """A checkpoint written before ``evaluation.select_split`` existed, by a run that
    evaluated periodically without the three-way split, selected on the test set (then the
    only protocol): its config says so from now on, instead of today's default
    (``validation``), which its settings would contradict when resumed."""
    config = meta.get("config")
    if not isinstance(config, dict):
        return
    training, evaluation = config.get("training"), config.get("evaluation")
    if (isinstance(training, dict) and isinstance(evaluation, dict)
            and "select_split" not in evaluation and training.get("eval_every")
            and not training.get("validation", False)):
        evaluation["select_split"] = "test"


def _saved_network(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The ``network`` section of the config saved in ``meta`` (None if there is none)."""
    config = meta.get("config")
    network = config.get("network") if isinstance(config, dict) else None
    return network if isinstance(network, dict) else None


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    """``index [i, j] (value v; n bad values in all)`` of the first True in ``bad``."""
    flat = int(np.flatnonzero(bad.ravel())[0])
    index = [int(i) for i in np.unravel_index(flat, values.shape)] if values.ndim else []
    count = int(bad.sum())
    more = f"; {count:,} bad values in all" if count > 1 else ""
    return f"index {index} (value {values.ravel()[flat]!r}{more})"


def check_values(arrays: dict[str, np.ndarray], source: str) -> None:
    """Refuse arrays no training can produce: NaN or ±inf anywhere, weights below 0 or
    above :data:`WEIGHT_LIMIT`, |θ| above :data:`THETA_LIMIT`. One line names the array and
    the first bad index, because such a network would otherwise load and report 0 %."""
    hint = "the checkpoint is damaged or not from this model: use another one or retrain"
    for key, values in arrays.items():
        if values.dtype.kind not in "fc" or values.size == 0:
            continue
        finite = np.isfinite(values)
        if not finite.all():
            raise UserError(f"checkpoint {source}: '{key}' holds NaN or infinity at "
                            f"{_first_bad(values, ~finite)}; {hint}")
    for key in WEIGHT_KEYS:
        w = arrays.get(key)
        if w is None or w.size == 0:
            continue
        bad = (w < 0) | (w > WEIGHT_LIMIT)
        if bad.any():
            raise UserError(f"checkpoint {source}: weight '{key}' outside [0, {WEIGHT_LIMIT:g}] "
                            f"at {_first_bad(w, bad)}; {hint}")
    theta = arrays.get("hidden.theta")
    if theta is not None and theta.size and (bad := np.abs(theta) > THETA_LIMIT).any():
        raise UserError(f"checkpoint {source}: 'hidden.theta' outside ±{THETA_LIMIT:g} mV at "
                        f"{_first_bad(theta, bad)}; {hint}")


#: the largest hidden layer a config may ask for (``network.n_hidden``)
MAX_HIDDEN = 100_000
#: driver counters a checkpoint's metadata holds: whole numbers >= 0
DRIVER_COUNTS = ("samples_seen", "retries_total", "forced_total", "presentations")
#: metadata sections that must be mappings when present
META_SECTIONS = ("config", "driver", "selection", "joint_selection", "selected")


def check_meta(meta: dict[str, Any], source: str) -> None:
    """Refuse metadata a training cannot have written: a section that is not a mapping, a
    driver count that is not a whole number, a selection whose fields have the wrong type.
    Each would otherwise surface as a traceback deep inside testing or resuming."""
    def bad(what: str, value: Any, expected: str) -> UserError:
        shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
        return UserError(f"checkpoint {source}: metadata {what} is {shown}, expected "
                         f"{expected}; the checkpoint is damaged or not from this program: use "
                         "another one or retrain")

    for section in META_SECTIONS:
        if section in meta and not isinstance(meta[section], dict):
            raise bad(f"'{section}'", meta[section], "a mapping")
    driver = meta.get("driver", {})
    for key in DRIVER_COUNTS:
        value = driver.get(key, 0)
        if not _whole(value) or value < 0:
            raise bad(f"'driver.{key}'", value, "a whole number >= 0")
    if not isinstance(driver.get("stage", ""), str):
        raise bad("'driver.stage'", driver["stage"], "a stage name")
    for section in ("selection", "joint_selection"):
        sel = meta.get(section, {})
        for key in ("readout", "split"):
            if not isinstance(sel.get(key, ""), str):
                raise bad(f"'{section}.{key}'", sel[key], "a name")
        score = sel.get("best_score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise bad(f"'{section}.best_score'", score, "a number")
        best = sel.get("best_samples")
        if best is not None and (not _whole(best) or best < 0):
            raise bad(f"'{section}.best_samples'", best, "a whole number >= 0")
        curve = sel.get("curve", [])
        if not isinstance(curve, list) or not all(isinstance(c, dict) for c in curve):
            raise bad(f"'{section}.curve'", curve, "a list of mappings")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@functools.lru_cache(maxsize=8)  # the figures load every snapshot of a run
def _state_layout(n_hidden: int) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Every state array a network of ``n_hidden`` hidden neurons can have, as
    ``key -> (shape of one lane, batched)``: each variable of the network spec (under
    either supervision), plus the builtin backend's own (spikes, spike counts, random
    generator words). A batched array may carry a leading batch axis."""
    from .config import config_from_dict
    from .network import build_network

    layout: dict[str, tuple[tuple[int, ...], bool]] = {}
    for supervision in ("teacher", "current"):
        spec = build_network(config_from_dict(
            {"network": {"n_hidden": n_hidden, "supervision": supervision}}))
        sizes = {pop.name: pop.size for pop in spec.populations}
        for pop in spec.populations:
            n = pop.size
            for var, _ in pop.model.vars:
                layout[f"{pop.name}.{var}"] = ((n,), True)
            layout[f"{pop.name}.spikes"] = ((n,), True)
            layout[f"{pop.name}.spike_count"] = ((1,), True)
            layout[f"{pop.name}.rng"] = ((4, n), True)
        for proj in spec.projections:
            pre, post = sizes[proj.source], sizes[proj.target]
            wu = proj.weight_update
            layout[f"{proj.name}.inSyn"] = ((post,), True)
            for var, _ in wu.vars:
                layout[f"{proj.name}.{var}"] = ((pre, post) if proj.connectivity == "dense"
                                                else (pre,), False)
            for var, _ in wu.pre_vars:
                layout[f"{proj.name}.{var}"] = ((pre,), True)
            for var, _ in wu.post_vars:
                layout[f"{proj.name}.{var}"] = ((post,), True)
    return layout


def check_layout(arrays: dict[str, np.ndarray], source: str) -> None:
    """Refuse arrays of the wrong shape or type for the network their θ describes: weights
    of another size, a scalar θ, text where numbers belong, assignments of the wrong length
    or outside the ten classes, a malformed step counter or running statistics. One line
    names the array, what it holds and what was expected, before anything runs."""
    hint = "the checkpoint is damaged or not from this model: use another one or retrain"

    def refuse(key: str, value: np.ndarray, expected: str) -> UserError:
        return UserError(f"checkpoint {source}: '{key}' is {_describe(value)}, expected "
                         f"{expected}; {hint}")

    theta = arrays["hidden.theta"]
    if theta.dtype.kind not in "fiu" or theta.ndim not in (1, 2) or theta.size == 0:
        raise refuse("hidden.theta", theta, "one number per hidden neuron")
    n = int(theta.shape[-1])
    if n > MAX_HIDDEN:
        raise refuse("hidden.theta", theta, f"at most {MAX_HIDDEN:,} hidden neurons")
    layout = _state_layout(n)
    for key, value in arrays.items():
        if key == "__step__":
            if value.dtype.kind not in "iu" or value.size != 1 or int(value.ravel()[0]) < 0:
                raise refuse(key, value, "one whole number >= 0")
        elif key == "assignments":
            if value.dtype.kind not in "iu" or value.shape != (n,):
                raise refuse(key, value, f"{n} whole numbers (one class per hidden neuron)")
            outside = (value < -1) | (value > 9)
            if outside.any():
                raise UserError(f"checkpoint {source}: 'assignments' holds a class outside "
                                f"0-9 (or -1 for none) at {_first_bad(value, outside)}; {hint}")
        elif key.startswith("driver."):
            shape = {"driver.response_sums": (n, 10), "driver.label_counts": (10,)}.get(key)
            if value.dtype.kind not in "fiu" or (value.ndim != 1 if shape is None
                                                 else value.shape != shape):
                what = "numbers" if shape is None else f"numbers of shape {shape}"
                raise refuse(key, value, what)
        elif key in layout:
            shape, batched = layout[key]
            kinds = "iu" if key.endswith((".rng", ".spikes", ".spike_count")) else "fiu"
            fits = (value.shape == shape
                    or (batched and value.ndim == len(shape) + 1 and value.shape[0] >= 1
                        and value.shape[1:] == shape))
            if value.dtype.kind not in kinds or not fits:
                lanes = " (or one per batch lane)" if batched else ""
                kind = "whole numbers" if kinds == "iu" else "numbers"
                raise refuse(key, value, f"{kind} of shape {shape}{lanes} for {n} hidden "
                                         "neurons")


def _describe(value: np.ndarray) -> str:
    """``float32 array of shape (784, 50)``, ``a <U3 array``: what a refused array holds."""
    kind = {"U": "text", "S": "bytes", "O": "objects", "b": "booleans"}.get(value.dtype.kind)
    what = f"{kind} ({value.dtype})" if kind else str(value.dtype)
    return f"a {what} array of shape {value.shape}" if value.ndim else f"a {what} scalar"


def _loadtxt(path: Path) -> np.ndarray:
    """numpy's text reader, but an empty file or unreadable text is one UserError line (numpy
    would first print several lines of warnings)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise UserError(f"cannot read original checkpoint file {path}: {reason}") from None
    if values.size == 0:
        raise UserError(f"original checkpoint file {path} is empty (no numbers); use a "
                        "complete checkpoint folder (gP2E, gE2C and theta as saved by the "
                        "original code)")
    return values


def _read_text_matrix(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    values = _loadtxt(path)
    if values.shape[0] > 1 and values.shape != shape:  # rows and columns as written
        raise UserError(f"original checkpoint file {path} holds {values.size} numbers in "
                        f"{values.shape[0]} rows of {values.shape[1]}, expected "
                        f"{int(np.prod(shape))} numbers in {shape[0]} rows of {shape[1]}")
    values = values.ravel()
    if values.size != int(np.prod(shape)):
        raise UserError(f"original checkpoint file {path} holds {values.size} numbers, "
                        f"expected {int(np.prod(shape))} for shape {shape}")
    return values.reshape(shape).astype(np.float32)


def import_original(folder: Path) -> Checkpoint:
    """Import the original code's text checkpoint (``gP2E`` 784×N, ``gE2C`` N×10, ``theta`` N).

    The network size is read off ``theta``; the rest of the state starts from the
    model's initial values.
    """
    folder = Path(folder)
    missing = [f for f in ORIGINAL_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"{folder} is not an original checkpoint folder: missing "
                        f"{', '.join(missing)} (expected gP2E, gE2C and theta text files); "
                        f"nor is it a training run folder (no {RUN_CHECKPOINT})")
    with np.errstate(over="ignore"):  # a huge value becomes inf, refused below by name
        theta = _loadtxt(folder / "theta").ravel().astype(np.float32)
        n = theta.size
        arrays = {
            "input_to_hidden.g": _read_text_matrix(folder / "gP2E", (784, n)),
            "hidden_to_output.g": _read_text_matrix(folder / "gE2C", (n, 10)),
            "hidden.theta": theta[None, :],  # one batch lane, as in saved checkpoints
        }
    check_values(arrays, str(folder))
    return Checkpoint(arrays, {"format": FORMAT, "imported_from": str(folder)})


def check_size(checkpoint: Checkpoint, n_hidden: int, source: str) -> None:
    """Refuse a checkpoint whose network size differs from the config's, naming both."""
    if checkpoint.n_hidden != n_hidden:
        raise UserError(f"checkpoint {source} is for a network of {checkpoint.n_hidden} hidden "
                        f"neurons but the config asks for {n_hidden}; choose the matching preset "
                        f"(e.g. --preset mnist-{checkpoint.n_hidden}) or another checkpoint")
