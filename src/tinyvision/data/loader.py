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
from tinyvision.data.preprocess import Normalizer, to_float

FIXED_SPLIT_SEED = 0  # an unshuffled split's draws (a rotated test set) repeat every pass


class BatchTransform:
    """uint8 batch -> augmented, normalized float batch, all on the batch's device.

    Order: [0, 1] floats -> colour jitter -> normalization (fitted on the full-size
    training images, which ZCA needs) -> geometric augmentation (pad, crop, flip, affine)
    -> erasing / cutout. Test batches: floats -> normalization -> [rotation, the run's test
    split with data.test_rotate] -> centre crop.
    Padding and erased pixels are zeros, the mean after normalization.
    """

    def __init__(
        self,
        cfg: DataConfig,
        stats: dict,
        train: bool,
        channels_last: bool = False,
        num_classes: int = 10,
        test_split: bool = False,
    ):
        self.cfg = cfg
        self.train = train
        # data.test_rotate rotates the run's test split only: not the images of `predict`
        self.rotate_test = test_split and not train and cfg.test_rotate > 0
        self.normalize = Normalizer(stats)
        self.channels_last = channels_last
        self.num_classes = num_classes

    @property
    def mixes(self) -> bool:
        return self.train and (self.cfg.mixup > 0 or self.cfg.cutmix > 0)

    @property
    def alternates_flips(self) -> bool:
        return self.train and self.cfg.flip and self.cfg.alternate_flip

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator, flips: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`flips`: which images to mirror (data.alternate_flip), in place of random ones."""
        c = self.cfg
        x = to_float(x)
        images = x.ndim == 4
        if images and self.train and c.jitter:
            x = augment.color_jitter(x, generator, c.jitter)
        x = self.normalize(x)
        if images and self.train:
            size = c.crop or x.shape[-1]  # padding alone: shifts back to the image's size
            x = augment.pad(x, c.pad)
            if c.crop or c.pad:
                x = augment.random_crop(x, size, generator)
            if c.flip:
                x = (
                    augment.random_flip(x, generator)
                    if flips is None
                    else augment.flip_where(x, flips)
                )
            if c.rotate or c.translate or c.scale or c.shear:
                x = augment.random_affine(x, generator, c.rotate, c.translate, c.scale, c.shear)
            if c.erase:
                x = augment.random_erase(x, generator, c.erase)
            if c.cutout:
                x = augment.cutout(x, generator, c.cutout)
        elif images:
            if self.rotate_test:
                x = augment.random_affine(x, generator, c.test_rotate)
            if c.crop:
                x = augment.center_crop(x, c.crop)
        if self.channels_last and images:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def mix(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """mixup / cutmix (one of the two per batch when both are on): soft labels."""
        c = self.cfg
        soft = torch.nn.functional.one_hot(y, self.num_classes).float()
        # The choice is drawn on the CPU (the global, checkpointed generator): no device sync.
        use_cutmix = c.cutmix > 0 and (c.mixup == 0 or torch.rand(1).item() < 0.5)
        if use_cutmix:
            return augment.cutmix(x, soft, generator, c.cutmix)
        return augment.mixup(x, soft, generator, c.mixup)


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
        self.passes = 0  # shuffled passes begun: the epoch, for alternating flips
        self._first_flips: torch.Tensor | None = None

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        device = self.labels.device
        if self.shuffle:
            order = torch.randperm(n, device=device, generator=self.generator)
            self.passes += 1
        else:  # a fixed split: whatever its transform draws is the same at every pass
            order = None
            self.generator.manual_seed(FIXED_SPLIT_SEED)
        for i in range(len(self)):
            lo, hi = i * self.batch_size, min((i + 1) * self.batch_size, n)
            if order is None:
                x, y = self.images[lo:hi], self.labels[lo:hi]
            else:
                idx = order[lo:hi]
                x, y = self.images[idx], self.labels[idx]
            flips = None
            if order is not None and self.transform.alternates_flips:
                flips = self.first_flips()[idx] ^ (self.passes % 2 == 0)
            x = self.transform(x, self.generator, flips)
            if self.transform.mixes:
                x, y = self.transform.mix(x, y, self.generator)
            yield x, y

    def first_flips(self) -> torch.Tensor:
        """Which images the first epoch mirrors: a random half, drawn from a stream of
        their own, seeded from the loader's seed, so that a resumed run mirrors the same
        images."""
        if self._first_flips is None:
            device = self.labels.device
            own = torch.Generator(device=device).manual_seed(self.generator.initial_seed() + 2**32)
            self._first_flips = torch.rand(len(self.labels), device=device, generator=own) < 0.5
        return self._first_flips


PREVIEW = "augmentation.png"
PREVIEW_IMAGES = 16


def augments(cfg: DataConfig) -> bool:
    """Whether the training transform changes images at random (data.crop alone too: a
    random crop in training, a centre crop at test)."""
    return bool(
        cfg.crop or cfg.pad or cfg.flip or cfg.rotate or cfg.translate or cfg.scale
        or cfg.shear or cfg.jitter or cfg.erase or cfg.cutout or cfg.mixup or cfg.cutmix
    )  # fmt: skip


def augmentation_preview(
    transform: BatchTransform, images: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of uint8 images as [0, 1] floats (before), and as the training transform
    gives them (after: augmented, normalized, mixed). Drawn from generators of its own:
    the run's random streams are left as they were."""
    with torch.random.fork_rng(devices=[]):  # mixup and cutmix draw their share from it
        generator = torch.Generator(device=images.device).manual_seed(seed)
        after = transform(images, generator)
        if transform.mixes:
            labels = torch.zeros(len(images), dtype=torch.long, device=images.device)
            after, _ = transform.mix(after, labels, generator)
    return to_float(images), after.contiguous()


def write_augmentation_preview(transform: BatchTransform, images: torch.Tensor, path, seed: int):
    """augmentation.png: the first training images before and after the training
    transform (each image's values stretched to the full grey or colour range to be seen)."""
    from tinyvision.figures import plot_image_pairs

    before, after = augmentation_preview(transform, images[:PREVIEW_IMAGES], seed)
    return plot_image_pairs(
        before.cpu(), after.float().cpu(), path, ("before (as loaded)", "after (as trained on)")
    )
