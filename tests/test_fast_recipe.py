"""The fast recipe's ingredients: the VGG-like net, the weight average, test-time flips and
shifts, the whitened first layer, identity-initialized convolutions, alternating flips and
weight decay kept off the 1-D parameters."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from safetensors.torch import load_file
from torch import nn

from tinyvision.data.augment import translate
from tinyvision.data.loader import BatchTransform, DeviceLoader
from tinyvision.errors import UserError
from tinyvision.experiment.runner import resume, run
from tinyvision.inference.predict import probabilities
from tinyvision.inference.trained import load_trained
from tinyvision.io import read_csv
from tinyvision.models.cnn import VGGNet
from tinyvision.models.summary import summarize
from tinyvision.models.whiten import PatchWhitening, whitening_filters
from tinyvision.presets import build_config
from tinyvision.studies import STUDIES
from tinyvision.train.ema import WeightAverage
from tinyvision.train.lookahead import Lookahead
from tinyvision.train.loop import Learner
from tinyvision.train.optim import create_optimizer

from conftest import interrupt_at_epoch, needs_fashion, whitening_after_steps

# The 8x8 digits: three 2x2 pools take them to 1x1, as 28x28 goes to 3x3.
TINY = ["data.name=digits", "data.crop=8", "data.pad=1", "train.batch_size=64", "train.epochs=3"]
TIMING = {"epoch_seconds", "images_per_second"}


def _metrics(path):
    rows = read_csv(path / "metrics.csv")
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_vgg_net_sizes():
    model = VGGNet(1, 10, width=32)
    # conv weights 3x3 without bias, two batch norms of 2 x width each per block, fc
    convs = 9 * (1 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128)
    norms = 2 * 2 * (32 + 64 + 128)
    assert sum(p.numel() for p in model.parameters()) == convs + norms + 128 * 10 == 288_160
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    rows = summarize(model, (1, 28, 28))
    assert [r.output[-1] for r in rows if r.kind == "MaxPool2d"] == [14, 7, 3]
    # fewer multiply-adds than the course CNN's 17M on 28x28
    assert sum(r.macs for r in rows) == pytest.approx(12.3e6, rel=0.02)


def test_weight_average_follows_its_formula():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = WeightAverage(model, decay=0.9)
    expected = {k: v.clone().float() for k, v in model.state_dict().items()}
    for n in range(1, 30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(8, 3))  # moves the running statistics and the batch counter
        average.update()
        decay = min(0.9, (1 + n) / (10 + n))  # the warm-up: short memory at first
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v
            else:
                expected[k] = v.clone()
    for k, v in average.average.items():
        torch.testing.assert_close(v.float(), expected[k].float(), rtol=1e-5, atol=1e-6)
    assert average.average["1.num_batches_tracked"] == 29


def test_swapped_in_weights_come_back():
    model = nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    with average.swapped_in():
        torch.testing.assert_close(model.weight, average.average["weight"])
        assert not torch.equal(model.weight, trained["weight"])
    torch.testing.assert_close(model.state_dict()["weight"], trained["weight"])
    assert not torch.equal(average.average["weight"], before["weight"])


def test_tta_averages_the_logits_of_the_mirror_image():
    torch.manual_seed(0)
    model = VGGNet(1, 10, width=4).eval()
    x = torch.randn(5, 1, 8, 8)
    plain = Learner(model, None)
    mirrored = Learner(model, None, tta=True)
    with torch.no_grad():
        expected = (model(x) + model(torch.flip(x, dims=[3]))) / 2
        torch.testing.assert_close(mirrored.infer(x), expected)
        torch.testing.assert_close(plain.infer(x), model(x))


def test_epoch_0_is_measured_on_the_plain_images(tmp_path):
    """The check before training skips the test-time views (their cost, six passes over
    the training images, buys nothing there); the epochs after it use them."""
    rows = []
    for name, views in (("plain", ["train.tta=false"]), ("views", ["train.tta_shift=1"])):
        overrides = [*TINY, "train.epochs=1", "model.width=8", "train.amp=none", *views]
        path, _ = run(build_config("fashion-fast", overrides), tmp_path / name, "cpu", quiet=True)
        rows.append(_metrics(path))
    (plain_0, plain_1), (views_0, views_1) = rows
    assert plain_0 == views_0
    assert plain_1["train_loss"] == views_1["train_loss"]  # trained alike
    assert plain_1["test_loss"] != views_1["test_loss"]  # evaluated with the views


def test_translate_matches_torchvision():
    x = torch.randn(3, 2, 7, 9)
    for dy, dx in ((1, 1), (-1, -1), (2, 0), (0, -3)):
        expected = TF.affine(x, angle=0.0, translate=[dx, dy], scale=1.0, shear=[0.0, 0.0])
        torch.testing.assert_close(translate(x, dy, dx), expected)


def test_tta_shift_averages_the_moved_images():
    torch.manual_seed(0)
    model = VGGNet(1, 10, width=4).eval()
    x = torch.randn(5, 1, 8, 8)
    shifted = Learner(model, None, tta=True, tta_shift=2)
    only_shifts = Learner(model, None, tta_shift=1)

    def flips(v):
        return (model(v) + model(v.flip(-1))) / 2

    def moved(v, s):  # torchvision's translation, (x, y) = (s, s)
        return TF.affine(v, angle=0.0, translate=[s, s], scale=1.0, shear=[0.0, 0.0])

    with torch.no_grad():
        expected = (2 * flips(x) + flips(moved(x, 2)) + flips(moved(x, -2))) / 4
        torch.testing.assert_close(shifted.infer(x), expected)
        expected = (2 * model(x) + model(moved(x, 1)) + model(moved(x, -1))) / 4
        torch.testing.assert_close(only_shifts.infer(x), expected)


def test_whitening_filters_decorrelate_the_patches():
    """Against numpy's covariance and eigendecomposition: the filtered patches have the
    identity covariance, the eigenvalues / (eigenvalues + eps) with eps."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(9, 9))
    patches = rng.normal(size=(5000, 9)) @ mixing + 3.0
    cov = np.cov(patches, rowvar=False)
    eigenvalues = np.linalg.eigvalsh(cov)[::-1]
    for eps, expected in ((0.0, np.ones(9)), (0.5, eigenvalues / (eigenvalues + 0.5))):
        rows = whitening_filters(torch.tensor(patches), eps).double().numpy()
        np.testing.assert_allclose(rows @ cov @ rows.T, np.diag(expected), atol=1e-5)


