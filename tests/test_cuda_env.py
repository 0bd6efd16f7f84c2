"""The genn-cuda diagnostics, one missing piece faked at a time.

None of these needs PyGeNN or a GPU: the toolkit is a folder of empty files, the
driver and the CUDA runtime are small C libraries compiled here that answer as a
real one would on a machine without a device (or with too old a driver), and
PyGeNN is a throw-away package on ``sys.path``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from symstdp_genn.backends import cuda_env
from symstdp_genn.backends.cuda_env import CudaCheck

CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="needs a C compiler for the fake driver")
#: a library ctypes loads on any Linux: stands in for a present driver library where the
#: device is not probed
PRESENT_LIBRARY = "libc.so.6"


def fake_toolkit(root: Path, nvcc: bool = True, curand: bool = True) -> Path:
    """A CUDA_PATH folder: bin/nvcc (an executable doing nothing) and include/."""
    (root / "bin").mkdir(parents=True)
    (root / "include").mkdir()
    if nvcc:
        (root / "bin" / "nvcc").write_text("#!/bin/sh\nexit 0\n")
        (root / "bin" / "nvcc").chmod(0o755)
    if curand:
        (root / "include" / cuda_env.CURAND_HEADER).write_text("/* fake */\n")
    return root


def compile_library(tmp: Path, name: str, source: str) -> str:
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / f"{name}.so"
    subprocess.run([CC, "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return str(out)


def fake_driver(tmp: Path, init: str = "return 0;", count: int = 1,
                version: int = 13000, name: str = "libcuda_fake") -> str:
    return compile_library(tmp, name, f"""
#include <stdio.h>
#include <stdlib.h>
int cuDriverGetVersion(int *v) {{ *v = {version}; return 0; }}
int cuInit(unsigned flags) {{ (void)flags; {init} }}
int cuDeviceGetCount(int *n) {{ *n = {count}; return 0; }}
""")


def fake_runtime(tmp: Path, rc: int, count: int = 1, version: int = 13000,
                 name: str = "libcudart_fake") -> str:
    return compile_library(tmp, name, f"""
