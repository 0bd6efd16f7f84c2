"""Sweep files: schema, validation, and expansion into trials.

A sweep file is checked as strictly as a config: every trial's config is built and
validated with :func:`~symstdp_genn.config.config_from_dict` before anything runs, so a
typo in the 40th grid value is one line and exit code 2 now, not a failed trial an hour in.
The trial list is a pure function of the file (random draws come from the sweep's own
``seed``), so re-running the same file finds the same trial folders and resumes them.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, config_from_dict, preset_dict, read_yaml
from ..data import DATASETS
from ..errors import UserError, did_you_mean

TOP_KEYS = ("name", "base", "set", "grid", "random", "seeds", "seed", "samples", "epochs",
            "eval_samples", "split")
SPLITS = ("validation", "test")
#: config keys that ``split:`` decides: validation = the three-way split, scored on the
#: last 10 000 training images; test = scored on the test set (the original's protocol)
SPLIT_KEYS = ("training.validation", "evaluation.select_split")
DISTRIBUTIONS = ("uniform", "log_uniform", "choice")
#: drawn values are rounded to this many significant digits: readable names, exact configs
DRAW_DIGITS = 4


@dataclass(frozen=True)
class Trial:
    """One run of the sweep: a point (the swept values) and a seed."""

    point_id: str
    name: str
    seed: int
    params: dict[str, Any]
    config: Config

    @property
    def trial_id(self) -> str:
        """``<point id>-s<seed>``: unique within the sweep, the trial's name in its tables."""
        return f"{self.point_id}-s{self.seed}"


@dataclass
class SweepSpec:
    """A sweep file, checked and expanded: its name, the split it scores on, the swept
    keys (``grid_keys``: those of the grid, which a 2-D heat map needs) and every trial."""

    name: str
    source: Path | None
    split: str
    swept_keys: list[str]
    grid_keys: list[str]
    trials: list[Trial] = field(default_factory=list)


