"""Time to accuracy: how long a preset takes to reach a test accuracy, over several seeds.

Each seed is one `tinyvision run PRESET train.seed=S` in a fresh process, timed from the
moment the process is started (Python, torch and the data loading included) to the epoch
whose test accuracy first reaches the target. Epoch ends are seen by watching the run's
metrics.csv (polled every 0.1 s); a preset that evaluates every Nth epoch
(`train.eval_every`) is seen at those epochs only (`train.eval_every=1` for each). A run
still going at the wall-time budget is stopped there (Ctrl-C: it ends `interrupted`), and
its accuracy is that of its last epoch within the budget: that is what the recipe
reaches in that time.

Beside the preset, a baseline recipe under the same budget (by default the course's full
1-cd stack on Fashion-MNIST), and the machine the figures come from.

Run: `python benchmarks/time_to_accuracy.py [--preset fashion-fast] [--seeds 5]
[--target 94.0] [--budget 300] [--baseline "1cd-batchnorm data.name=fashion-mnist"]
[--baseline-seeds N] [--jobs N] [KEY=VALUE ...]` (the overrides apply to the preset,
not the baseline). With the defaults: 5 seeds x 5 minutes for each of the two, under an
hour. `--jobs N` runs N seeds at once (give each `train.threads=1` on a small machine):
the epochs and accuracies are those of one seed at a time, the seconds are not.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from machine import describe


@dataclass
class Result:
    seed: int
    time_to_target: float | None  # seconds from process start; None: never reached
    epochs_to_target: int | None  # the first epoch at the target (epoch counts do not
    # depend on the machine, seconds do: both are reported)
    final_acc: float | None  # the last epoch's test accuracy within the budget
    best_acc: float | None
    epochs: int
    seconds: float  # the process's wall time (stopped at the budget)
    stopped: bool  # cut at the budget
    sizing: str = ""  # how train.time_budget sized the run, beside the epochs' real length


def watch_run(command: list[str], out: Path, target: float, budget: float) -> Result:
    """Start the run, note when each epoch's row lands in metrics.csv, stop at `budget`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: list[tuple[float, float]] = []  # (seconds since start, test accuracy) per epoch
    stopped = False
    while True:
        done = process.poll() is not None
        now = time.perf_counter() - start
        rows = read_rows(out)
        seen += [(now, float(r["test_acc"])) for r in rows[len(seen) :]]
        if done:
            break
        if now > budget and not stopped:
            # SIGTERM, which tinyvision treats as Ctrl-C: the run records `interrupted` and
            # exits. Not SIGINT: a process started in the background by a shell ignores it.
            process.send_signal(signal.SIGTERM)
            stopped = True
        time.sleep(0.1)
    if process.returncode not in (0, 130):
        error = process.stderr.read().decode(errors="replace").strip().splitlines()
        raise SystemExit(
            f"{' '.join(command)} failed: {error[-1] if error else process.returncode}"
        )
    sizing = describe_sizing(out)
    within = [(t, acc) for t, acc in seen if t <= budget]
    first = next((i for i, (_, acc) in enumerate(within) if acc >= target), None)
    return Result(
        seed=-1,
        time_to_target=within[first][0] if first is not None else None,
        epochs_to_target=first + 1 if first is not None else None,
        final_acc=within[-1][1] if within else None,
        best_acc=max((acc for _, acc in within), default=None),
        epochs=len(within),
        seconds=time.perf_counter() - start,
        stopped=stopped,
        sizing=sizing,
    )


