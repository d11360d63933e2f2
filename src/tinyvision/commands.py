"""The command handlers behind `tinyvision ...`: each calls the Python API
(`tinyvision.api`, the only way into the engine), prints, and returns an exit code."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tinyvision import api
from tinyvision.errors import UserError

EXIT_INTERRUPTED = api.EXIT_CODES["interrupted"]


def _console():
    from rich.console import Console

    # Piped output (scripts, CI logs) gets wide lines instead of rich's 80-column wrap.
    # No markup or emoji codes: what is printed comes from the records and is shown as is.
    width = None if sys.stdout.isatty() else 200
    return Console(highlight=False, markup=False, emoji=False, width=width)


def list_presets(args: argparse.Namespace) -> int:
    presets = api.presets()
    width = max(len(n) for n in presets)
    for name, description in presets.items():
        print(f"{name:<{width}}  {description}")
    return 0


def list_keys(args: argparse.Namespace) -> int:
    for key, default in api.config_keys():
        print(f"{key}={default}")
    return 0


def _machine(args: argparse.Namespace) -> dict:
    """Where runs train and what they print, as the API's keywords."""
    return {"device": args.device, "quiet": args.quiet, "data_dir": args.data_dir}


def run(args: argparse.Namespace) -> int:
    done = api.run(args.preset, args.overrides, out=args.out, **_machine(args))
    return _ended(done.path, done.summary)


def _ended(path: Path, summary: dict) -> int:
    """The result lines, and the exit code of the run's status (docs/commands.md: exit codes)."""
    _print_result(summary)
    print(f"run: {path}")
    if summary["status"] == "diverged":
        print(
            "tinyvision: the run diverged (its loss is not finite): lower optim.lr", file=sys.stderr
        )
    return api.exit_code(summary["status"])


def _print_result(summary: dict) -> None:
    final = summary.get("final") or {}
    print(
        f"{summary['status']}: {summary['epochs_done']} epochs, "
        f"test accuracy {final.get('test_acc', float('nan')):.2f}% "
        f"(best {summary.get('best_test_acc') or float('nan'):.2f}% at epoch "
        f"{summary.get('best_epoch')}), {summary['seconds']:.1f}s"
    )


def resume(args: argparse.Namespace) -> int:
    done = api.resume(args.run_folder, **_machine(args))
    return _ended(done.path, done.summary)


def sweep(args: argparse.Namespace) -> int:
    folder = api.sweep(args.preset, args.grid, **_group(args)).path
    print(f"sweep: {folder}")
    return 0


def search(args: argparse.Namespace) -> int:
    done = api.search(
        args.preset,
        args.space,
        trials=args.trials,
        prune=args.prune,
        sampler_seed=args.sampler_seed,
        **_group(args),
    )
    print(f"search: {done.path}")
    best = done.path / "best.json"
    if best.is_file():
        print(f"best: tinyvision run {best}")
    return 0


def _group(args: argparse.Namespace) -> dict:
    """The command line's options of a sweep, study or search, as the API's keywords."""
    seeds = {"seeds": args.seeds} if hasattr(args, "seeds") else {}
    return {
        **seeds,
        **_machine(args),
        "jobs": args.jobs,
        "out": args.out,
        "executor": args.executor,
        "cpus_per_run": args.cpus_per_run,
        "gpus_per_run": args.gpus_per_run,
        "address": args.address,
    }


def runs(args: argparse.Namespace) -> int:
    from rich.table import Table

    if args.runs_command == "ls":
        rows = api.index_rows(args.out)
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
    status, path = row.get("status"), row.get("path")
    if status == "running" and isinstance(path, str) and not api.is_running(path):
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
    from rich.table import Table
    from rich.text import Text

    summary, config, rows = api.run_records(path, SHOWN_METRICS)
    metrics = None if rows is None else _metric_rows(path / api.METRICS, rows)
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
        shown = (
            # a test pass skipped by train.eval_every left NaN: nothing was measured
            "" if v is None or (c.startswith("test") and math.isnan(v)) else format(v, spec[c])
            for c, v in values.items()
        )
        cells.append((_literal(r["epoch"]), *shown))
    return cells


def data(args: argparse.Namespace) -> int:
    if args.data_command == "list":
        for name, split, folder in api.data_splits(args.data_dir):
            where = str(folder) if folder else "missing (tinyvision data fetch " + name + ")"
            print(f"{name:<14} {split:<6} {where}")
        print(f"{'circles':<14} {'both':<6} generated")
        print(f"{'digits':<14} {'both':<6} embedded in scikit-learn")
        return 0
    if args.data_command == "fetch":
        print(f"fetched: {api.fetch_data(args.name, args.data_dir)}")
        return 0
    if args.name in ("circles", "digits"):
        print(f"{args.name}: built in, nothing to check")
        return 0
    for name, split, found in api.check_data(args.name, args.data_dir):
        if found is None:
            print(f"{name:<14} {split:<6} missing")
            continue
        images, shape, counts = found
        print(f"{name:<14} {split:<6} ok  {images} images {shape}  classes {json.dumps(counts)}")
    return 0


