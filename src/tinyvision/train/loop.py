"""The training loop: `fit` runs epochs; an epoch is a train pass and a test pass.

What is trained is a `Learner`: a model, its optimizer and schedule, and how one batch
is stepped. The default step is the usual autograd one; a model trained by hand plugs
in its own backward pass through the same interface, so every variant shares the loop,
the metrics and the run records.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from tinyvision.data.augment import translate
from tinyvision.train.ema import WeightAverage
from tinyvision.train.lookahead import Lookahead
from tinyvision.train.metrics import Accumulator
from tinyvision.train.progress import EpochProgress


@dataclass
class Learner:
    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    step_per_batch: bool = False  # the schedule steps every batch, not every epoch
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    amp: bool = False  # bf16 autocast
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None  # e.g. the compiled model
    custom_step: Callable[[torch.Tensor, torch.Tensor], tuple] | None = None
    fixed_lr: float = float("nan")  # the learning rate of a custom step (no optimizer)
    ema: WeightAverage | None = None  # evaluate with averaged weights
    lookahead: Lookahead | None = None  # pulls the trained weights back every few steps
    tta: bool = False  # evaluate on each image and its mirror image, logits averaged
    # and on each image moved this many pixels down-right and up-left (0: not moved)
    tta_shift: int = 0

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            # `or` would ask a compiled module for its len(), which most models lack
            forward = self.model if self.forward is None else self.forward
            return forward(x).float()

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for evaluation: averaged over the test-time views asked for.

        With shifts, the image as it is weighs as much as its two moved copies together
        (they lose a border's pixels): (2 f(x) + f(x moved +s) + f(x moved -s)) / 4.
        """
        logits = self._flipped(x)
        if self.tta_shift:
            s = self.tta_shift
            moved = self._flipped(translate(x, s, s)) + self._flipped(translate(x, -s, -s))
            logits = (2 * logits + moved) / 4
        return logits

    def _flipped(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.predict(x)
        if self.tta:
            logits = (logits + self.predict(x.flip(-1))) / 2
        return logits

    def evaluation_weights(self):
        """The weights evaluation uses: the running average's when there is one."""
        return contextlib.nullcontext() if self.ema is None else self.ema.swapped_in()

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.custom_step is not None:
            return self.custom_step(x, y)
        logits = self.predict(x)
        loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.lookahead is not None:
            self.lookahead.step()
        if self.ema is not None:
            self.ema.update()
        if self.loss_fn.reduction == "sum":  # gradients summed; the metrics stay per-example
            loss = loss / len(y)
        return loss, logits

    @property
    def lr(self) -> float:
        if self.optimizer is None:
            return self.fixed_lr
        return self.optimizer.param_groups[0]["lr"]


def train_epoch(learner: Learner, loader, progress: EpochProgress | None = None) -> dict:
    learner.model.train()
    acc = Accumulator(learner.device)
    for x, y in loader:
        loss, logits = learner.train_step(x, y)
        acc.add(loss, logits, y)
        if learner.step_per_batch and learner.scheduler is not None:
            learner.scheduler.step()
        if progress:
            progress.advance(acc)
    return acc.read()


@torch.inference_mode()
def evaluate(learner: Learner, loader, views: bool = True) -> dict:
    """Loss and accuracy on `loader`, with the test-time views asked for (`views`) or on
    the images as they are."""
    learner.model.eval()
    acc = Accumulator(learner.device)
    loss_fn = nn.CrossEntropyLoss()  # the plain loss, even when training smooths labels
    with learner.evaluation_weights():
        for x, y in loader:
            logits = learner.infer(x) if views else learner.predict(x)
            acc.add(loss_fn(logits, y), logits, y)
    return acc.read()


def _row(
    number: int, train: dict, test: dict, lr: float, start: float, images_per_second: float
) -> dict:
    """The metrics.csv row of epoch `number`, its seconds counted from `start` to now."""
    return {
        "epoch": number,
        "train_loss": train["loss"],
        "train_acc": train["acc"],
        "train_acc5": train["acc5"],
        "test_loss": test["loss"],
        "test_acc": test["acc"],
        "test_acc5": test["acc5"],
        "lr": lr,
        "epoch_seconds": time.perf_counter() - start,
        "images_per_second": images_per_second,
    }


def initial_row(learner: Learner, train_eval_loader, test_loader) -> dict:
    """Epoch 0: the weights before any step, evaluated on the training and the test images
    (both as the test split is: no augmentation, no dropout, fixed weights). With random
    weights and k balanced classes the loss is about ln k and the accuracy about 1/k.
    Without test-time views: they would multiply the cost of a check whose answer is known
    (six views of the 60,000 training images cost about two epochs of a small ViT)."""
    start = time.perf_counter()
    train = evaluate(learner, train_eval_loader, views=False)
    test = evaluate(learner, test_loader, views=False)
    return _row(0, train, test, learner.lr, start, float("nan"))  # nothing was trained


# The test metrics of an epoch whose test pass was skipped (train.eval_every)
NOT_EVALUATED = {"loss": math.nan, "acc": math.nan, "acc5": math.nan}


def epoch(
    learner: Learner,
    train_loader,
    test_loader,
    index: int,
    progress: EpochProgress | None = None,
    evaluated: bool = True,
) -> dict:
    """One epoch: a train pass, then a test pass unless `evaluated` is false (its test
    metrics are then NaN). Returns the metrics.csv row."""
    lr = learner.lr
    start = time.perf_counter()
    if progress:
        progress.start(index, len(train_loader))
    train = train_epoch(learner, train_loader, progress)
    seconds = time.perf_counter() - start
    test = evaluate(learner, test_loader) if evaluated else NOT_EVALUATED
    if not learner.step_per_batch and learner.scheduler is not None:
        learner.scheduler.step()
    per_second = len(train_loader.labels) / seconds if seconds > 0 else float("nan")
    return _row(index + 1, train, test, lr, start, per_second)


def fit(
    learner: Learner,
    train_loader,
    test_loader,
    epochs: int | Callable[[], int],
    start_epoch: int = 0,
    on_epoch_end: Callable[[dict], str | None] | None = None,
    progress: EpochProgress | None = None,
    eval_every: int = 1,
) -> str:
    """Train until `epochs`; returns the status, `completed` or `diverged`, or the status
    `on_epoch_end` returned to stop early (`pruned`). `epochs` may be a function, asked
    again after every epoch: the count can change on the way (a time budget plans again
    after the first epoch, once it has been measured). The test split is evaluated after
    every `eval_every`-th epoch (counted from the first, so a resumed run evaluates the
    same epochs) and after the last; evaluation draws nothing random, so skipping it
    leaves the training as it was.

    KeyboardInterrupt propagates: the caller records the run as interrupted, with the
    checkpoint of the last completed epoch left in place for `tinyvision resume`.
    """
    total = epochs if callable(epochs) else lambda: epochs
    index = start_epoch
    while index < total():
        evaluated = (index + 1) % eval_every == 0 or index + 1 >= total()
        row = epoch(learner, train_loader, test_loader, index, progress, evaluated)
        if progress:
            progress.end(row)
        verdict = on_epoch_end(row) if on_epoch_end else None
        if not math.isfinite(row["train_loss"]):
            return "diverged"
        if verdict:
            return verdict
        index += 1
    return "completed"