def describe_sizing(out: Path) -> str:
    """The time budget's estimate of an epoch against the epochs measured ('' if unsized)."""
    for path in out.glob("*/summary.json"):
        try:
            sized = json.loads(path.read_text())["time_budget"]
            measured = statistics.fmean(float(r["epoch_seconds"]) for r in read_rows(out))
            replanned = (
                f" (planned {sized['planned_epochs']} before the first epoch, which took "
                f"{sized['first_epoch_s']:.1f} s)"
                if sized.get("planned_epochs", sized["epochs"]) != sized["epochs"]
                else ""
            )
            return (
                f"; sized to {sized['epochs']} of {sized['asked_epochs']} epochs by a "
                f"{sized['seconds']:g} s budget{replanned}: estimated "
                f"{sized['epoch_estimate_s']:.1f} s an epoch, measured {measured:.1f} s"
            )
        except (OSError, ValueError, KeyError, TypeError, statistics.StatisticsError):
            return ""  # unsized, no epoch done, or a record of another shape
    return ""


def read_rows(out: Path) -> list[dict]:
    """The metrics rows written so far by the one run under `out` (none yet: [])."""
    for path in out.glob("*/metrics.csv"):
        try:
            with path.open(newline="") as f:
                # epoch 0 is the evaluation before training, not an epoch run
                return [r for r in csv.DictReader(f) if r.get("test_acc") and r["epoch"] != "0"]
        except (OSError, ValueError):
            return []
    return []


def measure(
    recipe: list[str], seeds: int, target: float, budget: float, jobs: int = 1
) -> list[Result]:
    """One run per seed, `jobs` of them at a time; each row printed as its run ends."""

    def one(seed: int) -> Result:
        with tempfile.TemporaryDirectory(prefix="tinyvision-tta-") as tmp:
            command = [sys.executable, "-m", "tinyvision", "run", *recipe]
            command += [f"train.seed={seed}", "--out", tmp]
            result = replace(watch_run(command, Path(tmp), target, budget), seed=seed)
        print("  " + row(result), flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, range(seeds)))


def row(r: Result) -> str:
    if r.time_to_target is not None:
        reached = f"{r.time_to_target:6.1f} s (epoch {r.epochs_to_target})"
    else:
        reached = "   never"
    final = f"{r.final_acc:.2f}%" if r.final_acc is not None else "n/a"
    cut = ", stopped at the budget" if r.stopped else ""
    return (
        f"seed {r.seed}: target at {reached}, final {final} after {r.epochs} epochs, "
        f"{r.seconds:.0f} s{cut}{r.sizing}"
    )


def summary(name: str, results: list[Result], target: float) -> str:
    finals = [r.final_acc for r in results if r.final_acc is not None]
    times = [r.time_to_target for r in results if r.time_to_target is not None]
    spread = f" ± {statistics.stdev(finals):.2f}" if len(finals) > 1 else ""
    mean = f"{statistics.fmean(finals):.2f}%{spread}" if finals else "n/a"
    epochs = [r.epochs_to_target for r in results if r.epochs_to_target is not None]
    if times:
        reached = (
            f"{len(times)}/{len(results)} seeds, mean {statistics.fmean(times):.0f} s, "
            f"mean {statistics.fmean(epochs):.1f} epochs"
        )
    else:
        reached = f"0/{len(results)} seeds"
    return f"{name}: final test accuracy {mean} (mean ± std); reached {target}%: {reached}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fashion-fast")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--target", type=float, default=94.0)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--baseline", default="1cd-batchnorm data.name=fashion-mnist")
    parser.add_argument("--baseline-seeds", type=int, help="default: --seeds; 0: none")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE for the preset")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    print(describe())
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; target "
        f"{args.target}%, budget {args.budget:.0f} s per run, {args.jobs} run(s) at once, "
        f"data from {os.environ.get('TINYVISION_DATA', 'the default places')}\n"
    )
    recipes = [(" ".join([args.preset, *args.overrides]), args.seeds)]
    baseline_seeds = args.seeds if args.baseline_seeds is None else args.baseline_seeds
    if args.baseline and baseline_seeds:
        recipes.append((args.baseline, baseline_seeds))
    lines = []
    for recipe, seeds in recipes:
        print(f"{recipe}:", flush=True)
        results = measure(recipe.split(), seeds, args.target, args.budget, args.jobs)
        lines.append(summary(recipe, results, args.target))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
