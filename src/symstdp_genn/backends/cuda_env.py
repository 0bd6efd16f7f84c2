"""What ``genn-cuda`` needs from the machine, checked before anything is built.

GeNN's CUDA backend fails late and badly when a piece is missing: without the
driver library ``import pygenn`` silently drops its CUDA backend; with a driver
that cannot serve the toolkit's runtime, GeNN's device query prints "cuda
runtime error 35" and calls ``exit(1)``, taking the whole run down with nothing
saved; without cuRAND headers nvcc stops half-way through a build. This module
names each missing piece in one line instead, and it imports neither PyGeNN nor
anything CUDA, so it runs (and is tested) on machines that have neither:

- a loadable CUDA driver library (``libcuda.so.1``);
- a visible device, asked of the driver and of the toolkit's CUDA runtime in a
  subprocess, so a query that exits cannot end this process;
- the CUDA toolkit at ``$CUDA_PATH`` with ``bin/nvcc`` (GeNN compiles with it);
- cuRAND's headers wherever nvcc would find them: the toolkit, ``CPATH`` /
  ``CPLUS_INCLUDE_PATH``, or the include folder of a ``nvidia-curand*`` Python
  package (toolkits installed from those packages keep them there); in the last
  case :func:`curand_cpath` says what the build must add to ``CPATH``, since
  PyGeNN does not expose GeNN's extra-nvcc-flags preference;
- PyGeNN with its CUDA backend, loadable.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

#: the CUDA driver library PyGeNN's CUDA backend links against (Linux)
DRIVER_LIBRARY = "libcuda.so.1"
#: the header GeNN's generated CUDA code includes for its random number streams
CURAND_HEADER = "curand_kernel.h"
#: seconds a device probe may take (cuInit on a large machine takes a few)
PROBE_TIMEOUT_S = 120.0

#: the device probe, run as ``python -c PROBE DRIVER_LIBRARY [CUDART_LIBRARY]``: prints one
#: JSON object; the device queries run here, not in the caller, because a driver or runtime
#: that misbehaves may end the process (GeNN's own query calls exit(1))
PROBE = r"""
import ctypes, json, sys
out = {}
def call(lib, name, *args):
    return int(getattr(lib, name)(*args))
try:
    cuda = ctypes.CDLL(sys.argv[1])
except OSError as exc:
    out["driver_error"] = str(exc)
else:
    n = ctypes.c_int(0)
    out["driver_version"] = n.value if call(cuda, "cuDriverGetVersion", ctypes.byref(n)) == 0 else 0
    out["cu_init"] = call(cuda, "cuInit", 0)
    if out["cu_init"] == 0:
        n = ctypes.c_int(0)
        out["cu_device_count_rc"] = call(cuda, "cuDeviceGetCount", ctypes.byref(n))
        out["cu_device_count"] = n.value
if len(sys.argv) > 2 and "driver_error" not in out:
    try:
        rt = ctypes.CDLL(sys.argv[2])
    except OSError as exc:
        out["runtime_error"] = str(exc)
    else:
        n = ctypes.c_int(0)
        if call(rt, "cudaRuntimeGetVersion", ctypes.byref(n)) == 0:
            out["runtime_version"] = n.value
        n = ctypes.c_int(0)
        out["cuda_device_count_rc"] = call(rt, "cudaGetDeviceCount", ctypes.byref(n))
        out["cuda_device_count"] = n.value
        rt.cudaGetErrorString.restype = ctypes.c_char_p
        out["cuda_error"] = rt.cudaGetErrorString(out["cuda_device_count_rc"]).decode()
print(json.dumps(out))
"""


def _version(v: int) -> str:
    """CUDA's integer versions (12040) as people write them (12.4)."""
    return f"{v // 1000}.{(v % 1000) // 10}"


