"""Every hand-written piece against its reference: torch's schedulers, torchvision's
functional transforms, and normalization values worked out by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torch.optim import lr_scheduler as torch_lr

from tinyvision.config import DataConfig, ScheduleConfig
from tinyvision.data import augment
from tinyvision.data.preprocess import COURSE_MEAN, COURSE_STD, Normalizer, fit_normalization
from tinyvision.errors import UserError
from tinyvision.train.optim import ONE_CYCLE_DIV, ONE_CYCLE_FINAL_DIV, create_schedule, lr_curve

# ---------------------------------------------------------------------------- schedules

LR, EPOCHS, STEPS = 0.1, 12, 7  # 7 batches per epoch: 84 steps with interval=step


def _lrs(make: Callable[[torch.optim.Optimizer], object], per_step: bool) -> list[float]:
    """The lr of every optimizer step of a whole run, the schedule stepped as loop.py does."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=LR)
    sched = make(opt)
    lrs = []
    for _ in range(EPOCHS):
        for _ in range(STEPS):
            lrs.append(opt.param_groups[0]["lr"])
            p.grad = torch.ones(1)
            opt.step()
            if per_step:
                sched.step()
        if not per_step:
            sched.step()
    return lrs


def _torch_reference(name: str, cfg: ScheduleConfig, total: int, warmup: int):
    """torch's scheduler with the parameters that correspond to ours."""
    floor = cfg.min_factor * LR

    def make(opt: torch.optim.Optimizer):
        match name:
            case "step":
                return torch_lr.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
            case "exponential":
                return torch_lr.ExponentialLR(opt, gamma=cfg.gamma)
            case "cosine":
                return torch_lr.CosineAnnealingLR(opt, T_max=total, eta_min=floor)
            case "polynomial":
                return torch_lr.PolynomialLR(opt, total_iters=total, power=cfg.power)
            case "linear":
                return torch_lr.LinearLR(opt, 1.0, cfg.min_factor, total_iters=total)
            case "one-cycle":
                return torch_lr.OneCycleLR(
                    opt,
                    max_lr=LR,
                    total_steps=total,
                    pct_start=cfg.pct_start,
                    anneal_strategy="cos",
                    div_factor=ONE_CYCLE_DIV,
                    final_div_factor=ONE_CYCLE_FINAL_DIV,
                    cycle_momentum=False,
                )
            case "warmup-cosine":
                # Our warmup climbs (t + 1) / (warmup + 1): LinearLR from 1 / (warmup + 1).
                ramp = torch_lr.LinearLR(opt, 1 / (warmup + 1), 1.0, total_iters=warmup)
                decay = torch_lr.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=floor)
                return torch_lr.SequentialLR(opt, [ramp, decay], milestones=[warmup])
        raise AssertionError(name)

    return make


SCHEDULE_CASES = {
    "step": ScheduleConfig(name="step", step_size=3, gamma=0.5),
    "exponential": ScheduleConfig(name="exponential", gamma=0.9),
    "cosine": ScheduleConfig(name="cosine"),
    "cosine-floor": ScheduleConfig(name="cosine", min_factor=0.05),
    "polynomial": ScheduleConfig(name="polynomial", power=2.0),
    "polynomial-cubic": ScheduleConfig(name="polynomial", power=3.0),
    "linear": ScheduleConfig(name="linear"),
    "linear-floor": ScheduleConfig(name="linear", min_factor=0.1),
    "one-cycle": ScheduleConfig(name="one-cycle"),
    "one-cycle-half": ScheduleConfig(name="one-cycle", pct_start=0.5),
    "warmup-cosine": ScheduleConfig(name="warmup-cosine", warmup_epochs=2),
    "warmup-cosine-floor": ScheduleConfig(name="warmup-cosine", warmup_epochs=1.5, min_factor=0.1),
}


