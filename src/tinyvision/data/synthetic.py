"""Datasets that need no files: the course's circles, and scikit-learn's 8x8 digits."""

from __future__ import annotations

import numpy as np

# The course's circles file: class 0 an outer ring, class 1 an inner disk, overlapping.
RING_RADIUS = (1.03, 0.20)  # mean, standard deviation
DISK_RADIUS = (0.39, 0.17)
DIGITS_TEST_SIZE = 360  # about 20% of the 1,797 images, the usual hold-out


def make_circles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points (half per class) as float32 (n, 2), labels int64 (n,)."""
    rng = np.random.default_rng(seed)
    n_ring = n // 2
    n_disk = n - n_ring
    radius = np.concatenate(
        [rng.normal(*RING_RADIUS, n_ring), np.abs(rng.normal(*DISK_RADIUS, n_disk))]
    )
    angle = rng.uniform(0, 2 * np.pi, n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    labels = np.concatenate([np.zeros(n_ring), np.ones(n_disk)]).astype(np.int64)
    order = rng.permutation(n)
    return points[order].astype(np.float32), labels[order]


def circles_splits(n_train: int, n_test: int):
    # Fixed seeds: the data set is the same for every training seed, as the course file is.
    return make_circles(n_train, seed=2020), make_circles(n_test, seed=2021)


def digits_splits():
    """scikit-learn's embedded digits as uint8 (N, 1, 8, 8) images, a fixed split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:-DIGITS_TEST_SIZE], order[-DIGITS_TEST_SIZE:]
    return (images[train], labels[train]), (images[test], labels[test])
