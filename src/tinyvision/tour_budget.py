"""The full tour sized to `--minutes` on this machine: its runs timed, then its budgets chosen.

The full tour's fixed budgets (`tinyvision.tour.BUDGETS`) take 4m51s on an idle 2-core AMD
EPYC Zen 5 that trains in bf16 and 25m33s on a 2-core AVX2-only Zen 3, which trains in
float32. So before it trains, the tour times each kind of run it is about to make (one
model on one dataset): the run is prepared as `tinyvision run` prepares it, with its
thread and precision probes (the precision's choice is cached, so the run itself does not
probe again), and `train.time_budget` times a few training steps and test batches of its
own learner (`tinyvision.train.budget.plan`). Each run's seconds are then estimated from
its images and epochs, those of the parts that follow a fixed budget (1-ab, the pictures,
the report) from the constants of `tinyvision.tour`.

When the estimate is over `--minutes` (less `train.budget.MARGIN` unplanned), the training
of each study the tour runs is cut by the same factor (its runs' setups are not cut), each
in the way that keeps its conclusion best:
the CNN ablation and the heads study keep their epochs and train on fewer images (the
ablation's ExponentialLR decays per epoch, so fewer epochs would also weaken the schedule
step), the ViT against the CNN keeps its images and trains fewer epochs, down to 10 (the
course's budget on MNIST), then fewer images. The test subset shrinks with the training
one (every epoch is evaluated). The epochs and images are chosen per study, not per run:
a study's steps must train alike to compare (`train.time_budget` per run would give each
step what its own speed allows). The choice is printed and kept in tour.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tinyvision.config import Config
from tinyvision.groups.points import Point
from tinyvision.studies import get_study
from tinyvision.tour_progress import duration
from tinyvision.train.budget import MARGIN

# the time budget a timed run is prepared with: small, so that budget.plan times its
# fewest batches (budget.MIN_STEPS), since only its seconds per batch are kept
TIMING_BUDGET_S = 1.0
MIN_TRAIN = 2000  # fewer training images than this, and the epochs are cut instead
MIN_TEST = 1000  # the test subset shrinks with the training one down to this
IMAGE_STEP = 100  # cut-down subsets are multiples of this


@dataclass(frozen=True)
class Speed:
    """One kind of run, timed: its seconds per image, and the images its data has."""

    train_s: float  # seconds of training per training image (a step's share)
    test_s: float  # seconds of evaluation per test image
    setup_s: float  # seconds to prepare the run (data, thread and precision probes)
    train_images: int  # the training images it has at the part's full budget
    test_images: int


@dataclass(frozen=True)
class Part:
    """A study of the tour whose budget the sizing may cut."""

    name: str  # 1-cd, 1-e, 1-e heads
    study: str
    train: int  # data.train_subset at the fixed budget
    test: int  # data.test_subset
    epochs: int
    cut: str  # what goes first: "images" (epochs kept) or "epochs" (down to min_epochs)
    min_epochs: int = 1


@dataclass(frozen=True)
class Choice:
    """A part's budget: the subsets and epochs its runs are given, and its estimate."""

    part: str
    train: int  # data.train_subset (the full budget's own value when not cut)
    test: int
    epochs: int
    train_images: int  # the images that gives (a subset larger than the data is all of it)
    test_images: int
    estimate_s: float  # its runs' training and evaluation, setups included
    steps_s: tuple[float, ...]  # the same, run by run

    def overrides(self) -> list[str]:
        return [
            f"data.train_subset={self.train}",
            f"data.test_subset={self.test}",
            f"train.epochs={self.epochs}",
        ]


def run_seconds(speed: Speed, train: int, test: int, epochs: int) -> float:
    """A run's estimated seconds: setup, epoch 0 (the evaluation before training passes
    over the training and the test images) and its epochs of training and evaluation."""
    train, test = min(train, speed.train_images), min(test, speed.test_images)
    evaluate = speed.test_s * test
    return (
        speed.setup_s + speed.test_s * (train + test) + epochs * (speed.train_s * train + evaluate)
    )


def choice(part: Part, speeds: Sequence[Speed], train: int, test: int, epochs: int) -> Choice:
    steps = tuple(run_seconds(s, train, test, epochs) for s in speeds)
    images = min(train, speeds[0].train_images), min(test, speeds[0].test_images)
    return Choice(part.name, train, test, epochs, *images, sum(steps), steps)


