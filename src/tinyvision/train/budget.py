"""train.time_budget: as many epochs as fit in a time budget, decided before training.

A recipe sized for one machine is the wrong length on another: `fashion-fast-20`'s 20
epochs take about 4 minutes on a 2-core AMD EPYC Zen 5 (AVX-512 BF16, torch 2.14.1),
where bf16 pays, and about 25 on a 2-core AVX2-only Zen 3, which trains in float32. A
schedule that decays to the end (one-cycle, cosine) must know that end
before the first step, so the run is sized before it starts: a few training steps and
test batches of the run's own learner, on a copy of it, are timed, and the run trains
`min(train.epochs, budget // seconds per epoch)` epochs (at least one). The count is
written into the run's config.json, so `resume` keeps the schedule the run started with.

A few timed steps can be far off a whole epoch (on a busy machine, or one whose speed
drifts), so after its first epoch the run is planned once more from that epoch as
measured (`EpochPlan.replanned`): the same rule, with the measured epoch and the time
the evaluation before training took in place of their estimates. A new count changes
the schedule from the second epoch on (the first ran under the first plan), and is
written into config.json too.

Like the precision probe, the timing leaves the run untouched: it trains a deep copy,
draws its batches from its own generator and restores torch's random state, so a run
sized to N epochs (and left at N by the second plan) gives the same numbers as a run
told to train N. One whose count the second plan changes is not bit for bit one told
its final count: its first epoch ran under the first plan's schedule.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from tinyvision.config import Config
from tinyvision.data.loader import DeviceLoader
from tinyvision.train.loop import Learner

# Timed batches: at least MIN_STEPS, then more while the timing has taken less than
# SHARE of the budget (and under MAX_STEPS); each pass after one untimed warm-up batch.
MIN_STEPS = 3
MAX_STEPS = 20
SHARE = 0.01
# The estimate leaves this much of the budget unplanned: an epoch's checkpoint, metrics
# and progress line, and a machine slower during the run than while it was timed (on a
# 2-core AVX2-only AMD EPYC Zen 3 virtual machine, torch 2.14.1, load 1.2-1.9, epochs ran
# 2-16% longer than their estimate over 8 runs of 5 minutes).
MARGIN = 0.10

# A timer runs one batch (a training step or a test batch) and returns its seconds.
Timer = Callable[[Callable[[], None]], float]


def wall_clock(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


# summary.json's `time_budget`: what EpochPlan.record() writes and checked_record() reads
RECORD_KEYS = (
    "seconds",
    "asked_epochs",
    "epochs",
    "epoch_estimate_s",
    "train_estimate_s",
    "test_estimate_s",
)
# and, once the run has planned again after its first epoch (records written before
# that, or by an older tinyvision, lack them)
REPLAN_KEYS = ("first_epoch_s", "planned_epochs")


@dataclass(frozen=True)
class EpochPlan:
    """How long an epoch was timed to take, and the epoch count it gave."""

    budget_s: float
    asked_epochs: int  # train.epochs: the most the run trains
    epochs: int  # what it trains
    train_s: float  # estimated seconds of an epoch's training pass
    test_s: float  # and of its test pass
    # planned again after the first epoch: how long it took, and the count planned before
    first_epoch_s: float | None = None
    planned_epochs: int | None = None

    def record(self) -> dict[str, Any]:
        """What summary.json keeps under `time_budget`."""
        record = {
            "seconds": self.budget_s,
            "asked_epochs": self.asked_epochs,
            "epochs": self.epochs,
            "epoch_estimate_s": round(self.train_s + self.test_s, 3),
            "train_estimate_s": round(self.train_s, 3),
            "test_estimate_s": round(self.test_s, 3),
        }
        if self.first_epoch_s is not None:
            record["first_epoch_s"] = round(self.first_epoch_s, 3)
            record["planned_epochs"] = self.planned_epochs
        return record

    def replanned(self, first_epoch_s: float, before_s: float) -> EpochPlan:
        """The plan once the first epoch has run: as many epochs of `first_epoch_s` (its
        train and test passes, measured) as fit in the budget after `before_s` (the
        evaluation before training, measured), less MARGIN: 1..asked_epochs. An epoch as
        long as its estimate keeps the count."""
        epochs = epochs_within(max(self.budget_s - before_s, 0.0), first_epoch_s, self.asked_epochs)
        return dataclasses.replace(
            self, epochs=epochs, first_epoch_s=first_epoch_s, planned_epochs=self.epochs
        )

    def describe_replan(self) -> str:
        """The progress line of a count changed after the first epoch."""
        return (
            f"time budget {self.budget_s:g}s: the first epoch took {self.first_epoch_s:.1f}s "
            f"(estimated {self.train_s + self.test_s:.1f}s): {self.epochs} of "
            f"{self.asked_epochs} epochs, not {self.planned_epochs}"
        )

    def describe(self) -> str:
        epoch_s = self.train_s + self.test_s
        return (
            f"time budget {self.budget_s:g}s: {self.epochs} of {self.asked_epochs} epochs "
            f"(about {epoch_s:.1f}s an epoch here)"
        )


def checked_record(record: Any) -> dict[str, Any] | None:
    """A `record()` read back from a checkpoint or summary.json, or None if it is not one
    (the files are the user's, and what is kept is written out again). The keys of a
    re-plan are kept when both are there, as numbers; a record without them is one of a
    run not (yet) planned again, or one written before runs were."""
    if not isinstance(record, dict):
        return None
    keys = RECORD_KEYS + REPLAN_KEYS if any(k in record for k in REPLAN_KEYS) else RECORD_KEYS
    values = [record.get(key) for key in keys]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return None
    return dict(zip(keys, values, strict=True))


def epochs_within(budget_s: float, epoch_s: float, asked: int) -> int:
    """The epochs of `epoch_s` seconds that fit in the budget, less MARGIN: 1..asked."""
    fits = math.floor(budget_s * (1 - MARGIN) / epoch_s) if epoch_s > 0 else asked
    return max(1, min(asked, fits))


def sized_config(cfg: Config, epochs: int) -> Config:
    """The config of a run sized to `epochs`: a warmup keeps its share of the run, so a
    warmup of 1 epoch out of 20 becomes 0.2 of 4 and the peak learning rate is still
    reached (left as it was, it could outlast the whole shortened run)."""
    share = epochs / cfg.train.epochs
    schedule = dataclasses.replace(cfg.schedule, warmup_epochs=cfg.schedule.warmup_epochs * share)
    train = dataclasses.replace(cfg.train, epochs=epochs)
    return dataclasses.replace(cfg, train=train, schedule=schedule)


def plan(
    learner: Learner,
    train_loader: DeviceLoader,
    test_loader: DeviceLoader,
    budget_s: float,
    asked_epochs: int,
    timer: Timer | None = None,
) -> EpochPlan:
    """Time the run's learner on a copy; the epochs of it that fit in `budget_s`."""
    timer = timer or wall_clock
    twin = _copy(learner)
    device = learner.device
    with _forked_rng(device):  # dropout and mixing draw from it
        batches = _endless(_own_order(train_loader))
        twin.model.train()

        def train_step() -> None:
            twin.train_step(*next(batches))
            _sync(device)

        step_s = _mean_seconds(train_step, budget_s, timer) if len(train_loader) else 0.0
        tests = _endless(test_loader)
        twin.model.eval()

        def test_batch() -> None:
            twin.infer(next(tests)[0])
            _sync(device)

        # as an epoch's test pass does: the averaged weights swapped in once for all batches
        with torch.inference_mode(), twin.evaluation_weights():
            batch_s = _mean_seconds(test_batch, budget_s, timer) if len(test_loader) else 0.0
    train_s = step_s * len(train_loader)
    test_s = batch_s * len(test_loader)
    # epoch 0, the evaluation before training, passes over the training and test images once
    initial_s = batch_s * (
        -(-len(train_loader.labels) // test_loader.batch_size) + len(test_loader)
    )
    epochs = epochs_within(max(budget_s - initial_s, 0.0), train_s + test_s, asked_epochs)
    return EpochPlan(budget_s, asked_epochs, epochs, train_s, test_s)


def _copy(learner: Learner) -> Learner:
    """The learner, deep-copied as one (the optimizer and weight average follow the
    copied model), without its schedule, which the timing never steps."""
    return copy.deepcopy(dataclasses.replace(learner, scheduler=None))


def _own_order(loader: DeviceLoader) -> DeviceLoader:
    """The loader's images in an order (and augmentation) of the timing's own."""
    generator = torch.Generator(device=loader.labels.device).manual_seed(0)
    return DeviceLoader(
        loader.images,
        loader.labels,
        loader.batch_size,
        loader.transform,
        loader.labels.device,
        shuffle=loader.shuffle,
        generator=generator,
        drop_last=loader.drop_last,
    )


def _endless(loader: DeviceLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches, again from the start when they run out (a split of one or
    two batches still gets MIN_STEPS timed)."""
    while True:
        yield from loader


def _mean_seconds(batch: Callable[[], None], budget_s: float, timer: Timer) -> float:
    """A warm-up batch (first-call costs), then the mean of the batches timed after it (an
    epoch is their sum): at least MIN_STEPS, more while they take under SHARE of the budget."""
    timer(batch)
    seconds: list[float] = []
    while len(seconds) < MIN_STEPS or (
        len(seconds) < MAX_STEPS and sum(seconds) < SHARE * budget_s
    ):
        seconds.append(timer(batch))
    return statistics.fmean(seconds)


def _forked_rng(device: torch.device):
    """torch's random state, the device's too, restored on the way out."""
    if device.type in ("cuda", "mps"):
        return torch.random.fork_rng(devices=[device.index or 0], device_type=device.type)
    return torch.random.fork_rng(devices=[])


def _sync(device: torch.device) -> None:
    """Wait for the batch's kernels, not only their launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
