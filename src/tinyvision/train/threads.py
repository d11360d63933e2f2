"""How many threads a CPU run trains on: timed, as the precision is, unless forced.

On a machine shared with other work, torch's threads can lose more than they gain: a
parallel operation ends when its slowest thread does, and a thread parked behind another
process holds the others up (benchmarks/threads.py measures it under a load it makes).
So before a CPU run trains, a few training steps of a copy of its model are timed at one
thread and at all the threads torch has, interleaved so that a change of load hits both
alike; more threads are kept only when they are at least MARGIN faster (fewer threads
are kinder to the other work on the machine). Unlike the precision, the choice is not
cached: it depends on the load at the time. `train.threads=N` forces N threads; a resumed
run keeps the count it started with, so its numbers match an uninterrupted run's.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tinyvision.train.loop import Learner
from tinyvision.train.precision import Timer, wall_clock

MARGIN = 0.10
ROUNDS = 3  # per count: one untimed warm-up step, then the median of the others

# torch has one thread count per process. The most a run may use is what torch had before
# tinyvision first changed it (or what a sweep's worker set since): remembered here, so a
# run that chose 1 thread does not leave the next run of the process with only 1.
_available: int | None = None
_applied: int | None = None


def available() -> int:
    """The threads a run may use: torch's count, unless that is one tinyvision set."""
    global _available
    now = torch.get_num_threads()
    if _available is None or now != _applied:
        _available = now
    return _available


def apply(count: int) -> None:
    global _applied
    torch.set_num_threads(count)
    _applied = count


@dataclass
class Threads:
    """The thread count a run trains with, and how it was chosen."""

    count: int
    # probe: timed now; forced: train.threads; resumed: the count the run started with;
    # fixed: nothing to choose (one thread available, a GPU, a hand-written MLP)
    source: str
    available: int
    images_per_s: dict[str, float] = field(default_factory=dict)  # thread count -> speed

    def record(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "source": self.source,
            "available": self.available,
            "images_per_s": dict(self.images_per_s),
        }


def time_counts(
    model: nn.Module,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    input_shape: tuple[int, ...],
    batch_size: int,
    num_classes: int,
    counts: list[int],
    timer: Timer = wall_clock,
) -> dict[int, float]:
    """Images per second of a float32 training step of a copy of the model at each count."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, *input_shape, generator=generator)
    y = torch.randint(0, num_classes, (batch_size,), generator=generator)
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    with torch.random.fork_rng(devices=[]):  # dropout in the copy draws from it
        twin = copy.deepcopy(model).cpu().train()
        learner = Learner(twin, make_optimizer(twin.parameters()), device=torch.device("cpu"))
        for round_ in range(ROUNDS):
            for n in counts:
                apply(n)
                took = timer(None, lambda: learner.train_step(x, y))  # type: ignore[arg-type]
                if round_:  # round 0: the warm-up
                    seconds[n].append(took)
    return {n: batch_size / max(statistics.median(s), 10**-9) for n, s in seconds.items()}


def choose(
    forced: int,
    model: nn.Module,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None,
    input_shape: tuple[int, ...],
    batch_size: int,
    num_classes: int,
    device: torch.device,
    resumed: int | None = None,
    timer: Timer = wall_clock,
) -> Threads:
    """Resolve train.threads (0 = auto) and set torch's thread count to it.

    `make_optimizer` None: the model is trained by hand-written updates, not timed here.
    """
    most = available()
    if forced:
        apply(forced)
        return Threads(forced, "forced", most)
    if resumed:
        apply(min(resumed, most))
        return Threads(min(resumed, most), "resumed", most)
    if device.type != "cpu" or most <= 1 or make_optimizer is None:
        apply(most)
        return Threads(most, "fixed", most)
    counts = [1, most]
    speeds = time_counts(model, make_optimizer, input_shape, batch_size, num_classes, counts, timer)
    count = most if speeds[most] >= speeds[1] * (1 + MARGIN) else 1
    apply(count)
    return Threads(count, "probe", most, {str(n): v for n, v in speeds.items()})


def describe(record: dict[str, Any]) -> str | None:
    """The line a run prints when timing chose fewer threads than there are, else None."""
    speeds = record.get("images_per_s") or {}
    if record.get("source") != "probe" or record.get("count") == record.get("available"):
        return None
    timed = ", ".join(f"{n} thread{'s' if n != '1' else ''} {v:,.0f}" for n, v in speeds.items())
    return (
        f"threads: {record['count']} of {record['available']}, the faster here now "
        f"(images/s: {timed}; train.threads=N forces N)"
    )
