"""Outputs the course's questions read: the layer table's counts, epoch 0, PCA whitening,
the augmentation preview, the SVM's C panels, fcconv's picture, sweep.csv's losses."""

from __future__ import annotations

import pytest
import torch

from tinyvision.config import ModelConfig
from tinyvision.errors import UserError
from tinyvision.models import create_model
from tinyvision.models.summary import ATTENTION_KIND, format_table, summarize


def _course_vit():
    return create_model(ModelConfig(name="vit"), (1, 28, 28), 10)


def test_a_vit_counts_its_linear_layers_per_token_and_attention_products():
    """The course ViT (embed 32, patch 7, 2 blocks, 4 heads, MLP ratio 4) on 28x28: 16
    patches + the class token = N = 17 tokens of d = 32. Worked out by hand:
    patch embedding 16 positions x 32 filters x 7x7 = 25,088; per block qkv 17 x 32 x 96
    = 52,224, Q·Kᵀ and A·V 2 x 17² x 32 = 18,496, proj 17 x 32 x 32 = 17,408, fc1 and
    fc2 17 x 32 x 128 = 69,632 each (block: 227,392); the head on the class token 320."""
    rows = {r.name: r for r in summarize(_course_vit(), (1, 28, 28))}
    assert rows["blocks.0.mlp.fc1"].macs == 17 * 4096 == 69_632
    assert rows["blocks.0.attn.qkv"].macs == 52_224
    assert rows["blocks.0.attn.scores"].kind == ATTENTION_KIND
    assert rows["blocks.0.attn.scores"].macs == 2 * 17 * 17 * 32 == 18_496
    assert rows["blocks.0.attn.proj"].macs == 17_408
    assert rows["patch_embed.proj"].macs == 25_088
    assert rows["head"].macs == 320
    block = 52_224 + 18_496 + 17_408 + 2 * 69_632
    assert sum(r.macs for r in rows.values()) == 25_088 + 2 * block + 320 == 480_192
    names = list(rows)  # the products sit between the projections that feed and read them
    assert names.index("blocks.1.attn.qkv") + 1 == names.index("blocks.1.attn.scores")
    assert names.index("blocks.1.attn.scores") + 1 == names.index("blocks.1.attn.proj")


def test_single_head_attention_counts_the_same_products():
    from tinyvision.models.vit import SelfAttention

    rows = {r.name: r for r in summarize(SelfAttention(8), (5, 8))}
    assert rows["scores"].macs == 2 * 5 * 5 * 8
    assert rows["q"].macs == 5 * 64


def test_the_course_cnn_shares_and_fully_connected_equivalents():
    """1-cd Q10: fc4 holds 1,025,000 of 1,191,170 parameters (86.0%); Q1: a fully
    connected layer from conv1's 3x32x32 input to its 32x32x32 output needs
    3,072 x 32,768 weights + 32,768 biases."""
    model = create_model(ModelConfig(name="cnn"), (3, 32, 32), 10)
    rows = {r.name: r for r in summarize(model, (3, 32, 32))}
    assert rows["fc4"].params == 1_025_000
    assert rows["features.conv1"].fc_equivalent == 3072 * 32768 + 32768 == 100_696_064
    assert rows["features.conv3"].fc_equivalent == 4096 * 4096 + 4096
    assert rows["fc4"].fc_equivalent is None
    table = format_table(list(rows.values()), (3, 32, 32))
    fc4_line = next(line for line in table.splitlines() if line.startswith("fc4 "))
    assert " 86.0% " in fc4_line and "parameters: 1,191,170" in table
    assert "100,696,064" in table


