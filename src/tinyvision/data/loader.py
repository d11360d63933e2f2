"""The in-memory device loader: the performance core of tinyvision.

The whole split lives on the training device as one uint8 tensor (60,000 MNIST images
are 47 MB). Each epoch a seeded generator shuffles the indices; each batch is gathered,
augmented on the whole batch at once, converted to float and normalized on the device.
No Dataset objects, no per-image transforms, no worker processes, no host copies.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from tinyvision.config import DataConfig
from tinyvision.data import augment
from tinyvision.data.preprocess import to_float


class BatchTransform:
    """uint8 batch -> augmented, normalized float batch, all on the batch's device."""

    def __init__(self, cfg: DataConfig, stats: dict, train: bool, channels_last: bool = False):
        self.crop, self.pad, self.flip = cfg.crop, cfg.pad, cfg.flip
        self.train = train
        self.stats = stats
        self.channels_last = channels_last
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.stats["scheme"] == "none":
            return x
        if self._mean is None or self._mean.device != x.device:
            shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
            self._mean = torch.tensor(self.stats["mean"], device=x.device).view(shape)
            self._std = torch.tensor(self.stats["std"], device=x.device).view(shape)
        return (x - self._mean) / self._std

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.ndim == 4:
            if self.train:
                x = augment.pad(x, self.pad)
                if self.crop:
                    x = augment.random_crop(x, self.crop, generator)
                if self.flip:
                    x = augment.random_flip(x, generator)
            elif self.crop:
                x = augment.center_crop(x, self.crop)
        x = self._normalize(to_float(x))
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


class DeviceLoader:
    """Iterates over (inputs, labels) batches of a split held on the device."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        transform: BatchTransform,
        device: torch.device,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ):
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.transform = transform
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator or torch.Generator(device=device)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        device = self.labels.device
        if self.shuffle:
            order = torch.randperm(n, device=device, generator=self.generator)
        else:
            order = None
        for i in range(len(self)):
            lo, hi = i * self.batch_size, min((i + 1) * self.batch_size, n)
            if order is None:
                x, y = self.images[lo:hi], self.labels[lo:hi]
            else:
                idx = order[lo:hi]
                x, y = self.images[idx], self.labels[idx]
            yield self.transform(x, self.generator), y
