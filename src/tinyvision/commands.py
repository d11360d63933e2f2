"""The command handlers behind `tinyvision ...`; each returns an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tinyvision.errors import UserError


def _console():
    from rich.console import Console

    # Piped output (scripts, CI logs) gets wide lines instead of rich's 80-column wrap.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def list_presets(args: argparse.Namespace) -> int:
    from tinyvision.presets import all_presets

    presets = all_presets()
    width = max(len(n) for n in presets)
    for name, preset in presets.items():
        print(f"{name:<{width}}  {preset.description}")
    return 0


def list_keys(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from tinyvision.config import Config

    cfg = Config()
    for section in ("data", "model", "optim", "schedule", "train"):
        part = getattr(cfg, section)
        for f in fields(part):
            print(f"{section}.{f.name}={getattr(part, f.name)}")
    return 0


def run(args: argparse.Namespace) -> int:
    from tinyvision.presets import build_config
    from tinyvision.runs.runner import run as run_experiment

    cfg = build_config(args.preset, args.overrides)
    path, summary = run_experiment(cfg, Path(args.out), args.device, args.quiet)
    return _ended(path, summary)


def _ended(path: Path, summary: dict) -> int:
    """The result lines, and the exit code of the run's status (README: exit codes)."""
    from tinyvision.runs.runner import EXIT_CODES

    _print_result(summary)
    print(f"run: {path}")
    if summary["status"] == "diverged":
        print(
            "tinyvision: the run diverged (its loss is not finite): lower optim.lr", file=sys.stderr
        )
    return EXIT_CODES.get(summary["status"], 1)


def _print_result(summary: dict) -> None:
    final = summary.get("final") or {}
    print(
        f"{summary['status']}: {summary['epochs_done']} epochs, "
        f"test accuracy {final.get('test_acc', float('nan')):.2f}% "
        f"(best {summary.get('best_test_acc') or float('nan'):.2f}% at epoch "
        f"{summary.get('best_epoch')}), {summary['seconds']:.1f}s"
    )


def resume(args: argparse.Namespace) -> int:
    from tinyvision.runs.runner import resume as resume_run

    path, summary = resume_run(args.run_folder, args.device, args.quiet)
    return _ended(path, summary)


def sweep(args: argparse.Namespace) -> int:
    from tinyvision.runs.sweep import run_sweep

    folder = run_sweep(args.preset, args.grid, _options(args))
    print(f"sweep: {folder}")
    return 0


def _options(args: argparse.Namespace):
    from tinyvision.runs.sweep import Options

    return Options(args.seeds, args.jobs, Path(args.out), args.device, args.quiet)


