"""Model registry: a `ModelConfig` and the data's shape in, an `nn.Module` out."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from tinyvision.config import ModelConfig
from tinyvision.errors import UserError

# The course's pieces by their course names, for notebooks: `tv.models.ViT`,
# `tv.models.PatchEmbed`, `tv.models.mlp_manual.backward` (the hand-written MLP).
COURSE_NAMES = {
    **dict.fromkeys(
        ("ViT", "PatchEmbed", "ConvStem", "MLP", "SelfAttention", "MultiHeadSelfAttention",
         "Block", "drop_path", "get_positional_embeddings"),
        "vit",
    ),
    **dict.fromkeys(("CourseCNN", "LeNet5", "VGGNet"), "cnn"),
    "TwoLayerMLP": "mlp",
    "ManualMLP": "mlp_manual",
}  # fmt: skip


SUBMODULES = ("vit", "cnn", "mlp", "mlp_manual", "mlp_steps", "summary", "arithmetic", "svm")


def __getattr__(name: str):
    import importlib

    if name in COURSE_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{COURSE_NAMES[name]}"), name)
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model and prove it fits the input with one forward pass on zeros."""
    with _fits_in_memory(cfg):
        model = _factory(cfg, input_shape, num_classes)
        try:
            out = _probe(model, input_shape)
        except RuntimeError as e:
            if _out_of_memory(e):
                raise
            shape = "x".join(map(str, input_shape))
            reason = str(e).strip().splitlines()[0]
            raise UserError(f"model.name={cfg.name} does not fit {shape} input: {reason}") from None
    if out.shape != (2, num_classes):
        raise UserError(
            f"model.name={cfg.name} gives outputs {tuple(out.shape)}, expected (2, {num_classes})"
        )
    return model


@contextmanager
def _fits_in_memory(cfg: ModelConfig) -> Iterator[None]:
    """Absurd sizes (model.hidden=10**12) fail to allocate: one line, not a traceback."""
    try:
        yield
    except (RuntimeError, TypeError, MemoryError, OverflowError) as e:
        if not _out_of_memory(e):
            raise
        raise UserError(_too_big(cfg, e)) from None


def _probe(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """A forward pass on zeros in eval mode (it also sizes the lazy layers).

    Eval mode: the probe must not move BatchNorm's running statistics nor draw dropout
    randomness, which would shift every later random number. Each module's own mode is
    restored afterwards.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            return model(torch.zeros(2, *input_shape))
    finally:
        for module, training in modes:
            module.training = training


def _out_of_memory(e: BaseException) -> bool:
    """An allocation that cannot succeed: torch's "can't allocate", CUDA OOM, size overflow."""
    if isinstance(e, (MemoryError, OverflowError, torch.OutOfMemoryError)):
        return True
    text = str(e).lower()
    return any(w in text for w in ("allocate", "out of memory", "overflow"))


_SIZE_KEYS = {
    "mlp": ("hidden",),
    "vgg": ("width",),
    "vit": ("embed_dim", "nb_blocks", "mlp_ratio", "num_heads", "patch_size", "registers"),
}


def _too_big(cfg: ModelConfig, e: BaseException) -> str:
    keys = _SIZE_KEYS.get(cfg.name, ())
    what = ", ".join(f"model.{k}={getattr(cfg, k)}" for k in keys) or f"model.name={cfg.name}"
    need = re.search(r"tried to allocate (\d+) bytes", str(e), re.IGNORECASE)
    size = f" (one tensor alone needs {int(need[1]) / 1e9:,.0f} GB)" if need else ""
    return f"{what}: the model does not fit in memory{size}; choose smaller sizes"


def _factory(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    name = cfg.name
    if name == "mlp" and cfg.variant in ("manual", "autograd"):
        from tinyvision.models.mlp_manual import ManualMLP, init_params

        params = init_params(math.prod(input_shape), cfg.hidden, num_classes, cfg.init_std)
        return ManualMLP(params, trainable=cfg.variant == "autograd")
    if name == "mlp":
        from tinyvision.models.mlp import TwoLayerMLP

        return TwoLayerMLP(
            input_shape, cfg.hidden, num_classes, cfg.activation, cfg.dropout, cfg.init_std
        )
    if len(input_shape) != 3:
        raise UserError(f"model.name={name} needs images, but the data are {input_shape} vectors")
    if name == "cnn":
        from tinyvision.models.cnn import CourseCNN

        return CourseCNN(input_shape[0], num_classes, cfg.activation, cfg.batchnorm, cfg.dropout)
    if name == "vgg":
        from tinyvision.models.cnn import VGGNet

        return VGGNet(
            input_shape[0], num_classes, cfg.width, cfg.activation, cfg.dropout, cfg.whiten
        )
    if name == "lenet":
        from tinyvision.models.cnn import LeNet5

        return LeNet5(input_shape[0], num_classes, cfg.activation)
    if name == "vit":
        from tinyvision.models.vit import ViT

        size = input_shape[-1]
        if input_shape[-2] != size or size % cfg.patch_size:
            raise UserError(
                f"model.patch_size={cfg.patch_size} does not divide the "
                f"{input_shape[-2]}x{size} images (try 2, 4, 7, 14 or 28 on 28x28)"
            )
        return ViT(
            cfg.embed_dim,
            cfg.nb_blocks,
            cfg.patch_size,
            cfg.num_heads,
            cfg.mlp_ratio,
            num_classes,
            input_shape[0],
            size,
            cfg.pos_embed,
            cfg.pool,
            cfg.attention,
            cfg.registers,
            cfg.stem,
            cfg.drop_path,
        )
    if name.startswith("timm:"):
        from tinyvision.models.timm_adapter import create_timm_model

        return create_timm_model(cfg, input_shape, num_classes)
    raise UserError(f"unknown model.name={name}")


def count_params(model: nn.Module) -> int:
    """Trained numbers: the parameters, or the hand-trained buffers of the 1-ab manual MLP."""
    own = getattr(model, "num_weights", None)
    return own() if own else sum(p.numel() for p in model.parameters())
