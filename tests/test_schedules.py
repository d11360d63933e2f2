"""Learning-rate schedules: the course's ExponentialLR, and each shape's end points."""

from __future__ import annotations

import pytest
import torch

from tinyvision.config import SCHEDULES, ScheduleConfig
from tinyvision.train.optim import create_schedule, lr_curve


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
