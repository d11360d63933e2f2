"""Batched data augmentation: whole batches at once on the device, per-sample randomness.

Each function takes a batch (B, C, H, W) of any dtype and a `torch.Generator` on the
batch's device, so the same seed gives the same augmented batches, and no per-image
Python loop (or DataLoader worker) sits in the hot path.
"""

from __future__ import annotations

import math

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
    """The central window; an odd margin is split as torchvision's CenterCrop splits it."""
    h, w = x.shape[-2:]
    top, left = round((h - size) / 2), round((w - size) / 2)
    return x[..., top : top + size, left : left + size]


def translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Every image moved down dy and right dx pixels (negative: up, left), zeros coming in:
    the crop at offset (pad - dy, pad - dx) of the image padded by pad >= |dy|, |dx|."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def random_flip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror left-right a random half (p) of the batch."""
    return flip_where(x, torch.rand(x.shape[0], device=x.device, generator=generator) < p)


def flip_where(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose entry of the boolean (B,) `flip` is set."""
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _uniform(n: int, low: float, high: float, x: torch.Tensor, g: torch.Generator):
    return low + (high - low) * torch.rand(n, device=x.device, generator=g)


def affine(
    x: torch.Tensor,
    angle: torch.Tensor,
    translate: torch.Tensor,
    scale: torch.Tensor,
    shear: torch.Tensor,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Per-sample affine maps about the image centre, with torchvision's conventions.

    angle (B,) and shear (B,; an x-shear) in degrees, translate (B, 2) in pixels (x, y),
    scale (B,): sample i is torchvision's `affine(x[i], angle[i], translate[i], scale[i],
    [shear[i], 0], fill=None)`. The forward map is A = rotation @ shear * scale plus the
    shift, in pixel units (so rotations stay rotations on non-square images); grid_sample
    needs its inverse (where each output pixel comes from). Pixels from outside the image
    are zeros (the mean, after normalization).
    """
    b, (h, w) = x.shape[0], x.shape[-2:]
    rad, skew = torch.deg2rad(angle.float()), torch.deg2rad(shear.float())
    cos, sin = torch.cos(rad), torch.sin(rad)
    rotation = torch.stack([cos, -sin, sin, cos], 1).view(b, 2, 2)
    shearing = torch.eye(2, device=x.device).repeat(b, 1, 1)
    shearing[:, 0, 1] = -torch.tan(skew)  # torchvision's SHx: x' = x - tan(shear) y
    inverse = torch.linalg.inv(rotation @ shearing * scale.float().view(b, 1, 1))
    # affine_grid works in [-1, 1] units: conjugate the pixel-unit map by that scaling.
    to_unit = torch.tensor([2 / w, 2 / h], device=x.device)
    linear = to_unit.view(1, 2, 1) * inverse / to_unit.view(1, 1, 2)
    offset = -to_unit.view(1, 2, 1) * (inverse @ translate.float().view(b, 2, 1))
    grid = F.affine_grid(torch.cat([linear, offset], dim=2), list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, mode=mode, padding_mode="zeros", align_corners=False)


def rotate(x: torch.Tensor, angle: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Per-sample rotation by angle (B,) degrees counter-clockwise, as torchvision's rotate."""
    still = torch.zeros(len(angle), 2, device=x.device)
    return affine(x, -angle, still, torch.ones_like(angle), torch.zeros_like(angle), mode)


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    degrees: float = 0.0,
    translate: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
) -> torch.Tensor:
    """Rotation, shift, zoom and shear drawn per sample, applied with one grid_sample.

    As torchvision's RandomAffine(degrees, (translate, translate), (1 - scale, 1 + scale),
    shear), but with sub-pixel shifts (it rounds them to whole pixels) and bilinear sampling.
    """
    b, (h, w) = x.shape[0], x.shape[-2:]
    angle = _uniform(b, -degrees, degrees, x, generator)
    skew = _uniform(b, -shear, shear, x, generator)
    zoom = _uniform(b, 1 - scale, 1 + scale, x, generator)
    shift = _uniform(2 * b, -translate, translate, x, generator).view(b, 2)  # fractions of the size
    pixels = shift * torch.tensor([w, h], device=x.device)
    return affine(x, angle, pixels, zoom, skew)


def jitter(
    x: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Brightness, then contrast, then (colour images) saturation, per-sample factors (B,).

    Each step is torchvision's adjust_* on [0, 1] images, clamped to [0, 1] after each
    step as torchvision (and PIL) do. Grey is ITU-R 601 luma (0.299, 0.587, 0.114), as PIL,
    where torchvision rounds the red weight to 0.2989.
    """
    b = x.shape[0]
    x = (x * brightness.view(b, 1, 1, 1)).clamp(0, 1)
    grey = x if x.shape[1] == 1 else _luma(x)
    mean = grey.mean((1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast.view(b, 1, 1, 1) + mean).clamp(0, 1)
    if x.shape[1] == 3 and saturation is not None:
        grey = _luma(x)
        x = (grey + (x - grey) * saturation.view(b, 1, 1, 1)).clamp(0, 1)
    return x


def color_jitter(x: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Brightness, contrast and (colour images) saturation, each factor in 1 +- strength.

    Works on [0, 1] images, before normalization. Unlike torchvision's ColorJitter the
    three steps always come in this order.
    """
    b = x.shape[0]

    def factor() -> torch.Tensor:
        return _uniform(b, 1 - strength, 1 + strength, x, generator)

    brightness, contrast = factor(), factor()
    return jitter(x, brightness, contrast, factor() if x.shape[1] == 3 else None)


def _luma(x: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def erase(
    x: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    height: torch.Tensor,
    width: torch.Tensor,
    value: float = 0.0,
) -> torch.Tensor:
    """Set one box per sample to value: torchvision's erase(x[i], top, left, height, width).

    The boxes are (B,) integer tensors; the part of a box outside the image is ignored.
    """
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    in_rows = (rows >= top.view(-1, 1)) & (rows < (top + height).view(-1, 1))
    in_cols = (cols >= left.view(-1, 1)) & (cols < (left + width).view(-1, 1))
    return x.masked_fill((in_rows[:, :, None] & in_cols[:, None, :])[:, None], value)


def random_erase(
    x: torch.Tensor,
    generator: torch.Generator,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> torch.Tensor:
    """Random erasing (Zhong et al.): with probability p, zero a random rectangle."""
    b, (h, w) = x.shape[0], x.shape[-2:]
    size = _uniform(b, *area, x, generator) * h * w
    aspect = torch.exp(_uniform(b, math.log(ratio[0]), math.log(ratio[1]), x, generator))
    height = (size * aspect).sqrt().round().clamp(1, h).long()
    width = (size / aspect).sqrt().round().clamp(1, w).long()
    top = (torch.rand(b, device=x.device, generator=generator) * (h - height + 1)).long()
    left = (torch.rand(b, device=x.device, generator=generator) * (w - width + 1)).long()
    chosen = torch.rand(b, device=x.device, generator=generator) < p
    return erase(x, top, left, height * chosen, width)  # not chosen: an empty box


def cutout(x: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """Cutout (DeVries and Taylor): a size x size square, centred anywhere, set to zero."""
    b, (h, w) = x.shape[0], x.shape[-2:]
    cy = torch.randint(0, h, (b,), device=x.device, generator=generator)
    cx = torch.randint(0, w, (b,), device=x.device, generator=generator)
    top, left = cy - size // 2, cx - size // 2
    side = torch.full_like(cy, size)
    return erase(x, top, left, side, side)  # boxes may overhang the border: clipped


def _beta(alpha: float) -> float:
    # The global generator, seeded per run and saved in the checkpoint.
    return float(torch.distributions.Beta(alpha, alpha).sample())


def mixup(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, alpha: float):
    """Blend each image and its one-hot label with a random partner's: lam x + (1-lam) x'."""
    lam = _beta(alpha)
    partner = torch.randperm(x.shape[0], device=x.device, generator=generator)
    return lam * x + (1 - lam) * x[partner], lam * y + (1 - lam) * y[partner]


def cutmix(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, alpha: float):
    """Paste a random partner's box into each image; labels mixed by the pasted area."""
    b, (h, w) = x.shape[0], x.shape[-2:]
    lam = _beta(alpha)
    cut = math.sqrt(1 - lam)
    height, width = round(h * cut), round(w * cut)
    cy = int(torch.randint(0, h, (1,), generator=generator, device=x.device))
    cx = int(torch.randint(0, w, (1,), generator=generator, device=x.device))
    top, bottom = max(cy - height // 2, 0), min(cy + height // 2, h)
    left, right = max(cx - width // 2, 0), min(cx + width // 2, w)
    partner = torch.randperm(b, device=x.device, generator=generator)
    x = x.clone()
    x[:, :, top:bottom, left:right] = x[partner, :, top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (h * w)
    return x, kept * y + (1 - kept) * y[partner]
