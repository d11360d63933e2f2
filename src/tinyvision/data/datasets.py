"""Load a dataset by name into memory: uint8 images (or float points) plus labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinyvision.config import DataConfig
from tinyvision.data import formats, sources, synthetic
from tinyvision.errors import UserError

CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "digits": [str(i) for i in range(10)],
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "cifar10": [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
    "circles": ["outer ring", "inner disk"],
}


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W) images, or float (N, D) points
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def read_split(name: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    if name == "cifar10":
        parts = [formats.read_cifar_batch(p) for p in paths]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return formats.read_idx_pair(paths[0], paths[1])


def _file_split(name: str, split: str, data_dir, allow_download: bool):
    paths = sources.locate_split(name, split, data_dir, allow_download)
    x, y = read_split(name, paths)
    provenance = {
        "folder": str(paths[0].parent),
        "files": {p.name: sources.md5sum(p) for p in paths},
        "examples": len(y),
    }
    return x, y, provenance


def _where(provenance: dict[str, Any], split: str) -> str:
    source = provenance.get(split) or provenance.get("test") or {}
    return f" in {source['folder']}" if "folder" in source else ""


def _check_splits(name: str, trx: np.ndarray, tex: np.ndarray, provenance: dict) -> None:
    """Both splits hold examples of one shape: else training "completes" at chance, or
    fails deep in the model on the first test batch."""
    for split, x in (("train", trx), ("test", tex)):
        if len(x) == 0:
            raise UserError(
                f"{name}: the {split} split{_where(provenance, split)} has no examples; "
                "its files are empty: replace them with the real ones"
            )
    if trx.shape[1:] != tex.shape[1:]:
        train, test = ("x".join(map(str, x.shape[1:])) for x in (trx, tex))
        raise UserError(
            f"{name}: train examples are {train}{_where(provenance, 'train')} but test examples "
            f"are {test}{_where(provenance, 'test')}: the two splits are not the same dataset"
        )


def load_dataset(
    cfg: DataConfig, data_dir: str | Path | None = None, allow_download: bool = True
) -> Dataset:
    provenance: dict[str, Any] = {"dataset": cfg.name}
    if cfg.name == "circles":
        (trx, try_), (tex, tey) = synthetic.circles_splits(cfg.n_train, cfg.n_test)
        provenance["source"] = "generated (tinyvision.data.synthetic.make_circles)"
    elif cfg.name == "digits":
        (trx, try_), (tex, tey) = synthetic.digits_splits()
        provenance["source"] = "scikit-learn load_digits (embedded)"
    elif cfg.test_only:
        x, y, provenance["test"] = _file_split(cfg.name, "test", data_dir, allow_download)
        order = np.random.default_rng(0).permutation(len(y))
        if cfg.holdout >= len(y):
            raise UserError(f"data.holdout={cfg.holdout} leaves no training examples of {len(y)}")
        train, test = order[: -cfg.holdout], order[-cfg.holdout :]
        (trx, try_), (tex, tey) = (x[train], y[train]), (x[test], y[test])
        provenance["split"] = f"test split shuffled (seed 0): last {cfg.holdout} held out"
    else:
        trx, try_, provenance["train"] = _file_split(cfg.name, "train", data_dir, allow_download)
        tex, tey, provenance["test"] = _file_split(cfg.name, "test", data_dir, allow_download)
    if cfg.train_subset:
        trx, try_ = trx[: cfg.train_subset], try_[: cfg.train_subset]
    if cfg.test_subset:
        tex, tey = tex[: cfg.test_subset], tey[: cfg.test_subset]
    _check_splits(cfg.name, trx, tex, provenance)
    provenance["n_train"], provenance["n_test"] = len(try_), len(tey)
    return Dataset(
        cfg.name,
        torch.from_numpy(np.ascontiguousarray(trx)),
        torch.from_numpy(np.ascontiguousarray(try_)),
        torch.from_numpy(np.ascontiguousarray(tex)),
        torch.from_numpy(np.ascontiguousarray(tey)),
        CLASSES[cfg.name],
        provenance,
    )
