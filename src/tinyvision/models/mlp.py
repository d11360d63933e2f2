"""The multilayer perceptron of practical 1-ab, as `torch.nn` layers."""

from __future__ import annotations

import math

import torch
from torch import nn

from tinyvision.models.mlp_manual import init_params

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


class TwoLayerMLP(nn.Module):
    """Flatten -> Linear(in, hidden) -> activation -> Linear(hidden, classes).

    SoftMax is left to the cross-entropy loss, which takes the logits.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        hidden: int,
        num_classes: int,
        activation: str = "tanh",
        dropout: float = 0.0,
        init_std: float | None = None,
    ):
        super().__init__()
        # The 1-ab initialisation, drawn first and shared with the hand-written variants so
        # that all four start from the same numbers for the same seed.
        params = init_params(math.prod(input_shape), hidden, num_classes, init_std)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(math.prod(input_shape), hidden)
        self.act = ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc2 = nn.Linear(hidden, num_classes)
        with torch.no_grad():
            for layer, w, b in ((self.fc1, "Wh", "bh"), (self.fc2, "Wy", "by")):
                layer.weight.copy_(params[w])
                layer.bias.copy_(params[b])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(self.flatten(x)))))