@pytest.mark.parametrize("interval", ["epoch", "step"])
@pytest.mark.parametrize("case", SCHEDULE_CASES)
def test_schedule_is_torch_scheduler(case, interval):
    """Every step of a whole run: the same lr as torch's scheduler, to rel 1e-6."""
    cfg = SCHEDULE_CASES[case]
    cfg = ScheduleConfig(**{**vars(cfg), "interval": interval})
    per_step = interval == "step"
    total = EPOCHS * STEPS if per_step else EPOCHS
    warmup = round(cfg.warmup_epochs * (STEPS if per_step else 1))
    ours = _lrs(lambda opt: create_schedule(cfg, opt, EPOCHS, STEPS), per_step)
    theirs = _lrs(_torch_reference(cfg.name, cfg, total, warmup), per_step)
    assert ours == pytest.approx(theirs, rel=1e-6, abs=0)
    # The schedule figure's curve: the lr of each epoch's first step
    assert lr_curve(cfg, LR, EPOCHS, STEPS) == pytest.approx(ours[::STEPS], rel=1e-12)
    if cfg.name == "one-cycle":  # torch's cycle: the floor exactly at the last step
        assert ours[-1] == pytest.approx(LR / ONE_CYCLE_DIV / ONE_CYCLE_FINAL_DIV, rel=1e-6)


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_polynomial_with_a_floor_is_the_formula(interval):
    """torch's PolynomialLR has no floor: lr (m + (1 - m) (1 - t / T)^p), t the step or epoch."""
    cfg = ScheduleConfig(name="polynomial", power=2.0, min_factor=0.2, interval=interval)
    per_step = interval == "step"
    total = EPOCHS * STEPS if per_step else EPOCHS
    ours = _lrs(lambda opt: create_schedule(cfg, opt, EPOCHS, STEPS), per_step)
    times = range(total) if per_step else [i // STEPS for i in range(EPOCHS * STEPS)]
    expected = [LR * (0.2 + 0.8 * (1 - t / total) ** 2) for t in times]
    assert ours == pytest.approx(expected, rel=1e-6, abs=0)


def test_one_cycle_short_runs_stay_finite():
    """Where torch's OneCycleLR divides by zero (a warm-up phase of length 0), ours peaks."""
    for epochs in (1, 2, 3):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=LR)
        sched = create_schedule(ScheduleConfig(name="one-cycle", pct_start=0.5), opt, epochs, 1)
        lrs = []
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert all(0 < v <= LR for v in lrs)
        if epochs == 2:  # the peak at step 2 * 0.5 - 1 = 0, the floor at step 1
            assert lrs == pytest.approx([LR, LR / ONE_CYCLE_DIV / ONE_CYCLE_FINAL_DIV], rel=1e-6)


# ---------------------------------------------------------------------------- augmentations


def _smooth_images(b: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random [0, 1] images: low-frequency noise, upsampled bicubically."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, h // 4 + 1, w // 4 + 1, generator=g)
    fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    return fine.clamp(0, 1)


SIZES = [(3, 32, 32), (1, 28, 28), (1, 20, 28)]  # the last one not square
# Per sample: angle (deg), translate (px, x then y), scale, shear (deg, x-shear)
AFFINE_PARAMS = [
    (17.0, (0.0, 0.0), 1.0, 0.0),
    (-33.0, (0.0, 0.0), 1.0, 0.0),
    (0.0, (2.3, -1.7), 1.0, 0.0),
    (0.0, (0.0, 0.0), 1.3, 0.0),
    (0.0, (0.0, 0.0), 0.8, 0.0),
    (0.0, (0.0, 0.0), 1.0, 12.0),
    (0.0, (0.0, 0.0), 1.0, -20.0),
    (25.0, (-3.0, 1.5), 0.85, 8.0),
]


def _interior(h: int, w: int, margin: int = 6) -> tuple[slice, slice]:
    return slice(margin, h - margin), slice(margin, w - margin)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_affine_is_torchvision_affine(size, mode):
    """Each sample of one batched call equals torchvision's affine of it with fill=None.

    Same conventions throughout (pixel centres, align_corners=False, zeros outside), so the
    whole image matches, borders included. With nearest sampling a grid point can land
    within float rounding of a half-pixel, where the two roundings may pick neighbours:
    allowed on at most 0.5% of the pixels.
    """
    x = _smooth_images(len(AFFINE_PARAMS), *size)
    angle = torch.tensor([p[0] for p in AFFINE_PARAMS])
    shift = torch.tensor([p[1] for p in AFFINE_PARAMS])
    scale = torch.tensor([p[2] for p in AFFINE_PARAMS])
    shear = torch.tensor([p[3] for p in AFFINE_PARAMS])
    ours = augment.affine(x, angle, shift, scale, shear, mode=mode)
    for i, (a, t, s, sh) in enumerate(AFFINE_PARAMS):
        theirs = TF.affine(x[i], a, list(t), s, [sh, 0.0], interpolation=mode, fill=None)
        diff = (ours[i] - theirs).abs()
        if mode == "bilinear":
            assert diff.max() < 1e-5, AFFINE_PARAMS[i]
        else:
            assert (diff > 1e-5).float().mean() <= 0.005, AFFINE_PARAMS[i]


def test_affine_border_against_torchvision_fill_zero():
    """torchvision with fill=0 (RandomAffine's default) multiplies the border pixels by the
    sampled inside-the-image mask a second time: only pixels whose bilinear footprint
    reaches outside the image differ, and only towards 0; the interior matches tightly."""
    x = _smooth_images(1, 3, 32, 32)
    ours = augment.affine(x, torch.tensor([30.0]), torch.zeros(1, 2), torch.ones(1), torch.zeros(1))
    theirs = TF.affine(x[0], 30.0, [0.0, 0.0], 1.0, [0.0, 0.0], interpolation="bilinear", fill=0)
    rows, cols = _interior(32, 32)
    assert (ours[0] - theirs)[:, rows, cols].abs().max() < 1e-5
    assert (theirs <= ours[0] + 1e-6).all()


def test_affine_directions():
    """Conventions pinned on a single bright pixel: +x shift moves right, positive affine
    angle turns clockwise on screen (y down), positive x-shear moves lower rows left."""
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 6] = 1.0  # two pixels right of the centre
    one, zero = torch.ones(1), torch.zeros(1)

    def peak(out: torch.Tensor) -> tuple[int, int]:
        row, col = divmod(int(out.flatten().argmax()), 9)
        return row, col

    assert peak(augment.affine(x, zero, torch.tensor([[1.0, 0.0]]), one, zero)) == (4, 7)
    assert peak(augment.affine(x, torch.tensor([90.0]), torch.zeros(1, 2), one, zero)) == (6, 4)
    assert peak(augment.rotate(x, torch.tensor([90.0]))) == (2, 4)  # counter-clockwise
    y = torch.zeros(1, 1, 9, 9)
    y[0, 0, 6, 4] = 1.0  # two pixels below the centre
    assert peak(augment.affine(y, zero, torch.zeros(1, 2), one, torch.tensor([45.0]))) == (6, 2)