def test_whitening_layer_is_fitted_once_and_never_trained():
    torch.manual_seed(0)
    model = VGGNet(1, 10, width=8, whiten=True)
    layer = model.features.block1.conv1
    assert isinstance(layer, PatchWhitening) and not layer.fitted
    assert layer.out_channels == 18 and model.features.block1.conv2.in_channels == 18
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    first, fitted = whitening_after_steps(model, layer, optimizer)
    assert layer.fitted and layer.weight.grad is None
    torch.testing.assert_close(layer.weight, fitted)  # not refitted, not moved by the steps
    # the first batch's patches, away from the zero-padded border, come out whitened
    half = F.conv2d(first, layer.weight[:9])  # no padding: interior patches only
    out = half.transpose(0, 1).reshape(9, -1)
    torch.testing.assert_close(torch.cov(out), torch.eye(9), atol=0.15, rtol=0)
    torch.testing.assert_close(layer.weight[9:], -layer.weight[:9])
    # fewer multiply-adds than the plain net: the first block's second conv reads 18 maps
    macs = sum(r.macs for r in summarize(VGGNet(1, 10, 32, whiten=True), (1, 28, 28)))
    assert macs < sum(r.macs for r in summarize(VGGNet(1, 10, 32), (1, 28, 28)))


def test_dirac_convolutions_start_as_the_identity():
    """model.dirac: each trained convolution's first in_channels outputs are its input
    (as torch.nn.init.dirac_ gives), the rest stay random; the whitening is left as it is."""
    torch.manual_seed(0)
    net = VGGNet(1, 10, 8, whiten=True, dirac=True)
    for name, conv in net.named_modules():
        if isinstance(conv, PatchWhitening) or not isinstance(conv, nn.Conv2d):
            continue
        x = torch.randn(2, conv.in_channels, 7, 7)
        kept = min(conv.in_channels, conv.out_channels)
        torch.testing.assert_close(conv(x)[:, :kept], x[:, :kept], msg=name)
        if conv.out_channels > kept:  # the other outputs are not copies of anything
            assert conv.weight[kept:].abs().sum() > 0 and conv.weight[kept:].std() > 0
    torch.manual_seed(0)
    plain = VGGNet(1, 10, 8, whiten=True)
    assert torch.equal(net.features.block2.conv1.weight[8:], plain.features.block2.conv1.weight[8:])
    assert not torch.equal(net.features.block2.conv1.weight, plain.features.block2.conv1.weight)


def test_norm_decay_off_spares_the_one_dimensional_parameters():
    """optim.norm_decay=false: one step of SGD with weight decay moves the conv and linear
    weights as torch's weight decay does, and the biases and batch norm's affine
    parameters as if there were none."""
    torch.manual_seed(0)
    net = VGGNet(1, 10, 4)
    plain_sgd = ["optim.nesterov=false", "optim.momentum=0"]  # the step is lr * decay * w
    cfg = build_config(
        "fashion-fast", [*plain_sgd, "optim.norm_decay=false", "optim.weight_decay=0.1"]
    )
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # zero gradients: the whole step is the decay's
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    create_optimizer(cfg.optim, net.parameters()).step()
    lr = cfg.optim.lr
    for name, p in net.named_parameters():
        expected = before[name] * (1 - lr * 0.1) if p.ndim > 1 else before[name]
        torch.testing.assert_close(p.detach(), expected, msg=name)
    assert any(p.ndim == 1 for p in net.parameters())


