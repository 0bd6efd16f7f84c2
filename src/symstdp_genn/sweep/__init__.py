"""Sweeps and seed studies: many training runs from one sweep file, on Dask distributed.

``spec`` reads and expands sweep files (needs only the package); ``engine`` needs the
``[sweep]`` extra (``dask[distributed]``) and is imported only when a sweep runs.
"""

from .spec import SweepSpec, Trial, build_sweep, load_sweep

__all__ = ["SweepSpec", "Trial", "build_sweep", "load_sweep"]
