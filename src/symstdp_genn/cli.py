"""Command line: ``python run.py --mode train|test|plot|data|sweep``.

Every problem a user can cause ends in one line on stderr and exit code 2;
Ctrl-C or SIGTERM during training saves a checkpoint and exits with 130. Training
itself, with everything that keeps a run folder safe, is :func:`runner.train_run`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, runner
from .api import fresh_run_dir, train
from .backends import backend_for
from .config import (
    BACKENDS,
    DEFAULT_PRESET,
    Config,
    apply_overrides,
    config_from_dict,
    list_presets,
    load_config,
)
from .data import DATASETS, default_data_dir, ensure_dataset
from .errors import UserError
from .evaluation import EvaluationResult
from .plotting import FigureReport, draw_run, draw_safely
from .progress import ConsoleFilter, ConsoleFormatter
from .selection import BEST_FILE, selection_label
from .sweep import SweepSpec, load_sweep
from .tester import prepare_evaluation
from .training import TrainingOutcome, sigterm_as_interrupt
from .training.stop import Interrupted

log = logging.getLogger("symstdp_genn")

ROOT = Path.cwd()
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def program_name(argv0: str | None = None) -> str:
    """How the user started us, for usage and help: ``run.py``, ``symstdp-genn`` (the
    console script) or ``python -m symstdp_genn``; the arguments are the same."""
    name = Path(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else "")).name
    if name in ("__main__.py", "-m", "-c", ""):
        return "python -m symstdp_genn"
    return name


def build_parser(prog: str = "run.py") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Train and test the supervised sym-STDP spiking network "
                    "(Hao et al., Neural Networks 2019).",
        epilog=f"presets: {', '.join(list_presets())}")
    p.add_argument("--mode", choices=("train", "test", "plot", "data", "sweep"), default="train",
                   help="train a network, test a checkpoint, draw a run's figures, fetch "
                        "and verify a dataset, or run a sweep file's trials on Dask")
    p.add_argument("--preset", help=f"network/dataset preset (default {DEFAULT_PRESET})")
    p.add_argument("--config", type=Path, help="YAML config file (may name 'preset: NAME')")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set network.eta_input_to_hidden=0.01")
    p.add_argument("--backend", choices=BACKENDS, help="simulation backend (config key 'backend')")
    p.add_argument("--seed", type=int, help="random seed (config key 'seed')")
    p.add_argument("--threads", type=int, metavar="N", help="most CPU threads for the builtin "
                   "backend (config key 'threads'; default: every core this process may use)")
    p.add_argument("--epochs", type=int, help="training epochs (config key 'training.epochs')")
    p.add_argument("--samples", type=int, metavar="N", help="stop training after N samples")
    p.add_argument("--eval-samples", type=int, metavar="N",
                   help="evaluate on the first N test images (default: all)")
    p.add_argument("--out", type=Path, help="run folder (default models/<preset>-s<seed>/); "
                   "for --mode test: where evaluation.npz and figures/ go (default: the run "
                   "folder for a run's checkpoint.npz, else NAME-test/ beside the checkpoint)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to test (.npz, a run folder, or "
                   "a folder with the original code's gP2E, gE2C and theta files)")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="continue training from it")
    p.add_argument("--run", type=Path, metavar="FOLDER",
                   help="run folder for --mode plot (figures go to FOLDER/figures/)")
    p.add_argument("--rf-order", choices=("class", "index"), default=None,
                   help="--mode plot: receptive-field tiles grouped by assigned class "
                        "(default, when the network has assignments) or in neuron order")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset cache folder (default: $SYMSTDP_DATA, else the project's "
                        "data/ when running from a source checkout, else "
                        "~/.cache/symstdp-genn/data)")
    p.add_argument("--dataset", choices=(*DATASETS, "all"), default=None,
                   help="dataset for --mode data only (default: the config's); other modes "
                        "take the dataset from the preset or config (config key 'dataset')")
    p.add_argument("--sweep", type=Path, metavar="FILE.yaml",
                   help="sweep file for --mode sweep (see sweeps/)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="--mode sweep: a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="--mode sweep: local worker processes (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"symstdp-genn {__version__}")
    return p


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    sets = list(args.overrides)
    for flag, key in (("backend", "backend"), ("seed", "seed"), ("threads", "threads"),
                      ("epochs", "training.epochs"),
                      ("samples", "training.samples"), ("eval_samples", "evaluation.samples")):
        value = getattr(args, flag)
        if value is not None:
            sets.append(f"{key}={value}")
    return sets


def _config_for(args: argparse.Namespace, base: Config | None = None) -> Config:
    """Preset/config file/--set, or a checkpoint's config with the flags on top."""
    if base is not None and args.preset is None and args.config is None:
        return config_from_dict(apply_overrides(base.to_dict(), _flag_overrides(args)))
    return load_config(args.preset, args.config, _flag_overrides(args))


