"""Shared test set-up: a private build cache and small-network helpers."""

from __future__ import annotations

import pytest

from symstdp_genn.config import Config, load_config


@pytest.fixture(autouse=True, scope="session")
def _private_build_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled test networks go to a throw-away cache, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SYMSTDP_GENN_CACHE", str(tmp_path_factory.mktemp("build-cache")))
    yield
    mp.undo()


def small_config(n_hidden: int = 8, **overrides: object) -> Config:
    """mnist-100 parameters with a tiny hidden layer, for fast, exact tests.

    The hidden→output weight sum scales with the layer as in the presets (0.1·N·gEC_MAX).
    """
    sets = [f"network.n_hidden={n_hidden}", f"network.norm_hidden_to_output={0.8 * n_hidden}"]
    sets += [f"{k}={v}" for k, v in overrides.items()]
    return load_config("mnist-100", overrides=sets)
