"""Studies run: a list of labelled steps, each a run of a preset, then the study's table.

A study folder holds `sweep.csv` (one row per run), `table.md` (the table for a report),
`comparison.png` (train/test accuracy and loss, one line per step) and `lr.png` (the
learning rate per epoch of each step). The studies themselves, the course's questions,
are a table of their own (`tinyvision.studies`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from tinyvision.groups.points import Options, Point
from tinyvision.groups.sweep import folder_for, metrics_rows, run_points
from tinyvision.io import write_text
from tinyvision.records_read import read_csv_rows

Step = tuple[str, str, list[str]]  # label, preset, overrides


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    steps: tuple[Step, ...]


def run_study(study: Study, overrides: list[str], options: Options) -> Path:
    """Every step (the overrides apply to the steps whose model reads them), then the table."""
    name = study.name
    points = [
        Point(preset, {"step": label}, extra, seed, shared=list(overrides))
        for label, preset, extra in study.steps
        for seed in range(options.seeds)
    ]
    spec = {"kind": "study", "study": name, "overrides": overrides, "seeds": options.seeds}
    folder = folder_for(options.out, "study", name, spec)
    run_points(points, folder, spec, options)
    rows = read_csv_rows(folder / "sweep.csv", ("step", "final_test_acc", "epochs_done"))
    write_text(folder / "table.md", markdown_table(study, rows, overrides))
    lrs = {p.label: metrics_rows(p) for p in points if p.seed == 0}
    lrs = {label: rows for label, rows in lrs.items() if rows}
    if lrs:
        from tinyvision.figures import plot_lr  # matplotlib only once there is a figure

        plot_lr(lrs, folder / "lr.png", title=f"{name}: learning rate per epoch")
    return folder


def _count(value) -> str:
    """A sweep.csv count with thousands separators ('' when the run did not record it)."""
    try:
        return f"{int(float(value)):,}"
    except (TypeError, ValueError):
        return ""


def markdown_table(study: Study, rows: list[dict], overrides: list[str]) -> str:
    """Per step: epochs, lr, final and best test accuracy, gap, params, tokens, multiply-adds
    per image, time (seed mean)."""
    lines = [f"# {study.name}: {study.description}", ""]
    if overrides:
        lines += [f"Overrides for every step: `{' '.join(overrides)}`", ""]
    lines += [
        "| step | epochs | lr | final test acc | best test acc | train-test gap | params "
        "| tokens | mult-adds/image | s/epoch | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, _, _ in study.steps:
        mine = [r for r in rows if r["step"] == label and r["final_test_acc"]]
        if not mine:
            lines.append(f"| {label} | | | not run | | | | | | | |")
            continue

        def mean(key: str, mine: list[dict] = mine) -> float:
            return statistics.fmean(float(r[key]) for r in mine)

        spread = ""
        if len(mine) > 1:
            spread = f" ± {statistics.stdev(float(r['final_test_acc']) for r in mine):.2f}"
        lines.append(
            f"| {label} | {mine[0]['epochs_done']} | {float(mine[0]['lr']):g} | "
            f"{mean('final_test_acc'):.2f}%{spread} | {mean('best_test_acc'):.2f}% | "
            f"{mean('gap'):.2f} | {int(float(mine[0]['params'])):,} | {mine[0]['tokens'] or ''} | "
            f"{_count(mine[0].get('macs'))} | "
            f"{mean('seconds') / max(int(mine[0]['epochs_done']), 1):.1f} | {mean('seconds'):.0f} |"
        )
    return "\n".join(lines) + "\n"