def study(args: argparse.Namespace) -> int:
    if args.name == "list":
        for name, (description, steps) in api.studies().items():
            print(f"{name:<18} {description} ({steps} runs)")
        return 0
    folder = api.study(args.name, args.overrides, **_group(args)).path
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
    shape = parse_shape(args.input) if args.input else None
    print(api.model_summary(args.model, args.overrides, shape, args.classes))
    return 0


def arithmetic(args: argparse.Namespace) -> int:
    """1-cd Q12: the bag-of-words + SVM pipeline's parameters beside the course CNN's."""
    counts = api.bag_of_words_parameters(args.words, args.descriptor, args.classes)
    total = counts["svm"] + counts["codebook"]
    print(
        f"bag of words + linear SVMs, {args.words:,} words of {args.descriptor} dimensions, "
        f"{args.classes} classes (one SVM per class):"
    )
    print(f"  SVMs      {args.classes} x ({args.words:,} + 1) = {counts['svm']:,}")
    print(f"  codebook  {args.words:,} x {args.descriptor} = {counts['codebook']:,}")
    print(f"  total     {total:,} (learned, codebook included)")
    cnn = counts["cnn"]
    print(f"course CNN on 3x32x32: {cnn:,} parameters, {cnn / total:.1f}x as many")
    return 0


def fcconv(args: argparse.Namespace) -> int:
    shown = api.fc_as_conv(args.run_folder, args.size)
    print(
        f"model input size: largest difference between fc and conv outputs {shown.difference:.2e}"
    )
    side = shown.mosaic
    whole = "" if side == args.size else f" (--size {args.size}: whole test images only)"
    print(f"{side}x{side} mosaic{whole}: score map of shape {shown.score_shape}")
    print(f"picture: {shown.picture}")
    return 0


def attention(args: argparse.Namespace) -> int:
    for path in api.attention_maps(args.run_folder, args.images):
        print(f"picture: {path}")
    return 0


def predict(args: argparse.Namespace) -> int:
    invert = not getattr(args, "no_invert", False)
    predictions = api.predict(args.run_folder, args.images, args.top, args.data_dir, invert)
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
    from tinyvision.records_read import printable

    for p in predictions:
        print(printable(p.image))  # a file name may hold terminal escapes or newlines
        if p.note:
            print(f"  note: {printable(p.note)}")
        if p.warning:
            print(f"  warning: {printable(p.warning)}")
        width = max(len(printable(g.name)) for g in p.top)
        for g in p.top:
            print(f"  {printable(g.name):<{width}}  {100 * g.probability:6.2f}%")
    return 0


def report(args: argparse.Namespace) -> int:
    print(f"report: {api.report(args.paths, args.out)}")
    return 0


def tour(args: argparse.Namespace) -> int:
    report = api.tour(args.out, args.quick, args.device, args.data_dir, args.minutes)
    print(f"report: {report}")
    return 0


def course(args: argparse.Namespace) -> int:
    """The questions as a table, or one question with what answers it and the records'."""
    from rich.table import Table

    from tinyvision.api import course as course_view

    shown = course_view(args.which, out=args.out)
    if hasattr(shown, "lines"):  # one question, not the table of them
        for line in shown.lines():
            print(line)
        return 0
    table = Table(*shown.columns)
    for row in shown.itertuples(index=False):
        table.add_row(*(_text(c) for c in row))
    _console().print(table)
    print(f"{len(shown)} questions; `tinyvision course ID` shows one")
    return 0


def exercises(args: argparse.Namespace) -> int:
    from tinyvision.api import exercises as copy_exercises

    for path in copy_exercises(args.folder):
        print(f"wrote {path}")
    print("open them in Jupyter: each blank cell is followed by the check of your code")
    return 0


def grade(args: argparse.Namespace) -> int:
    from rich.table import Table

    from tinyvision.api import grade as grade_notebooks
    from tinyvision.api import grade_summary

    rows = grade_notebooks(args.notebooks, args.out, args.timeout, args.jobs)
    checks, rates = grade_summary(rows)
    mark = {"passed": "✔", "failed": "✘", "missing": "–"}
    table = Table("notebook", *checks, "total", title="grades")
    for row in rows:  # names and notes are the students': shown as text, never as markup
        cells = [mark[row.verdicts[c][0]] if c in row.verdicts else "" for c in checks]
        total = f"{row.passed}/{len(row.verdicts) or len(checks)}"
        table.add_row(_text(row.notebook), *cells, total)
    table.add_section()
    table.add_row("pass rate", *(f"{100 * rates[c]:.0f}%" for c in checks), "")
    console = _console()
    console.print(table)
    for row in rows:
        if row.note:
            console.print(_text(f"{row.notebook}: {row.note}"))
    print(f"grades: {args.out}")
    return 0
