"""Command line: ``python run.py --mode train|test|plot|data|sweep``.

Every problem a user can cause ends in one line on stderr and exit code 2;
Ctrl-C during training saves a checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from .backends import resolve
from .checkpoint import Checkpoint, check_size, load_checkpoint
from .config import (
    BACKENDS,
    DEFAULT_PRESET,
    Config,
    apply_overrides,
    config_from_dict,
    list_presets,
    load_config,
)
from .data import DATASETS, Dataset, ensure_dataset, load_dataset, validation_split
from .errors import UserError
from .evaluation import EVALUATION_FILE, SILENT, EvaluationResult
from .evaluator import Evaluator, save_record
from .network import build_network
from .plotting import FIGURES_DIR, FigureReport, draw_figures, draw_run, draw_safely
from .sweep import SweepSpec, load_sweep
from .training import DRIVER_PREFIX, Trainer

log = logging.getLogger("symstdp_genn")

ROOT = Path.cwd()
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see python run.py --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="run.py",
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
    p.add_argument("--epochs", type=int, help="training epochs (config key 'training.epochs')")
    p.add_argument("--samples", type=int, metavar="N", help="stop training after N samples")
    p.add_argument("--eval-samples", type=int, metavar="N",
                   help="evaluate on the first N test images (default: all)")
    p.add_argument("--out", type=Path, help="run folder (default models/<preset>-s<seed>/); "
                   "for --mode test: where evaluation.npz and figures/ go (default: the run "
                   "folder for a run's checkpoint.npz, else NAME-test/ beside the checkpoint)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to test (.npz, or a folder with "
                   "the original code's gP2E, gE2C and theta files)")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="continue training from it")
    p.add_argument("--run", type=Path, metavar="FOLDER",
                   help="run folder for --mode plot (figures go to FOLDER/figures/)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset cache folder (default ./data)")
    p.add_argument("--dataset", choices=(*DATASETS, "all"), default=None,
                   help="dataset for --mode data (default: the config's)")
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
    for flag, key in (("backend", "backend"), ("seed", "seed"), ("epochs", "training.epochs"),
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


def _setup_logging(verbose: bool, log_file: Path | None = None) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


def _load_data(config: Config, data_dir: Path | None) -> Dataset:
    folder = data_dir if data_dir is not None else ROOT / "data"
    dataset = load_dataset(config.dataset, folder)
    if config.training.validation:
        dataset = validation_split(dataset)
        log.info("validation mode: training on 50000 images, evaluating on the last 10000 "
                 "training images (the test set is not touched)")
    return dataset


def _fresh_run_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... : never overwrite an earlier run's checkpoint."""
    if not (base / "checkpoint.npz").exists():
        return base
    k = 2
    while (base.parent / f"{base.name}-{k}" / "checkpoint.npz").exists():
        k += 1
    return base.parent / f"{base.name}-{k}"


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:.2f} %"


def _print_result(result: EvaluationResult, what: str) -> None:
    rate = result.summary()["samples_per_s"]
    print(f"{what}: {result.n} images in {result.seconds:.0f} s ({rate:.1f} samples/s)")
    print(f"  supervised accuracy  {_pct(result.supervised_accuracy)}"
          f"   (silent output on {_pct(result.silent_fraction)})")
    print(f"  assignment accuracy  {_pct(result.assignment_accuracy)}")


def _print_figures(report: FigureReport | None) -> None:
    if report is not None:
        print(f"figures:    {report.out_dir} ({len(report.written)} files"
              + (f", {len(report.failed)} failed" if report.failed else "") + ")")


def cmd_train(args: argparse.Namespace) -> int:
    resume: Checkpoint | None = None
    base: Config | None = None
    if args.resume is not None:
        resume = load_checkpoint(args.resume)
        data = resume.meta.get("config")
        if not isinstance(data, dict):
            raise UserError(f"{args.resume} holds no training config and cannot be resumed; "
                            "train a new network instead")
        if resume.meta.get("snapshot"):
            raise UserError(f"{args.resume} is a weights-only snapshot; resume from the run's "
                            "checkpoint.npz (snapshots can be tested, not resumed)")
        base = config_from_dict(data)
    config = _config_for(args, base)
    if resume is not None:
        check_size(resume, config.network.n_hidden, str(args.resume))
    if args.out is not None:
        run_dir = args.out
    elif resume is not None:
        run_dir = Path(args.resume).parent
    else:
        run_dir = _fresh_run_dir(ROOT / "models" / f"{config.name}-s{config.seed}")
    _setup_logging(args.verbose, run_dir / "log.txt")
    backend = resolve(config.backend)
    log.info("symstdp-genn %s: training %s on %s with the %s backend, seed %d, into %s",
             __version__, config.name, config.dataset, backend, config.seed, run_dir)
    dataset = _load_data(config, args.data_dir)
    print(f"training {config.name} ({config.network.n_hidden} hidden neurons, {config.dataset}, "
          f"{config.training.schedule} schedule) on the {backend} backend -> {run_dir}")
    trainer = Trainer(config, dataset, run_dir, resume, str(args.resume or ""))
    outcome = trainer.train(show_progress=not args.no_progress)
    if outcome.interrupted:
        print(f"interrupted after {outcome.samples_seen} samples; checkpoint saved to "
              f"{outcome.checkpoint}\nresume with: python run.py --mode train --resume "
              f"{outcome.checkpoint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"trained {outcome.samples_seen} samples in {outcome.train_seconds:.0f} s "
          f"({outcome.samples_per_s:.1f} samples/s, {outcome.presentations} presentations)")
    if outcome.final is not None:
        what = "validation" if config.training.validation else "test"
        _print_result(outcome.final, what)
    print(f"checkpoint: {outcome.checkpoint}\nmetrics:    {run_dir / 'metrics.jsonl'}\n"
          f"log:        {run_dir / 'log.txt'}")
    _print_figures(draw_safely(lambda: draw_run(run_dir)))
    return 0