@pytest.mark.parametrize("size", SIZES[:2], ids=lambda s: "x".join(map(str, s)))
def test_rotate_is_torchvision_rotate(size):
    x = _smooth_images(4, *size)
    angles = [10.0, -45.0, 71.0, 135.0]
    ours = augment.rotate(x, torch.tensor(angles))
    for i, a in enumerate(angles):
        theirs = TF.rotate(x[i], a, interpolation="bilinear", fill=None)
        assert (ours[i] - theirs).abs().max() < 1e-5, a


def test_random_affine_draws_torchvision_ranges():
    """random_affine(degrees, translate, scale, shear) = affine with parameters drawn from
    RandomAffine's ranges, in the order angle, shear, scale, shift."""
    x = _smooth_images(16, 3, 32, 32)
    out = augment.random_affine(x, torch.Generator().manual_seed(5), 20, 0.1, 0.2, 10)
    g = torch.Generator().manual_seed(5)
    angle = (torch.rand(16, generator=g) * 2 - 1) * 20
    shear = (torch.rand(16, generator=g) * 2 - 1) * 10
    scale = 0.8 + 0.4 * torch.rand(16, generator=g)
    shift = ((torch.rand(32, generator=g) * 2 - 1) * 0.1).view(16, 2) * 32
    assert angle.abs().max() <= 20 and shift.abs().max() <= 3.2
    expected = torch.stack(
        [
            TF.affine(
                x[i],
                float(angle[i]),
                shift[i].tolist(),
                float(scale[i]),
                [float(shear[i]), 0.0],
                interpolation="bilinear",
            )
            for i in range(16)
        ]
    )
    assert (out - expected).abs().max() < 1e-4


# Brightness, contrast, saturation factors, per sample
JITTER = [
    (1.0, 1.0, 1.0),
    (1.4, 1.0, 1.0),
    (0.6, 1.0, 1.0),
    (1.0, 1.5, 1.0),
    (1.0, 0.5, 1.0),
    (1.0, 1.0, 1.6),
    (1.0, 1.0, 0.3),
    (1.3, 0.7, 1.4),
    (0.7, 1.4, 0.6),
]


