"""Practical 1-ab, part 1: a two-layer MLP with its forward and backward pass by hand.

No autograd anywhere here: the gradients are the ones derived in the course's
questions 14-17, written for a whole batch as matrix products.

    h~ = X Wh^T + bh        h = tanh(h~)        y~ = h Wy^T + by        y^ = SoftMax(y~)
    L  = - 1/N sum_i sum_j y_ij log y^_ij                         (cross-entropy)

    dL/dy~ = (y^ - y) / N                         (SoftMax + cross-entropy together)
    dL/dWy = (dL/dy~)^T h        dL/dby = sum over the batch of dL/dy~
    dL/dh~ = (dL/dy~ Wy) * (1 - h^2)              (tanh' = 1 - tanh^2)
    dL/dWh = (dL/dh~)^T X        dL/dbh = sum over the batch of dL/dh~

With `reduction="sum"` the 1/N is dropped: the gradients are summed over the batch.
"""

from __future__ import annotations

import torch

Params = dict[str, torch.Tensor]


def init_params(
    nx: int, nh: int, ny: int, std: float | None = 0.3, dtype: torch.dtype = torch.float32
) -> Params:
    """Wh (nh, nx), bh (nh), Wy (ny, nh), by (ny), drawn from N(0, std) in that order.

    `std=None` draws as torch.nn.Linear does (uniform, +-1/sqrt(fan_in)), so the
    variants can also start where the nn layers would.
    """
    shapes = {"Wh": (nh, nx), "bh": (nh,), "Wy": (ny, nh), "by": (ny,)}
    fan_in = {"Wh": nx, "bh": nx, "Wy": nh, "by": nh}
    params = {}
    for name, shape in shapes.items():
        if std is None:
            bound = fan_in[name] ** -0.5
            params[name] = (torch.rand(shape, dtype=dtype) * 2 - 1) * bound
        else:
            params[name] = torch.randn(shape, dtype=dtype) * std
    return params


def forward(params: Params, X: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """y^ and the intermediate values the backward pass needs: X, h~, h, y~, y^."""
    htilde = X @ params["Wh"].T + params["bh"]
    h = torch.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    yhat = torch.softmax(ytilde, dim=1)
    return yhat, {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}


def loss_accuracy(yhat: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy (a fraction) against one-hot labels Y."""
    loss = -(Y * torch.log(yhat.clamp_min(1e-30))).sum(1).mean()
    accuracy = (yhat.argmax(1) == Y.argmax(1)).float().mean()
    return loss, accuracy


def backward(
    params: Params, outputs: dict[str, torch.Tensor], Y: torch.Tensor, reduction: str = "mean"
) -> Params:
    """The gradients of the loss with respect to Wh, bh, Wy, by, by hand."""
    scale = 1.0 / len(Y) if reduction == "mean" else 1.0
    delta_y = (outputs["yhat"] - Y) * scale  # dL/dy~
    delta_h = (delta_y @ params["Wy"]) * (1 - outputs["h"] ** 2)  # dL/dh~
    return {
        "Wy": delta_y.T @ outputs["h"],
        "by": delta_y.sum(0),
        "Wh": delta_h.T @ outputs["X"],
        "bh": delta_h.sum(0),
    }


def sgd(params: Params, grads: Params, eta: float) -> Params:
    """One gradient step, in place: p <- p - eta * dL/dp."""
    for name in params:
        params[name] -= eta * grads[name]
    return params


class ManualMLP(torch.nn.Module):
    """The hand-written MLP as a module, so it is recorded and evaluated like the others.

    With `trainable=False` the weights are buffers (the *manual* variant: no autograd);
    with `trainable=True` they are parameters (the *autograd* variant). Either way the
    forward pass is `forward` above, and the module returns the logits y~.
    """

    def __init__(self, params: Params, trainable: bool):
        super().__init__()
        for name, value in params.items():
            if trainable:
                self.register_parameter(name, torch.nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        self.trainable = trainable

    def num_weights(self) -> int:
        return sum(v.numel() for v in self.params().values())

    def params(self) -> Params:
        return {name: getattr(self, name) for name in ("Wh", "bh", "Wy", "by")}

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return forward(self.params(), x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x)[1]["ytilde"]
