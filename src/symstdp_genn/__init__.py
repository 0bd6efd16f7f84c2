"""symstdp-genn: the supervised sym-STDP spiking network of Hao et al. (2019).

Model definitions live in :mod:`symstdp_genn.models`; backends (builtin C,
PyGeNN) compile them; :mod:`symstdp_genn.training` drives the protocol.
"""

__version__ = "0.1.0"

# the public API (after __version__: the modules it imports read it)
from .api import (
    EvalResult,
    TrainResult,
    evaluate,
    load_checkpoint,
    load_config,
    plot_run,
    train,
)
from .errors import UserError

__all__ = ["EvalResult", "TrainResult", "UserError", "__version__", "evaluate",
           "load_checkpoint", "load_config", "plot_run", "train"]