@pytest.mark.parametrize("channels", [3, 1])
def test_jitter_is_torchvision_adjust(channels):
    """brightness -> contrast -> saturation, each torchvision's adjust_* (clamped after each).

    Grey differs on purpose: ITU-R 601 (0.299 red, as PIL) where torchvision uses 0.2989.
    The grey level enters scaled by (1 - factor), so contrast and saturation may differ by
    1e-4 |1 - factor| (red <= 1) each; grey images (no red weight) match to float rounding.
    """
    x = _smooth_images(len(JITTER), channels, 32, 32, seed=1)
    x[:, :, :4] = 0.95  # bright rows: brightness 1.4 leaves [0, 1] before contrast acts
    b, c, s = (torch.tensor(col) for col in zip(*JITTER))
    ours = augment.jitter(x, b, c, s if channels == 3 else None)
    for i, (fb, fc, fs) in enumerate(JITTER):
        theirs = TF.adjust_brightness(x[i], fb)
        theirs = TF.adjust_contrast(theirs, fc)
        theirs = TF.adjust_saturation(theirs, fs)  # identity on grey images, as ours
        bound = 1e-4 * (abs(1 - fc) + abs(1 - fs)) if channels == 3 else 0.0
        assert (ours[i] - theirs).abs().max() <= bound + 2e-6, JITTER[i]


def test_color_jitter_draws_brightness_contrast_saturation():
    x = _smooth_images(8, 3, 16, 16)
    out = augment.color_jitter(x, torch.Generator().manual_seed(2), 0.4)
    g = torch.Generator().manual_seed(2)
    b, c, s = (0.6 + 0.8 * torch.rand(8, generator=g) for _ in range(3))
    assert torch.allclose(out, augment.jitter(x, b, c, s), atol=1e-6)


def test_erase_is_torchvision_erase():
    x = _smooth_images(4, 3, 16, 16)
    boxes = [(0, 0, 3, 5), (4, 7, 6, 2), (10, 12, 6, 4), (2, 3, 0, 4)]  # top, left, h, w
    top, left, height, width = (torch.tensor(col) for col in zip(*boxes))
    for value in (0.0, 0.5):
        ours = augment.erase(x, top, left, height, width, value)
        for i, (t, lft, h, w) in enumerate(boxes):
            theirs = TF.erase(x[i], t, lft, h, w, torch.tensor(value))
            assert torch.equal(ours[i], theirs), boxes[i]


def test_cutout_is_erase_of_the_clipped_square():
    """Cutout squares centred near a border overhang it: the part inside is erased."""
    x = _smooth_images(64, 1, 12, 12)
    out = augment.cutout(x, torch.Generator().manual_seed(0), 5)
    g = torch.Generator().manual_seed(0)
    cy, cx = torch.randint(0, 12, (64,), generator=g), torch.randint(0, 12, (64,), generator=g)
    for i in range(64):
        top, left = int(cy[i]) - 2, int(cx[i]) - 2
        t, lft = max(top, 0), max(left, 0)
        theirs = TF.erase(x[i], t, lft, top + 5 - t, left + 5 - lft, torch.tensor(0.0))
        assert torch.equal(out[i], theirs)


def test_random_erase_is_erase_of_its_boxes():
    x = _smooth_images(32, 3, 16, 16)
    out = augment.random_erase(x, torch.Generator().manual_seed(4), p=0.5)
    g = torch.Generator().manual_seed(4)
    area = (0.02 + 0.31 * torch.rand(32, generator=g)) * 256
    aspect = torch.exp(
        math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(32, generator=g)
    )
    height = (area * aspect).sqrt().round().clamp(1, 16).long()
    width = (area / aspect).sqrt().round().clamp(1, 16).long()
    top = (torch.rand(32, generator=g) * (16 - height + 1)).long()
    left = (torch.rand(32, generator=g) * (16 - width + 1)).long()
    chosen = torch.rand(32, generator=g) < 0.5
    assert 5 < chosen.sum() < 27
    for i in range(32):
        h, w = (int(height[i]), int(width[i])) if chosen[i] else (0, 0)
        theirs = TF.erase(x[i], int(top[i]), int(left[i]), h, w, torch.tensor(0.0))
        assert torch.equal(out[i], theirs)


def test_pad_crop_flip_are_torchvision():
    x = _smooth_images(6, 3, 28, 28)
    padded = augment.pad(x, 4)
    assert torch.equal(padded, TF.pad(x, [4], fill=0, padding_mode="constant"))
    top, left = torch.tensor([0, 8, 3, 5, 8, 0]), torch.tensor([0, 8, 7, 1, 0, 8])
    crops = augment.crop_at(padded, top, left, 28)
    for i in range(6):
        assert torch.equal(crops[i], TF.crop(padded[i], int(top[i]), int(left[i]), 28, 28))
    flips = augment.random_flip(x, torch.Generator().manual_seed(0))
    chosen = torch.rand(6, generator=torch.Generator().manual_seed(0)) < 0.5
    assert 0 < chosen.sum() < 6
    for i in range(6):
        assert torch.equal(flips[i], TF.horizontal_flip(x[i]) if chosen[i] else x[i])


