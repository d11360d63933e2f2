"""Practical 1-cd: CNN arithmetic, fc as conv, normalization, augmentation, the ablation."""

from __future__ import annotations

import csv
import itertools

import pytest
import torch
from torch import nn

from tinyvision.config import NORMALIZATIONS, DataConfig, ModelConfig
from tinyvision.data import augment
from tinyvision.data.preprocess import Normalizer, fit_normalization, to_float
from tinyvision.models import arithmetic, count_params, create_model
from tinyvision.models.cnn import CourseCNN, LeNet5
from tinyvision.models.fc_as_conv import FullyConvolutional
from tinyvision.models.summary import summarize
from tinyvision.presets import build_config
from tinyvision.studies import run_study

from conftest import write_cifar_dataset


def test_course_cnn_parameters_and_receptive_fields():
    model = create_model(ModelConfig(name="cnn"), (3, 32, 32), 10)
    assert count_params(model) == 1_191_170
    rows = {r.name: r for r in summarize(model, (3, 32, 32))}
    fields = [
        rows[f"features.{n}"].receptive_field
        for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3")
    ]
    assert fields == [5, 6, 14, 16, 32, 36]
    assert rows["features.pool3"].output == (64, 4, 4)
    assert sum(r.weights + r.biases for r in rows.values()) == 1_191_170


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (3, 32, 32)])
def test_cnns_fit_every_course_input(shape):
    for model in (CourseCNN(shape[0], 10, batchnorm=True, dropout=0.5), LeNet5(shape[0], 10)):
        assert model(torch.zeros(2, *shape)).shape == (2, 10)
    fc4 = CourseCNN(shape[0])
    fc4(torch.zeros(1, *shape))
    assert fc4.fc4.in_features == 1024, "ceil_mode keeps fc4 at 4x4x64 on 28x28"


def test_arithmetic_matches_pytorch_shapes():
    for size, k, s, p, ceil in itertools.product(
        (7, 8, 28, 32), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (False, True)
    ):
        if p > k // 2:
            continue
        x = torch.zeros(1, 1, size, size)
        pooled = nn.MaxPool2d(k, s, p, ceil_mode=ceil)(x).shape[-1]
        assert arithmetic.conv_output_size(size, k, s, p, ceil) == pooled, (size, k, s, p, ceil)
        if not ceil:
            conv = nn.Conv2d(1, 1, k, s, p)(x).shape[-1]
            assert arithmetic.conv_output_size(size, k, s, p) == conv
    assert arithmetic.same_padding(5) == 2
    assert arithmetic.conv_weights(3, 32, 5) == 2432
    assert arithmetic.conv_weights(3, 32, 5) == count_params(nn.Conv2d(3, 32, 5))
    assert arithmetic.fc_weights_same_output(3, 32, 32, 32) == 3 * 32 * 32 * 32 * 32 * 32 + 32768
    assert arithmetic.locally_connected_weights(3, 32, 5, 32) == 2432 * 32 * 32
    assert arithmetic.receptive_field([(5, 1), (2, 2), (5, 1), (2, 2), (5, 1), (2, 2)]) == [
        (5, 1),
        (6, 2),
        (14, 2),
        (16, 4),
        (32, 4),
        (36, 8),
    ]


def test_fully_connected_as_convolution():
    torch.manual_seed(0)
    cnn = CourseCNN(3, 10, batchnorm=True).eval()
    cnn(torch.zeros(1, 3, 32, 32))
    fcn = FullyConvolutional(cnn).eval()
    x = torch.randn(8, 3, 32, 32)
    assert torch.allclose(cnn(x), fcn(x).flatten(1), atol=1e-5)
    assert fcn(torch.randn(1, 3, 64, 64)).shape == (1, 10, 5, 5)


def test_zca_whitens_the_training_data():
    torch.manual_seed(0)
    mixing = torch.randn(12, 12)
    train = (torch.randn(4000, 12) @ mixing).view(4000, 3, 2, 2) * 0.1 + 0.5
    stats = fit_normalization(DataConfig(normalize="zca", zca_epsilon=1e-6), train)
    white = Normalizer(stats)(train).reshape(4000, -1).double()
    cov = torch.cov(white.T)
    assert (cov - torch.eye(12, dtype=torch.float64)).abs().max() < 0.02


@pytest.mark.parametrize("scheme", NORMALIZATIONS)
def test_every_normalization_fits_on_train_and_applies(scheme):
    train = torch.randint(0, 256, (300, 3, 8, 8), dtype=torch.uint8)
    stats = fit_normalization(DataConfig(normalize=scheme), train)
    out = Normalizer(stats)(to_float(train))
    assert out.shape == train.shape and torch.isfinite(out).all()
    if scheme == "standardize":
        assert out.mean((0, 2, 3)).abs().max() < 1e-4
        assert (out.std((0, 2, 3)) - 1).abs().max() < 1e-3
    if scheme == "gcn":
        assert out.flatten(1).mean(1).abs().max() < 1e-4
    if scheme == "l2":
        assert torch.allclose(out.flatten(1).norm(dim=1), torch.full((300,), 192**0.5), rtol=1e-4)


def _images(n=64, c=3, size=32):
    one = torch.rand(1, c, size, size)
    return one.expand(n, -1, -1, -1).contiguous()  # one image n times: any difference is random


