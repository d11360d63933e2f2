"""Practical 1-ab: the hand-written backward pass, the four variants, the SVMs, the pictures."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tinyvision.experiment.runner import run
from tinyvision.groups.sweep import run_sweep
from tinyvision.models import mlp_manual
from tinyvision.presets import build_config

from conftest import needs_fashion, needs_mnist_test

VARIANTS = ("manual", "autograd", "nn", "optim")


def _random_problem(n=7, nx=3, nh=5, ny=4):
    torch.manual_seed(0)
    params = mlp_manual.init_params(nx, nh, ny, std=0.7, dtype=torch.float64)
    X = torch.randn(n, nx, dtype=torch.float64)
    Y = F.one_hot(torch.randint(0, ny, (n,)), ny).double()
    return params, X, Y


def _loss(params, X, Y, reduction):
    yhat, _ = mlp_manual.forward(params, X)
    loss, _ = mlp_manual.loss_accuracy(yhat, Y)
    return loss * len(Y) if reduction == "sum" else loss


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_backward_matches_autograd_float64(reduction):
    params, X, Y = _random_problem()
    _, outputs = mlp_manual.forward(params, X)
    manual = mlp_manual.backward(params, outputs, Y, reduction)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    _loss(leaves, X, Y, reduction).backward()
    for name, leaf in leaves.items():
        rel = (manual[name] - leaf.grad).norm() / leaf.grad.norm()
        assert rel < 1e-10, f"{name}: relative error {rel:.2e}"


def test_backward_matches_finite_differences():
    params, X, Y = _random_problem()
    _, outputs = mlp_manual.forward(params, X)
    manual = mlp_manual.backward(params, outputs, Y)
    eps = 1e-6
    for name, value in params.items():
        flat = value.view(-1)
        for i in range(0, flat.numel(), max(1, flat.numel() // 6)):
            saved = flat[i].item()
            flat[i] = saved + eps
            up = _loss(params, X, Y, "mean")
            flat[i] = saved - eps
            down = _loss(params, X, Y, "mean")
            flat[i] = saved
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - manual[name].view(-1)[i]) < 1e-7, f"{name}[{i}]"


def test_manual_step_uses_no_autograd():
    params, X, Y = _random_problem()
    _, outputs = mlp_manual.forward(params, X)
    grads = mlp_manual.backward(params, outputs, Y)
    assert not any(g.requires_grad for g in grads.values())
    before = params["Wy"].clone()
    mlp_manual.sgd(params, grads, 0.1)
    assert torch.allclose(params["Wy"], before - 0.1 * grads["Wy"])


@pytest.fixture(scope="module")
def circles_runs(tmp_path_factory):
    """The four variants at the course defaults (150 epochs), from the same seed."""
    out = tmp_path_factory.mktemp("circles")
    return {v: run(build_config(f"1ab-circles-{v}"), out, "cpu", quiet=True) for v in VARIANTS}


def _losses(path):
    with open(path / "metrics.csv") as f:
        return [(float(r["train_loss"]), float(r["test_loss"])) for r in csv.DictReader(f)]


def test_four_variants_agree_epoch_by_epoch(circles_runs):
    reference = _losses(circles_runs["manual"][0])
    assert len(reference) == 1 + 150  # epoch 0, before training: the same initial weights
    for variant in VARIANTS[1:]:
        other = _losses(circles_runs[variant][0])
        worst = max(abs(a - b) for ra, rb in zip(reference, other) for a, b in zip(ra, rb))
        assert worst < 1e-5, f"{variant} differs from manual by {worst:.2e}"


def test_every_variant_reaches_93_percent_with_pictures(circles_runs):
    for variant, (path, summary) in circles_runs.items():
        assert summary["final"]["test_acc"] >= 93.0, variant
        assert (path / "decision_boundary.png").stat().st_size > 5_000
        gif = (path / "decision_boundary.gif").read_bytes()
        assert gif[:6] == b"GIF89a" and gif.count(b"\x21\xf9\x04") > 10, "an animated GIF"


def test_circles_data_follow_the_course(circles_runs):
    _, summary = circles_runs["manual"]
    assert summary["data"]["n_train"] == 200 and summary["data"]["n_test"] == 200


def test_only_the_svm_comparison_loads_scikit_learn():
    """Every run loads every practical's hooks; scikit-learn (seconds to import) waits for
    the one that fits SVMs."""
    code = (
        "import sys; from tinyvision.experiment.hooks import registered; "
        "assert any(h.name == 'svm_comparison' for h in registered()); "
        "assert 'sklearn' not in sys.modules, 'scikit-learn imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_svm_comparison(tmp_path):
    path, summary = run(build_config("1ab-svm", ["train.epochs=20"]), tmp_path, "cpu", quiet=True)
    table = {row["kernel"]: row for row in summary["hooks"]["svm_comparison"]["svm"]}
    assert set(table) == {"linear", "poly", "rbf", "sigmoid", "LinearSVC"}
    assert table["rbf"]["test_acc"] >= 93.0
    assert table["linear"]["test_acc"] < 80, "a line cannot split a disk from a ring"
    assert table["rbf"]["n_support"] > 0
    for name in ("svm.csv", "svm_c_sweep.csv", "svm_boundaries.png", "svm_c_sweep.png"):
        assert (path / name).is_file(), name
    with open(path / "svm_c_sweep.csv") as f:
        assert len(list(csv.DictReader(f))) == 5 * 6


def test_lr_batch_study(tmp_path):
    folder = run_sweep(
        "1ab-circles-optim",
        ["optim.lr=0.003,0.03", "train.batch_size=10,50", "train.epochs=5"],
        out=tmp_path,
        device="cpu",
        quiet=True,
    )
    with open(folder / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {"optim.lr", "train.batch_size"} <= set(rows[0])
    assert (folder / "comparison.png").is_file()


@needs_fashion
def test_1ab_fashion_five_epochs(tmp_path, real_data):
    _, summary = run(build_config("1ab-fashion"), tmp_path, "cpu", quiet=True)
    assert summary["final"]["test_acc"] >= 85.0


@needs_mnist_test
def test_1ab_mnist_on_the_test_split(tmp_path, real_data):
    cfg = build_config("1ab-mnist", ["data.test_only=true", "model.variant=manual"])
    _, summary = run(cfg, tmp_path, "cpu", quiet=True)
    assert summary["final"]["test_acc"] >= 90.0
