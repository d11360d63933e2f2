"""Normalization fitted on the training split only, then applied to every split."""

from __future__ import annotations

import torch

from tinyvision.config import DataConfig


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to [0, 1] floats, as the course's ToTensor does; points unchanged."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel (or per-feature, for points) mean and std, in float64, chunked."""
    dims = [0, 2, 3] if x.ndim == 4 else [0]
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(x), chunk):
        part = to_float(x[start : start + chunk]).double()
        total += part.sum(dims)
        squares += (part * part).sum(dims)
    count = x.numel() / x.shape[1]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


def fit_normalization(cfg: DataConfig, train_x: torch.Tensor) -> dict:
    """The statistics the transform needs, computed on train only (or the config's)."""
    if cfg.normalize == "none":
        return {"scheme": "none"}
    mean, std = channel_stats(train_x)
    if cfg.mean is not None:
        mean = list(cfg.mean)
    if cfg.std is not None:
        std = list(cfg.std)
    if len(mean) != train_x.shape[1] or len(std) != train_x.shape[1]:
        from tinyvision.errors import UserError

        raise UserError(
            f"data.mean/data.std have {len(mean)}/{len(std)} values but the data has "
            f"{train_x.shape[1]} channels"
        )
    return {"scheme": "standardize", "mean": mean, "std": std}
