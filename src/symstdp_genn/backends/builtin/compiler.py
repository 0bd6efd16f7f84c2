"""Compile generated C into a shared library, cached by content hash.

The cache key covers the source text, the compiler's identity and the flags, so
a second run of the same network loads in milliseconds and a changed model can
never pick up a stale library. Flags keep IEEE semantics (no ``-ffast-math``, no
FMA contraction, no ``-march=native``) so that a checkpoint evaluates to the
same numbers on any x86-64 or ARM machine with the same libm.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from ...errors import UserError
from ...progress import notice

log = logging.getLogger(__name__)

BASE_FLAGS = ("-O3", "-std=gnu11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno",
              "-fno-trapping-math")


def cache_dir() -> Path:
    """``$SYMSTDP_GENN_CACHE`` or ``$XDG_CACHE_HOME/symstdp-genn`` (default ``~/.cache``)."""
    env = os.environ.get("SYMSTDP_GENN_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "symstdp-genn"


def find_compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc or not shutil.which(cc):
        raise UserError("no C compiler found for the builtin backend: install one "
                        "(e.g. `apt-get install gcc`) or set CC to its path")
    return cc


@cache
def _compiler_identity(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"the C compiler '{cc}' does not run ({exc}); set CC to a working "
                        "compiler") from None
    return out.stdout.splitlines()[0] if out.stdout else cc


@cache
def _accepts(cc: str, flags: tuple[str, ...], code: str = "int f(void) { return 0; }\n") -> bool:
    """Whether ``cc`` compiles a small file with ``flags``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(code)
        res = subprocess.run([cc, *BASE_FLAGS, *flags, str(src), "-o", str(Path(tmp) / "o.so")],
                             capture_output=True, text=True, check=False)
        return res.returncode == 0


@cache
def _openmp_flags(cc: str) -> tuple[str, ...]:
    """``-fopenmp`` where the compiler accepts it; the batch lanes then run in parallel."""
    code = "#include <omp.h>\nint f(void) { return omp_get_max_threads(); }\n"
    return ("-fopenmp",) if _accepts(cc, ("-fopenmp",), code) else ()


#: x86-64 micro-architecture levels and the CPU flags each needs, best first
_X86_LEVELS = (
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "fma"}),
    ("x86-64-v3", {"avx2", "avx", "fma", "bmi1", "bmi2", "f16c", "movbe"}),
)


def isa_flags(cc: str) -> tuple[str, ...]:
    """The best x86-64 level that the host CPU and the compiler support: wider vectors for
    the neuron loops (on the test machine AVX-512 trained ``mnist-400`` about 1.3× faster
    than AVX2, and AVX2 about twice as fast as the baseline). Results do not change with
    it: the generated code is elementwise, without FMA contraction or reassociation, so
    every vector lane rounds exactly as scalar code does (a test checks it).
    ``SYMSTDP_GENN_ISA=baseline`` turns it off."""
    if os.environ.get("SYMSTDP_GENN_ISA", "auto") == "baseline":
        return ()
    if platform.machine() not in ("x86_64", "AMD64"):
        return ()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags_line = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    have = set(flags_line.partition(":")[2].split())
    for level, needs in _X86_LEVELS:
        if needs <= have and _accepts(cc, (f"-march={level}",)):
            return (f"-march={level}",)
    return ("-mavx2",) if "avx2" in have and _accepts(cc, ("-mavx2",)) else ()


def failure_reason(res: subprocess.CompletedProcess[str]) -> str:
    """What a failed compiler run said, in one line: its first line mentioning an error
    (else its first line), from stderr or stdout, with the exit code; or, when it printed
    nothing at all (``CC=/bin/false``), that it printed nothing, with the exit code."""
    lines = [ln.strip() for ln in f"{res.stderr or ''}\n{res.stdout or ''}".splitlines()
             if ln.strip()]
    if not lines:
        return f"the compiler printed nothing and exited with code {res.returncode}"
    first = next((ln for ln in lines if "error" in ln.lower()), lines[0])
    return f"{first} (exit code {res.returncode})"


def compile_library(source: str, name: str) -> Path:
    """Return the path of a shared library built from ``source`` (cached)."""
    cc = find_compiler()
    flags = (*BASE_FLAGS, *isa_flags(cc), *_openmp_flags(cc))
    key = hashlib.sha256("\n".join([_compiler_identity(cc), " ".join(flags), source])
                         .encode()).hexdigest()[:24]
    folder = cache_dir() / "builtin"
    lib = folder / f"{name}-{key}.so"
    if lib.is_file():
        return lib
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the build cache {folder} ({exc.strerror}); set "
                        "SYMSTDP_GENN_CACHE to a writable folder") from None
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_text(source)
        out = Path(tmp) / "lib.so"
        notice(log, "compiling the %s model with %s (once; cached in %s)", name, cc, folder)
        res = subprocess.run([cc, *flags, str(src), "-o", str(out), "-lm"],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            kept = folder / f"{name}-{key}-failed.c"
            shutil.copyfile(src, kept)
            raise UserError(f"compiling the builtin model '{name}' with {cc} failed: "
                            f"{failure_reason(res)} (source kept at {kept})")
        os.replace(out, lib)
    return lib
