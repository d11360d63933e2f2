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
    # No markup or emoji codes: what is printed comes from the records and is shown as is.
    width = None if sys.stdout.isatty() else 200
    return Console(highlight=False, markup=False, emoji=False, width=width)


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

    preset, overrides = args.preset, args.overrides
    if preset.endswith(".json"):  # a search's best.json: its preset and overrides
        from tinyvision.runs.search import read_recipe

        preset, recipe = read_recipe(Path(preset))
        overrides = [*recipe, *overrides]
    cfg = build_config(preset, overrides)  # a typo is reported before torch loads (4 s)
    from tinyvision.runs.runner import run as run_experiment

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
    from tinyvision.runs.folder import check_resumable

    check_resumable(args.run_folder)  # a wrong folder is reported before torch loads (4 s)
    from tinyvision.runs.runner import resume as resume_run

    path, summary = resume_run(args.run_folder, args.device, args.quiet)
    return _ended(path, summary)


def sweep(args: argparse.Namespace) -> int:
    from tinyvision.runs.sweep import run_sweep

    folder = run_sweep(args.preset, args.grid, _options(args))
    print(f"sweep: {folder}")
    return 0


def search(args: argparse.Namespace) -> int:
    from tinyvision.runs.search import run_search

    folder = run_search(
        args.preset,
        args.space,
        args.trials,
        _options(args),
        prune=args.prune,
        seed=args.sampler_seed,
    )
    print(f"search: {folder}")
    best = folder / "best.json"
    if best.is_file():
        print(f"best: tinyvision run {best}")
    return 0


def _options(args: argparse.Namespace):
    from tinyvision.runs.sweep import Options

    return Options(
        getattr(args, "seeds", 1),
        args.jobs,
        Path(args.out),
        args.device,
        args.quiet,
        executor=args.executor,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        address=args.address,
    )


def runs(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tinyvision.runs import index

    if args.runs_command == "ls":
        rows = index.rows(Path(args.out))
        if not rows:
            print(f"no runs recorded under {args.out}")
            return 0
        table = Table("run", "status", "dataset", "model", "epochs", "best test", "final test", "s")
        for r in rows:  # any cell may hold anything: the index is a file like any other
            epochs = f"{_literal(r.get('epochs_done'))}/{_literal(r.get('epochs'))}"
            cells = (
                r.get("run_id"),
                _status(r),
                r.get("dataset"),
                r.get("model"),
                epochs,
                _pct(r.get("best_test_acc")),
                _pct(r.get("final_test_acc")),
                _number(r.get("seconds") or 0, ".0f"),
            )
            table.add_row(*(_text(c) for c in cells))
        _console().print(table)
        return 0
    return show_run(args.run)


def _status(row: dict):
    """`running` only while a process holds the run's lock; else it died: `dead`."""
    from tinyvision.runs.folder import is_alive

    status, path = row.get("status"), row.get("path")
    if status == "running" and isinstance(path, str) and not is_alive(Path(path)):
        return "dead (tinyvision resume it)"
    return status


def _literal(value) -> str:
    """A value from the records as one line of text, control characters made visible."""
    from tinyvision.records_read import printable

    return "" if value is None else printable(value)


def _text(value):
    """Shown exactly as it is: never read as rich markup (`[/]` in a preset is text)."""
    from rich.text import Text

    return Text(_literal(value))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value, spec: str) -> str:
    """A recorded number formatted; anything else shown as the text it is."""
    if _is_number(value):
        try:
            return format(value, spec)
        except (ValueError, OverflowError):  # an int too large for a float format
            pass
    return "?" if value is None else _literal(value)


def _pct(value) -> str:
    if value is None:
        return ""
    return _number(value, ".2f") + ("%" if _is_number(value) else "")


SHOWN_METRICS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "lr",
    "epoch_seconds",
)


