#!/usr/bin/env python3
"""One-shot check of the GeNN CUDA backend on a GPU machine, written as one Markdown report.

It runs, in order:

1. the ``genn`` tests (tests/test_genn.py) with the GeNN side on ``genn-cuda``
   (``SYMSTDP_GENN_TEST_BACKEND=genn-cuda``; ``--slow`` adds the statistical
   mnist-100 accuracy comparison, which trains 16 networks);
2. the exact-equivalence test on injected spikes against the builtin backend, on
   its own, so the report names it;
3. the throughput benchmark: for mnist-400 and mnist-6400, training samples/s
   (batch 1) and test samples/s at batch 1, 16, 64 and 256, with the builtin
   backend's numbers measured alongside;
4. the fixed cost of one time step (the Python → GeNN ``step_time`` call and its
   kernel launches), measured on a 10-neuron network, and its share of each
   network's step at batch 1.

    python benchmarks/gpu_check.py                     # report in gpu-check.md (~15 min)
    python benchmarks/gpu_check.py --quick --out /tmp/gpu.md   # fewer samples (~5 min)

Without PyGeNN's CUDA backend, the driver, a visible GPU, a CUDA toolkit or cuRAND's
headers it prints one line naming every missing piece and exits with status 2; the
GeNN build itself stays outside this repository. On a GPU machine without network
access, ``benchmarks/gpu_carry.py`` gathers what to bring along (a PyGeNN wheel you
built, dependency wheels, MNIST, cuRAND's headers) and prints the one command to run
there (docs/cuda.md, "On a GPU machine").
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

EXIT_NO_CUDA = 2
PRESETS = ("mnist-400", "mnist-6400")
TEST_BATCHES = (1, 16, 64, 256)
#: issue 9's aims for genn-cuda on mnist-6400
AIM_TRAIN = 100.0
AIM_TEST = 2000.0
#: the fixed per-step cost is called "the limit" when it is at least this share of a step
LIMIT_SHARE = 0.5
EQUIVALENCE_TEST = "test_injected_spikes_give_the_same_states_weights_and_spikes"


@dataclass
class TestRun:
    """One pytest invocation: what it ran and the summary pytest printed."""

    name: str
    returncode: int
    summary: str
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.counts.get("passed", 0) > 0


@dataclass
class Throughput:
    """Samples/s of one preset on one backend; ``test`` maps batch size → samples/s."""

    preset: str
    backend: str
    train: float
    test: dict[int, float]
    step_us: float = float("nan")  # wall time per simulated step at batch 1 (testing)

    @property
    def best_batch(self) -> int:
        return max(self.test, key=self.test.get)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("gpu-check.md"),
                   help="the Markdown report (default gpu-check.md)")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), metavar="PRESET")
    p.add_argument("--batches", type=int, nargs="+", default=list(TEST_BATCHES), metavar="B",
                   help="test batch sizes (default 1 16 64 256)")
    p.add_argument("--quick", action="store_true",
                   help="fewer samples per measurement (about a third of the time)")
    p.add_argument("--slow", action="store_true",
                   help="also the statistical mnist-100 accuracy comparison (slow)")
    p.add_argument("--skip-tests", action="store_true", help="throughput only")
    p.add_argument("--data-dir", type=Path, default=ROOT / "data")
    args = p.parse_args(argv)
    if any(b < 1 for b in args.batches):
        p.error("--batches must be positive")
    return args


def cuda_problem_here() -> str | None:
    """Why genn-cuda cannot run on this machine, in one line, or None when it can: every
    missing piece (PyGeNN's CUDA backend, driver, device, toolkit, cuRAND headers) at once,
    checked before anything is built."""
    from symstdp_genn.backends.cuda_env import cuda_problem

    return cuda_problem()


def parse_pytest_summary(text: str) -> tuple[str, dict[str, int]]:
    """The last ``== 3 passed, 1 skipped in 4.2s ==`` line and its counts."""
    lines = [line.strip("= ").strip() for line in text.splitlines()
             if re.search(r"\b(passed|failed|error|errors|skipped|deselected)\b", line)
             and re.search(r"\bin [\d.]+s\b", line)]
    if not lines:
        return "(no pytest summary)", {}
    summary = lines[-1]
    counts = {word: int(n) for n, word in re.findall(
        r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", summary)}
    return summary, counts


def run_pytest(name: str, args: Sequence[str]) -> TestRun:
    env = dict(os.environ, SYMSTDP_GENN_TEST_BACKEND="genn-cuda",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                         os.environ.get("PYTHONPATH")])))
    tic = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False)
    summary, counts = parse_pytest_summary(res.stdout + res.stderr)
    return TestRun(name, res.returncode, summary, time.perf_counter() - tic, counts)


def run_tests(slow: bool) -> list[TestRun]:
    marks = "genn" if slow else "genn and not slow"
    return [
        run_pytest("genn tests on genn-cuda", ["tests/test_genn.py", "-m", marks]),
        run_pytest("exact equivalence on injected spikes (genn-cuda vs builtin)",
                   [f"tests/test_genn.py::{EQUIVALENCE_TEST}"]),
    ]


def measure_throughput(presets: Sequence[str], batches: Sequence[int], quick: bool,
                       data_dir: Path) -> list[Throughput]:
    from backends import train_rate
    from speed import test_speed

    from symstdp_genn.config import load_config
    from symstdp_genn.data import load_dataset

    data = load_dataset("mnist", data_dir)
    rows = []
    for preset in presets:
        n_hidden = load_config(preset).network.n_hidden
        n_train = (100 if quick else 300) if n_hidden > 1600 else (200 if quick else 1000)
        n_test = max(max(batches) * (2 if quick else 4), 256 if quick else 1000)
        for backend, backend_batches in (("genn-cuda", batches), ("builtin", (1, 8))):
            trained = train_rate(preset, backend, None, n_train, data)
            state = trained["state"]
            tests = {b: test_speed(preset, min(n_test, 10000), b, data, state, backend)
                     for b in backend_batches}
            row = Throughput(preset, backend, float(trained["samples_per_s"]), tests)
            if backend == "genn-cuda":
                row.step_us = step_cost_us(preset, state)
            rows.append(row)
            print(f"{preset} {backend}: train {row.train:.1f}/s, test "
                  + ", ".join(f"batch {b}: {r:.0f}/s" for b, r in tests.items()), flush=True)
    return rows


def step_cost_us(preset: str, state: dict | None = None, steps: int = 2000) -> float:
    """Wall time of one simulated step (µs) of ``preset`` on genn-cuda at batch 1, input on."""
    from symstdp_genn.backends import create_backend
    from symstdp_genn.config import load_config
    from symstdp_genn.network import INPUT, build_network

    sets = ["network.n_hidden=10", "network.norm_hidden_to_output=8"] if state is None else []
    config = load_config(preset, overrides=sets)
    backend = create_backend("genn-cuda", build_network(config), batch_size=1, seed=1)
    if state is not None:
        backend.set_state({k: v for k, v in state.items() if k in set(backend.state_keys())})
    backend.set_var(INPUT, "rate", 20.0)
    backend.run(100)  # warm-up
    tic = time.perf_counter()
    backend.run(steps)
    return 1e6 * (time.perf_counter() - tic) / steps


def machine_lines() -> list[str]:
    lines = [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
             f"- host: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPU cores, "
             f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
             f"- Python {platform.python_version()}"]
    try:
        import pygenn

        lines.append(f"- PyGeNN {getattr(pygenn, '__version__', '?')}, "
                     f"CUDA_PATH={os.environ.get('CUDA_PATH', '')}")
    except ImportError:
        lines.append("- PyGeNN: not importable")
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        gpu = ""
    lines.append(f"- GPU: {gpu or 'nvidia-smi unavailable'}")
    return lines


def render_report(machine: Sequence[str], tests: Sequence[TestRun],
                  rows: Sequence[Throughput], floor_us: float | None,
                  errors: Sequence[str] = ()) -> str:
    """The Markdown report from measured numbers (no measuring here, so it can be tested)."""
    out = ["# GeNN CUDA check", "", *machine, ""]
    if errors:
        out += ["## Errors", "", *(f"- {e}" for e in errors), ""]
    if tests:
        out += ["## Tests", "", "| check | result | summary | time (s) |",
                "| --- | --- | --- | --- |"]
        out += [f"| {t.name} | {'PASS' if t.ok else 'FAIL'} | {t.summary} | {t.seconds:.0f} |"
                for t in tests]
        out.append("")
    if rows:
        batches = sorted({b for r in rows for b in r.test})
        out += ["## Throughput", "",
                "Training at batch 1 (plasticity on, normalisation before every presentation, "
                "the retry rule); testing with plasticity off at each batch size.", "",
                "| preset | backend | train samples/s | "
                + " | ".join(f"test b={b}" for b in batches) + " | best test | × builtin |",
                "| --- | --- | --- | " + "--- | " * len(batches) + "--- | --- |"]
        builtin = {r.preset: r for r in rows if r.backend == "builtin"}
        for r in rows:
            base = builtin.get(r.preset)
            ratio = (f"{r.test[r.best_batch] / base.test[base.best_batch]:.1f}" if base
                     else "n/a")
            cells = " | ".join(f"{r.test[b]:.0f}" if b in r.test else "" for b in batches)
            out.append(f"| {r.preset} | {r.backend} | {r.train:.1f} | {cells} | "
                       f"{r.test[r.best_batch]:.0f} (b={r.best_batch}) | {ratio} |")
        out.append("")
        cuda = {r.preset: r for r in rows if r.backend == "genn-cuda"}
        big = cuda.get("mnist-6400")
        if big is not None:
            best = big.test[big.best_batch]
            out += ["## Aims (issue 9, mnist-6400 on genn-cuda)", "",
                    f"- training: {big.train:.1f} samples/s (aim ≥ {AIM_TRAIN:.0f}): "
                    f"{'met' if big.train >= AIM_TRAIN else 'not met'}",
                    f"- testing: {best:.0f} samples/s at batch {big.best_batch} "
                    f"(aim ≥ {AIM_TEST:.0f}): {'met' if best >= AIM_TEST else 'not met'}", ""]
        if floor_us is not None and cuda:
            out += ["## Per-step cost", "",
                    f"Fixed cost of one step (Python → GeNN `step_time` call and kernel "
                    f"launches, 10-neuron network, batch 1): {floor_us:.1f} µs.", ""]
            for r in cuda.values():
                if r.step_us == r.step_us:  # not NaN
                    share = floor_us / r.step_us
                    verdict = ("the per-step call is the limit" if share >= LIMIT_SHARE
                               else "the simulation itself dominates")
                    out.append(f"- {r.preset}: {r.step_us:.1f} µs per step at batch 1; fixed "
                               f"cost {100 * share:.0f} % of it ({verdict})")
            out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problem = cuda_problem_here()
    if problem is not None:
        print(f"error: no CUDA here: {problem}", file=sys.stderr)
        return EXIT_NO_CUDA
    tests = [] if args.skip_tests else run_tests(args.slow)
    for t in tests:
        print(f"{t.name}: {'PASS' if t.ok else 'FAIL'} ({t.summary})", flush=True)
    rows: list[Throughput] = []
    floor, errors = None, []
    try:  # a failed measurement still leaves a report with the tests' results
        rows = measure_throughput(args.presets, args.batches, args.quick, args.data_dir)
        floor = step_cost_us(args.presets[0])
    except Exception as exc:  # reported in the report, not hidden
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        errors.append(f"throughput measurement failed: {type(exc).__name__}: {first}")
        print(errors[-1], file=sys.stderr)
    report = render_report(machine_lines(), tests, rows, floor, errors)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(report + "\n")
    os.replace(tmp, args.out)
    print(f"report written to {args.out}")
    return 0 if all(t.ok for t in tests) and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
