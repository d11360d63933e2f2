"""Normalization schemes, fitted on the training split only, applied to every split.

`fit_normalization` computes what a scheme needs from the training images (as [0, 1]
floats); `normalize` applies it to a batch on the device. Schemes (data.normalize):

- none: the [0, 1] pixels, as the course's ToTensor gives them;
- standardize: per channel, (x - mean) / std, statistics from the training split
  (or data.mean / data.std when given);
- course: the course's CIFAR-10 constants, mean (0.491, 0.482, 0.447), std (0.202, 0.199, 0.201);
- gcn: global contrast normalization, per image: (x - its mean) / its std (population
  std, floored at GCN_EPSILON);
- zca: ZCA whitening, W = U (S + eps)^-1/2 U^T from the training covariance, so the
  whitened training data has (near) identity covariance;
- pca: PCA whitening, W = U (S + eps)^-1/2: the same decorrelation, but the values are the
  coordinates along the principal axes (largest variance first), not rotated back into
  pixels, so an image no longer looks like one (ZCA = PCA followed by U^T);
- minmax: per channel, (x - min) / (max - min) with the training range;
- l1, l2: per image to unit L1 / L2 norm, times D (l1) or sqrt(D) (l2), D the number of
  values, so that pixels stay of order one.
"""

from __future__ import annotations

import math

import torch

from tinyvision.config import DataConfig
from tinyvision.errors import UserError

COURSE_MEAN = (0.491, 0.482, 0.447)  # CIFAR-10, as the course's training script has them
COURSE_STD = (0.202, 0.199, 0.201)
GCN_EPSILON = 1e-2  # keeps flat images (a uniform background) from blowing up


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to [0, 1] floats, as the course's ToTensor does; points unchanged."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def _chunks(x: torch.Tensor, size: int = 4096):
    for start in range(0, len(x), size):
        yield to_float(x[start : start + size])


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel (or per-feature, for points) mean and std, in float64, chunked."""
    dims = [0, 2, 3] if x.ndim == 4 else [0]
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for part in _chunks(x):
        part = part.double()
        total += part.sum(dims)
        squares += (part * part).sum(dims)
    count = x.numel() / x.shape[1]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


def zca_matrix(
    x: torch.Tensor, epsilon: float, rotate_back: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean (D,) and whitening matrix (D, D) of the flattened training data: ZCA's,
    or with `rotate_back=False` PCA's, whose columns are the principal axes by decreasing
    variance, each signed so that its largest entry is positive (a fixed choice: an
    eigenvector's sign is otherwise arbitrary)."""
    d = math.prod(x.shape[1:])
    total = torch.zeros(d, dtype=torch.float64)
    for part in _chunks(x):
        total += part.reshape(len(part), -1).sum(0).double()
    mean = total / len(x)
    cov = torch.zeros(d, d, dtype=torch.float64)
    for part in _chunks(x):
        centred = part.reshape(len(part), -1) - mean.float()
        cov += (centred.T @ centred).double()
    cov /= len(x)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    scale = (eigenvalues.clamp_min(0) + epsilon).rsqrt()
    if not rotate_back:
        eigenvectors, scale = eigenvectors.flip(1), scale.flip(0)  # largest variance first
        largest = eigenvectors.abs().argmax(0)
        signs = eigenvectors.gather(0, largest[None]).sign()
        return mean.float(), (eigenvectors * signs * scale).float()
    whitening = eigenvectors @ torch.diag(scale) @ eigenvectors.T
    return mean.float(), whitening.float()


def fit_normalization(cfg: DataConfig, train_x: torch.Tensor) -> dict:
    """What the scheme needs, computed on the training split only."""
    scheme, channels = cfg.normalize, train_x.shape[1]
    if scheme in ("none", "gcn", "l1", "l2"):
        return {"scheme": scheme}
    if scheme == "course":
        if channels != 3:
            raise UserError(
                f"data.normalize=course holds CIFAR-10's 3-channel constants, but the data "
                f"has {channels} channel(s): use data.normalize=standardize"
            )
        return {"scheme": scheme, "mean": list(COURSE_MEAN), "std": list(COURSE_STD)}
    if scheme == "zca":
        mean, whitening = zca_matrix(train_x, cfg.zca_epsilon)
        return {"scheme": scheme, "epsilon": cfg.zca_epsilon, "zca_mean": mean, "zca": whitening}
    if scheme == "pca":
        mean, whitening = zca_matrix(train_x, cfg.zca_epsilon, rotate_back=False)
        return {"scheme": scheme, "epsilon": cfg.zca_epsilon, "pca_mean": mean, "pca": whitening}
    if scheme == "minmax":
        dims = [0, 2, 3] if train_x.ndim == 4 else [0]
        low = to_float(train_x.amin(dims)).tolist()
        high = to_float(train_x.amax(dims)).tolist()
        return {"scheme": scheme, "mean": low, "std": [max(h - l, 1e-6) for l, h in zip(low, high)]}
    mean, std = channel_stats(train_x)
    mean = list(cfg.mean) if cfg.mean is not None else mean
    std = list(cfg.std) if cfg.std is not None else std
    if len(mean) != channels or len(std) != channels:
        raise UserError(
            f"data.mean/data.std have {len(mean)}/{len(std)} values but the data has "
            f"{channels} channels"
        )
    return {"scheme": scheme, "mean": mean, "std": std}


def describe(stats: dict) -> dict:
    """The statistics as they go into summary.json (the whitening matrices stay out)."""
    return {k: v for k, v in stats.items() if not isinstance(v, torch.Tensor)}


class Normalizer:
    """Applies fitted statistics to float batches, caching them on the batch's device."""

    def __init__(self, stats: dict):
        self.stats = stats
        self._cache: dict[str, torch.Tensor] = {}

    def _tensor(self, key: str, x: torch.Tensor) -> torch.Tensor:
        cached = self._cache.get(key)
        if cached is None or cached.device != x.device:
            value = self.stats[key]
            value = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            if key in ("mean", "std"):
                value = value.view((1, -1, 1, 1) if x.ndim == 4 else (1, -1))
            cached = self._cache[key] = value.to(x.device, torch.float32)
        return cached

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        scheme = self.stats["scheme"]
        if scheme == "none":
            return x
        if scheme in ("standardize", "course", "minmax"):
            return (x - self._tensor("mean", x)) / self._tensor("std", x)
        flat = x.reshape(len(x), -1)
        if scheme in ("zca", "pca"):
            flat = (flat - self._tensor(f"{scheme}_mean", x)) @ self._tensor(scheme, x)
        elif scheme == "gcn":
            centred = flat - flat.mean(1, keepdim=True)
            # The population std (over the image's own D values), as in the GCN formula
            std = centred.pow(2).mean(1, keepdim=True).sqrt()
            flat = centred / std.clamp_min(GCN_EPSILON)
        elif scheme == "l2":
            flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12) * flat.shape[1] ** 0.5
        elif scheme == "l1":
            flat = flat / flat.abs().sum(1, keepdim=True).clamp_min(1e-12) * flat.shape[1]
        return flat.reshape(x.shape)
