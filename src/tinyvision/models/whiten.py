"""A first convolution fixed to the whitening of the training patches.

The fast CIFAR-10 recipes (Page, 2018; Jordan's airbench, 2024) start the network with a
convolution whose filters are the eigenvectors of the covariance of the training set's
k x k patches, each divided by the square root of its eigenvalue, and never train it:
its outputs are decorrelated, unit-variance features of every patch from the first
step, so the layers after it need not spend their first epochs learning that basis.
Each filter comes with its negation, so that a ReLU after it keeps both signs.

The filters are fitted here on the first training batch the layer sees (a few hundred
images hold tens of thousands of patches, plenty for a covariance of k*k*C values), so
the network needs no data when it is built; `fitted` records it in the checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def whitening_filters(patches: torch.Tensor, eps: float) -> torch.Tensor:
    """(D, D) covariance of `patches` (N, D), centred -> (D, D) rows V^T / sqrt(lambda + eps).

    Applied to a centred patch p, the rows give V^T p / sqrt(lambda): coordinates with
    identity covariance (for eps -> 0), largest eigenvalue first.
    """
    x = patches.double()
    x = x - x.mean(0)
    cov = x.T @ x / (len(x) - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    order = eigenvalues.argsort(descending=True)
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    return (eigenvectors / torch.sqrt(eigenvalues.clamp(min=0) + eps)).T.float()


class PatchWhitening(nn.Conv2d):
    """k x k convolution (same padding, no bias), C -> 2 * C * k * k channels, whitening
    the patches, then frozen.

    Until fitted its filters are nn.Conv2d's random ones; the first forward pass in
    training mode fits them to that batch's patches.
    """

    def __init__(self, in_chans: int, kernel_size: int = 3, eps: float = 5e-4):
        dim = in_chans * kernel_size * kernel_size
        super().__init__(in_chans, 2 * dim, kernel_size, padding=kernel_size // 2, bias=False)
        self.eps = eps
        self.weight.requires_grad_(False)  # never trained: no gradient, no weight decay
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Set the filters to the whitening of the k x k patches of the batch `x`."""
        k = self.kernel_size[0]
        patches = F.unfold(x.float(), k, padding=k // 2)  # (B, C*k*k, H*W)
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        rows = whitening_filters(patches, self.eps).view(-1, *self.weight.shape[1:])
        self.weight.copy_(torch.cat([rows, -rows]))
        self.fitted.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.fitted:
            self.fit(x)
        return super().forward(x)