def config_hash(data: dict[str, Any]) -> str:
    """Short stable hash of a config mapping (key order does not matter)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def point_id(config: Config) -> str:
    """The hash of everything but the seed: all seeds of one point share it."""
    data = config.to_dict()
    data.pop("seed")
    return config_hash(data)[:8]


def _fail(where: str, message: str) -> UserError:
    return UserError(f"sweep file {where}: {message}")


def _set_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise _fail(where, f"'{key}': '{part}' is not a config section")
    node[parts[-1]] = value


def _check_key(key: Any, section: str, where: str) -> str:
    if not isinstance(key, str) or not key or key in ("seed", "name"):
        raise _fail(where, f"{section}: {key!r} is not a config key to sweep "
                           "(seeds go under 'seeds:')")
    if key in SPLIT_KEYS:  # the tables name the split; it must be the sweep's
        raise _fail(where, f"{section}: '{key}' is set by 'split:' (validation or test)")
    return key


def _readable(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{DRAW_DIGITS}g}")


def _draws(random: Any, seed: int, where: str) -> tuple[list[str], list[dict[str, Any]]]:
    if not isinstance(random, dict):
        raise _fail(where, "'random' must be a mapping with 'trials' and 'params'")
    unknown = sorted(set(random) - {"trials", "params"})
    if unknown:
        raise _fail(where, f"'random.{unknown[0]}' is unknown; allowed: trials, params")
    n = random.get("trials")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise _fail(where, f"'random.trials' must be a whole number >= 1, got {n!r}")
    params = random.get("params")
    if not isinstance(params, dict) or not params:
        raise _fail(where, "'random.params' must map config keys to a distribution, e.g. "
                           "network.theta_plus: {uniform: [0.01, 0.1]}")
    rng = np.random.default_rng(seed)
    samplers = []
    for key, dist in params.items():
        key = _check_key(key, "random.params", where)
        label = f"'random.params.{key}'"
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise _fail(where, f"{label} must be one of {{uniform: [lo, hi]}}, "
                               "{log_uniform: [lo, hi]}, {choice: [v1, v2, ...]}")
        kind, arg = next(iter(dist.items()))
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                raise _fail(where, f"{label}: choice needs a non-empty list of values")
            samplers.append((key, kind, arg))
            continue
        if (not isinstance(arg, list) or len(arg) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in arg)
                or not arg[0] < arg[1]):
            raise _fail(where, f"{label}: {kind} needs [lo, hi] with lo < hi, got {arg!r}")
        if kind == "log_uniform" and arg[0] <= 0:
            raise _fail(where, f"{label}: log_uniform needs lo > 0, got {arg[0]!r}")
        samplers.append((key, kind, arg))
    draws = []
    for _ in range(n):
        draw = {}
        for key, kind, arg in samplers:
            if kind == "choice":
                draw[key] = arg[int(rng.integers(len(arg)))]
            elif kind == "uniform":
                draw[key] = _round(float(rng.uniform(arg[0], arg[1])))
            else:
                draw[key] = _round(float(np.exp(rng.uniform(np.log(arg[0]), np.log(arg[1])))))
        draws.append(draw)
    return [key for key, _, _ in samplers], draws


def _grid_points(grid: Any, where: str) -> tuple[list[str], list[dict[str, Any]]]:
    if grid is None:
        return [], [{}]
    if not isinstance(grid, dict) or not grid:
        raise _fail(where, "'grid' must map config keys to non-empty lists of values")
    keys = []
    for key, values in grid.items():
        keys.append(_check_key(key, "grid", where))
        if not isinstance(values, list) or not values:
            raise _fail(where, f"'grid.{key}' must be a non-empty list of values, "
                               f"got {values!r}")
    combos = itertools.product(*grid.values())
    return keys, [dict(zip(keys, combo, strict=True)) for combo in combos]


def _seeds(raw: Any, where: str) -> list[int]:
    if raw is None:
        return [1]
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)):
        raise _fail(where, f"'seeds' must be a non-empty list of whole numbers >= 0, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise _fail(where, f"'seeds' lists a seed twice: {raw!r}")
    return list(raw)


def _base(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        return preset_dict(raw)
    if isinstance(raw, dict):
        data = dict(raw)
        preset = data.pop("preset", None)
        if preset is not None:
            base = preset_dict(str(preset))
            for key, value in data.items():  # a shallow section-wise merge, like config files
                if isinstance(value, dict) and isinstance(base.get(key), dict):
                    base[key] = {**base[key], **value}
                else:
                    base[key] = value
            return base
        return data
    raise _fail(where, "'base' must be a preset name (e.g. mnist-400) or a config mapping")


def _whole(raw: Any, key: str, where: str, lo: int) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < lo:
        raise _fail(where, f"'{key}' must be a whole number >= {lo}, got {raw!r}")
    return raw


def build_sweep(data: Any, where: str = "", source: Path | None = None) -> SweepSpec:
    """Validate a parsed sweep file and expand it into its trials (every config validated)."""
    if not isinstance(data, dict):
        raise _fail(where, "must hold a mapping (base:, grid:, seeds:, ...)")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise _fail(where, f"key '{unknown[0]}' is unknown; {did_you_mean(unknown[0], TOP_KEYS)}"
                           f"allowed keys: {', '.join(TOP_KEYS)}")
    if "base" not in data:
        raise _fail(where, "'base' is missing: name a preset (base: mnist-400) or give a config")
    for key in ("grid", "random", "seeds"):  # "grid:" with nothing under it is a mistake,
        if key in data and data[key] is None:  # not a request for the base config alone
            raise _fail(where, f"'{key}' is empty; give it values (see sweeps/ for examples) "
                               "or leave the key out")
    split = data.get("split", "validation")
    if split not in SPLITS:
        raise _fail(where, f"'split' must be 'validation' or 'test', got {split!r}")
    sets = data.get("set") or {}
    if not isinstance(sets, dict):
        raise _fail(where, "'set' must map dotted config keys to values")
    sweep_seed = _whole(data.get("seed", 0), "seed", where, 0)
    grid_keys, grid_points = _grid_points(data.get("grid"), where)
    random_keys: list[str] = []
    random_points: list[dict[str, Any]] = []
    if data.get("random") is not None:
        random_keys, random_points = _draws(data["random"], int(sweep_seed or 0), where)
    overlap = sorted(set(grid_keys) & set(random_keys))
    if overlap:
        raise _fail(where, f"'{overlap[0]}' is both in 'grid' and in 'random'")
    if random_points:
        points = [{**g, **r} for g in grid_points for r in random_points]
    else:
        points = grid_points
    swept = grid_keys + random_keys
    fixed = [k for k in sets if k in swept]
    if fixed:
        raise _fail(where, f"'{fixed[0]}' is both fixed under 'set' and swept")

    base = _base(data["base"], where)
    _set_dotted(base, "training.validation", split == "validation", where)
    _set_dotted(base, "evaluation.select_split", split, where)
    for key, flag in (("samples", "training.samples"), ("epochs", "training.epochs"),
                      ("eval_samples", "evaluation.periodic_samples")):
        value = _whole(data.get(key), key, where, 0 if key == "epochs" else 1)
        if value is not None:
            _set_dotted(base, flag, value, where)
    for key, value in sets.items():
        _set_dotted(base, _check_key(key, "set", where), value, where)

    trials: list[Trial] = []
    seen: set[str] = set()
    for point in points:
        data_point = copy.deepcopy(base)
        for key, value in point.items():
            _set_dotted(data_point, key, value, where)
        name = ", ".join(f"{k.rsplit('.', 1)[-1]}={_readable(v)}" for k, v in point.items())
        for seed in _seeds(data.get("seeds"), where):
            data_point["seed"] = seed
            try:
                config = config_from_dict(copy.deepcopy(data_point))
                if not config.training.eval_every:  # scored once, at the end, on the split
                    data_point.setdefault("training", {})["eval_every"] = _trained(config)
                    config = config_from_dict(copy.deepcopy(data_point))
            except UserError as exc:
                at = f" (trial {name})" if name else ""
                raise _fail(where, f"{exc}{at}") from None
            trial = Trial(point_id(config), name or "base", seed, dict(point), config)
            if trial.trial_id not in seen:
                seen.add(trial.trial_id)
                trials.append(trial)
    sweep_name = data.get("name") or (source.stem if source is not None else "sweep")
    return SweepSpec(str(sweep_name), source, split, swept, grid_keys, trials)


def _trained(config: Config) -> int:
    """At least the samples a trial trains, so that its one periodic evaluation is the one
    :class:`~symstdp_genn.training.Trainer` always runs at the last sample: its score."""
    t = config.training
    epochs = t.epochs + (t.output_epochs if t.schedule == "layerwise" else 0)
    bound = epochs * DATASETS[config.dataset].n_train
    return min(t.samples, bound) if t.samples else bound


def load_sweep(path: Path) -> SweepSpec:
    """Read and check a sweep file (:func:`build_sweep`): a bad one raises
    :class:`UserError` naming the key, before any trial runs."""
    path = Path(path)
    return build_sweep(read_yaml(path, "sweep file"), str(path), path)
