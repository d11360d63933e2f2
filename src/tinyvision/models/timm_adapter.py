"""Any timm model as a tinyvision model, adapted to the data as the course does.

`model.timm_input`: native (timm's `img_size` and `in_chans` set to the data's, the
course's first choice), repeat (the grey channel repeated to RGB, the image size
kept), resize (repeated to RGB and resized to the network's own input, e.g. 224).
`model.pretrained=true` loads ImageNet weights through timm (a download);
`model.pretrained_file=PATH` loads them from a local file with the same adaptation
(first convolution summed to one channel, positional embeddings resampled, head dropped).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tinyvision.config import ModelConfig
from tinyvision.errors import UserError


class InputAdapter(nn.Module):
    """Repeat grey images to three channels and, optionally, resize them."""

    def __init__(self, model: nn.Module, size: int | None):
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.size and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model(x)


def create_timm_model(
    cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    import timm

    name = cfg.name.removeprefix("timm:")
    if not timm.is_model(name):
        raise UserError(
            f"model.name={cfg.name}: timm has no model '{name}' (see timm.list_models())"
        )
    kwargs: dict = {"num_classes": num_classes}
    if cfg.timm_input == "native":
        kwargs["in_chans"] = input_shape[0]
    if cfg.timm_input in ("native", "repeat"):
        kwargs["img_size"] = input_shape[-1]
    if cfg.pretrained_file:
        path = Path(cfg.pretrained_file).expanduser()
        if not path.is_file():
            raise UserError(f"model.pretrained_file={path}: no such file")
        kwargs |= {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    elif cfg.pretrained:
        kwargs["pretrained"] = True
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "15")
    model = _create(timm, name, kwargs, cfg)
    if cfg.timm_input == "native":
        return model
    size = None
    if cfg.timm_input == "resize":
        size = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    return InputAdapter(model, size)


def _create(timm, name: str, kwargs: dict, cfg: ModelConfig) -> nn.Module:
    try:
        return timm.create_model(name, **kwargs)
    except TypeError:  # convnets take no img_size: they adapt to any size by themselves
        kwargs.pop("img_size", None)
        return _create(timm, name, kwargs, cfg)
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        if not kwargs.get("pretrained"):
            raise
        where = cfg.pretrained_file or "timm's hub (no network here?)"
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(
            f"cannot load pretrained weights for {name} from {where}: {reason}; download them "
            "where there is a network and pass model.pretrained_file=PATH"
        ) from None