def test_lookahead_pulls_the_weights_back_every_k_steps():
    """train.lookahead: after k SGD steps the weights are slow + alpha (fast - slow), the
    slow weights being those k steps before; in between, plain SGD steps."""
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    start = [p.detach().clone() for p in net.parameters()]
    reference = nn.Linear(3, 2)
    with torch.no_grad():
        for p, q in zip(reference.parameters(), start, strict=True):
            p.copy_(q)

    def sgd_steps(model: nn.Module, n: int, optimizer) -> None:
        for _ in range(n):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    learner = Learner(net, optimizer, lookahead=Lookahead(net, 0.5, every=3))
    for _ in range(2):
        learner.train_step(x, y)
    sgd_steps(reference, 2, torch.optim.SGD(reference.parameters(), lr=0.5))
    for p, q in zip(net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q)  # no pull before the k-th step
    learner.train_step(x, y)
    sgd_steps(reference, 1, torch.optim.SGD(reference.parameters(), lr=0.5))
    for p, fast, slow in zip(net.parameters(), reference.parameters(), start, strict=True):
        torch.testing.assert_close(p.detach(), slow + 0.5 * (fast.detach() - slow))


def _flip_loader(seed: int, n: int = 64) -> DeviceLoader:
    """Images whose left half is 1 and right half 0: a mirrored one is told by its pixels."""
    cfg = build_config("fashion-fast", ["data.alternate_flip=true", "data.pad=0"]).data
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    images[..., :14] = 255
    transform = BatchTransform(cfg, {"scheme": "none"}, train=True)
    generator = torch.Generator().manual_seed(seed)
    return DeviceLoader(
        images, torch.arange(n), 16, transform, torch.device("cpu"), True, generator
    )


def _mirrored(loader: DeviceLoader) -> dict[int, bool]:
    """Per image (its label is its index), whether this pass mirrored it."""
    return {
        int(i): bool(x[0, 0, -1] > x[0, 0, 0])
        for xb, yb in loader
        for x, i in zip(xb, yb, strict=True)
    }


def test_alternating_flips_mirror_each_image_every_other_epoch():
    """data.alternate_flip: the first pass mirrors about half the images; each later pass
    mirrors exactly those the pass before did not, whatever the shuffle; a loader resumed
    at its third pass (as `resume` sets it) mirrors what the uninterrupted one did."""
    loader = _flip_loader(seed=3)
    passes = [_mirrored(loader) for _ in range(3)]
    assert 20 <= sum(passes[0].values()) <= 44
    for before, after in zip(passes, passes[1:]):
        assert all(after[i] != before[i] for i in before)
    resumed = _flip_loader(seed=3)
    resumed.passes = 2
    assert _mirrored(resumed) == passes[2]
    assert _mirrored(_flip_loader(seed=4)) != passes[0]  # the seed chooses the first half


@pytest.mark.parametrize(
    "new",
    [
        [],
        ["model.whiten=true", "train.tta_shift=1"],
        ["data.alternate_flip=true", "model.dirac=true", "optim.norm_decay=false"],
        ["train.lookahead=0.5", "train.lookahead_steps=3"],
    ],
)
def test_interrupted_fast_recipe_resumes_exactly(tmp_path, monkeypatch, new):
    """The weight average (and the whitening's fit) is in the checkpoint: resume gives the
    uninterrupted numbers."""
    from tinyvision.train import loop

    overrides = [*TINY, "train.epochs=4", "model.width=8", "train.ema=0.9", *new]
    full, _ = run(build_config("fashion-fast", overrides), tmp_path / "a", "cpu", quiet=True)

    real_epoch = interrupt_at_epoch(monkeypatch, at=3)
    with pytest.raises(KeyboardInterrupt):
        run(build_config("fashion-fast", overrides), tmp_path / "b", "cpu", quiet=True)
    monkeypatch.setattr(loop, "epoch", real_epoch)
    (cut,) = (tmp_path / "b").glob("fashion-fast-*")
    _, summary = resume(cut, "cpu", quiet=True)
    assert summary["status"] == "completed"
    assert _metrics(cut) == _metrics(full)
    # The kept weights are the average the test accuracy was measured with.
    checkpoint = torch.load(full / "checkpoint.pt", weights_only=True)
    saved = load_file(full / "model.safetensors")
    for k, v in checkpoint["ema"]["average"].items():
        torch.testing.assert_close(saved[k], v)
    assert not torch.equal(saved["fc.weight"], checkpoint["model"]["fc.weight"])


