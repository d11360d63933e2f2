"""Optimizer and learning-rate schedule factories.

Schedules are written as plain formulas of t (the epoch, or the step with
`schedule.interval=step`) driving a `LambdaLR`, so their state in a checkpoint is just
a counter and the curves are easy to read off. `exponential` with gamma=0.95 stepped per
epoch is exactly the course's `ExponentialLR(gamma=0.95)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from tinyvision.config import OptimConfig, ScheduleConfig

ONE_CYCLE_DIV = 25.0  # one-cycle starts at lr / 25 (torch's OneCycleLR default)
ONE_CYCLE_FINAL_DIV = 1e4  # and ends at lr / 25 / 1e4


def create_optimizer(
    cfg: OptimConfig, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    p, lr, wd = list(params), cfg.lr, cfg.weight_decay
    if wd and not cfg.norm_decay:  # two groups: the 1-D parameters without weight decay
        decayed, kept = [q for q in p if q.ndim > 1], [q for q in p if q.ndim <= 1]
        p = [{"params": decayed}, *([{"params": kept, "weight_decay": 0.0}] if kept else [])]
    if cfg.name == "sgd":
        return torch.optim.SGD(p, lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=wd)
    if cfg.name == "adam":
        return torch.optim.Adam(p, lr, betas=(cfg.beta1, cfg.beta2), weight_decay=wd)
    if cfg.name == "adamw":
        return torch.optim.AdamW(p, lr, betas=(cfg.beta1, cfg.beta2), weight_decay=wd)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(p, lr, weight_decay=wd)
    if cfg.name == "adadelta":
        return torch.optim.Adadelta(p, lr, rho=cfg.rho, weight_decay=wd)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(p, lr, alpha=cfg.alpha, momentum=cfg.momentum, weight_decay=wd)
    raise ValueError(f"unknown optimizer {cfg.name}")


def lr_factor(cfg: ScheduleConfig, total: int, warmup: int = 0) -> Callable[[int], float]:
    """The multiplier of the base learning rate at time t, for t in 0..total-1."""
    floor = cfg.min_factor

    def cosine(progress: float) -> float:
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def one_cycle(t: int) -> float:
        # As torch's OneCycleLR: the peak at step pct_start * total - 1, the floor reached
        # at the last step, total - 1 (a zero-length phase is skipped, where torch divides by 0).
        start, end = 1 / ONE_CYCLE_DIV, 1 / ONE_CYCLE_DIV / ONE_CYCLE_FINAL_DIV
        peak, last = cfg.pct_start * total - 1, total - 1
        if t <= peak:
            if peak == 0:  # t = 0 is the peak itself
                return 1.0
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * t / peak))
        rest = (t - peak) / (last - peak) if last > peak else 1.0
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * min(rest, 1.0)))

    def factor(t: int) -> float:
        progress = t / max(total, 1)
        match cfg.name:
            case "constant":
                return 1.0
            case "step":
                return cfg.gamma ** (t // cfg.step_size)
            case "exponential":
                return cfg.gamma**t
            case "cosine":
                return cosine(progress)
            case "polynomial":
                return floor + (1 - floor) * max(1 - progress, 0.0) ** cfg.power
            case "linear":
                return floor + (1 - floor) * max(1 - progress, 0.0)
            case "one-cycle":
                return one_cycle(t)
            case "warmup-cosine":
                if t < warmup:
                    return (t + 1) / (warmup + 1)
                return cosine((t - warmup) / max(total - warmup, 1))
        raise ValueError(f"unknown schedule {cfg.name}")

    return factor


def _run_factor(cfg: ScheduleConfig, epochs: int, steps_per_epoch: int) -> Callable[[int], float]:
    """lr_factor for a run of `epochs`, in the schedule's unit (epochs or steps)."""
    per_step = cfg.interval == "step"
    total = epochs * steps_per_epoch if per_step else epochs
    warmup = round(cfg.warmup_epochs * (steps_per_epoch if per_step else 1))
    return lr_factor(cfg, total, warmup)


def create_schedule(
    cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _run_factor(cfg, epochs, steps_per_epoch))


def reschedule(
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: ScheduleConfig,
    epochs: int,
    steps_per_epoch: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule of a run whose length changed on the way (a time budget planning
    again): the same optimizer, its counter where it was, the learning rate set to the
    new schedule's at that count. What a resume builds from the config and loads the
    counter into, so both go on alike."""
    factor = _run_factor(cfg, epochs, steps_per_epoch)
    # built one count back: its initial step brings it to the count and sets the rate
    return torch.optim.lr_scheduler.LambdaLR(
        scheduler.optimizer, factor, last_epoch=scheduler.last_epoch - 1
    )


def lr_curve(
    cfg: ScheduleConfig, base_lr: float, epochs: int, steps_per_epoch: int = 1
) -> list[float]:
    """The learning rate at the start of each epoch, for the schedule figure."""
    per_step = cfg.interval == "step"
    total = epochs * steps_per_epoch if per_step else epochs
    warmup = round(cfg.warmup_epochs * (steps_per_epoch if per_step else 1))
    f = lr_factor(cfg, total, warmup)
    return [base_lr * f(e * steps_per_epoch if per_step else e) for e in range(epochs)]