def runs(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tinyvision.runs import index

    if args.runs_command == "ls":
        rows = index.rows(Path(args.out))
        if not rows:
            print(f"no runs recorded under {args.out}")
            return 0
        table = Table("run", "status", "dataset", "model", "epochs", "best test", "final test", "s")
        for r in rows:
            table.add_row(
                r["run_id"],
                r["status"],
                r["dataset"],
                r["model"],
                f"{r['epochs_done']}/{r['epochs']}",
                _pct(r["best_test_acc"]),
                _pct(r["final_test_acc"]),
                f"{r['seconds'] or 0:.0f}",
            )
        _console().print(table)
        return 0
    return show_run(args.run)


def _pct(value) -> str:
    return "" if value is None else f"{value:.2f}%"


def show_run(path: Path) -> int:
    from rich.table import Table

    from tinyvision.io import read_csv
    from tinyvision.runs.folder import METRICS, RunFolder, read_summary

    summary = read_summary(path)
    if summary is None:
        raise UserError(f"{path}: not a run folder (no readable summary.json)")
    config = RunFolder(path, path.parent).config()
    console = _console()
    console.print(f"[bold]{path}[/]  preset {config.get('preset')}  status {summary['status']}")
    if config.get("overrides"):
        console.print("overrides: " + " ".join(config["overrides"]))
    console.print(
        f"params {summary.get('params'):,}  device {summary.get('device')}  "
        f"{summary['seconds']:.1f}s  best test {_pct(summary.get('best_test_acc'))} "
        f"at epoch {summary.get('best_epoch')}"
    )
    if (path / METRICS).is_file():
        rows = read_csv(path / METRICS)
        table = Table("epoch", "train loss", "train acc", "test loss", "test acc", "lr", "s")
        for r in rows:
            table.add_row(
                r["epoch"],
                f"{float(r['train_loss']):.4f}",
                f"{float(r['train_acc']):.2f}",
                f"{float(r['test_loss']):.4f}",
                f"{float(r['test_acc']):.2f}",
                f"{float(r['lr']):.4g}",
                f"{float(r['epoch_seconds']):.1f}",
            )
        console.print(table)
    return 0


def data(args: argparse.Namespace) -> int:
    from tinyvision.data import sources

    if args.data_command == "list":
        for name, spec in sources.FILE_DATASETS.items():
            for split in spec.splits:
                paths = sources.find_split(name, split)
                where = (
                    str(paths[0].parent)
                    if paths
                    else "missing (tinyvision data fetch " + name + ")"
                )
                print(f"{name:<14} {split:<6} {where}")
        print(f"{'circles':<14} {'both':<6} generated")
        print(f"{'digits':<14} {'both':<6} embedded in scikit-learn")
        return 0
    if args.data_command == "fetch":
        if args.name not in sources.FILE_DATASETS:
            raise UserError(
                f"{args.name}: nothing to fetch; choose one of {', '.join(sources.FILE_DATASETS)}"
            )
        try:
            folder = sources.download(args.name)
        except UserError as e:
            raise UserError(f"{e}; or {sources.where_to_put(args.name, 'train')}") from None
        print(f"fetched: {folder}")
        return 0
    return check_data(args.name)


def check_data(name: str | None) -> int:
    import numpy as np

    from tinyvision.data import sources
    from tinyvision.data.datasets import read_split

    names = [name] if name else list(sources.FILE_DATASETS)
    if name and name not in sources.FILE_DATASETS:
        if name in ("circles", "digits"):
            print(f"{name}: built in, nothing to check")
            return 0
        raise UserError(
            f"unknown dataset '{name}'; choose one of {', '.join(sources.FILE_DATASETS)}"
        )
    found_any = False
    for n in names:
        for split in sources.FILE_DATASETS[n].splits:
            paths = sources.find_split(n, split)
            if paths is None:
                print(f"{n:<14} {split:<6} missing")
                continue
            x, y = read_split(n, paths)  # raises UserError on any bad file
            found_any = True
            counts = json.dumps([int(c) for c in np.bincount(y, minlength=10)])
            print(f"{n:<14} {split:<6} ok  {len(y)} images {tuple(x.shape[1:])}  classes {counts}")
    if name and not found_any:
        raise UserError(f"{name}: no split found; {sources.where_to_put(name, 'train')}")
    return 0


def study(args: argparse.Namespace) -> int:
    from tinyvision.studies import STUDIES, run_study

    if args.name == "list":
        for name, s in STUDIES.items():
            print(f"{name:<18} {s.description} ({len(s.steps)} runs)")
        return 0
    folder = run_study(args.name, args.overrides, _options(args))
    if not args.quiet:
        print((folder / "table.md").read_text())
    print(f"study: {folder}")
    return 0


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) <= 0:
        raise UserError(f"--input {text}: expected CxHxW, for example 3x32x32")
    return shape


def summary(args: argparse.Namespace) -> int:
    from tinyvision.config import Config, apply_overrides, check_model_keys, parse_assignment
    from tinyvision.models import create_model
    from tinyvision.models.summary import format_table, summarize

    cfg = apply_overrides(Config(), [f"model.name={args.model}", *args.overrides])
    check_model_keys(cfg, [parse_assignment(a)[0] for a in args.overrides])
    cfg.validate()
    default = "3x32x32" if args.model == "cnn" else "1x28x28"
    shape = parse_shape(args.input or default)
    model = create_model(cfg.model, shape, args.classes)
    print(format_table(summarize(model, shape), shape))
    return 0


def fcconv(args: argparse.Namespace) -> int:
    from tinyvision.labs.lab1cd import show_fc_as_conv

    picture, difference, score_shape = show_fc_as_conv(args.run_folder, args.size)
    print(f"model input size: largest difference between fc and conv outputs {difference:.2e}")
    print(f"{args.size}x{args.size}: score map of shape {score_shape}")
    print(f"picture: {picture}")
    return 0


def attention(args: argparse.Namespace) -> int:
    from tinyvision.labs.lab1e import draw_vit_pictures

    if args.images < 1:
        raise UserError("--images must be at least 1")
    for path in draw_vit_pictures(args.run_folder, args.images):
        print(f"picture: {path}")
    return 0


def report(args: argparse.Namespace) -> int:
    from tinyvision.report.html import write_report

    out = Path(args.out)
    paths = args.paths or [out]
    print(f"report: {write_report(paths, out)}")
    return 0


def tour(args: argparse.Namespace) -> int:
    from tinyvision.tour import run_tour

    print(f"report: {run_tour(Path(args.out), args.quick, args.device)}")
    return 0
