"""The real file formats: IDX and CIFAR-10 pickles, and every way they can be broken."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from tinyvision.data.formats import (
    read_cifar_batch,
    read_idx,
    read_idx_pair,
    write_cifar_batch,
    write_idx,
)  # fmt: skip
from tinyvision.errors import UserError


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", array, compress=compress)
    assert np.array_equal(read_idx(tmp_path / "a.idx"), array)


def test_idx_pair_shapes(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.arange(5, dtype=np.uint8))
    images, labels = read_idx_pair(tmp_path / "x", tmp_path / "y")
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2, 3, 4]


def test_truncated_idx_names_file_and_sizes(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8), compress=False)
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[:-100])
    with pytest.raises(UserError, match=r"x: truncated.*3920 bytes, found 3820"):
        read_idx(tmp_path / "x")


def test_truncated_gzip(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="x.gz: corrupt or truncated gzip"):
        read_idx(tmp_path / "x.gz")


def test_bad_magic(tmp_path):
    (tmp_path / "x").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "x")


def test_mismatched_pair(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.zeros(4, np.uint8))
    with pytest.raises(UserError, match="5 images but .* 4 labels"):
        read_idx_pair(tmp_path / "x", tmp_path / "y")


def test_swapped_files(tmp_path):
    write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.zeros(5, np.uint8))
    with pytest.raises(UserError, match="expected N x H x W"):
        read_idx_pair(tmp_path / "y", tmp_path / "x")


def test_label_out_of_range(tmp_path):
    write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "y", np.array([1, 12], np.uint8))
    with pytest.raises(UserError, match="label 12 outside 0..9"):
        read_idx_pair(tmp_path / "x", tmp_path / "y")


def test_cifar_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(7) % 10
    write_cifar_batch(tmp_path / "data_batch_1", images, labels)
    got_images, got_labels = read_cifar_batch(tmp_path / "data_batch_1")
    assert np.array_equal(got_images, images) and got_labels.tolist() == labels.tolist()


def test_cifar_corrupt_pickle(tmp_path):
    write_cifar_batch(tmp_path / "b", np.zeros((3, 3, 32, 32), np.uint8), np.zeros(3))
    data = (tmp_path / "b").read_bytes()
    (tmp_path / "b").write_bytes(data[:200])
    with pytest.raises(UserError, match="not a readable CIFAR-10 pickle"):
        read_cifar_batch(tmp_path / "b")


def test_cifar_wrong_row_size(tmp_path):
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "b").write_bytes(pickle.dumps(batch))
    with pytest.raises(UserError, match="rows of 100 values, expected 3072"):
        read_cifar_batch(tmp_path / "b")
