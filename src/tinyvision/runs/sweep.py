"""Sweeps: the cartesian grid of `key=v1,v2` over a preset, each point a normal run.

The sweep folder's name comes from the preset, grid and seeds, so running the same sweep
again finds it: completed points are skipped and interrupted ones resumed. Studies
(`tinyvision.studies`) are lists of labelled points run by the same `run_points`.

Each point is claimed with a lock file beside its run folder, so two identical sweeps
started together share the work instead of colliding: one runs a point while the other
waits for it and then finds it completed. With `--jobs N` points run in N worker
processes (`tinyvision.runs.workers`) that stop within seconds on Ctrl-C or SIGTERM,
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
from dataclasses import dataclass, field
from pathlib import Path

from tinyvision import io
from tinyvision.config import parse_assignment, split_values
from tinyvision.errors import UserError
from tinyvision.group_progress import GroupProgress
from tinyvision.presets import build_config
from tinyvision.runs.folder import CONFIG, METRICS, read_summary, slug
from tinyvision.runs.workers import run_in_workers

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
    "params",
    "tokens",
    "seconds",
    "final_test_acc_mean",
    "final_test_acc_std",
    "best_test_acc_mean",
    "best_test_acc_std",
    "run",
)


TIME_BUDGET = "train.time_budget"


def unsized(overrides: list[str], shared: list[str] | None = None) -> list[str]:
    """A group's run: a preset's time budget off unless the overrides give one. Sized one
    by one, a group's runs would differ in length by their own speed and the load."""
    asked = {parse_assignment(o)[0] for o in [*(shared or []), *overrides]}
    return overrides if TIME_BUDGET in asked else [f"{TIME_BUDGET}=0", *overrides]


@dataclass
class Point:
    preset: str
    values: dict[str, str]  # what distinguishes this point: the columns of sweep.csv
    overrides: list[str]  # its config overrides, the seed excluded
    seed: int
    shared: list[str] = field(default_factory=list)  # a study's, for steps they apply to
    run_dir: Path = field(default_factory=Path)
    hooks: list = field(default_factory=list)  # added to its run: a search trial's pruner
    trial: int | None = None  # a search's trial number

    @property
    def label(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.values.items()) or "all"

    def config(self):
        overrides = unsized([*self.overrides, f"train.seed={self.seed}"], self.shared)
        return build_config(self.preset, overrides, self.shared)


@dataclass
class Options:
    """How a group of runs is run: the same for sweeps, studies and searches."""

    seeds: int = 1
    jobs: int = 1
    out: Path = Path("runs")
    device: str = "auto"
    quiet: bool = False
    executor: str = "local"  # `local`: processes here; `ray`: tasks on a Ray cluster
    cpus_per_run: int | None = None  # ray: CPUs a run asks for (default: cores / jobs)
    gpus_per_run: float = 0.0  # ray: a fraction shares one GPU between runs
    address: str | None = None  # ray: the cluster to join (default RAY_ADDRESS, or local)

    def __post_init__(self) -> None:
        self.out = Path(self.out)

    def check(self) -> None:
        if self.seeds < 1 or self.jobs < 1:
            raise UserError("--seeds and --jobs must be at least 1")
        if self.executor not in ("local", "ray"):
            raise UserError(f"--executor {self.executor}: choose local or ray")
        ray_only = {
            "--cpus-per-run": self.cpus_per_run is not None,
            "--gpus-per-run": self.gpus_per_run != 0,
            "--address": self.address is not None,
        }
        if self.executor == "local" and any(ray_only.values()):
            flags = ", ".join(flag for flag, given in ray_only.items() if given)
            raise UserError(f"{flags}: only with --executor ray")
        if self.cpus_per_run is not None and self.cpus_per_run < 1:
            raise UserError("--cpus-per-run must be at least 1")
        if not 0 <= self.gpus_per_run <= 64:
            raise UserError("--gpus-per-run must be between 0 and the GPUs of a node")


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
    lock = point.run_dir.with_name(f".{point.run_dir.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another sweep runs this point
        yield
    finally:
        os.close(fd)


def run_point(point: Point, out: Path, device: str, group: str) -> dict:
    """One point, in this process: skip it if completed, resume it if started, else run."""
    from tinyvision.runs.runner import resume, run

    with claim(point):
        summary = read_summary(point.run_dir)
        if summary and summary.get("status") in ("completed", "diverged", "pruned"):
            return summary
        if (point.run_dir / CONFIG).is_file():
            return resume(point.run_dir, device, quiet=True, hooks=point.hooks)[1]
        # A start that died before writing its config (we hold the claim: nobody else
        # is starting it now).
        shutil.rmtree(point.run_dir, ignore_errors=True)
        cfg = point.config()
        return run(cfg, out, device, True, run_dir=point.run_dir, sweep=group, hooks=point.hooks)[1]


def run_points(points: list[Point], folder: Path, spec: dict, options: Options) -> Path:
    """Run every point not yet completed, then write sweep.csv and comparison.png."""
    options.check()
    _place(points, folder)
    folder.mkdir(parents=True, exist_ok=True)
    io.write_json(folder / SPEC, spec)
    todo = [p for p in points if (read_summary(p.run_dir) or {}).get("status") != "completed"]
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
    if options.executor == "ray":
        from tinyvision.runs.ray_executor import run_in_ray

        run_in_ray(run_point, todo, options, group, report)
    elif options.jobs == 1:
        for point in todo:
            report(point, run_point(point, options.out, options.device, group))
    else:
        run_in_workers(run_point, todo, options, group, report)


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
        "params": s.get("params"),
        "tokens": s.get("tokens"),
        "seconds": s.get("seconds"),
        **stats,
        "run": p.run_dir.name,
    }


def metrics_rows(p: Point) -> list[dict]:
    """A point's metrics rows; a damaged metrics.csv counts as none (the run can rerun)."""
    try:
        rows = io.read_csv(p.run_dir / METRICS)
        for r in rows:
            [float(r[k]) for k in ("epoch", "train_acc", "test_acc", "train_loss", "test_loss")]
        return rows
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        return []


def _config_lr(point: Point) -> float | None:
    try:
        return float(json.loads((point.run_dir / CONFIG).read_text())["optim"]["lr"])
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError):
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