def test_confusion_and_predict_see_what_the_run_measured(tmp_path):
    """With the weight average and test-time flips, the confusion matrix's diagonal and
    `predict` on the test images both give the run's final test accuracy."""
    # float32 throughout: `predict` runs in float32, and `train.amp=auto` may pick bf16 on
    # one machine and not another (it times both), which can move an image across a border.
    overrides = [*TINY, "model.width=8", "train.ema=0.9", "train.amp=none"]
    overrides += ["train.tta_shift=1"]
    path, summary = run(build_config("fashion-fast", overrides), tmp_path, "cpu", quiet=True)
    final = summary["final"]["test_acc"]
    with (path / "confusion.csv").open(newline="") as f:
        matrix = np.array([[int(v) for v in r[1:]] for r in list(csv.reader(f))[1:]])
    assert 100 * np.trace(matrix) / matrix.sum() == pytest.approx(final, abs=1e-6)

    trained = load_trained(path, None, "test")
    probs = probabilities(trained, torch.as_tensor(trained.data.test_x))
    labels = torch.as_tensor(trained.data.test_y)
    assert 100 * (probs.argmax(1) == labels).double().mean().item() == pytest.approx(
        final, abs=1e-6
    )


@pytest.mark.parametrize(
    "preset, overrides, message",
    [
        ("1ab-circles", ["train.tta=true"], "circles holds 2-D points"),
        ("1ab-circles", ["model.variant=nn", "train.ema=0.99"], "train.ema averages"),
        ("fashion-fast", ["train.ema=1.0"], r"train.ema must be in \[0, 1\)"),
        ("fashion-fast", ["model.width=0"], "model.width must be positive"),
        ("cnn-fashion", ["model.width=16"], "model.width does nothing for model.name=cnn"),
        ("cnn-fashion", ["model.whiten=true"], "model.whiten does nothing for model.name=cnn"),
        ("fashion-fast", ["train.tta_shift=5"], r"train.tta_shift must be in 0..4"),
        ("fashion-fast", ["data.flip=false", "data.alternate_flip=true"], "needs data.flip"),
        ("cnn-fashion", ["model.dirac=true"], "model.dirac does nothing for model.name=cnn"),
        ("fashion-fast", ["train.lookahead=1"], r"train.lookahead must be in \[0, 1\)"),
        ("fashion-fast", ["train.lookahead_steps=0"], "train.lookahead_steps must be positive"),
        ("1ab-circles", ["model.variant=nn", "train.lookahead=0.5"], "pulls back"),
        ("1ab-circles", ["train.tta_shift=1"], "circles holds 2-D points"),
    ],
)
def test_bad_combinations_are_one_line(preset, overrides, message):
    with pytest.raises(UserError, match=message):
        build_config(preset, overrides)


@needs_fashion
def test_fashion_fast_at_two_epochs(tmp_path, real_data):
    """The recipe on the real data with 2 of its epochs on 10,000 training images, tested
    on 2,000: measured 86.85%, 86.75%, 86.95% for seeds 0-2 (about 15 s each, one thread)
    on a 2-core Intel Xeon with AVX-512 BF16 and AMX (bf16 chosen by the probe); the
    bound leaves room for other CPUs' rounding and float32."""
    # two epochs on any machine: the preset's time budget would cut a slow one's to one
    budget = ["train.epochs=2", "train.time_budget=0", "data.train_subset=10000"]
    budget += ["data.test_subset=2000"]
    _, summary = run(build_config("fashion-fast", budget), tmp_path, "cpu", quiet=True)
    assert summary["final"]["test_acc"] >= 84.0
    recorded = json.loads((next(tmp_path.glob("fashion-fast-*")) / "config.json").read_text())
    assert recorded["train"]["tta"] is True and recorded["train"]["ema"] == 0.99
    assert recorded["model"]["whiten"] is True and recorded["train"]["tta_shift"] == 1


def test_ablation_steps_each_change_what_they_name():
    """Every step of the fast recipe's ablation builds, and differs from the full recipe in
    exactly the keys it sets (so a renamed or mistyped key cannot silently do nothing)."""
    full = build_config("fashion-fast").to_dict()
    for label, preset, overrides in STUDIES["fashion-fast-ablation"].steps:
        cfg = build_config(preset, overrides).to_dict()
        changed = {
            f"{section}.{key}"
            for section, values in cfg.items()
            if isinstance(values, dict)
            for key, value in values.items()
            if full[section][key] != value
        }
        assert changed == {o.split("=")[0] for o in overrides}, label
