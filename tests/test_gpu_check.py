"""The CPU-side logic of benchmarks/gpu_check.py: arguments, the no-CUDA exit, the report.

The GPU part itself runs only on a machine with PyGeNN built with CUDA and a GPU.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" /
                                                  "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


def test_arguments_have_the_issue_s_defaults_and_bad_batches_are_refused() -> None:
    args = gpu_check.parse_args([])
    assert args.presets == ["mnist-400", "mnist-6400"]
    assert args.batches == [1, 16, 64, 256]
    assert args.out == Path("gpu-check.md") and not args.quick and not args.slow
    args = gpu_check.parse_args(["--out", "r.md", "--batches", "2", "4", "--quick"])
    assert args.batches == [2, 4] and args.quick and args.out == Path("r.md")
    with pytest.raises(SystemExit) as exc:
        gpu_check.parse_args(["--batches", "0"])
    assert exc.value.code == 2


def test_without_cuda_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    monkeypatch.setattr(gpu_check, "cuda_problem_here", lambda: "no visible CUDA device")
    out = tmp_path / "report.md"
    assert gpu_check.main(["--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: no CUDA here: no visible CUDA device\n"
    assert captured.out == "" and not out.exists()


def test_script_on_a_machine_without_cuda_says_why_in_one_line() -> None:
    if gpu_check.cuda_problem_here() is None:
        pytest.skip("this machine can run genn-cuda")
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"),
                          "--out", "/nonexistent/never-written.md"],
                         capture_output=True, text=True, check=False, cwd=REPO)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no CUDA here: ")
    assert res.stdout == ""


def test_pytest_summary_is_parsed() -> None:
    text = ("....s.\n===== 5 passed, 1 skipped, 2 deselected in 12.34s =====\n")
    summary, counts = gpu_check.parse_pytest_summary(text)
    assert summary == "5 passed, 1 skipped, 2 deselected in 12.34s"
    assert counts == {"passed": 5, "skipped": 1, "deselected": 2}
    summary, counts = gpu_check.parse_pytest_summary("1 failed, 3 passed in 0.50s")
    assert counts == {"failed": 1, "passed": 3}
    assert gpu_check.parse_pytest_summary("ImportError: boom")[1] == {}
    run = gpu_check.TestRun("x", 0, "3 passed in 1s", 1.0, {"passed": 3})
    assert run.ok
    assert not gpu_check.TestRun("x", 1, "1 failed", 1.0, {"failed": 1, "passed": 2}).ok
    assert not gpu_check.TestRun("x", 0, "all skipped", 1.0, {"skipped": 4}).ok


def report_from(train_6400: float, test_6400: dict[int, float], step_us: float) -> str:
    T = gpu_check.Throughput
    rows = [T("mnist-400", "genn-cuda", 310.0, {1: 400.0, 16: 3000.0}, step_us=40.0),
            T("mnist-400", "builtin", 250.0, {1: 300.0, 8: 500.0}),
            T("mnist-6400", "genn-cuda", train_6400, test_6400, step_us=step_us),
            T("mnist-6400", "builtin", 40.0, {1: 30.0, 8: 50.0})]
    tests = [gpu_check.TestRun("genn tests on genn-cuda", 0, "9 passed in 80s", 80.0,
                               {"passed": 9}),
             gpu_check.TestRun("exact equivalence", 1, "1 failed in 5s", 5.0, {"failed": 1})]
    return gpu_check.render_report(["- GPU: test"], tests, rows, floor_us=30.0)


def test_report_holds_the_numbers_it_is_given_and_judges_the_aims() -> None:
    text = report_from(120.0, {1: 500.0, 16: 1800.0, 64: 2500.0, 256: 2400.0}, step_us=50.0)
    assert text.startswith("# GeNN CUDA check")
    assert "| genn tests on genn-cuda | PASS | 9 passed in 80s | 80 |" in text
    assert "| exact equivalence | FAIL | 1 failed in 5s | 5 |" in text
    # columns: every batch size measured (builtin's 8 too); × builtin compares best tests
    assert ("| mnist-6400 | genn-cuda | 120.0 | 500 |  | 1800 | 2500 | 2400 | 2500 (b=64) "
            "| 50.0 |" in text)
    assert "| mnist-400 | builtin | 250.0 | 300 | 500 |  |  |  | 500 (b=8) | 1.0 |" in text
    assert "training: 120.0 samples/s (aim ≥ 100): met" in text
    assert "testing: 2500 samples/s at batch 64 (aim ≥ 2000): met" in text
    # 30 µs fixed of 50 µs per step: 60 % → the call is the limit
    assert "- mnist-6400: 50.0 µs per step at batch 1; fixed cost 60 % of it " \
           "(the per-step call is the limit)" in text
    assert "- mnist-400: 40.0 µs per step at batch 1; fixed cost 75 %" in text


def test_report_says_when_aims_are_not_met() -> None:
    text = report_from(60.0, {1: 300.0, 256: 1500.0}, step_us=200.0)
    assert "training: 60.0 samples/s (aim ≥ 100): not met" in text
    assert "testing: 1500 samples/s at batch 256 (aim ≥ 2000): not met" in text
    assert "fixed cost 15 % of it (the simulation itself dominates)" in text


def test_report_lists_errors_and_keeps_the_test_results() -> None:
    run = gpu_check.TestRun("genn tests on genn-cuda", 0, "9 passed in 80s", 80.0, {"passed": 9})
    text = gpu_check.render_report(["- GPU: test"], [run], [], None,
                                   ["throughput measurement failed: RuntimeError: boom"])
    assert "## Errors\n\n- throughput measurement failed: RuntimeError: boom" in text
    assert "| genn tests on genn-cuda | PASS |" in text and "## Throughput" not in text


def _load_carry():
    spec = importlib.util.spec_from_file_location("gpu_carry", REPO / "benchmarks" /
                                                  "gpu_carry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_carry = _load_carry()


def test_carry_refuses_a_wheel_for_another_python(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    wheel = tmp_path / "pygenn-5.4.0-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"")
    assert gpu_carry.main(["--pygenn-wheel", str(wheel), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {wheel.name} is not built for Python 3.12 (no cp312 tag)"]
    assert gpu_carry.wheel_tag_problem(tmp_path / "nope.whl", "3.12") == (
        f"no PyGeNN wheel at {tmp_path / 'nope.whl'}")
    assert gpu_carry.wheel_tag_problem(wheel, "3.11") is None


def test_carry_gathers_wheel_and_mnist_and_prints_the_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = tmp_path / "pygenn-5.4.0-cp312-cp312-linux_x86_64.whl"
    wheel.write_bytes(b"wheel")
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    for name in gpu_carry.MNIST_FILES:
        (data / "mnist" / name).write_bytes(name.encode() * 10)
    out = tmp_path / "carry"
    assert gpu_carry.main(["--pygenn-wheel", str(wheel), "--out", str(out), "--data-dir",
                           str(data), "--no-download"]) == 0
    assert (out / "wheels" / wheel.name).read_bytes() == b"wheel"
    import gzip

    for name in gpu_carry.MNIST_FILES:
        assert gzip.decompress((out / "mnist" / f"{name}.gz").read_bytes()) == \
            name.encode() * 10
    text = capsys.readouterr().out
    assert "python benchmarks/gpu_check.py --quick" in text
    assert f"--find-links {out}/wheels pygenn numpy pyyaml psutil pytest" in text
    assert f"export CPATH=${{CPATH:+$CPATH:}}{out}/include && " in text
    assert "$PWD/gpu-carry/include" in gpu_carry.run_command(REPO / "gpu-carry")
    # without MNIST: one line, exit 2
    assert gpu_carry.main(["--pygenn-wheel", str(wheel), "--out", str(out), "--data-dir",
                           str(tmp_path / "empty"), "--no-download"]) == 2
    assert capsys.readouterr().err.startswith("error: MNIST is not in ")