def _setup_logging(verbose: bool) -> None:
    """Warnings (debug with -v) on stderr; a training run adds its own ``log.txt``."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:  # warnings, plus the notices a user must see (progress.notice)
        console.addFilter(ConsoleFilter())
    console.setFormatter(ConsoleFormatter())
    root.addHandler(console)


def _fresh_run_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... : the first that holds no run and is not in use
    (see :func:`runner.is_run_folder`), so a default run never lands in an earlier one."""
    return fresh_run_dir(base)


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:.2f} %"


def _print_result(result: EvaluationResult, what: str) -> None:
    rate = result.summary()["samples_per_s"]
    print(f"{what}: {result.n} images in {result.seconds:.0f} s ({rate:.1f} samples/s)")
    print(f"  supervised accuracy  {_pct(result.supervised_accuracy)}"
          f"   (silent output on {_pct(result.silent_fraction)})")
    print(f"  assignment accuracy  {_pct(result.assignment_accuracy)}")


def _print_selection(outcome: TrainingOutcome, config: Config) -> None:
    """The final report: the last checkpoint and, in a selecting run, the selected one,
    both tested once on the test set, with the split that selected it named."""
    sel = outcome.selection
    if sel is not None:
        ev = config.evaluation
        label = (ev.periodic_label_samples if ev.periodic_label_samples is not None
                 else ev.assignment_samples)
        curve = sel["curve"]
        n_images = ev.periodic_samples or "all"
        print(f"periodic evaluations: {len(curve)} on the {sel['split']} "
              f"{'split' if sel['split'] == 'validation' else 'set'} ({n_images} images each, "
              f"labelled on {label} training images)")
        if sel["best_samples"] is not None:
            print(f"best {sel['readout']} score {_pct(sel['best_score'])} after "
                  f"{sel['best_samples']} samples: {selection_label(sel['split'])}")
    if outcome.final is not None:
        _print_result(outcome.final, "test" if sel is None else "test, last checkpoint")
    if outcome.best is not None:
        _print_result(outcome.best, f"test, best checkpoint ({BEST_FILE}, "
                                    f"{selection_label(sel['split'])})")


def _print_figures(report: FigureReport | None) -> None:
    if report is not None:
        print(f"figures:    {report.out_dir} ({len(report.written)} files"
              + (f", {len(report.failed)} failed" if report.failed else "") + ")")


