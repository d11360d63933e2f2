"""Weight averaging: an exponential moving average (EMA) of the weights, for evaluation.

The averaged weights sit in a flatter part of the loss surface than the last step's and
usually test a little better, most of all late in a short, high learning-rate run. Every
floating-point tensor of the state is averaged, BatchNorm's running statistics included,
so the averaged model is self-consistent; integer buffers (BatchNorm's batch counter)
are copied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class WeightAverage:
    """EMA of `model`'s state with `decay` per update.

    Early on the decay is lowered to (1 + n) / (10 + n) after n updates, so the average
    does not remember the random initial weights for its whole horizon.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.model = model
        self.decay = decay
        self.updates = 0
        live = model.state_dict()  # views of the model's own tensors: they stay current
        self.average = {k: v.detach().clone() for k, v in live.items()}
        # Paired once here, not per step: the update is on the training loop's hot path.
        floats = [k for k, v in live.items() if v.is_floating_point()]
        self._averaged = [self.average[k] for k in floats]
        self._current = [live[k].detach() for k in floats]
        self._copied = [(self.average[k], v) for k, v in live.items() if not v.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._averaged, self._current, 1 - decay)
        for mine, theirs in self._copied:
            mine.copy_(theirs)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own after it."""
        own = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.average)
        try:
            yield
        finally:
            self.model.load_state_dict(own)

    def copy_to_model(self) -> None:
        """Keep the averaged weights: what the run's test accuracy was measured with."""
        self.model.load_state_dict(self.average)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        average = state["average"]
        if set(average) != set(self.average):
            raise ValueError("the checkpoint's weight average has other tensors than the model")
        for k, v in average.items():
            self.average[k].copy_(v)
        self.updates = int(state["updates"])
