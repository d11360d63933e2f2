"""`tinyvision data check`: an incomplete split, or images of the wrong size, exit 2."""

from __future__ import annotations

import numpy as np
import pytest

from tinyvision.cli import main
from tinyvision.data.formats import write_idx

from conftest import write_cifar_dataset, write_idx_dataset


def _check(capsys, root, name: str) -> tuple[int, str, str]:
    code = main(["data", "check", name, "--data-dir", str(root)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_whole_splits_of_the_right_size_are_ok(tmp_path, capsys):
    root = write_cifar_dataset(write_idx_dataset(tmp_path, n_train=40, n_test=20), per_batch=10)
    code, out, err = _check(capsys, root, "mnist")
    assert code == 0 and "ok  40 images (1, 28, 28)" in out, err
    code, out, err = _check(capsys, root, "cifar10")
    assert code == 0 and "ok  50 images (3, 32, 32)" in out, err


def test_a_split_missing_one_of_its_files_is_incomplete(tmp_path, capsys):
    root = write_cifar_dataset(tmp_path)
    (root / "cifar10" / "cifar-10-batches-py" / "data_batch_5").unlink()
    code, out, err = _check(capsys, root, "cifar10")
    _one_line(code, err, "cifar10 train split", "incomplete", "data_batch_5 missing")
    assert "data_batch_1" not in err


def test_an_idx_split_without_its_labels_is_incomplete(tmp_path, capsys):
    root = write_idx_dataset(tmp_path, n_train=40, n_test=20)
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    code, _, err = _check(capsys, root, "mnist")
    _one_line(code, err, "mnist test split", "t10k-labels-idx1-ubyte.gz missing")


def test_a_split_with_none_of_its_files_is_missing(tmp_path, capsys):
    root = write_idx_dataset(tmp_path, n_train=40, n_test=20, splits=("train",))
    code, out, err = _check(capsys, root, "mnist")
    assert code == 0 and "test   missing" in out, err


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_images_of_another_size_than_the_datasets_are_refused(tmp_path, capsys, split):
    root = write_idx_dataset(tmp_path, n_train=40, n_test=20)
    write_idx(
        root / "mnist" / f"{split}-images-idx3-ubyte.gz",
        np.zeros((40 if split == "train" else 20, 27, 28), np.uint8),
    )
    code, _, err = _check(capsys, root, "mnist")
    _one_line(code, err, "images of 1x27x28, not mnist's 1x28x28")
