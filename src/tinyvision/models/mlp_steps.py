"""How each variant of the hand-written MLP (`model.variant`) steps a batch, plugged into
the shared training loop as its `custom_step`.

manual:   forward, backward and sgd by hand (tinyvision.models.mlp_manual), no autograd;
autograd: the same forward, gradients from loss.backward(), the same hand-written update;
nn:       torch.nn layers, loss.backward(), the hand-written update over parameters();
optim:    torch.nn + torch.optim: the library's standard step (no custom step at all).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tinyvision.models import mlp_manual

Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def manual_step(model: mlp_manual.ManualMLP, lr: float, reduction: str) -> Step:
    def step(x: torch.Tensor, y: torch.Tensor):
        yhat, outputs = model.outputs(x)
        Y = F.one_hot(y, yhat.shape[1]).to(yhat.dtype)
        loss, _ = mlp_manual.loss_accuracy(yhat, Y)
        grads = mlp_manual.backward(model.params(), outputs, Y, reduction)
        mlp_manual.sgd(model.params(), grads, lr)
        return loss, outputs["ytilde"]

    return step


def _hand_update(parameters: list[torch.nn.Parameter], lr: float) -> None:
    with torch.no_grad():
        for p in parameters:
            p -= lr * p.grad
            p.grad = None


def autograd_step(model: mlp_manual.ManualMLP, lr: float, reduction: str) -> Step:
    def step(x: torch.Tensor, y: torch.Tensor):
        yhat, outputs = model.outputs(x)
        Y = F.one_hot(y, yhat.shape[1]).to(yhat.dtype)
        loss, _ = mlp_manual.loss_accuracy(yhat, Y)
        (loss * len(y) if reduction == "sum" else loss).backward()
        _hand_update(list(model.parameters()), lr)
        return loss.detach(), outputs["ytilde"].detach()

    return step


def nn_step(model: nn.Module, lr: float, reduction: str) -> Step:
    def step(x: torch.Tensor, y: torch.Tensor):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        (loss * len(y) if reduction == "sum" else loss).backward()
        _hand_update(list(model.parameters()), lr)
        return loss.detach(), logits.detach()

    return step


STEPS = {"manual": manual_step, "autograd": autograd_step, "nn": nn_step}
