"""Batched augmentation and the device loader: shapes, seeds, per-sample randomness."""

from __future__ import annotations

import torch

from tinyvision.config import DataConfig
from tinyvision.data import augment
from tinyvision.data.loader import BatchTransform, DeviceLoader
from tinyvision.data.preprocess import channel_stats, fit_normalization


def _batch(n=64, c=3, size=32):
    return torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8)


def test_random_crop_shape_dtype_and_content():
    x = _batch()
    out = augment.random_crop(x, 28, torch.Generator().manual_seed(0))
    assert out.shape == (64, 3, 28, 28) and out.dtype == torch.uint8
    # every crop is a real window of its own image
    for i in range(0, 64, 9):
        windows = x[i].unfold(1, 28, 1).unfold(2, 28, 1)  # (3, 5, 5, 28, 28)
        match = (windows == out[i][:, None, None]).flatten(3).all(-1).all(0)
        assert match.any()


def test_augmentations_random_per_sample_and_seeded():
    x = _batch(n=1).expand(256, -1, -1, -1).contiguous()  # one image, 256 times
    for name, fn in {
        "crop": lambda g: augment.random_crop(augment.pad(x, 4), 32, g),
        "flip": lambda g: augment.random_flip(x, g),
    }.items():
        a = fn(torch.Generator().manual_seed(1))
        b = fn(torch.Generator().manual_seed(1))
        c = fn(torch.Generator().manual_seed(2))
        assert torch.equal(a, b), name
        assert not torch.equal(a, c), name
        distinct = torch.unique(a.flatten(1), dim=0)
        assert len(distinct) > 1, f"{name}: the same for every sample"


def test_flip_mirrors_exactly():
    x = _batch(n=128)
    out = augment.random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped | kept).all() and 30 < flipped.sum() < 98


def test_center_crop():
    x = _batch(size=32)
    assert torch.equal(augment.center_crop(x, 28), x[..., 2:30, 2:30])


def test_statistics_fitted_on_train_only():
    train = torch.full((10, 1, 4, 4), 51, dtype=torch.uint8)
    stats = fit_normalization(DataConfig(), train)
    assert abs(stats["mean"][0] - 0.2) < 1e-6
    mean, std = channel_stats(torch.rand(500, 3, 8, 8))
    assert all(abs(m - 0.5) < 0.01 for m in mean) and all(abs(s - 0.2887) < 0.01 for s in std)


def test_loader_visits_every_example_once_per_epoch():
    images = torch.arange(103, dtype=torch.uint8).view(103, 1, 1, 1).expand(103, 1, 2, 2).clone()
    labels = torch.arange(103)
    stats = {"scheme": "none"}
    loader = DeviceLoader(
        images,
        labels,
        10,
        BatchTransform(DataConfig(), stats, train=True),
        torch.device("cpu"),
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(loader) == 11
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(103))
    first = [y for _, y in loader][0]
    second = [y for _, y in loader][0]
    assert not torch.equal(first, second), "a new order every epoch"
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and torch.allclose(x[:, 0, 0, 0] * 255, y.float())


def test_padding_without_a_crop_shifts_within_the_images_size():
    """data.pad alone (the 1cd-augmentation study's translation) pads, then crops a window
    of the image's own size: a random shift, never a larger image than the model takes."""
    x = _batch(n=64, c=1, size=8)
    cfg = DataConfig(normalize="none", pad=2)
    stats = fit_normalization(cfg, x)
    out = BatchTransform(cfg, stats, train=True)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = augment.pad(x.float() / 255, 2)
    shifts = set()
    for image, window in zip(padded, out):
        found = [
            (t, l)
            for t in range(5)
            for l in range(5)
            if torch.equal(image[:, t : t + 8, l : l + 8], window)
        ]
        assert found, "each output is a window of its padded image"
        shifts.add(found[0])
    assert len(shifts) > 5  # shifted differently per image
    test = BatchTransform(cfg, stats, train=False)(x, torch.Generator().manual_seed(0))
    assert torch.equal(test, x.float() / 255)  # test images are not shifted
