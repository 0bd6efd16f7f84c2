"""Shared test set-up: a private build cache and small-network helpers."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import pytest

from symstdp_genn import cli
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


@contextlib.contextmanager
def restored_logging() -> Iterator[None]:
    """``cli._setup_logging`` replaces the root logger's handlers; put them back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``cli.main(argv)`` in this process: exit code, stdout, stderr (usable from
    module-scoped fixtures, unlike capsys)."""
    out, err = io.StringIO(), io.StringIO()
    with restored_logging(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()
