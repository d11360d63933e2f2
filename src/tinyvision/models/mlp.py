"""The multilayer perceptron of practical 1-ab, as `torch.nn` layers."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


class MLP(nn.Module):
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
    ):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(math.prod(input_shape), hidden)
        self.act = ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(self.flatten(x)))))
