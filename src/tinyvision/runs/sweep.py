"""Sweeps: the cartesian grid of `key=v1,v2` over a preset, each point a normal run.

The sweep folder's name comes from the preset, grid and seeds, so running the same sweep
again finds it: completed points are skipped and interrupted ones resumed. Points run in
`--jobs` processes that split the machine's cores between them. Studies
(`tinyvision.studies`) are lists of labelled points run by the same engine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tinyvision.config import parse_assignment, split_values
from tinyvision.errors import UserError
from tinyvision.presets import build_config
from tinyvision.runs import files
from tinyvision.runs.folder import CONFIG, METRICS, read_summary

RESULT_COLUMNS = (
    "seed", "status", "epochs_done", "lr", "final_test_acc", "best_test_acc",
    "final_train_acc", "gap", "params", "tokens", "seconds", "final_test_acc_mean",
    "final_test_acc_std", "best_test_acc_mean", "best_test_acc_std", "run",
)  # fmt: skip


@dataclass
class Point:
    preset: str
    values: dict[str, str]  # what distinguishes this point: the columns of sweep.csv
    overrides: list[str]  # its config overrides, the seed excluded
    seed: int
    run_dir: Path = field(default_factory=Path)

    @property
    def label(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.values.items()) or "all"

    def all_overrides(self) -> list[str]:
        return [*self.overrides, f"train.seed={self.seed}"]


def parse_grid(grid: list[str]) -> dict[str, list[str]]:
    axes: dict[str, list[str]] = {}
    for arg in grid:
        key, text = parse_assignment(arg)
        values = [v.strip() for v in split_values(text)]
        if not all(values):
            raise UserError(f"{arg}: empty value in the list")
        if key in axes:
            raise UserError(f"{key} appears twice in the sweep")
        axes[key] = values
    return axes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)


def folder_for(out: Path, kind: str, name: str, spec: dict) -> Path:
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:6]
    return out / _slug(f"{kind}-{name}-{digest}")


def grid_points(preset: str, axes: dict[str, list[str]], seeds: int) -> list[Point]:
    fixed = [f"{k}={v[0]}" for k, v in axes.items() if len(v) == 1]
    swept = {k: v for k, v in axes.items() if len(v) > 1}
    points = []
    for combo in itertools.product(*swept.values()):
        values = dict(zip(swept, combo))
        overrides = [*fixed, *(f"{k}={v}" for k, v in values.items())]
        points += [Point(preset, values, overrides, seed) for seed in range(seeds)]
    return points


def _place(points: list[Point], folder: Path) -> None:
    """Give each point its run folder, and validate its config before anything runs."""
    for p in points:
        name = "_".join(f"{k.split('.')[-1]}={v}" for k, v in p.values.items()) or "point"
        p.run_dir = folder / _slug(f"{name}_seed{p.seed}")
        build_config(p.preset, p.all_overrides())


def _run_point(point: Point, out: Path, device: str, group: str, threads: int) -> dict:
    """One point, in a worker process (or in-process with --jobs 1)."""
    import torch

    from tinyvision.runs.runner import resume, run

    torch.set_num_threads(threads)
    summary = read_summary(point.run_dir)
    if summary and summary.get("status") == "completed":
        return summary
    if (point.run_dir / CONFIG).is_file():
        return resume(point.run_dir, device, quiet=True)[1]
    shutil.rmtree(point.run_dir, ignore_errors=True)  # a start that died before its config
    cfg = build_config(point.preset, point.all_overrides())
    return run(cfg, out, device, quiet=True, run_dir=point.run_dir, sweep=group)[1]


def run_points(
    points: list[Point],
    folder: Path,
    out: Path,
    jobs: int = 1,
    device: str = "auto",
    quiet: bool = False,
    spec: dict | None = None,
) -> Path:
    """Run every point not yet completed, then write sweep.csv and comparison.png."""
    _place(points, folder)
    files.write_json(folder / "sweep.json", spec or {})
    todo = [p for p in points if (read_summary(p.run_dir) or {}).get("status") != "completed"]
    if not quiet:
        print(f"{len(points)} runs ({len(points) - len(todo)} already done) in {folder}")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    group = folder.relative_to(out).as_posix()

    def report(point: Point, summary: dict) -> None:
        if not quiet:
            final = (summary.get("final") or {}).get("test_acc") or float("nan")
            print(f"  {point.label} seed {point.seed}: {summary['status']}, "
                  f"test {final:.2f}% ({summary['seconds']:.0f}s)", flush=True)  # fmt: skip

    if jobs == 1:
        for point in todo:
            report(point, _run_point(point, out, device, group, threads))
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_point, p, out, device, group, threads): p for p in todo}
            try:
                for future in as_completed(futures):
                    report(futures[future], future.result())
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    write_results(folder, points)
    return folder


def run_sweep(
    preset: str,
    grid: list[str],
    seeds: int = 1,
    jobs: int = 1,
    out: Path = Path("runs"),
    device: str = "auto",
    quiet: bool = False,
) -> Path:
    axes = parse_grid(grid)
    spec = {"preset": preset, "axes": axes, "seeds": seeds}
    keys = "-".join(k.split(".")[-1] for k, v in axes.items() if len(v) > 1)
    folder = folder_for(out, "sweep", f"{preset}-{keys}", spec)
    return run_points(grid_points(preset, axes, seeds), folder, out, jobs, device, quiet, spec)


def write_results(folder: Path, points: list[Point]) -> list[dict]:
    """sweep.csv (one row per run, with mean and std over seeds) and comparison.png."""
    from tinyvision.report.curves import plot_comparison

    groups: dict[str, list[tuple[Point, dict]]] = {}
    for p in points:
        summary = read_summary(p.run_dir) or {"status": "missing"}
        groups.setdefault(p.label, []).append((p, summary))
    rows, curves = [], {}
    for label, members in groups.items():
        finals = [_final(s, "test_acc") for _, s in members]
        bests = [s.get("best_test_acc") for _, s in members]
        stats = {
            "final_test_acc_mean": _mean(finals), "final_test_acc_std": _std(finals),
            "best_test_acc_mean": _mean(bests), "best_test_acc_std": _std(bests),
        }  # fmt: skip
        for p, s in members:
            train, test = _final(s, "train_acc"), _final(s, "test_acc")
            rows.append({
                **p.values, "seed": p.seed, "status": s.get("status"),
                "epochs_done": s.get("epochs_done"), "lr": _config_lr(p),
                "final_test_acc": test, "best_test_acc": s.get("best_test_acc"),
                "final_train_acc": train,
                "gap": round(train - test, 4) if train is not None and test is not None else None,
                "params": s.get("params"), "tokens": s.get("tokens"),
                "seconds": s.get("seconds"), **stats,
                "run": p.run_dir.name,
            })  # fmt: skip
        metrics = [files.read_csv(p.run_dir / METRICS) for p, _ in members
                   if (p.run_dir / METRICS).is_file()]  # fmt: skip
        if metrics:
            curves[label] = metrics
    keys = list(dict.fromkeys(k for p in points for k in p.values))
    files.write_csv(folder / "sweep.csv", [*keys, *RESULT_COLUMNS], rows)
    if curves:
        plot_comparison(curves, folder / "comparison.png", title=folder.name)
    return rows


def _config_lr(point: Point) -> float | None:
    try:
        return json.loads((point.run_dir / CONFIG).read_text())["optim"]["lr"]
    except (OSError, KeyError, json.JSONDecodeError):
        return None


def _final(summary: dict, key: str):
    return (summary.get("final") or {}).get(key)


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 4) if values else None


def _std(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.stdev(values), 4) if len(values) > 1 else 0.0 if values else None