@pytest.mark.parametrize("size", [28, 27, 26, 25, 24, 20])
def test_center_crop_is_torchvision(size):
    """Odd margins split as torchvision's CenterCrop: round((32 - size) / 2), half to even."""
    x = _smooth_images(2, 1, 32, 32)
    assert torch.equal(augment.center_crop(x, size), TF.center_crop(x, [size, size]))


# ---------------------------------------------------------------------------- normalization

# Train: 2 images, 2 channels, 1 x 2 pixels. Channel 0 holds 0.2, 0.2, 0.6, 0.6 (mean 0.4,
# population std 0.2, min 0.2, max 0.6); channel 1 holds 0.25, 0.75, 0.75, 0.25 (mean 0.5,
# std 0.25, min 0.25, max 0.75).
TRAIN = torch.tensor([[[[0.2, 0.6]], [[0.25, 0.75]]], [[[0.6, 0.2]], [[0.75, 0.25]]]])
# Test: other statistics, which must not matter.
TEST = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])


def _apply(scheme: str, train: torch.Tensor, test: torch.Tensor, **kw) -> torch.Tensor:
    stats = fit_normalization(DataConfig(normalize=scheme, **kw), train)
    return Normalizer(stats)(test)


def test_standardize_by_hand():
    out = _apply("standardize", TRAIN, TEST)
    # ((1 - 0.4) / 0.2, (0 - 0.4) / 0.2), ((0 - 0.5) / 0.25, (1 - 0.5) / 0.25)
    assert torch.allclose(out, torch.tensor([[[[3.0, -2.0]], [[-2.0, 2.0]]]]), atol=1e-5)
    train_out = _apply("standardize", TRAIN, TRAIN).transpose(0, 1).reshape(2, -1)
    assert torch.allclose(train_out.mean(1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(train_out.std(1, correction=0), torch.ones(2), atol=1e-5)


def test_standardize_uint8_and_given_statistics():
    as_bytes = (TRAIN * 255).round().to(torch.uint8)  # 51, 153; 64, 191 (0.251, 0.749)
    stats = fit_normalization(DataConfig(normalize="standardize"), as_bytes)
    assert stats["mean"] == pytest.approx([0.4, 0.5], abs=1e-6)
    assert stats["std"] == pytest.approx([0.2, 127 / 255 / 2], abs=1e-6)
    given = _apply("standardize", TRAIN, TEST, mean=(0.5, 0.5), std=(0.25, 0.5))
    assert torch.allclose(given, torch.tensor([[[[2.0, -2.0]], [[-1.0, 1.0]]]]), atol=1e-6)


def test_minmax_by_hand():
    out = _apply("minmax", TRAIN, TEST)
    # ((1 - 0.2) / 0.4, (0 - 0.2) / 0.4), ((0 - 0.25) / 0.5, (1 - 0.25) / 0.5)
    assert torch.allclose(out, torch.tensor([[[[2.0, -0.5]], [[-0.5, 1.5]]]]), atol=1e-6)
    as_bytes = (TRAIN * 255).round().to(torch.uint8)  # 51, 153; 64, 191
    stats = fit_normalization(DataConfig(normalize="minmax"), as_bytes)
    assert stats["mean"] == pytest.approx([51 / 255, 64 / 255], abs=1e-7)
    assert stats["std"] == pytest.approx([102 / 255, 127 / 255], abs=1e-7)


def test_course_constants_by_hand():
    mean, std = torch.tensor(COURSE_MEAN).view(3, 1, 1), torch.tensor(COURSE_STD).view(3, 1, 1)
    k = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    test = (mean + std * k).unsqueeze(0)  # k standard deviations from each channel's mean
    out = _apply("course", torch.rand(4, 3, 2, 2), test)
    assert torch.allclose(out, k.expand(1, 3, 2, 2), atol=1e-5)
    assert (0.491, 0.482, 0.447) == COURSE_MEAN and (0.202, 0.199, 0.201) == COURSE_STD
    with pytest.raises(UserError, match="3-channel"):
        fit_normalization(DataConfig(normalize="course"), torch.rand(4, 1, 2, 2))


def test_per_image_schemes_by_hand():
    """gcn, l1, l2 need no training statistics: each image on its own, 1 x 2 x 2."""
    images = torch.tensor(
        [
            [[[0.0, 0.0], [1.0, 1.0]]],  # mean 0.5, population std 0.5
            [[[0.1, 0.2], [0.3, 0.4]]],  # L1 norm 1.0
            [[[0.3, 0.4], [0.0, 0.0]]],  # L2 norm 0.5
            [[[0.7, 0.7], [0.7, 0.7]]],  # flat: std 0, kept from blowing up
        ]
    )
    gcn = _apply("gcn", TRAIN, images)
    assert torch.allclose(gcn[0], torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]]), atol=1e-6)
    assert torch.allclose(gcn[3], torch.zeros(1, 2, 2), atol=1e-6)
    l1 = _apply("l1", TRAIN, images)  # x / |x|_1 * D, D = 4
    assert torch.allclose(l1[1], torch.tensor([[[0.4, 0.8], [1.2, 1.6]]]), atol=1e-6)
    l2 = _apply("l2", TRAIN, images)  # x / |x|_2 * sqrt(D)
    assert torch.allclose(l2[2], torch.tensor([[[1.2, 1.6], [0.0, 0.0]]]), atol=1e-6)
    assert torch.equal(_apply("none", TRAIN, images), images)


