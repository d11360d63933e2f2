"""`tinyvision summary`: a model's layer table, from a real forward pass.

Per layer: output shape, weights, biases, receptive field and jump (for the layers up to
the first fully-connected one), multiply-adds. Output shapes come from forward hooks, so
they are PyTorch's own; the arithmetic is `tinyvision.models.arithmetic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tinyvision.models.arithmetic import receptive_step


@dataclass
class LayerRow:
    name: str
    kind: str
    output: tuple[int, ...]
    weights: int
    biases: int
    receptive_field: int | None
    jump: int | None
    macs: int


def _weights_and_biases(m: nn.Module) -> tuple[int, int]:
    """A layer's weights and biases; a hand-written module (the 1-ab MLP keeps Wh, bh, Wy,
    by as its own tensors, buffers when trained without autograd) by the course's names."""
    if hasattr(m, "weight") or hasattr(m, "bias"):
        weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
        return (
            weight.numel() if isinstance(weight, torch.Tensor) else 0,
            bias.numel() if isinstance(bias, torch.Tensor) else 0,
        )
    own = {**dict(m.named_parameters(recurse=False)), **dict(m.named_buffers(recurse=False))}
    weights = sum(t.numel() for name, t in own.items() if name.startswith("W"))
    biases = sum(t.numel() for name, t in own.items() if name.startswith("b"))
    return weights, biases


def _pair(value) -> int:
    return value[0] if isinstance(value, tuple) else value


def summarize(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    outputs: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        return lambda module, inputs, output: outputs.__setitem__(name, tuple(output.shape[1:]))

    hooks = [m.register_forward_hook(record(n)) for n, m in leaves]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    rows, r, j, spatial = [], 1, 1, True
    for name, m in leaves:
        if name not in outputs:
            continue
        out = outputs[name]
        weights, biases = _weights_and_biases(m)
        weight = getattr(m, "weight", None)
        macs = 0
        if isinstance(m, nn.Conv2d):
            macs = math.prod(out) * weight.shape[1] * weight.shape[2] * weight.shape[3]
        elif isinstance(m, nn.Linear):
            macs = weights
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and spatial:
            r, j = receptive_step(r, j, _pair(m.kernel_size), _pair(m.stride))
        if isinstance(m, (nn.Linear, nn.Flatten)):
            spatial = False
        rows.append(
            LayerRow(
                name,
                type(m).__name__,
                out,
                weights,
                biases,
                r if spatial else None,
                j if spatial else None,
                macs,
            )
        )
    return rows


def format_table(rows: list[LayerRow], input_shape: tuple[int, ...]) -> str:
    header = ("layer", "type", "output", "weights", "biases", "RF", "jump", "mult-adds")
    lines = [
        [
            r.name,
            r.kind,
            "x".join(map(str, r.output)),
            f"{r.weights:,}",
            f"{r.biases:,}",
            "" if r.receptive_field is None else str(r.receptive_field),
            "" if r.jump is None else str(r.jump),
            f"{r.macs:,}",
        ]
        for r in rows
    ]
    total_w = sum(r.weights for r in rows)
    total_b = sum(r.biases for r in rows)
    total = [
        "total",
        "",
        "",
        f"{total_w:,}",
        f"{total_b:,}",
        "",
        "",
        f"{sum(r.macs for r in rows):,}",
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, total)]

    def fmt(cells) -> str:
        return "  ".join(
            str(c).ljust(w) if i < 3 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        )

    rule = "-" * len(fmt(header))
    return "\n".join(
        [
            f"input {'x'.join(map(str, input_shape))}",
            fmt(header),
            rule,
            *map(fmt, lines),
            rule,
            fmt(total),
            f"parameters: {total_w + total_b:,}",
        ]
    )