def test_the_course_cnn_keeps_fc4_for_32x32_and_breaks_there_on_64x64():
    """A fully connected layer fixes the input size: fc4 stays 1024 -> 1000 and a 64x64
    image (64 x 8 x 8 = 4096 features) breaks at fc4, in one line that points to fcconv."""
    model = create_model(ModelConfig(name="cnn"), (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 1_191_170
    with pytest.raises(UserError) as caught:
        summarize(model, (3, 64, 64))
    message = str(caught.value)
    assert "fc4" in message and "1,024" in message and "4,096" in message
    assert "fcconv" in message and "\n" not in message


def test_summary_cli_on_64x64_is_one_line_and_exit_2(capsys):
    from tinyvision.cli import main

    assert main(["summary", "cnn", "--input", "3x64x64"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "fc4" in err and "1,024" in err and "4,096" in err
    assert main(["summary", "cnn"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 1,191,170" in out and "86.0%" in out
    assert main(["summary", "cnn", "--input", "1x28x28"]) == 0  # MNIST: fc4 still 1024


def test_arithmetic_counts_bag_of_words_and_svm(capsys):
    """1-cd Q12: 1000 visual words of 128-D SIFT and 10 one-against-all linear SVMs:
    10 x (1000 + 1) = 10,010 for the SVMs, 1000 x 128 = 128,000 for the codebook."""
    from tinyvision.cli import main
    from tinyvision.models.arithmetic import bag_of_words_svm

    assert bag_of_words_svm(1000, 128, 10) == {"svm": 10_010, "codebook": 128_000}
    assert bag_of_words_svm(500, 64, 2) == {"svm": 2 * 501, "codebook": 500 * 64}
    assert main(["arithmetic"]) == 0
    out = capsys.readouterr().out
    assert "138,010" in out and "10,010" in out and "1,191,170" in out
    assert main(["arithmetic", "--words", "0"]) == 2


# --- PCA whitening beside ZCA (data.normalize=pca, 1-cd Q21) ----------------------------


def test_pca_whitening_by_hand():
    """Four points of 2 pixels, mean 0, covariance diag(0.5, 2): the first principal axis
    is (0, 1) with variance 2, the second (1, 0) with 0.5, so W = [[0, (0.5 + e)^-1/2],
    [(2 + e)^-1/2, 0]] and a test point (3, 1) becomes (1 / sqrt(2 + e), 3 / sqrt(0.5 + e))."""
    import math

    from tinyvision.config import DataConfig
    from tinyvision.data.preprocess import Normalizer, fit_normalization

    train = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]).view(4, 1, 1, 2)
    eps = 0.5
    stats = fit_normalization(DataConfig(normalize="pca", zca_epsilon=eps), train)
    expected = torch.tensor([[0.0, 1 / math.sqrt(0.5 + eps)], [1 / math.sqrt(2 + eps), 0.0]])
    assert torch.allclose(stats["pca"], expected, atol=1e-6)
    assert torch.allclose(stats["pca_mean"], torch.zeros(2), atol=1e-7)
    out = Normalizer(stats)(torch.tensor([3.0, 1.0]).view(1, 1, 1, 2)).view(2)
    assert torch.allclose(out, torch.tensor([1 / math.sqrt(2 + eps), 3 / math.sqrt(0.5 + eps)]))


def test_pca_whitening_matches_numpy_and_is_zca_before_its_rotation_back():
    """Against numpy's eigendecomposition (float64, the same sign and order convention):
    the matrix, the whitened train covariance S / (S + eps) (diagonal, decreasing), the
    train mean used on test data; and ZCA's matrix = PCA's followed by U^T."""
    import numpy as np

    from tinyvision.config import DataConfig
    from tinyvision.data.preprocess import Normalizer, fit_normalization

    g = torch.Generator().manual_seed(0)
    mixing = torch.rand(12, 12, generator=g) * 0.3 + torch.eye(12) * 0.5
    train = (torch.rand(400, 12, generator=g) @ mixing).view(400, 3, 2, 2)
    test = torch.rand(7, 3, 2, 2, generator=g)
    eps = 1e-3
    stats = fit_normalization(DataConfig(normalize="pca", zca_epsilon=eps), train)

    flat = train.view(400, 12).double().numpy()
    mean = flat.mean(0)
    s, u = np.linalg.eigh((flat - mean).T @ (flat - mean) / 400)
    s, u = s[::-1], u[:, ::-1]  # largest variance first
    u = u * np.sign(u[np.abs(u).argmax(0), range(12)])  # largest entry of each axis positive
    w = u / np.sqrt(s + eps)
    # the covariance is summed in float32 chunks: agreement to float32's precision
    assert np.allclose(stats["pca"].numpy(), w, rtol=1e-4, atol=1e-5)
    assert np.allclose(stats["pca_mean"].numpy(), mean, atol=1e-6)
    white = Normalizer(stats)(test).view(7, 12).double().numpy()
    assert np.allclose(white, (test.view(7, 12).double().numpy() - mean) @ w, rtol=1e-4, atol=1e-4)
    train_white = Normalizer(stats)(train).view(400, 12).double().numpy()
    assert np.allclose(np.cov(train_white.T, bias=True), np.diag(s / (s + eps)), atol=1e-4)

    zca = fit_normalization(DataConfig(normalize="zca", zca_epsilon=eps), train)["zca"]
    assert torch.allclose(stats["pca"] @ torch.from_numpy(u.T.copy()).float(), zca, atol=1e-4)


def test_a_pca_run_saves_and_reloads_its_matrix(tmp_path):
    from tinyvision.presets import build_config
    from tinyvision.runs.normalization import load_normalization
    from tinyvision.runs.runner import run

    cfg = build_config("mlp-fashion", ["data.name=digits", "train.epochs=1", "data.normalize=pca"])
    path, summary = run(cfg, tmp_path, "cpu", quiet=True)
    assert summary["status"] == "completed" and summary["final"]["test_acc"] > 50
    stats = load_normalization(path)
    assert stats["scheme"] == "pca" and stats["pca"].shape == (64, 64)
