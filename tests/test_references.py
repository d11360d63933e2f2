"""Every hand-written piece against its reference: torch's schedulers, torchvision's
functional transforms, and normalization values worked out by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.optim import lr_scheduler as torch_lr

from tinyvision.config import ScheduleConfig
from tinyvision.train.optim import ONE_CYCLE_DIV, ONE_CYCLE_FINAL_DIV, create_schedule, lr_curve

# ---------------------------------------------------------------------------- schedules

LR, EPOCHS, STEPS = 0.1, 12, 7  # 7 batches per epoch: 84 steps with interval=step


def _lrs(make: Callable[[torch.optim.Optimizer], object], per_step: bool) -> list[float]:
    """The lr of every optimizer step of a whole run, the schedule stepped as loop.py does."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=LR)
    sched = make(opt)
    lrs = []
    for _ in range(EPOCHS):
        for _ in range(STEPS):
            lrs.append(opt.param_groups[0]["lr"])
            p.grad = torch.ones(1)
            opt.step()
            if per_step:
                sched.step()
        if not per_step:
            sched.step()
    return lrs


def _torch_reference(name: str, cfg: ScheduleConfig, total: int, warmup: int):
    """torch's scheduler with the parameters that correspond to ours."""
    floor = cfg.min_factor * LR

    def make(opt: torch.optim.Optimizer):
        match name:
            case "step":
                return torch_lr.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
            case "exponential":
                return torch_lr.ExponentialLR(opt, gamma=cfg.gamma)
            case "cosine":
                return torch_lr.CosineAnnealingLR(opt, T_max=total, eta_min=floor)
            case "polynomial":
                return torch_lr.PolynomialLR(opt, total_iters=total, power=cfg.power)
            case "linear":
                return torch_lr.LinearLR(opt, 1.0, cfg.min_factor, total_iters=total)
            case "one-cycle":
                return torch_lr.OneCycleLR(
                    opt, max_lr=LR, total_steps=total, pct_start=cfg.pct_start,
                    anneal_strategy="cos", div_factor=ONE_CYCLE_DIV,
                    final_div_factor=ONE_CYCLE_FINAL_DIV, cycle_momentum=False,
                )  # fmt: skip
            case "warmup-cosine":
                # Our warmup climbs (t + 1) / (warmup + 1): LinearLR from 1 / (warmup + 1).
                ramp = torch_lr.LinearLR(opt, 1 / (warmup + 1), 1.0, total_iters=warmup)
                decay = torch_lr.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=floor)
                return torch_lr.SequentialLR(opt, [ramp, decay], milestones=[warmup])
        raise AssertionError(name)

    return make


SCHEDULE_CASES = {
    "step": ScheduleConfig(name="step", step_size=3, gamma=0.5),
    "exponential": ScheduleConfig(name="exponential", gamma=0.9),
    "cosine": ScheduleConfig(name="cosine"),
    "cosine-floor": ScheduleConfig(name="cosine", min_factor=0.05),
    "polynomial": ScheduleConfig(name="polynomial", power=2.0),
    "polynomial-cubic": ScheduleConfig(name="polynomial", power=3.0),
    "linear": ScheduleConfig(name="linear"),
    "linear-floor": ScheduleConfig(name="linear", min_factor=0.1),
    "one-cycle": ScheduleConfig(name="one-cycle"),
    "one-cycle-half": ScheduleConfig(name="one-cycle", pct_start=0.5),
    "warmup-cosine": ScheduleConfig(name="warmup-cosine", warmup_epochs=2),
    "warmup-cosine-floor": ScheduleConfig(name="warmup-cosine", warmup_epochs=1.5, min_factor=0.1),
}


@pytest.mark.parametrize("interval", ["epoch", "step"])
@pytest.mark.parametrize("case", SCHEDULE_CASES)
def test_schedule_is_torch_scheduler(case, interval):
    """Every step of a whole run: the same lr as torch's scheduler, to rel 1e-6."""
    cfg = SCHEDULE_CASES[case]
    cfg = ScheduleConfig(**{**vars(cfg), "interval": interval})
    per_step = interval == "step"
    total = EPOCHS * STEPS if per_step else EPOCHS
    warmup = round(cfg.warmup_epochs * (STEPS if per_step else 1))
    ours = _lrs(lambda opt: create_schedule(cfg, opt, EPOCHS, STEPS), per_step)
    theirs = _lrs(_torch_reference(cfg.name, cfg, total, warmup), per_step)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=0)
    # The schedule figure's curve: the lr of each epoch's first step
    assert lr_curve(cfg, LR, EPOCHS, STEPS) == pytest.approx(ours[::STEPS], rel=1e-12)
    if cfg.name == "one-cycle":  # torch's cycle: the floor exactly at the last step
        assert ours[-1] == pytest.approx(LR / ONE_CYCLE_DIV / ONE_CYCLE_FINAL_DIV, rel=1e-6)


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_polynomial_with_a_floor_is_the_formula(interval):
    """torch's PolynomialLR has no floor: lr (m + (1 - m) (1 - t / T)^p), t the step or epoch."""
    cfg = ScheduleConfig(name="polynomial", power=2.0, min_factor=0.2, interval=interval)
    per_step = interval == "step"
    total = EPOCHS * STEPS if per_step else EPOCHS
    ours = _lrs(lambda opt: create_schedule(cfg, opt, EPOCHS, STEPS), per_step)
    times = range(total) if per_step else [i // STEPS for i in range(EPOCHS * STEPS)]
    expected = [LR * (0.2 + 0.8 * (1 - t / total) ** 2) for t in times]
    assert ours == pytest.approx(expected, rel=1e-6, abs=0)


def test_one_cycle_short_runs_stay_finite():
    """Where torch's OneCycleLR divides by zero (a warm-up phase of length 0), ours peaks."""
    for epochs in (1, 2, 3):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=LR)
        sched = create_schedule(ScheduleConfig(name="one-cycle", pct_start=0.5), opt, epochs, 1)
        lrs = []
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert all(0 < v <= LR for v in lrs)
        if epochs == 2:  # the peak at step 2 * 0.5 - 1 = 0, the floor at step 1
            assert lrs == pytest.approx([LR, LR / ONE_CYCLE_DIV / ONE_CYCLE_FINAL_DIV], rel=1e-6)