def test_zca_by_hand():
    """Four points of 2 pixels, mean 0, covariance [[2.5, 1.5], [1.5, 2.5]]: eigenvalue 4
    along (1, 1), 1 along (1, -1), so W = (4 + e)^-1/2 P+ + (1 + e)^-1/2 P-, with
    P+ = [[1, 1], [1, 1]] / 2 and P- = [[1, -1], [-1, 1]] / 2 the projections."""
    train = torch.tensor([[2.0, 2.0], [-2.0, -2.0], [1.0, -1.0], [-1.0, 1.0]]).view(4, 1, 1, 2)
    eps = 0.5
    plus, minus = torch.tensor([[0.5, 0.5], [0.5, 0.5]]), torch.tensor([[0.5, -0.5], [-0.5, 0.5]])
    expected_w = plus / math.sqrt(4 + eps) + minus / math.sqrt(1 + eps)
    stats = fit_normalization(DataConfig(normalize="zca", zca_epsilon=eps), train)
    assert torch.allclose(stats["zca"], expected_w, atol=1e-6)
    assert torch.allclose(stats["zca_mean"], torch.zeros(2), atol=1e-7)
    test = torch.tensor([3.0, 1.0]).view(1, 1, 1, 2)
    out = Normalizer(stats)(test).view(2)
    assert torch.allclose(out, expected_w @ torch.tensor([3.0, 1.0]), atol=1e-6)


def test_zca_whitens_the_train_split_and_is_symmetric():
    """Whitened train covariance = U S / (S + eps) U^T (identity as eps -> 0), fitted on
    train only: the test split is centred with the train mean."""
    g = torch.Generator().manual_seed(0)
    mixing = torch.rand(12, 12, generator=g) * 0.3 + torch.eye(12) * 0.5
    train = (torch.rand(400, 12, generator=g) @ mixing).view(400, 3, 2, 2)  # correlated pixels
    for eps in (1e-7, 0.1):
        stats = fit_normalization(DataConfig(normalize="zca", zca_epsilon=eps), train)
        w = stats["zca"].double()
        assert torch.allclose(w, w.T, atol=1e-6)
        flat = train.view(400, 12).double()
        cov = torch.cov(flat.T, correction=0)
        s, u = torch.linalg.eigh(cov)
        white = Normalizer(stats)(train).view(400, 12).double()
        white_cov = torch.cov(white.T, correction=0)
        assert torch.allclose(white_cov, u @ torch.diag(s / (s + eps)) @ u.T, atol=1e-5)
        assert torch.allclose(white.mean(0), torch.zeros(12, dtype=torch.float64), atol=1e-5)
        if eps == 1e-7:  # eigenvalues here >= 3e-3: s / (s + eps) within 4e-5 of 1
            assert torch.allclose(white_cov, torch.eye(12, dtype=torch.float64), atol=1e-4)
    test = train[:5] + 1.0  # shifted test data stays shifted: the mean is train's
    shifted = Normalizer(stats)(test).view(5, 12) - Normalizer(stats)(train[:5]).view(5, 12)
    assert torch.allclose(shifted, (torch.ones(12) @ stats["zca"]).expand(5, 12), atol=1e-4)
