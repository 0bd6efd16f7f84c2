#!/usr/bin/env python3
"""Assemble the folder a GPU machine without network access needs to run gpu_check.py.

benchmarks/gpu_check.py runs on a machine with a GPU, a CUDA toolkit and Python, but
perhaps without PyGeNN, this project's dependencies, MNIST or cuRAND's headers, and
without a network to fetch them. This script gathers them into one folder (default
``gpu-carry/``, ignored by git) to copy there next to the working tree:

- ``wheels/``: the PyGeNN wheel you give it (built with its CUDA backend for the GPU
  machine's Python and CUDA major version, as GeNN's installation documentation
  describes; this script builds nothing) and binary wheels of numpy, PyYAML, psutil
  and pytest for that Python, fetched with ``pip download``;
- ``mnist/``: the four MNIST files, gzipped (the dataset loader reads ``.gz``);
- ``include/``: cuRAND's headers, from wherever this machine has them (used only if the
  GPU machine's toolkit lacks them: they go on ``CPATH`` after the toolkit's own).

It prints the one command to run there. ::

    python benchmarks/gpu_carry.py --pygenn-wheel /path/to/pygenn-5.4.0-cp312-cp312-linux_x86_64.whl

Bad input (no wheel, a wheel for another Python, no MNIST here, pip failing) is one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from symstdp_genn.backends import cuda_env  # noqa: E402

EXIT_BAD_INPUT = 2
#: what the GPU machine needs besides PyGeNN: the project's run-time imports and pytest
DEPENDENCIES = ("numpy", "pyyaml", "psutil", "pytest")
#: manylinux tags binary wheels for x86-64 Linux carry
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: what the device tool copies at most (working tree and carried folders together)
CARRY_LIMIT_MIB = 64


class BadInput(Exception):
    """One line for the user."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pygenn-wheel", type=Path, required=True,
                   help="a PyGeNN 5 wheel built with CUDA for the GPU machine's Python")
    p.add_argument("--python-version", default="3.12",
                   help="the GPU machine's Python (default 3.12)")
    p.add_argument("--out", type=Path, default=ROOT / "gpu-carry",
                   help="the folder to fill (default gpu-carry/, ignored by git)")
    p.add_argument("--data-dir", type=Path, default=ROOT / "data",
                   help="where MNIST is here (default data/)")
    p.add_argument("--no-download", action="store_true",
                   help="do not fetch dependency wheels (the GPU machine has them)")
    return p.parse_args(argv)


def wheel_tag_problem(wheel: Path, python_version: str) -> str | None:
    """Why ``wheel`` is not a PyGeNN wheel for ``python_version``, or None."""
    if not wheel.is_file():
        return f"no PyGeNN wheel at {wheel}"
    if not wheel.name.startswith("pygenn-") or not wheel.name.endswith(".whl"):
        return f"{wheel.name} is not a PyGeNN wheel (pygenn-*.whl)"
    tag = "cp" + python_version.replace(".", "")
    if f"-{tag}-" not in wheel.name:
        return f"{wheel.name} is not built for Python {python_version} (no {tag} tag)"
    return None


def gather_mnist(data_dir: Path, out: Path) -> None:
    source = data_dir / "mnist"
    missing = [n for n in MNIST_FILES
               if not (source / n).is_file() and not (source / f"{n}.gz").is_file()]
    if missing:
        raise BadInput(f"MNIST is not in {source} ({', '.join(missing)} missing); "
                       "python run.py --mode data fetches it")
    out.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        if (source / f"{name}.gz").is_file():
            shutil.copyfile(source / f"{name}.gz", out / f"{name}.gz")
        else:
            with open(source / name, "rb") as raw, gzip.open(out / f"{name}.gz", "wb") as gz:
                shutil.copyfileobj(raw, gz)


def gather_curand(out: Path) -> Path | None:
    """Copy cuRAND's headers from where this machine keeps them; their folder, or None."""
    found = cuda_env.find_curand(cuda_env.cuda_path())
    if found is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    for header in found[0].glob("curand*.h"):
        shutil.copyfile(header, out / header.name)
    return found[0]


def download_wheels(out: Path, python_version: str) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
           "--python-version", python_version, "--dest", str(out),
           *(f"--platform={p}" for p in PLATFORMS), *DEPENDENCIES]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BadInput(f"pip download failed: {last}")


def size_mib(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def run_command(out: Path) -> str:
    """The one command to run in the repository root on the GPU machine."""
    rel = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    include = f"$PWD/{rel}/include" if not rel.is_absolute() else f"{rel}/include"
    return (f"python -m pip install -q --no-index --find-links {rel}/wheels pygenn "
            f"{' '.join(DEPENDENCIES)} && "
            "export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda} && "
            f"export CPATH=${{CPATH:+$CPATH:}}{include} && "
            "export LD_LIBRARY_PATH=$CUDA_PATH/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} && "
            f"python benchmarks/gpu_check.py --quick --data-dir {rel} "
            "--out ${OUT:-.}/gpu-check.md")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        problem = wheel_tag_problem(args.pygenn_wheel, args.python_version)
        if problem is not None:
            raise BadInput(problem)
        out = args.out.resolve()
        wheels = out / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.pygenn_wheel, wheels / args.pygenn_wheel.name)
        if not args.no_download:
            download_wheels(wheels, args.python_version)
        gather_mnist(args.data_dir, out / "mnist")
        curand = gather_curand(out / "include")
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    total = size_mib(out)
    print(f"{out}: {total:.1f} MiB (wheels {size_mib(wheels):.1f}, MNIST "
          f"{size_mib(out / 'mnist'):.1f}, cuRAND headers "
          + (f"from {curand}" if curand else "not found here; the GPU machine's toolkit "
             "must have them") + ")")
    if total > CARRY_LIMIT_MIB:
        print(f"warning: more than {CARRY_LIMIT_MIB} MiB; the device tool may refuse it",
              file=sys.stderr)
    print("carry:", out.relative_to(ROOT) if out.is_relative_to(ROOT) else out)
    print("run:  ", run_command(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
