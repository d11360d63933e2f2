"""Batched data augmentation: whole batches at once on the device, per-sample randomness.

Each function takes a batch (B, C, H, W) of any dtype and a `torch.Generator` on the
batch's device, so the same seed gives the same augmented batches, and no per-image
Python loop (or DataLoader worker) sits in the hot path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero padding on every side (black pixels, as torchvision's RandomCrop(padding=...))."""
    return F.pad(x, (padding,) * 4) if padding else x


def crop_at(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Crop a size x size window per sample, at per-sample offsets, with one gather."""
    b = x.shape[0]
    steps = torch.arange(size, device=x.device)
    rows = (top[:, None] + steps)[:, :, None]  # (B, size, 1)
    cols = (left[:, None] + steps)[:, None, :]  # (B, 1, size)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise ValueError(f"crop {size} larger than the {h}x{w} images")
    b = x.shape[0]
    top = torch.randint(0, h - size + 1, (b,), device=x.device, generator=generator)
    left = torch.randint(0, w - size + 1, (b,), device=x.device, generator=generator)
    return crop_at(x, top, left, size).contiguous()


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror left-right a random half (p) of the batch."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)
