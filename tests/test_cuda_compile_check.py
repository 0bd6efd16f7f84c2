"""benchmarks/cuda_compile_check.py: its plan, table and one-line skip (no PyGeNN, no GPU
needed), the pretend device compiled against a toolkit's headers where one is installed,
and one real compile-only build where PyGeNN has its CUDA backend."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symstdp_genn.backends import cuda_env

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "cuda_compile_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("cuda_compile_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cuda_compile_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check = _load()


def test_plan_builds_each_preset_as_trained_and_as_tested() -> None:
    cases = check.plan(["mnist-100", "paper-mnist-100"], None)
    assert [(c.preset, c.mode, c.batch) for c in cases] == [
        ("mnist-100", "train", 1), ("mnist-100", "test", 8),
        ("paper-mnist-100", "train", 1), ("paper-mnist-100", "test", 8)]
    # the paper preset runs mnist-100's network: one build serves both
    assert len({c.fingerprint for c in cases}) == 1
    cases = check.plan(["mnist-400"], [16, 64])
    assert [(c.mode, c.batch) for c in cases] == [("train", 1), ("test", 16), ("test", 64)]


def test_table_has_one_row_per_case() -> None:
    cases = [check.Case("mnist-100", "train", 1, "f", True, 21.04),
             check.Case("mnist-100", "test", 8, "f", False, float("nan"), "exit 1: boom")]
    assert check.render_table(cases).splitlines() == [
        "| preset | mode | batch | result | seconds | note |",
        "| --- | --- | --- | --- | --- | --- |",
        "| mnist-100 | train | 1 | PASS | 21.0 |  |",
        "| mnist-100 | test | 8 | FAIL |  | exit 1: boom |"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit) as exc:
        check.parse_args(["--test-batches", "0"])
    assert exc.value.code == 2


def test_unknown_preset_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main(["--presets", "mnist-401"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown preset(s): mnist-401")


def test_without_cuda_pygenn_it_skips_with_one_line() -> None:
    """In CI (no PyGeNN, or one without its CUDA backend) the check says why and builds
    nothing."""
    if check.cannot_check_here() is None:
        pytest.skip("this machine can run the compile-only check")
    res = subprocess.run([sys.executable, str(SCRIPT), "--presets", "mnist-100"],
                         capture_output=True, text=True, check=False, cwd=REPO)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("skipped: the compile-only CUDA check cannot run here: ")


def test_missing_pieces_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cuda_env, "pygenn_cuda_problem",
                        lambda driver_missing=False: "PyGeNN is not installed")
    monkeypatch.setenv("CUDA_PATH", str(tmp_path / "no-toolkit"))
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(check.shutil, "which", lambda *a, **k: None)
    problem = check.cannot_check_here()
    assert problem.startswith("PyGeNN is not installed; CUDA_PATH is not set")
    assert problem.endswith("no C compiler (cc or gcc) to build the pretend device")


@pytest.mark.skipif(cuda_env.cuda_path() is None or check.compiler() is None,
                    reason="needs a CUDA toolkit (CUDA_PATH) and a C compiler")
def test_pretend_device_compiles_against_the_toolkit(tmp_path: Path) -> None:
    env = check.build_fake_device(tmp_path, cuda_env.cuda_path())
    lib = Path(env["LD_PRELOAD"])
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True,
                             text=True, check=False).stdout if shutil.which("nm") else ""
    assert lib.is_file()
    for name in ("cudaGetDeviceCount", "cudaGetDeviceProperties", "cuModuleGetFunction"):
        assert not symbols or name in symbols
    # the pretend device answers a device probe as one device would
    assert cuda_env.device_problem(str(lib)) is None


@pytest.mark.genn
@pytest.mark.slow
def test_mnist_100_compiles_for_sm_90(tmp_path: Path) -> None:
    if check.cannot_check_here() is not None:
        pytest.skip(check.cannot_check_here())
    out = tmp_path / "table.md"
    res = subprocess.run([sys.executable, str(SCRIPT), "--presets", "mnist-100",
                          "--out", str(out)], capture_output=True, text=True, check=False,
                         cwd=REPO, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    rows = out.read_text().splitlines()[2:]
    assert [r.split(" | ")[1:4] for r in rows] == [["train", "1", "PASS"],
                                                   ["test", "8", "PASS"]]
