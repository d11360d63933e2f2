"""Learning-rate schedules: the course's ExponentialLR, and each shape's end points."""

from __future__ import annotations

import warnings

import pytest
import torch

from tinyvision.config import SCHEDULES, ScheduleConfig
from tinyvision.train.optim import create_schedule, lr_curve, lr_factor, reschedule


def test_exponential_is_torch_exponential_lr():
    ours = lr_curve(ScheduleConfig(name="exponential", gamma=0.95), 0.1, 10)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
    theirs = []
    for _ in range(10):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert ours == pytest.approx(theirs)


@pytest.mark.parametrize("name", SCHEDULES)
def test_shapes(name):
    cfg = ScheduleConfig(name=name, warmup_epochs=2, step_size=3, gamma=0.5)
    curve = lr_curve(cfg, 1.0, 20)
    assert len(curve) == 20 and all(0 <= v <= 1.0 + 1e-9 for v in curve)
    if name == "constant":
        assert set(curve) == {1.0}
    elif name in ("one-cycle", "warmup-cosine"):
        assert curve[0] < max(curve) and curve[-1] < max(curve)
    else:
        assert curve[-1] < curve[0]


def test_per_step_schedule_moves_within_an_epoch():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = create_schedule(ScheduleConfig(name="cosine", interval="step"), opt, 2, 10)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 1.0 and lrs[5] < 1.0 and lrs[10] == pytest.approx(0.5) and lrs[-1] < 0.01


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_a_schedule_resized_on_the_way_goes_on_from_its_count(interval):
    """`reschedule` (a time budget planning again after epoch 1): the counter where it was,
    the rate the new length's at that count, then stepping on without torch's warnings;
    a schedule built for the new length with the counter loaded (what resume does) agrees."""
    cfg = ScheduleConfig(name="one-cycle", interval=interval, pct_start=0.25)
    steps = 5 if interval == "step" else 1
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.2)
    scheduler = create_schedule(cfg, optimizer, 4, 5)
    for _ in range(steps):  # epoch 1 under the first plan: 4 epochs
        optimizer.step()
        scheduler.step()
    new = lr_factor(cfg, 6 * steps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scheduler = reschedule(scheduler, cfg, 6, 5)
        assert scheduler.last_epoch == steps
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * new(steps))
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * new(steps + 1))
    assert scheduler.get_last_lr() == [optimizer.param_groups[0]["lr"]]

    resumed_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    resumed = create_schedule(cfg, resumed_opt, 6, 5)
    resumed_opt.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(scheduler.state_dict())
    for sched, opt in ((scheduler, optimizer), (resumed, resumed_opt)):
        opt.step()
        sched.step()
    assert resumed_opt.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * new(steps + 2))
