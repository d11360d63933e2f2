"""Any timm model as a tinyvision model, adapted to the data's channels and size."""

from __future__ import annotations

from torch import nn

from tinyvision.config import ModelConfig
from tinyvision.errors import UserError


def create_timm_model(
    cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    import timm

    name = cfg.name.removeprefix("timm:")
    if not timm.is_model(name):
        raise UserError(
            f"model.name={cfg.name}: timm has no model '{name}' (see timm.list_models())"
        )
    kwargs = {"pretrained": False, "num_classes": num_classes, "in_chans": input_shape[0]}
    try:  # transformers need the image size (the course's img_size=28); convnets refuse it
        return timm.create_model(name, img_size=input_shape[-1], **kwargs)
    except TypeError:
        return timm.create_model(name, **kwargs)
