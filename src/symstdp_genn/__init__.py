"""symstdp-genn: the supervised sym-STDP spiking network of Hao et al. (2019).

Model definitions live in :mod:`symstdp_genn.models`; backends (builtin C,
PyGeNN) compile them; :mod:`symstdp_genn.training` drives the protocol.

The public API (``train``, ``evaluate``, ...) is imported on first use (PEP 562), so
that importing the package costs nothing: ``python -m symstdp_genn`` and ``run.py``
load the command line's modules inside their own Ctrl-C guard, and a Ctrl-C in that
first third of a second ends as any other Ctrl-C, without a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: the public API: name -> the module that defines it
_API = {"EvalResult": "api", "TrainResult": "api", "evaluate": "api",
        "load_checkpoint": "api", "load_config": "api", "plot_run": "api", "train": "api",
        "UserError": "errors"}

__all__ = ["EvalResult", "TrainResult", "UserError", "__version__", "evaluate",
           "load_checkpoint", "load_config", "plot_run", "train"]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
