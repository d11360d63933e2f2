"""`tinyvision summary`: a model's layer table, from a real forward pass.

Per layer: output shape, weights, biases, its share of the parameters, receptive field
and jump (for the layers up to the first fully-connected one), multiply-adds, and for a
convolution the weights a fully connected layer would need for the same input and output
volumes (1-cd Q1). Output shapes come from forward hooks, so they are PyTorch's own; the
arithmetic is `tinyvision.models.arithmetic`.

Multiply-adds count every position a layer is applied at: a convolution once per output
pixel, a Linear once per token (a ViT's fc1 on 17 tokens does 17 times its weights), and
self-attention adds its own two products, Q Kᵀ and A V (N² d each for N tokens of d
dimensions), which have no weights and so no layer of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tinyvision.errors import UserError, first_line
from tinyvision.models.arithmetic import receptive_step

ATTENTION_KIND = "QK^T, AV"  # the kind shown for attention's own products


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
    fc_equivalent: int | None = None  # a conv: a fully connected layer's weights, same volumes

    @property
    def params(self) -> int:
        return self.weights + self.biases


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


def _attention_width(m: nn.Module) -> int | None:
    """d of an attention module's queries (all heads together), or None if `m` is not one:
    a fused `qkv` Linear (this package's and timm's multi-head attention) or q, k, v."""
    qkv = getattr(m, "qkv", None)
    if isinstance(qkv, nn.Linear):
        return qkv.out_features // 3
    q = getattr(m, "q", None)
    if isinstance(q, nn.Linear) and isinstance(getattr(m, "k", None), nn.Linear):
        return q.out_features
    return None


def _fc_equivalent(inputs: tuple[int, ...], output: tuple[int, ...], bias: bool) -> int:
    """Weights of a fully connected layer from the input volume to the output volume."""
    n_in, n_out = math.prod(inputs), math.prod(output)
    return n_in * n_out + (n_out if bias else 0)


class _Trace:
    """What a forward pass shows of each layer: its input and output shapes, and which
    layer was running when it failed."""

    def __init__(self, model: nn.Module):
        self.leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
        self.attention = [
            (n, m, d) for n, m in model.named_modules() if (d := _attention_width(m)) is not None
        ]
        self.inputs: dict[str, tuple[int, ...]] = {}
        self.outputs: dict[str, tuple[int, ...]] = {}
        self.running: tuple[str, nn.Module, tuple[int, ...]] | None = None
        self.hooks = []
        for name, m in self.leaves:
            self.hooks.append(m.register_forward_pre_hook(self._entered(name)))
            self.hooks.append(m.register_forward_hook(self._left(name)))
        for name, m, _ in self.attention:
            self.hooks.append(m.register_forward_pre_hook(self._attention(name)))

    def _entered(self, name: str):
        def hook(module, inputs):
            shape = tuple(inputs[0].shape[1:]) if inputs and hasattr(inputs[0], "shape") else ()
            self.running = (name, module, shape)
            self.inputs.setdefault(name, shape)

        return hook

    def _left(self, name: str):
        def hook(module, inputs, output):
            if hasattr(output, "shape"):
                self.outputs.setdefault(name, tuple(output.shape[1:]))

        return hook

    def _attention(self, name: str):
        def hook(module, inputs):
            self.inputs.setdefault(name, tuple(inputs[0].shape[1:]))

        return hook

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()


def _breaks_at(trace: _Trace, input_shape: tuple[int, ...], error: Exception) -> UserError:
    """One line: the layer a forward pass failed in, what it expects and what it got."""
    shape = "x".join(map(str, input_shape))
    if trace.running is None:
        return UserError(f"a {shape} input does not fit the model: {first_line(error)}")
    name, module, got = trace.running
    if isinstance(module, nn.Linear) and got and got[-1] != module.in_features:
        return UserError(
            f"a {shape} input breaks at {name}: a fully connected layer built for "
            f"{module.in_features:,} features gets {got[-1]:,} (its input size is fixed; "
            "`tinyvision fcconv RUN` runs a trained course CNN with fc4 and fc5 as "
            "convolutions on larger images)"
        )
    reason = first_line(error)
    return UserError(f"a {shape} input breaks at {name} ({type(module).__name__}): {reason}")


def summarize(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """The layer table of `model` run on one `input_shape` input. An input the model was
    not built for (a fully connected layer sized for another image) is a UserError naming
    the layer where it breaks."""
    trace = _Trace(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    except RuntimeError as e:
        raise _breaks_at(trace, input_shape, e) from None
    finally:
        model.train(was_training)
        trace.remove()
    rows, r, j, spatial = [], 1, 1, True
    for name, m in trace.leaves:
        if name not in trace.outputs:
            continue
        out = trace.outputs[name]
        weights, biases = _weights_and_biases(m)
        weight = getattr(m, "weight", None)
        macs, fc_equivalent = 0, None
        if isinstance(m, nn.Conv2d):
            macs = math.prod(out) * weight.shape[1] * weight.shape[2] * weight.shape[3]
            fc_equivalent = _fc_equivalent(trace.inputs[name], out, m.bias is not None)
        elif isinstance(m, nn.Linear):
            macs = weights * math.prod(out[:-1])  # once per token (an image: one)
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
                fc_equivalent,
            )
        )
    for name, _, width in trace.attention:
        if name not in trace.inputs:
            continue
        tokens = trace.inputs[name][-2] if len(trace.inputs[name]) >= 2 else 1
        prefix = f"{name}." if name else ""  # the model itself may be the attention
        row = LayerRow(
            f"{prefix}scores", ATTENTION_KIND, (tokens, tokens), 0, 0, None, None,
            2 * tokens * tokens * width,
        )  # fmt: skip
        inside = [i for i, x in enumerate(rows) if x.name.startswith(prefix)]
        before_proj = [i for i in inside if rows[i].name == f"{prefix}proj"]
        where = before_proj[0] if before_proj else (inside[-1] + 1 if inside else len(rows))
        rows.insert(where, row)
    return rows


def format_table(rows: list[LayerRow], input_shape: tuple[int, ...]) -> str:
    total_w = sum(r.weights for r in rows)
    total_b = sum(r.biases for r in rows)
    total_p = total_w + total_b
    header = (
        "layer", "type", "output", "weights", "biases", "share", "RF", "jump", "mult-adds",
        "fc same output",
    )  # fmt: skip

    def share(params: int) -> str:
        return f"{100 * params / total_p:.1f}%" if params and total_p else ""

    lines = [
        [
            r.name,
            r.kind,
            "x".join(map(str, r.output)),
            f"{r.weights:,}",
            f"{r.biases:,}",
            share(r.params),
            "" if r.receptive_field is None else str(r.receptive_field),
            "" if r.jump is None else str(r.jump),
            f"{r.macs:,}",
            "" if r.fc_equivalent is None else f"{r.fc_equivalent:,}",
        ]
        for r in rows
    ]
    total = [
        "total",
        "",
        "",
        f"{total_w:,}",
        f"{total_b:,}",
        "100%" if total_p else "",
        "",
        "",
        f"{sum(r.macs for r in rows):,}",
        "",
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, total)]

    def fmt(cells) -> str:
        return "  ".join(
            str(c).ljust(w) if i < 3 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "-" * len(fmt(header))
    notes = []
    if any(r.kind == ATTENTION_KIND for r in rows):
        notes.append("QK^T, AV: self-attention's two products, 2 x tokens² x width, no weights")
    if any(r.fc_equivalent is not None for r in rows):
        notes.append(
            "fc same output: the weights (and biases) a fully connected layer would need "
            "to map the same input volume to the same output volume"
        )
    return "\n".join(
        [
            f"input {'x'.join(map(str, input_shape))}",
            fmt(header),
            rule,
            *map(fmt, lines),
            rule,
            fmt(total),
            f"parameters: {total_p:,}",
            *notes,
        ]
    )