int cudaRuntimeGetVersion(int *v) {{ *v = {version}; return 0; }}
int cudaGetDeviceCount(int *n) {{ *n = {count}; return {rc}; }}
const char *cudaGetErrorString(int e) {{
    return e == 35 ? "CUDA driver version is insufficient for CUDA runtime version"
                   : "no error";
}}
""")


def check(tmp: Path, **kw) -> CudaCheck:
    """Everything present (toolkit, cuRAND, PyGeNN's backend) unless ``kw`` says not;
    no device probe unless a driver is given."""
    env = kw.pop("environ", None)
    if env is None:
        env = {"CUDA_PATH": str(fake_toolkit(tmp / "cuda-default"))}
    kw.setdefault("pygenn", lambda driver_missing: None)
    kw.setdefault("search_paths", [])
    if "driver_library" not in kw:
        kw["driver_library"] = PRESENT_LIBRARY
        kw.setdefault("probe_device", False)
    return CudaCheck(environ=env, **kw)


def test_all_present_is_no_problem(tmp_path: Path) -> None:
    assert check(tmp_path).problem() is None


def test_missing_driver_library_is_named(tmp_path: Path) -> None:
    problem = check(tmp_path, driver_library="libcuda-not-here.so.1").problem()
    assert problem is not None and "\n" not in problem
    assert problem.startswith("no loadable CUDA driver library (libcuda-not-here.so.1: ")
    assert "install the NVIDIA driver" in problem


def test_missing_driver_is_the_reason_given_for_pygenn_s_backend(tmp_path: Path) -> None:
    """Without the driver, PyGeNN's CUDA backend cannot load; the driver is what is named,
    not a misleading "built without its CUDA backend"."""
    seen = []

    def pygenn(driver_missing: bool) -> str | None:
        seen.append(driver_missing)
        return None

    problem = check(tmp_path, driver_library="libcuda-not-here.so.1", pygenn=pygenn).problem()
    assert seen == [True]
    assert "built without" not in problem and "driver library" in problem


def test_no_cuda_path_and_no_nvcc(tmp_path: Path) -> None:
    problem = check(tmp_path, environ={}).problem()
    assert problem is not None and "CUDA_PATH is not set" in problem
    toolkit = fake_toolkit(tmp_path / "cuda-no-nvcc", nvcc=False)
    problem = check(tmp_path, environ={"CUDA_PATH": str(toolkit)}).problem()
    assert problem == f"no nvcc in {toolkit / 'bin'} (CUDA_PATH must name a CUDA toolkit)"


def test_curand_missing_everywhere(tmp_path: Path) -> None:
    toolkit = fake_toolkit(tmp_path / "cuda", curand=False)
    problem = check(tmp_path, environ={"CUDA_PATH": str(toolkit)},
                    search_paths=[str(tmp_path / "site")]).problem()
    assert problem is not None and problem.startswith("no cuRAND headers (curand_kernel.h)")
    assert cuda_env.curand_cpath({"CUDA_PATH": str(toolkit)}, [str(tmp_path)]) is None


@pytest.mark.parametrize("layout", ["nvidia/cu13/include", "nvidia/curand/include"])
def test_curand_from_a_python_package_is_found_and_added_to_cpath(tmp_path: Path,
                                                                  layout: str) -> None:
    toolkit = fake_toolkit(tmp_path / "cuda", curand=False)
    site = tmp_path / "site"
    (site / layout).mkdir(parents=True)
    (site / layout / cuda_env.CURAND_HEADER).write_text("/* fake */\n")
    env = {"CUDA_PATH": str(toolkit), "CPATH": "/already/there"}
    assert check(tmp_path, environ=env, search_paths=[str(site)]).problem() is None
    assert cuda_env.find_curand(toolkit, env, [str(site)]) == (site / layout, False)
    assert cuda_env.curand_cpath(env, [str(site)]) == os.pathsep.join(
        [str(site / layout), "/already/there"])


def test_curand_on_cpath_or_in_the_toolkit_needs_no_change(tmp_path: Path) -> None:
    toolkit = fake_toolkit(tmp_path / "cuda", curand=False)
    headers = tmp_path / "headers"
    headers.mkdir()
    (headers / cuda_env.CURAND_HEADER).write_text("/* fake */\n")
    env = {"CUDA_PATH": str(toolkit), "CPATH": str(headers)}
    assert cuda_env.find_curand(toolkit, env, []) == (headers, True)
    assert cuda_env.curand_cpath(env, []) is None
    full = fake_toolkit(tmp_path / "cuda-full")
    assert cuda_env.curand_cpath({"CUDA_PATH": str(full)}, []) is None


def test_pygenn_without_its_cuda_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    package = tmp_path / "fake_pygenn_nocuda"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "single_threaded_cpu_backend.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = cuda_env.pygenn_cuda_problem(package="fake_pygenn_nocuda")
    assert problem == ("this PyGeNN was built without its CUDA backend (rebuild GeNN with "
                       "CUDA_PATH set to a CUDA toolkit)")
    assert cuda_env.pygenn_cuda_problem(package="fake_pygenn_absent").startswith(
        "PyGeNN is not installed")


def test_pygenn_cuda_backend_that_does_not_load(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fake_pygenn_broken"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cuda_backend.py").write_text(
        "raise ImportError('libcudart.so.13: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    problem = cuda_env.pygenn_cuda_problem(package="fake_pygenn_broken")
    assert problem == ("PyGeNN's CUDA backend does not load (libcudart.so.13: cannot open "
                       "shared object file)")
    # with the driver missing, the driver's own line explains it
    assert cuda_env.pygenn_cuda_problem(True, package="fake_pygenn_broken") is None


@needs_cc
def test_driver_without_a_device(tmp_path: Path) -> None:
    driver = fake_driver(tmp_path, init="return 100;")  # CUDA_ERROR_NO_DEVICE
    problem = check(tmp_path, driver_library=driver).problem()
    assert problem is not None and problem.startswith("no visible CUDA device")


@needs_cc
def test_a_device_is_no_problem_and_zero_devices_is(tmp_path: Path) -> None:
    assert cuda_env.device_problem(fake_driver(tmp_path, name="one")) is None
    assert cuda_env.device_problem(fake_driver(tmp_path, count=0, name="none")) == (
        "no visible CUDA device (the driver counts 0)")


@needs_cc
def test_a_query_that_exits_does_not_take_this_process_down(tmp_path: Path) -> None:
    """GeNN's device query prints its error and calls exit(1): the probe runs in a
    subprocess, so here it is one line, and this test (the caller) goes on."""
    driver = fake_driver(tmp_path, init='fprintf(stderr, "cuda runtime error 35\\n"); '
                                         "exit(1);")
    problem = check(tmp_path, driver_library=driver).problem()
    assert problem == ("querying the CUDA device exited with status 1 (cuda runtime error 35);"
                       " the driver or the device is not usable")


@needs_cc
def test_driver_older_than_the_toolkit_s_runtime(tmp_path: Path) -> None:
    driver = fake_driver(tmp_path, version=12020)
    runtime = fake_runtime(tmp_path, rc=35, count=0, version=13000)
    problem = cuda_env.device_problem(driver, runtime)
    assert problem == ("the toolkit's CUDA runtime cannot use the device (error 35: CUDA "
                       "driver version is insufficient for CUDA runtime version; the driver "
                       "supports CUDA 12.2, the toolkit is CUDA 13.0); GeNN would exit here")
    assert cuda_env.device_problem(driver, fake_runtime(tmp_path, rc=0, name="ok")) is None


def test_the_runtime_library_is_looked_up_in_the_toolkit(tmp_path: Path) -> None:
    toolkit = fake_toolkit(tmp_path / "cuda")
    assert cuda_env.runtime_library(toolkit) is None
    (toolkit / "lib64").mkdir()
    (toolkit / "lib64" / "libcudart.so.13").write_text("")
    assert cuda_env.runtime_library(toolkit) == str(toolkit / "lib64" / "libcudart.so.13")
    assert cuda_env.runtime_library(None) is None


def test_everything_missing_is_one_line_in_the_order_to_fix_it(tmp_path: Path) -> None:
    problem = CudaCheck(environ={}, driver_library="libcuda-not-here.so.1",
                        search_paths=[], pygenn=lambda missing: "PyGeNN is not installed"
                        ).problem()
    assert problem is not None and "\n" not in problem
    parts = problem.split("; ")
    assert parts[0] == "PyGeNN is not installed"
    assert parts[1].startswith("no loadable CUDA driver library")
    assert any(p.startswith("CUDA_PATH is not set") for p in parts)
    assert parts[-1].startswith("no cuRAND headers")


def test_probe_answers_are_described() -> None:
    describe = cuda_env.describe_probe
    assert describe({"driver_error": "libcuda.so.1: nope"}).startswith(
        "no loadable CUDA driver library")
    assert describe({"cu_init": 999}).startswith("the CUDA driver does not initialise")
    assert describe({"cu_init": 0, "cu_device_count": 1}) is None
    assert describe({"cu_init": 0, "cu_device_count": 1, "cuda_device_count_rc": 0,
                     "cuda_device_count": 0}) == (
        "no visible CUDA device (the CUDA runtime counts 0)")