def cuda_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The toolkit folder GeNN compiles with (``$CUDA_PATH``), or None when unset or absent."""
    value = (os.environ if environ is None else environ).get("CUDA_PATH")
    return Path(value) if value and Path(value).is_dir() else None


def driver_problem(library: str = DRIVER_LIBRARY) -> str | None:
    """Why the CUDA driver library cannot be loaded, or None when it can."""
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        reason = str(exc).split(": ")[-1].strip() or "not found"
        return (f"no loadable CUDA driver library ({library}: {reason}), which PyGeNN's "
                "CUDA backend needs: install the NVIDIA driver")
    return None


def runtime_library(toolkit: Path | None) -> str | None:
    """The toolkit's CUDA runtime library (what GeNN's generated code links), if present."""
    if toolkit is None:
        return None
    for folder in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"):
        candidates = sorted((toolkit / folder).glob("libcudart.so*"))
        if candidates:
            return str(candidates[0])
    return None


def device_problem(library: str = DRIVER_LIBRARY, runtime: str | None = None,
                   python: str = sys.executable, timeout: float = PROBE_TIMEOUT_S,
                   probe: str = PROBE) -> str | None:
    """Why no CUDA device is usable, asked in a subprocess; None when one is.

    ``runtime``: the toolkit's CUDA runtime library; when given, it must count the
    device too (a driver older than the runtime answers error 35 there, where GeNN
    would exit)."""
    try:
        res = subprocess.run([python, "-c", probe, library, *([runtime] if runtime else [])],
                             capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"the CUDA device probe did not answer within {timeout:.0f} s"
    except OSError as exc:
        return f"the CUDA device probe could not start ({exc})"
    lines = (res.stdout or "").strip().splitlines()
    try:
        facts = json.loads(lines[-1]) if lines else None
    except ValueError:
        facts = None
    if res.returncode != 0 or not isinstance(facts, dict):
        how = (f"was killed by signal {-res.returncode}" if res.returncode < 0
               else f"exited with status {res.returncode}")
        said = " ".join(((res.stderr or "") + (res.stdout or "")).split())[-200:]
        return (f"querying the CUDA device {how}" + (f" ({said})" if said else "")
                + "; the driver or the device is not usable")
    return describe_probe(facts)


def describe_probe(facts: Mapping[str, object]) -> str | None:
    """The device probe's answer in one line, or None when a device is usable."""
    if "driver_error" in facts:
        return f"no loadable CUDA driver library ({facts['driver_error']})"
    driver = int(facts.get("driver_version") or 0)
    init = int(facts.get("cu_init", -1))
    if init == 100:  # CUDA_ERROR_NO_DEVICE
        return ("no visible CUDA device (the driver sees none; is CUDA_VISIBLE_DEVICES "
                "hiding every GPU?)")
    if init != 0:
        return (f"the CUDA driver does not initialise (cuInit error {init}); is the NVIDIA "
                "kernel module loaded?")
    if int(facts.get("cu_device_count", 0)) < 1:
        return "no visible CUDA device (the driver counts 0)"
    if "runtime_error" in facts:
        return f"the toolkit's CUDA runtime does not load ({facts['runtime_error']})"
    rc = facts.get("cuda_device_count_rc")
    if rc is not None and int(rc) != 0:
        runtime = int(facts.get("runtime_version") or 0)
        versions = (f"; the driver supports CUDA {_version(driver)}, the toolkit is "
                    f"CUDA {_version(runtime)}" if driver and runtime else "")
        return (f"the toolkit's CUDA runtime cannot use the device (error {rc}: "
                f"{facts.get('cuda_error', '?')}{versions}); GeNN would exit here")
    if rc is not None and int(facts.get("cuda_device_count", 0)) < 1:
        return "no visible CUDA device (the CUDA runtime counts 0)"
    return None


def _path_list(value: str | None) -> list[Path]:
    return [Path(p) for p in (value or "").split(os.pathsep) if p]


def curand_search(toolkit: Path | None, environ: Mapping[str, str] | None = None,
                  search_paths: Sequence[str] | None = None) -> list[tuple[Path, bool]]:
    """Where cuRAND's headers may be, in nvcc's order: ``(folder, nvcc searches it
    unaided)``. The nvidia-curand Python packages (``nvidia/curand/include``, or
    ``nvidia/cu13/include`` in the CUDA 13 layout) come last and need ``CPATH``."""
    environ = os.environ if environ is None else environ
    found: list[tuple[Path, bool]] = []
    if toolkit is not None:
        found.append((toolkit / "include", True))
        found += [(p, True) for p in sorted(toolkit.glob("targets/*/include"))]
    for var in ("CPATH", "CPLUS_INCLUDE_PATH"):
        found += [(p, True) for p in _path_list(environ.get(var))]
    for entry in (sys.path if search_paths is None else search_paths):
        nvidia = Path(entry or ".") / "nvidia"
        if nvidia.is_dir():
            found += [(p, False) for p in sorted(nvidia.glob("curand/include"))]
            found += [(p, False) for p in sorted(nvidia.glob("cu[0-9]*/include"))]
    return found