def eval_images(part: Part, speed: Speed, train: int) -> int:
    """The test images beside `train` training images: the full budget's share of them,
    in steps of IMAGE_STEP, no fewer than MIN_TEST (or all there are)."""
    full_train = min(part.train, speed.train_images)
    full_test = min(part.test, speed.test_images)
    if train >= full_train:
        return part.test
    share = full_test * train / full_train
    return min(full_test, max(MIN_TEST, int(share // IMAGE_STEP) * IMAGE_STEP))


def candidates(part: Part, speed: Speed) -> list[tuple[int, int]]:
    """(training images, epochs) in the part's order of preference, its full budget first."""
    full = min(part.train, speed.train_images)
    fewest = min(MIN_TRAIN, full)
    below = range((full - 1) // IMAGE_STEP * IMAGE_STEP, fewest - 1, -IMAGE_STEP)
    images = [part.train, *(n for n in below if n > 0)]
    if part.cut == "images":
        return [(n, part.epochs) for n in images] + [
            (images[-1], e) for e in range(part.epochs - 1, 0, -1)
        ]
    floor = min(part.min_epochs, part.epochs)
    return (
        [(part.train, e) for e in range(part.epochs, floor - 1, -1)]
        + [(n, floor) for n in images[1:]]
        + [(images[-1], e) for e in range(floor - 1, 0, -1)]
    )


def fit(part: Part, speeds: Sequence[Speed], seconds: float) -> Choice:
    """The part's most preferred budget estimated within `seconds` (else its smallest)."""
    options = candidates(part, speeds[0])
    for train, epochs in options:
        made = choice(part, speeds, train, eval_images(part, speeds[0], train), epochs)
        if made.estimate_s <= seconds:
            return made
    train, epochs = options[-1]
    return choice(part, speeds, train, eval_images(part, speeds[0], train), epochs)


def full_budgets(parts: Sequence[Part], speeds: dict[str, Sequence[Speed]]) -> list[Choice]:
    return [choice(p, speeds[p.name], p.train, p.test, p.epochs) for p in parts]


def choose(
    parts: Sequence[Part], speeds: dict[str, Sequence[Speed]], seconds: float
) -> list[Choice]:
    """Each part's budget so that together they fit in `seconds`: the full budgets if they
    fit, else each part given its runs' setups (which no budget cuts) and the same share
    of its full training and evaluation time (`fit` then cuts it its own way)."""
    full = full_budgets(parts, speeds)
    if sum(c.estimate_s for c in full) <= seconds:
        return full
    setups = [sum(s.setup_s for s in speeds[p.name]) for p in parts]
    work = sum(c.estimate_s for c in full) - sum(setups)
    share = max(seconds - sum(setups), 0.0) / work if work > 0 else 0.0
    return [
        fit(p, speeds[p.name], setup + share * (c.estimate_s - setup))
        for p, c, setup in zip(parts, full, setups)
    ]


def step_configs(part: Part, overrides: list[str]) -> list[Config]:
    """The configs of the part's runs, as its study makes them (seed 0), to be timed."""
    timed = f"train.time_budget={TIMING_BUDGET_S:g}"
    shared = [*overrides, f"data.train_subset={part.train}", f"data.test_subset={part.test}"]
    return [
        Point(preset, {"step": label}, [*extra, timed], 0, shared=shared).config()
        for label, preset, extra in get_study(part.study).steps
    ]


def kind(cfg: Config) -> str:
    """What a run's speed depends on: its model, its data and its batch sizes."""
    what = {
        "model": asdict(cfg.model),
        "data": cfg.data.name,
        "batch": [cfg.train.batch_size, cfg.train.eval_batch_size],
    }
    return json.dumps(what, sort_keys=True, default=str)


Prepare = Callable[[Config], Any]  # a config -> its prepared Experiment


def time_runs(
    configs: Sequence[Config],
    prepare: Prepare,
    clock: Callable[[], float] = time.perf_counter,
    timed: dict[str, Speed] | None = None,
) -> list[Speed]:
    """Each config's speed, timed once per kind of run (`kind`); `timed`: the kinds timed
    already (by an earlier call), added to as this one times more."""
    timed = {} if timed is None else timed
    speeds = []
    for cfg in configs:
        key = kind(cfg)
        if key not in timed:
            start = clock()
            exp = prepare(cfg)
            setup_s = clock() - start
            plan = exp.sized
            train, test = len(exp.train_loader.labels), len(exp.test_loader.labels)
            timed[key] = Speed(
                plan.train_s / max(train, 1), plan.test_s / max(test, 1), setup_s, train, test
            )
            del exp  # its data and model: the next kind's, not both, in memory
        speeds.append(timed[key])
    return speeds


@dataclass(frozen=True)
class Sizing:
    """What the tour chose, and from what: kept in tour.json under `sizing`."""

    minutes: float
    timing_s: float  # the seconds the timing took
    kinds: int  # the kinds of run timed
    fixed_s: float  # the estimate for the parts at a fixed budget
    full_estimate_s: float  # the whole tour at the fixed budgets, timing included
    estimate_s: float  # and at the budgets chosen
    choices: tuple[Choice, ...]
    full: tuple[Choice, ...]

    @property
    def cut(self) -> bool:
        """Whether a part trains less than its fixed budget."""
        return self.choices != self.full

    @property
    def over(self) -> bool:
        """Whether even the budgets chosen are estimated over the minutes."""
        return self.estimate_s > self.minutes * 60

    def record(self) -> dict[str, Any]:
        full = {c.part: c for c in self.full}
        return {
            "minutes": self.minutes,
            "cut": self.cut,
            "over": self.over,
            "timing_s": round(self.timing_s, 1),
            "kinds_timed": self.kinds,
            "fixed_parts_estimate_s": round(self.fixed_s, 1),
            "full_estimate_s": round(self.full_estimate_s, 1),
            "estimate_s": round(self.estimate_s, 1),
            "parts": {
                c.part: {
                    "train_images": c.train_images,
                    "test_images": c.test_images,
                    "epochs": c.epochs,
                    "full_train_images": full[c.part].train_images,
                    "full_test_images": full[c.part].test_images,
                    "full_epochs": full[c.part].epochs,
                    "estimate_s": round(c.estimate_s, 1),
                }
                for c in self.choices
            },
        }

    def lines(self) -> list[str]:
        """What the tour prints about its choice."""
        took = f"timed {self.kinds} kinds of run in {duration(self.timing_s)}"
        full = f"the fixed budgets would take about {duration(self.full_estimate_s)} here"
        if not self.cut and not self.over:
            return [f"{took}: {full}, within --minutes {self.minutes:g}: the fixed budgets"]
        what = (
            "so the studies are cut down" if self.cut else "and the studies are at their smallest"
        )
        out = [f"{took}: {full}, over --minutes {self.minutes:g}, {what}:"]
        full_of = {c.part: c for c in self.full}
        out += [f"  {describe(c, full_of[c.part])}" for c in self.choices]
        total = f"estimated total about {duration(self.estimate_s)}"
        if self.over:
            total += (
                f", over --minutes {self.minutes:g} even at the smallest budgets the tour cuts to"
            )
        out.append(f"{total} (--minutes 0 runs the fixed budgets)")
        return out


def describe(chosen: Choice, full: Choice) -> str:
    """`1-cd: 4 epochs on 2,600 of 12,000 training images (1,000 of 4,000 test), about 2m10s`."""

    def of(now: int, was: int) -> str:
        return f"{now:,}" if now == was else f"{now:,} of {was:,}"

    return (
        f"{chosen.part}: {of(chosen.epochs, full.epochs)} epochs on "
        f"{of(chosen.train_images, full.train_images)} training images "
        f"({of(chosen.test_images, full.test_images)} test), "
        f"about {duration(chosen.estimate_s)}"
    )


def size_tour(
    parts: Sequence[Part],
    overrides: dict[str, list[str]],
    minutes: float,
    fixed_s: float,
    prepare: Prepare,
    clock: Callable[[], float] = time.perf_counter,
) -> Sizing:
    """Time the parts' runs (`overrides`: each part's data), then choose their budgets so
    that the tour's estimate, `fixed_s` and the timing included, fits `minutes`."""
    start = clock()
    timed: dict[str, Speed] = {}  # a kind of run shared by two parts is timed once
    speeds = {
        p.name: time_runs(step_configs(p, overrides[p.name]), prepare, clock, timed=timed)
        for p in parts
    }
    timing_s = clock() - start
    left = minutes * 60 * (1 - MARGIN) - timing_s - fixed_s
    chosen = choose(parts, speeds, left)
    full = full_budgets(parts, speeds)
    kinds = len(timed)

    def total(choices: list[Choice]) -> float:
        return timing_s + fixed_s + sum(c.estimate_s for c in choices)

    return Sizing(
        minutes,
        timing_s,
        kinds,
        fixed_s,
        total(full),
        total(chosen),
        tuple(chosen),
        tuple(full),
    )
