"""symstdp-genn: the supervised sym-STDP spiking network of Hao et al. (2019).

Model definitions live in :mod:`symstdp_genn.models`; backends (builtin C,
PyGeNN) compile them; :mod:`symstdp_genn.training` drives the protocol.
"""

__version__ = "0.1.0"