def _config_for_imported(args: argparse.Namespace, ckpt: Checkpoint) -> Config:
    preset = args.preset
    if preset is None and args.config is None:
        preset = f"mnist-{ckpt.n_hidden}"
        if preset not in list_presets():
            raise UserError(f"no preset for an original checkpoint with {ckpt.n_hidden} hidden "
                            "neurons; pass --preset or --config")
    return load_config(preset, args.config, _flag_overrides(args))


def cmd_test(args: argparse.Namespace) -> int:
    if args.checkpoint is None:
        raise UserError("--mode test needs --checkpoint PATH (a checkpoint.npz written by "
                        "training, or a folder with the original gP2E, gE2C and theta files)")
    _setup_logging(args.verbose)
    ckpt = load_checkpoint(args.checkpoint)
    data = ckpt.meta.get("config")
    config = (_config_for(args, config_from_dict(data)) if isinstance(data, dict)
              else _config_for_imported(args, ckpt))
    check_size(ckpt, config.network.n_hidden, str(args.checkpoint))
    dataset = _load_data(config, args.data_dir)
    spec = build_network(config)
    backend = resolve(config.backend)
    evaluator = Evaluator(config, spec, backend)
    state = {k: v for k, v in ckpt.arrays.items() if not k.startswith(DRIVER_PREFIX)}
    assignments = ckpt.arrays.get("assignments")
    if assignments is not None and np.all(assignments == SILENT):
        assignments = None
    n_label = min(config.evaluation.assignment_samples, len(dataset.train_images))
    if assignments is None:
        print(f"labelling hidden neurons on {n_label} training images (the checkpoint has no "
              "assignments)")
    n_test = min(config.evaluation.samples or len(dataset.test_images), len(dataset.test_images))
    print(f"testing {args.checkpoint} ({config.network.n_hidden} hidden neurons, "
          f"{config.dataset}) on the {backend} backend")
    _, result = evaluator.label_and_test(state, dataset, n_label, n_test,
                                         show=not args.no_progress, assignments=assignments)
    _print_result(result, "validation" if config.training.validation else "test")
    path = Path(args.checkpoint)
    folder = path if path.is_dir() else path.parent
    # a run's own checkpoint reports into its run folder; any other file (a shipped
    # network, a snapshot) into '<name>-test/' beside it, so reports never collide
    default_out = folder if path.is_dir() or path.name == "checkpoint.npz" else (
        folder / f"{path.stem}-test")
    out = args.out if args.out is not None else default_out
    record = save_record(out / EVALUATION_FILE, result, config, tag="test",
                         samples_seen=ckpt.meta.get("driver", {}).get("samples_seen"),
                         labelled=0 if assignments is not None else n_label,
                         checkpoint=str(args.checkpoint))
    if record is not None:
        print(f"evaluation: {record}")
    metrics = folder / "metrics.jsonl"
    _print_figures(draw_safely(lambda: draw_figures(
        out / FIGURES_DIR, ckpt, config=config, record=result.record,
        metrics=metrics if metrics.is_file() else None)))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    if args.run is None:
        raise UserError("--mode plot needs --run FOLDER (a run folder written by training, "
                        "e.g. models/mnist-400-s1)")
    _setup_logging(args.verbose)
    if importlib.util.find_spec("matplotlib") is None:
        raise UserError("--mode plot needs matplotlib: pip install matplotlib")
    report = draw_run(args.run)
    for message in report.skipped:
        print(f"skipped: {message}")
    # each failure was logged as a warning (stderr) where it happened
    failed = f"; {len(report.failed)} failed (see the warnings above)" if report.failed else ""
    print(f"{len(report.written)} figures written to {report.out_dir}{failed}")
    return 1 if report.failed else 0


def cmd_data(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    names = list(DATASETS) if args.dataset == "all" else [args.dataset or _config_for(args).dataset]
    folder = args.data_dir if args.data_dir is not None else ROOT / "data"
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

    def stop(signum: int, frame: object) -> None:  # SIGTERM (kill, a batch system): as Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        report = run_sweep(spec, out, scheduler=args.scheduler, workers=args.workers,
                           data_dir=args.data_dir,
                           show_progress=False if args.no_progress else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    print(f"{report.ran} trials run now, {report.skipped} finished before; {counts}")
    if report.files is not None:
        for path in report.files.written:
            print(f"  {path}")
    if report.interrupted:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if report.counts.get("failed") else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.mode == "train":
            return cmd_train(args)
        if args.mode == "test":
            return cmd_test(args)
        if args.mode == "plot":
            return cmd_plot(args)
        if args.mode == "sweep":
            return cmd_sweep(args)
        return cmd_data(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