def show_run(path: Path) -> int:
    """Everything is read and checked first: a damaged file is one line, not half a page."""
    import os

    from rich.table import Table
    from rich.text import Text

    from tinyvision.records_read import read_csv_rows, read_json_object
    from tinyvision.runs.folder import CONFIG, METRICS, SUMMARY

    if not path.is_dir() or not os.path.lexists(path / SUMMARY):
        raise UserError(f"{path}: not a run folder (it has no {SUMMARY}; `runs ls` lists them)")
    summary = read_json_object(path / SUMMARY)
    config = read_json_object(path / CONFIG)
    metrics = None
    if os.path.lexists(path / METRICS):
        metrics = _metric_rows(path / METRICS, read_csv_rows(path / METRICS, SHOWN_METRICS))
    overrides = config.get("overrides")
    if isinstance(overrides, list):
        overrides = " ".join(_literal(o) for o in overrides)
    lines = [
        Text.assemble(
            (_literal(path), "bold"),
            f"  preset {_literal(config.get('preset'))}  status {_literal(summary.get('status'))}",
        ),
        _text(f"overrides: {_literal(overrides)}") if overrides else None,
        _text(
            f"params {_number(summary.get('params'), ',')}  "
            f"device {_literal(summary.get('device'))}  "
            f"{_number(summary.get('seconds'), '.1f')}s  "
            f"best test {_pct(summary.get('best_test_acc'))} "
            f"at epoch {_literal(summary.get('best_epoch'))}"
        ),
    ]
    console = _console()
    for line in lines:
        if line is not None:
            console.print(line)
    if metrics is not None:
        table = Table("epoch", "train loss", "train acc", "test loss", "test acc", "lr", "s")
        for cells in metrics:
            table.add_row(*(_text(c) for c in cells))
        console.print(table)
    return 0


def _metric_rows(path: Path, rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """metrics.csv as table cells; a cell that is not a number names the file and line."""
    from tinyvision.records_read import number

    spec = {
        "train_loss": ".4f",
        "train_acc": ".2f",
        "test_loss": ".4f",
        "test_acc": ".2f",
        "lr": ".4g",
        "epoch_seconds": ".1f",
    }
    cells = []
    for line, r in enumerate(rows, start=2):  # line 1 is the header
        values = {c: number(path, line, r, c) for c in spec}
        shown = ("" if v is None else format(v, spec[c]) for c, v in values.items())
        cells.append((_literal(r["epoch"]), *shown))
    return cells


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
    from tinyvision.data import sources

    names = [name] if name else list(sources.FILE_DATASETS)
    if name and name not in sources.FILE_DATASETS:
        if name in ("circles", "digits"):
            print(f"{name}: built in, nothing to check")
            return 0
        raise UserError(
            f"unknown dataset '{name}'; choose one of {', '.join(sources.FILE_DATASETS)}"
        )
    import numpy as np  # the readers, only once there is something to read

    from tinyvision.data.datasets import read_split

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


def predict(args: argparse.Namespace) -> int:
    from tinyvision.runs.predict import predict as classify

    if args.top < 1:
        raise UserError(f"--top {args.top}: show at least 1 class")
    invert = not getattr(args, "no_invert", False)
    predictions = classify(args.run_folder, args.images, args.top, invert=invert)
    if args.json:
        shown = [
            {
                "image": str(p.image),
                "top": [
                    {"class": g.name, "index": g.index, "probability": g.probability} for g in p.top
                ],
                "inverted": p.inverted,
                "note": p.note or None,
                "warning": p.warning or None,
            }
            for p in predictions
        ]
        print(json.dumps({"run": str(args.run_folder), "predictions": shown}, indent=2))
        return 0
    for p in predictions:
        print(p.image)
        if p.note:
            print(f"  note: {p.note}")
        if p.warning:
            print(f"  warning: {p.warning}")
        width = max(len(g.name) for g in p.top)
        for g in p.top:
            print(f"  {g.name:<{width}}  {100 * g.probability:6.2f}%")
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