def find_curand(toolkit: Path | None, environ: Mapping[str, str] | None = None,
                search_paths: Sequence[str] | None = None) -> tuple[Path, bool] | None:
    """The first folder holding cuRAND's headers and whether nvcc finds it unaided."""
    for folder, default in curand_search(toolkit, environ, search_paths):
        if (folder / CURAND_HEADER).is_file():
            return folder, default
    return None


def curand_cpath(environ: Mapping[str, str] | None = None,
                 search_paths: Sequence[str] | None = None) -> str | None:
    """The ``CPATH`` a CUDA build needs so nvcc finds cuRAND, or None when it needs none.

    PyGeNN does not expose GeNN's extra-nvcc-flags preference, and nvcc (like gcc)
    reads ``CPATH``, which the build's make and nvcc processes inherit."""
    environ = os.environ if environ is None else environ
    found = find_curand(cuda_path(environ), environ, search_paths)
    if found is None or found[1]:
        return None
    return os.pathsep.join([str(found[0]), *map(str, _path_list(environ.get("CPATH")))])


def pygenn_cuda_problem(driver_missing: bool = False, package: str = "pygenn") -> str | None:
    """Why PyGeNN's CUDA backend is not usable, or None when it loads.

    Looks at PyGeNN's files before importing anything: a PyGeNN built without
    ``CUDA_PATH`` has no ``cuda_backend`` module at all, while one whose module does
    not load (most often: no driver library) is a different fix."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return "PyGeNN is not installed (build GeNN 5 with CUDA_PATH set)"
    folders = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not any(any(f.glob("cuda_backend*")) for f in folders):
        return ("this PyGeNN was built without its CUDA backend (rebuild GeNN with CUDA_PATH "
                "set to a CUDA toolkit)")
    if driver_missing:
        return None  # the driver's line says why the backend cannot load
    try:
        importlib.import_module(f"{package}.cuda_backend")
    except ImportError as exc:
        return f"PyGeNN's CUDA backend does not load ({' '.join(str(exc).split())})"
    return None


@dataclass
class CudaCheck:
    """The checks' inputs, each replaceable (the tests fake one missing piece at a time)."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    driver_library: str = DRIVER_LIBRARY
    search_paths: Sequence[str] | None = None
    pygenn: Callable[[bool], str | None] = pygenn_cuda_problem
    probe_device: bool = True

    def problems(self) -> list[str]:
        """Every missing piece, each as one short clause, in the order to fix them."""
        out = []
        driver = driver_problem(self.driver_library)
        pygenn = self.pygenn(driver is not None)
        if pygenn is not None:
            out.append(pygenn)
        if driver is not None:
            out.append(driver)
        toolkit = cuda_path(self.environ)
        if toolkit is None:
            out.append("CUDA_PATH is not set to a CUDA toolkit folder (GeNN compiles with "
                       "$CUDA_PATH/bin/nvcc)")
        elif shutil.which("nvcc", path=str(toolkit / "bin")) is None:
            out.append(f"no nvcc in {toolkit / 'bin'} (CUDA_PATH must name a CUDA toolkit)")
        if find_curand(toolkit, self.environ, self.search_paths) is None:
            out.append(f"no cuRAND headers ({CURAND_HEADER}) in the toolkit, CPATH or an "
                       "nvidia-curand Python package (install the toolkit's cuRAND "
                       "development files, or pip install nvidia-curand)")
        if driver is None and self.probe_device:
            device = device_problem(self.driver_library, runtime_library(toolkit))
            if device is not None:
                out.append(device)
        return out

    def problem(self) -> str | None:
        """All missing pieces in one line, or None when genn-cuda can build and run."""
        problems = self.problems()
        return "; ".join(problems) if problems else None


@lru_cache(maxsize=1)
def _cached_problem(key: tuple[str | None, ...]) -> str | None:
    return CudaCheck().problem()


def cuda_problem() -> str | None:
    """Why genn-cuda cannot build and run here, in one line, or None when it can.

    Cached per process for the environment variables it reads (the device probe
    starts a Python subprocess)."""
    key = tuple(os.environ.get(v) for v in ("CUDA_PATH", "CPATH", "CPLUS_INCLUDE_PATH",
                                             "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"))
    return _cached_problem(key)
