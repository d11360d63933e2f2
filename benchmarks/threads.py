"""Training speed at 1 and 2 threads, on an idle machine and under a load this script makes.

On a machine shared with other work (a classroom server, a JupyterHub, a laptop running
a browser) torch's threads can lose more than they gain: each parallel operation ends at
a barrier, so a step waits for its slowest thread, and a thread that the kernel has
parked behind another process holds every other thread up. This script measures it:

  - the workload: training steps of the course's MLP (784-256-10, SGD, batch 128), of
    the course CNN (1x28x28, batch 128) and of `vit-fashion`'s ViT (`--models vit`),
    random Fashion-MNIST-shaped data;
  - at 1 and 2 threads (torch.set_num_threads), each in a fresh process;
  - with OpenMP's default wait policy, with OMP_WAIT_POLICY=passive (threads that
    sleep at a barrier instead of spinning), and passive after a short spin
    (GOMP_SPINCOUNT=10000, tinyvision's default), all of which must be set before
    torch starts;
  - idle (as idle as the machine is: its load average is printed), then loaded: this
    script starts LOAD busy processes (pure Python loops, one core each) and stops them
    at the end.

Each figure is images per second: the median of the timed steps after two warm-up steps.
Beside the table: the machine (CPU, the flags that decide speed, cores, torch) and the
load average before each phase.

Run: `python benchmarks/threads.py [--seconds S] [--load N] [--models mlp,cnn]` (a few minutes
on 2 cores: the slowest steps, the CNN on two threads under load, take seconds each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe

HERE = Path(__file__).resolve().parent
BATCH = 128


def measure(model_name: str, threads: int, seconds: float) -> float:
    """Images per second of one model's training steps at `threads` (in this process)."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model_name == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    elif model_name == "vit":
        from tinyvision.models import create_model
        from tinyvision.presets import build_config

        model = create_model(build_config("vit-fashion").model, (1, 28, 28), 10)
    else:
        from tinyvision.models.cnn import CourseCNN

        model = CourseCNN(in_chans=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(BATCH, 1, 28, 28), torch.randint(0, 10, (BATCH,))

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        return time.perf_counter() - start

    step(), step()  # warm-up: allocations, kernel choice
    took, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(took) < 3:
        took.append(step())
    return BATCH / statistics.median(took)


# How a waiting OpenMP thread behaves: the variables each policy sets (GOMP_SPINCOUNT:
# how many times it polls before it sleeps)
POLICIES = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"},
    "passive, spin 10000": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"},
}


def in_fresh_process(model_name: str, threads: int, seconds: float, policy: str) -> float:
    """`measure` in a new Python: OpenMP reads its variables once, when torch loads it."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    env.update(POLICIES[policy])
    out = subprocess.run(
        [sys.executable, __file__, "--child", model_name, str(threads), str(seconds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def busy_processes(count: int) -> list[subprocess.Popen]:
    """`count` processes that each keep one core busy until stopped."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per figure")
    parser.add_argument("--load", type=int, default=2, help="busy processes in the loaded phase")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn, vit")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_name, threads, seconds = args.child
        print(json.dumps(measure(model_name, int(threads), float(seconds))))
        return

    print(describe())
    print(f"images/s of training steps (batch {BATCH}), median of {args.seconds:g} s each")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = []
    for phase, load in (("idle", 0), (f"loaded ({args.load} busy processes)", args.load)):
        busy = busy_processes(load)
        try:
            time.sleep(1.0 if load else 0.0)  # the busy processes up to speed
            print(f"\n{phase}: load average {load_average()} (1, 5, 15 min) before")
            for model_name in models:
                for policy in POLICIES:
                    speeds = {
                        t: in_fresh_process(model_name, t, args.seconds, policy) for t in (1, 2)
                    }
                    ratio = speeds[2] / speeds[1]
                    line = (
                        f"  {model_name:4s} {policy:19s}"
                        f"  1 thread {speeds[1]:9,.0f}  2 threads {speeds[2]:9,.0f}"
                        f"  (2 threads: {ratio:.2f}x)"
                    )
                    print(line, flush=True)
                    rows.append((phase, model_name, policy, speeds))
        finally:
            for process in busy:
                process.kill()
                process.wait()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