AUGMENTATIONS = {
    "crop": lambda x, g: augment.random_crop(x, 28, g),
    "pad-crop": lambda x, g: augment.random_crop(augment.pad(x, 4), 32, g),
    "flip": lambda x, g: augment.random_flip(x, g),
    "rotate": lambda x, g: augment.random_affine(x, g, degrees=20),
    "affine": lambda x, g: augment.random_affine(x, g, 0, translate=0.1, scale=0.2, shear=10),
    "jitter": lambda x, g: augment.color_jitter(x, g, 0.4),
    "erase": lambda x, g: augment.random_erase(x, g, p=1.0),
    "cutout": lambda x, g: augment.cutout(x, g, 8),
}


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmentation_shape_dtype_randomness_seed(name):
    fn, x = AUGMENTATIONS[name], _images()
    a = fn(x, torch.Generator().manual_seed(0))
    b = fn(x, torch.Generator().manual_seed(0))
    c = fn(x, torch.Generator().manual_seed(1))
    expected = (64, 3, 28, 28) if name == "crop" else x.shape
    assert a.shape == expected and a.dtype == torch.float32
    assert torch.equal(a, b), "deterministic under a seed"
    assert not torch.equal(a, c)
    outcomes = 2 if name == "flip" else 10  # a flip has two outcomes, the others many
    assert len(torch.unique(a.flatten(1), dim=0)) >= outcomes, "random per sample"


def test_rotation_by_zero_is_identity():
    x = torch.rand(4, 3, 16, 16)
    same = augment.random_affine(x, torch.Generator().manual_seed(0), degrees=0)
    assert torch.allclose(same, x, atol=1e-5)


@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_mixing_keeps_labels_a_distribution(mix):
    torch.manual_seed(0)
    x = torch.rand(32, 3, 16, 16)
    y = torch.nn.functional.one_hot(torch.arange(32) % 10, 10).float()
    fn = getattr(augment, mix)
    torch.manual_seed(1)  # the mixing weight comes from the global generator
    xa, ya = fn(x, y, torch.Generator().manual_seed(3), 1.0)
    torch.manual_seed(1)
    xb, yb = fn(x, y, torch.Generator().manual_seed(3), 1.0)
    assert xa.shape == x.shape and ya.shape == (32, 10) and xa.dtype == torch.float32
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.allclose(ya.sum(1), torch.ones(32))
    assert (ya.max(1).values < 1).any(), "some labels are mixed"


def test_course_steps_stack():
    cfg = build_config("1cd-batchnorm")
    assert cfg.data.name == "cifar10" and cfg.data.normalize == "standardize"
    assert cfg.data.crop == 28 and cfg.data.flip
    assert cfg.optim.momentum == 0.9 and cfg.schedule.name == "exponential"
    assert cfg.schedule.gamma == 0.95 and cfg.model.dropout == 0.5 and cfg.model.batchnorm
    baseline = build_config("1cd-baseline")
    assert (baseline.optim.lr, baseline.train.batch_size, baseline.optim.momentum) == (0.1, 128, 0)


def test_augmented_training_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYVISION_DATA", str(write_cifar_dataset(tmp_path / "d", 40)))
    from tinyvision.experiment.runner import run

    extra = [
        "data.rotate=10",
        "data.jitter=0.3",
        "data.cutout=6",
        "data.mixup=0.4",
        "data.cutmix=1",
        "data.erase=0.5",
        "train.epochs=1",
    ]
    _, summary = run(build_config("1cd-augment", extra), tmp_path, "cpu", quiet=True)
    assert summary["status"] == "completed"


def test_ablation_study_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYVISION_DATA", str(write_cifar_dataset(tmp_path / "d", 40)))
    folder = run_study(
        "1cd-ablation",
        ["train.epochs=2", "train.batch_size=50"],
        out=tmp_path / "runs",
        device="cpu",
        quiet=True,
    )
    with open(folder / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == [
        "baseline",
        "standardize",
        "augment",
        "schedule",
        "dropout",
        "batchnorm",
    ]
    assert all(r["status"] == "completed" and r["gap"] != "" for r in rows)
    table = (folder / "table.md").read_text()
    assert "| batchnorm | 2 | 0.01 |" in table and "train-test gap" in table
    assert (folder / "comparison.png").stat().st_size > 10_000
    assert (folder / "lr.png").is_file()


def test_summary_command(capsys):
    from tinyvision.cli import main

    assert main(["summary", "cnn", "--input", "3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 1,191,170" in out and "features.pool3" in out
    assert main(["summary", "cnn", "--input", "3x2x2"]) == 2
    assert main(["summary", "cnn", "--input", "big"]) == 2
    assert main(["study", "nope"]) == 2


def test_fcconv_command(tmp_path, idx_root, capsys):
    from tinyvision.cli import main
    from tinyvision.experiment.runner import run

    path, _ = run(
        build_config("cnn-fashion", ["data.name=mnist", "train.epochs=1"]),
        tmp_path,
        "cpu",
        quiet=True,
    )
    assert main(["fcconv", str(path), "--size", "56"]) == 0
    out = capsys.readouterr().out
    assert "score map of shape (10, 4, 4)" in out and (path / "fc_as_conv.png").is_file()
    difference = float(out.split("outputs ")[1].split()[0])
    assert difference < 1e-4
