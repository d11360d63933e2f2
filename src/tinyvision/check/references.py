"""The normalization pieces as the course writes them, built on tinyvision's own
preprocessing (data/preprocess.py): what the checks compare a student's version with."""

from __future__ import annotations

import torch

from tinyvision.data.preprocess import channel_stats, zca_matrix


def standardize(train_x: torch.Tensor, test_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel, (x - mean) / std, the statistics from the training split only."""
    mean, std = channel_stats(train_x)
    shape = (1, -1) + (1,) * (train_x.ndim - 2)
    mean_t = torch.tensor(mean, dtype=torch.float64).view(shape)
    std_t = torch.tensor(std, dtype=torch.float64).view(shape)
    return (
        ((train_x.double() - mean_t) / std_t).to(train_x.dtype),
        ((test_x.double() - mean_t) / std_t).to(test_x.dtype),
    )


def zca(
    train_x: torch.Tensor, test_x: torch.Tensor, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """ZCA whitening fitted on the training split, applied to both."""
    mean, whitening = zca_matrix(train_x, epsilon)

    def apply(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).float() - mean
        return (flat @ whitening).reshape(x.shape).to(x.dtype)

    return apply(train_x), apply(test_x)
