"""Sweeps: the cartesian grid of `key=v1,v2` over a preset, each point a normal run.

The sweep folder's name comes from the preset, grid and seeds, so running the same sweep
again finds it: completed points are skipped and interrupted ones resumed. Studies
(`tinyvision.studies`) are lists of labelled points run by the same `run_points`.

Each point is claimed with a lock file beside its run folder, so two identical sweeps
started together share the work instead of colliding: one runs a point while the other
waits for it and then finds it completed. With `--jobs N` points run in N worker
processes (`tinyvision.groups.executors.local`) that stop within seconds on Ctrl-C or SIGTERM,
and stop by themselves if the sweep's own process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import statistics
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from tinyvision import io
from tinyvision.config import parse_assignment, split_values
from tinyvision.errors import UserError
from tinyvision.experiment import index
from tinyvision.experiment.folder import CONFIG, METRICS, open_lock, read_summary, slug
from tinyvision.experiment.status import is_finished
from tinyvision.groups.executors.local import run_locally
from tinyvision.groups.points import Executor, Options, Point
from tinyvision.groups.progress import GroupProgress
from tinyvision.records_read import RecordError, number, read_csv_rows, read_json_object

SPEC = "sweep.json"
RESULT_COLUMNS = (
    "seed",
    "status",
    "epochs_done",
    "lr",
    "final_test_acc",
    "best_test_acc",
    "final_train_acc",
    "gap",
    "final_train_loss",
    "final_test_loss",
    "params",
    "tokens",
    "macs",
    "seconds",
    "final_test_acc_mean",
    "final_test_acc_std",
    "best_test_acc_mean",
    "best_test_acc_std",
    "run",
)


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


def folder_for(out: Path, kind: str, name: str, spec: dict) -> Path:
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:6]
    return out / slug(f"{kind}-{name}-{digest}")


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
    names = set()
    for p in points:
        name = "_".join(f"{k.split('.')[-1]}={v}" for k, v in p.values.items()) or "point"
        p.run_dir = folder / slug(f"{name}_seed{p.seed}")
        if p.run_dir in names:
            raise UserError(f"two points of the sweep share the folder {p.run_dir.name}")
        names.add(p.run_dir)
        p.config()


@contextlib.contextmanager
def claim(point: Point) -> Iterator[None]:
    """Hold the point's lock: one process at a time starts, runs or resumes it."""
    fd = open_lock(point.run_dir.with_name(f".{point.run_dir.name}.lock"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another sweep runs this point
        yield
    finally:
        os.close(fd)


def run_point(
    point: Point, out: Path, device: str, group: str, data_dir: Path | None = None
) -> dict:
    """One point, in this process: skip it if completed, resume it if started, else run."""
    from tinyvision.experiment.runner import resume, run

    with claim(point):
        summary = read_summary(point.run_dir)
        if is_finished(summary):
            return summary
        if (point.run_dir / CONFIG).is_file():
            return resume(point.run_dir, device, True, data_dir, hooks=point.hooks)[1]
        # A start that died before writing its config (we hold the claim: nobody else
        # is starting it now).
        shutil.rmtree(point.run_dir, ignore_errors=True)
        cfg = point.config()
        return run(
            cfg, out, device, True, data_dir, run_dir=point.run_dir, sweep=group, hooks=point.hooks
        )[1]


def run_points(points: list[Point], folder: Path, spec: dict, options: Options) -> Path:
    """Run every point not yet finished, then write sweep.csv and comparison.png."""
    options.check()
    _place(points, folder)
    index.check_plain(options.out)  # a planted index link: one line, before any folder
    if options.executor == "ray":  # the cluster answers, and can hold a run: else no folder
        from tinyvision.groups.executors.ray import check_cluster

        check_cluster(options)
    folder.mkdir(parents=True, exist_ok=True)
    io.write_json(folder / SPEC, spec)
    todo = [p for p in points if not is_finished(read_summary(p.run_dir))]
    say = (lambda text: None) if options.quiet else (lambda text: print(text, flush=True))
    say(f"{len(points)} runs ({len(points) - len(todo)} already done) in {folder}")
    group = folder.relative_to(options.out).as_posix()
    finished = 0
    names = {f"{p.label} seed {p.seed}": p.run_dir for p in todo}
    progress = GroupProgress(names, options.quiet)

    def report(point: Point, summary: dict) -> None:
        nonlocal finished
        finished += 1
        final = (summary.get("final") or {}).get("test_acc")
        test = "n/a" if final is None else f"{final:.2f}%"
        line = (
            f"  [{finished}/{len(todo)}] {point.label} seed {point.seed}: "
            f"{summary.get('status')}, test {test} ({summary.get('seconds') or 0:.0f}s)"
        )
        progress.ended(f"{point.label} seed {point.seed}", line, str(summary.get("status")))

    try:
        with progress:
            execute_points(todo, options, group, report)
    finally:
        write_results(folder, points)
    return folder


def execute_points(
    todo: list[Point], options: Options, group: str, report: Callable[[Point, dict], None]
) -> None:
    """Run the points here, in worker processes or as Ray tasks; `report` each as it ends."""
    one_point = partial(run_point, data_dir=options.data_dir)
    executor(options)(one_point, todo, options, group, report)


def executor(options: Options) -> Executor:
    if options.executor == "ray":
        from tinyvision.groups.executors.ray import run_in_ray

        return run_in_ray
    return run_locally


def run_sweep(preset: str, grid: list[str], options: Options | None = None, **fields) -> Path:
    """The sweep of `grid` over `preset`; `fields` are Options' (out=, jobs=, ...)."""
    options = options or Options(**fields)
    axes = parse_grid(grid)
    spec = {"kind": "sweep", "preset": preset, "axes": axes, "seeds": options.seeds}
    keys = "-".join(k.split(".")[-1] for k, v in axes.items() if len(v) > 1)
    folder = folder_for(options.out, "sweep", f"{preset}-{keys}", spec)
    return run_points(grid_points(preset, axes, options.seeds), folder, spec, options)


def write_results(folder: Path, points: list[Point]) -> list[dict]:
    """sweep.csv (one row per run, with mean and std over seeds) and comparison.png."""
    from tinyvision.figures import plot_comparison

    groups: dict[str, list[tuple[Point, dict]]] = {}
    for p in points:
        summary = read_summary(p.run_dir) or {"status": "not run"}
        groups.setdefault(p.label, []).append((p, summary))
    rows, curves = [], {}
    for label, members in groups.items():
        finals = [_final(s, "test_acc") for _, s in members]
        bests = [s.get("best_test_acc") for _, s in members]
        stats = {
            "final_test_acc_mean": _mean(finals),
            "final_test_acc_std": _std(finals),
            "best_test_acc_mean": _mean(bests),
            "best_test_acc_std": _std(bests),
        }
        for p, s in members:
            rows.append(_row(p, s, stats))
        metrics = [metrics_rows(p) for p, _ in members]
        metrics = [m for m in metrics if m]
        if metrics:
            curves[label] = metrics
    keys = list(dict.fromkeys(k for p in points for k in p.values))
    io.write_csv(folder / "sweep.csv", [*keys, *RESULT_COLUMNS], rows)
    if curves:
        plot_comparison(curves, folder / "comparison.png", title=folder.name)
    return rows


def _row(p: Point, s: dict, stats: dict) -> dict:
    train, test = _final(s, "train_acc"), _final(s, "test_acc")
    return {
        **p.values,
        "seed": p.seed,
        "status": s.get("status"),
        "epochs_done": s.get("epochs_done"),
        "lr": _config_lr(p),
        "final_test_acc": test,
        "best_test_acc": s.get("best_test_acc"),
        "final_train_acc": train,
        "gap": round(train - test, 4) if train is not None and test is not None else None,
        "final_train_loss": _final(s, "train_loss"),
        "final_test_loss": _final(s, "test_loss"),
        "params": s.get("params"),
        "tokens": s.get("tokens"),
        "macs": s.get("macs"),
        "seconds": s.get("seconds"),
        **stats,
        "run": p.run_dir.name,
    }


CURVE_COLUMNS = ("epoch", "train_acc", "test_acc", "train_loss", "test_loss")


def metrics_rows(p: Point) -> list[dict]:
    """A point's metrics rows; a damaged metrics.csv counts as none (the run can rerun)."""
    path = p.run_dir / METRICS
    try:
        rows = read_csv_rows(path, CURVE_COLUMNS)
        for line, r in enumerate(rows, start=2):
            if any(number(path, line, r, k) is None for k in CURVE_COLUMNS):
                return []
        return rows
    except RecordError:
        return []


def _config_lr(point: Point) -> float | None:
    try:
        return float(read_json_object(point.run_dir / CONFIG)["optim"]["lr"])
    except (RecordError, KeyError, TypeError, ValueError):
        return None


def _final(summary: dict, key: str):
    final = summary.get("final")
    return final.get(key) if isinstance(final, dict) else None


def _mean(values: list) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return round(statistics.fmean(values), 4) if values else None


def _std(values: list) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return round(statistics.stdev(values), 4) if len(values) > 1 else 0.0 if values else None