def cmd_train(args: argparse.Namespace) -> int:
    base: Config | None = None
    if args.resume is not None:
        _, base = runner.resumable_checkpoint(args.resume)
        if args.out is None:  # refused before the announcement (train_run checks again)
            runner.check_resume_folder(args.resume, Path(args.resume).parent)
    config = _config_for(args, base)
    if args.out is not None:
        run_dir = args.out
    elif args.resume is not None:
        run_dir = Path(args.resume).parent
    else:
        run_dir = _fresh_run_dir(ROOT / "models" / f"{config.name}-s{config.seed}")
    _setup_logging(args.verbose)
    runner.check_run_dir(run_dir, args.resume)  # refuse before announcing anything
    backend = backend_for(config)
    print(f"training {config.name} ({config.network.n_hidden} hidden neurons, {config.dataset}, "
          f"{config.training.schedule} schedule) on the {backend} backend -> {run_dir}")
    outcome = train(config=config, out=run_dir, resume=args.resume, data_dir=args.data_dir,
                    progress=not args.no_progress).outcome
    assert outcome is not None
    data = f" --data-dir {shlex.quote(str(args.data_dir))}" if args.data_dir is not None else ""
    resume_hint = f"python run.py --mode train --resume {outcome.checkpoint}{data}"
    if outcome.interrupted_during == "final evaluation":
        print(f"interrupted during the final evaluation; the trained network "
              f"({outcome.samples_seen} samples) is saved in {outcome.checkpoint}\n"
              "evaluate it with: python run.py --mode test --checkpoint "
              f"{outcome.checkpoint}{data}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.interrupted:
        by = f" ({outcome.stopped_by})" if outcome.stopped_by else ""
        print(f"interrupted{by} after {outcome.samples_seen} samples; checkpoint saved to "
              f"{outcome.checkpoint}\nresume with: {resume_hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    total = (f"; {outcome.samples_seen} in total" if outcome.samples_trained
             != outcome.samples_seen else "")
    print(f"trained {outcome.samples_trained} samples in {outcome.train_seconds:.0f} s "
          f"({outcome.samples_per_s:.1f} samples/s, {outcome.presentations} presentations"
          f"{total})")
    _print_selection(outcome, config)
    print(f"checkpoint: {outcome.checkpoint}\nmetrics:    {run_dir / 'metrics.jsonl'}\n"
          f"log:        {run_dir / runner.LOG_FILE}")
    with runner.run_log(run_dir / runner.LOG_FILE):  # skipped figures are noted there
        report = draw_safely(lambda: draw_run(run_dir))
    _print_figures(report)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    if args.checkpoint is None:
        raise UserError("--mode test needs --checkpoint PATH (a checkpoint.npz written by "
                        "training, or a folder with the original gP2E, gE2C and theta files)")
    _setup_logging(args.verbose)
    prepared = prepare_evaluation(args.checkpoint, preset=args.preset, config_file=args.config,
                                  overrides=_flag_overrides(args), out=args.out,
                                  data_dir=args.data_dir)
    config = prepared.config
    if prepared.assignments is None:
        print(f"labelling hidden neurons on {prepared.n_label} training images (the checkpoint "
              "has no assignments)")
    print(f"testing {prepared.source} ({config.network.n_hidden} hidden neurons, "
          f"{config.dataset}) on the {prepared.backend} backend")
    tested = prepared.run(progress=not args.no_progress)
    assert tested.result is not None
    _print_result(tested.result, "test")
    print(f"report:     {prepared.report_dir}")
    if tested.record is not None:
        print(f"evaluation: {tested.record}")
    _print_figures(prepared.draw_figures(tested))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    if args.run is None:
        raise UserError("--mode plot needs --run FOLDER (a run folder written by training, "
                        "e.g. models/mnist-400-s1)")
    _setup_logging(args.verbose)
    if importlib.util.find_spec("matplotlib") is None:
        raise UserError("--mode plot needs matplotlib: pip install matplotlib")
    report = draw_run(args.run, rf_by_class=args.rf_order != "index")
    for message in report.skipped:
        print(f"skipped: {message}")
    # each failure was logged as a warning (stderr) where it happened
    failed = f"; {len(report.failed)} failed (see the warnings above)" if report.failed else ""
    print(f"{len(report.written)} figures written to {report.out_dir}{failed}")
    return 1 if report.failed else 0


def cmd_data(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    names = list(DATASETS) if args.dataset == "all" else [args.dataset or _config_for(args).dataset]
    folder = args.data_dir if args.data_dir is not None else default_data_dir()
    for name in names:
        tic = time.perf_counter()
        path = ensure_dataset(name, folder)
        print(f"{name}: verified (SHA-256) in {path} ({time.perf_counter() - tic:.1f} s)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.sweep is None:
        raise UserError("--mode sweep needs --sweep FILE.yaml (examples in sweeps/)")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    spec = load_sweep(args.sweep)  # the whole file is checked before Dask is needed
    if importlib.util.find_spec("distributed") is None:
        raise UserError('--mode sweep needs Dask distributed: pip install -e ".[sweep]"')
    _setup_logging(args.verbose)
    sweep_log = logging.getLogger("symstdp_genn.sweep")
    shown = logging.StreamHandler(sys.stderr)  # progress lines, also without --verbose
    shown.setFormatter(logging.Formatter("%(message)s"))
    shown.addFilter(lambda record: record.levelno == logging.INFO)
    level = sweep_log.level
    if not args.verbose:
        sweep_log.addHandler(shown)
        sweep_log.setLevel(logging.INFO)
    try:
        return _run_sweep(args, spec)
    finally:
        sweep_log.removeHandler(shown)
        sweep_log.setLevel(level)


def _run_sweep(args: argparse.Namespace, spec: SweepSpec) -> int:
    from .sweep.engine import run_sweep  # needs the [sweep] extra

    out = args.out if args.out is not None else ROOT / "models" / f"sweep-{spec.name}"
    where = args.scheduler or f"a local cluster of {args.workers or os.cpu_count()} workers"
    split = "TEST SET" if spec.split == "test" else "validation split"
    print(f"sweep {spec.name}: {len(spec.trials)} trials ({split}) on {where} -> {out}")

    with sigterm_as_interrupt():  # kill or a batch system: as Ctrl-C
        report = run_sweep(spec, out, scheduler=args.scheduler, workers=args.workers,
                           data_dir=args.data_dir,
                           show_progress=False if args.no_progress else None)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    print(f"{report.ran} trials run now, {report.skipped} finished before; {counts}")
    if report.files is not None:
        for path in report.files.written:
            print(f"  {path}")
    if report.interrupted:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if report.counts.get("failed") else 0


def _refuse_misplaced_flags(args: argparse.Namespace) -> None:
    """Flags that the chosen mode would silently ignore are refused instead."""
    if args.dataset is not None and args.mode != "data":
        raise UserError(f"--dataset applies to --mode data only; for --mode {args.mode} the "
                        "dataset comes from the preset or config: choose a preset (e.g. "
                        "--preset fashion-400) or --set dataset=NAME")
    if args.rf_order is not None and args.mode != "plot":
        raise UserError(f"--rf-order applies to --mode plot only (--mode {args.mode} draws "
                        "tiles grouped by class); redraw with --mode plot --run FOLDER "
                        "--rf-order index")


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, except that ``--set key value`` (a space for the ``=``), which
    argparse reports as "unrecognized arguments: value", is told how to write it."""
    args, extra = parser.parse_known_args(argv)
    spaced = [text for text in args.overrides if "=" not in text]
    if spaced:
        value = extra[0] if extra else "VALUE"
        parser.exit(2, f"error: --set takes KEY=VALUE as one argument; write --set "
                       f"{spaced[0]}={value} (see {parser.prog} --help)\n")
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_arguments(build_parser(prog or program_name()), argv)
    try:
        with sigterm_as_interrupt():  # kill, a batch system, a closed terminal: as Ctrl-C
            return _dispatch(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        by = f" ({exc.signal_name})" if isinstance(exc, Interrupted) else ""
        print(f"interrupted{by}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    _refuse_misplaced_flags(args)
    if args.mode == "train":
        return cmd_train(args)
    if args.mode == "test":
        return cmd_test(args)
    if args.mode == "plot":
        return cmd_plot(args)
    if args.mode == "sweep":
        return cmd_sweep(args)
    return cmd_data(args)
