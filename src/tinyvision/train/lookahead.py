"""Lookahead (Zhang et al., 2019): slow weights that pull the trained ones back.

Every `every` optimizer steps the slow weights move a fraction `alpha` of the way to the
trained ("fast") weights, and the fast weights are set back to them. The optimizer
explores `every` steps ahead, and only part of where it went is kept: the steps' noise
averages out while their common direction stays, which lets a short run use a large
learning rate. The fast recipes for CIFAR-10 (Jordan's airbench) use it with every = 5.
Unlike the weight average (train/ema.py), which only evaluates, Lookahead changes the
weights that are trained. Only trained parameters take part (not batch norm's running
statistics, nor a frozen layer); the optimizer's momentum is kept as it is.
"""

from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    def __init__(self, model: nn.Module, alpha: float, every: int):
        self.alpha = alpha
        self.every = every
        self.steps = 0
        self._fast = [p for p in model.parameters() if p.requires_grad]
        self.slow = [p.detach().clone() for p in self._fast]

    @torch.no_grad()
    def step(self) -> None:
        """After each optimizer step: every `every` steps, pull the slow weights toward
        the fast ones and start the fast ones again from there."""
        self.steps += 1
        if self.steps % self.every:
            return
        fast = [p.detach() for p in self._fast]
        torch._foreach_lerp_(self.slow, fast, self.alpha)
        torch._foreach_copy_(fast, self.slow)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "slow": self.slow}

    def load_state_dict(self, state: dict) -> None:
        slow = state["slow"]
        if len(slow) != len(self.slow) or any(
            a.shape != b.shape for a, b in zip(slow, self.slow, strict=True)
        ):
            raise ValueError("the checkpoint's Lookahead weights do not fit the model")
        for mine, theirs in zip(self.slow, slow, strict=True):
            mine.copy_(theirs)
        self.steps = int(state["steps"])
