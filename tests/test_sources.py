"""Dataset lookup order, splits alone, the offline error and the verified download."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tinyvision.config import DataConfig
from tinyvision.data import sources
from tinyvision.data.datasets import load_dataset
from tinyvision.data.formats import write_idx
from tinyvision.errors import UserError

from conftest import write_cifar_dataset, write_idx_dataset


def test_data_dir_comes_before_cache(tmp_path, monkeypatch):
    explicit = write_idx_dataset(tmp_path / "explicit", n_train=30)
    write_idx_dataset(sources.cache_dir(), n_train=40)
    monkeypatch.setenv("TINYVISION_DATA", str(explicit))
    assert len(load_dataset(DataConfig(name="mnist")).train_y) == 30
    monkeypatch.delenv("TINYVISION_DATA")
    assert len(load_dataset(DataConfig(name="mnist")).train_y) == 40


def test_os_package_folder_comes_after_cache(tmp_path, monkeypatch):
    """Debian's dataset-fashion-mnist installs under /usr/share/datasets: found last."""
    system = tmp_path / "usr-share-datasets"
    write_idx_dataset(system, name="fashion-mnist", n_train=50)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (system,))
    assert len(load_dataset(DataConfig(name="fashion-mnist")).train_y) == 50
    write_idx_dataset(sources.cache_dir(), name="fashion-mnist", n_train=20)
    assert len(load_dataset(DataConfig(name="fashion-mnist")).train_y) == 20


def test_test_split_alone_is_usable(tmp_path, monkeypatch):
    root = write_idx_dataset(tmp_path / "d", n_test=300, splits=("test",))
    monkeypatch.setenv("TINYVISION_DATA", str(root))
    data = load_dataset(DataConfig(name="mnist", test_only=True, holdout=100))
    assert (len(data.train_y), len(data.test_y)) == (200, 100)
    assert data.provenance["test"]["examples"] == 300
    with pytest.raises(UserError, match=r"mnist train split not found.*put train-images"):
        load_dataset(DataConfig(name="mnist"))


def test_missing_offline_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYVISION_DATA", str(tmp_path))
    with pytest.raises(UserError, match=rf"put .*t10k-images-idx3-ubyte.gz.* in {tmp_path}"):
        load_dataset(DataConfig(name="fashion-mnist", test_only=True))


def test_cifar_batches_load(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYVISION_DATA", str(write_cifar_dataset(tmp_path)))
    data = load_dataset(DataConfig(name="cifar10"))
    assert data.train_x.shape == (500, 3, 32, 32) and data.test_x.shape == (100, 3, 32, 32)
    assert data.classes[0] == "airplane"


def _serve_file_dataset(tmp_path, monkeypatch, content: bytes, md5: str):
    """Point the mnist test-image download at a local file:// mirror."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "t10k-images-idx3-ubyte.gz").write_bytes(content)
    remote = (sources.RemoteFile("t10k-images-idx3-ubyte.gz", md5, (mirror.as_uri() + "/",)),)
    spec = sources.DatasetFiles("mnist", sources.FILE_DATASETS["mnist"].splits, remote)
    monkeypatch.setitem(sources.FILE_DATASETS, "mnist", spec)
    monkeypatch.delenv("TINYVISION_OFFLINE")


def test_download_verifies_and_moves_atomically(tmp_path, monkeypatch):
    write_idx(tmp_path / "src.gz", np.zeros((3, 28, 28), np.uint8))
    content = (tmp_path / "src.gz").read_bytes()
    _serve_file_dataset(tmp_path, monkeypatch, content, hashlib.md5(content).hexdigest())
    folder = sources.download("mnist", quiet=True)
    assert (folder / "t10k-images-idx3-ubyte.gz").read_bytes() == content
    assert [p.name for p in folder.iterdir()] == ["t10k-images-idx3-ubyte.gz"]


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    _serve_file_dataset(tmp_path, monkeypatch, b"tampered", "0" * 32)
    with pytest.raises(UserError, match="checksum mismatch"):
        sources.download("mnist", quiet=True)
    assert not any((sources.cache_dir() / "mnist").iterdir())


def test_unreachable_mirror_is_one_clear_error(tmp_path, monkeypatch):
    remote = (sources.RemoteFile("x.gz", "0" * 32, ((tmp_path / "nowhere").as_uri() + "/",)),)
    spec = sources.DatasetFiles("mnist", sources.FILE_DATASETS["mnist"].splits, remote)
    monkeypatch.setitem(sources.FILE_DATASETS, "mnist", spec)
    monkeypatch.delenv("TINYVISION_OFFLINE")
    with pytest.raises(UserError, match="could not download x.gz"):
        sources.download("mnist", quiet=True)
