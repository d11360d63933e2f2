"""Named experiments, as one table. Each preset holds only what differs from its parent.

A row: name, description, the preset it stacks on (the course's CNN steps each add one
improvement to the previous one), and its settings per config section as typed values.
To add a preset, add a row; `tinyvision list` shows them all (docs/commands.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from tinyvision.config import Config, apply_overrides, assign, check_model_keys, parse_assignment
from tinyvision.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    overrides: dict[str, Any]  # dotted key -> typed value
    parent: str | None = None


def P(name: str, description: str, parent: str | None = None, **sections: Any) -> Preset:
    """A row of the table: `data=dict(name="mnist")` becomes `{"data.name": "mnist"}`."""
    flat = {}
    for section, values in sections.items():
        if isinstance(values, dict):
            flat |= {f"{section}.{key}": value for key, value in values.items()}
        else:  # the top-level strings: task
            flat[section] = values
    return Preset(name, description, flat, parent)


COURSE_VIT = dict(embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4, mlp_ratio=4.0)

# fmt: off
PRESETS = (
    # --- practical 1-ab: the two-layer MLP, four ways ---------------------------------
    P("1ab-circles", "1-ab base: 2-layer MLP (tanh, 10 hidden) on circles, N(0, 0.3) init, "
      "SGD 0.03", data=dict(name="circles", normalize="none"),  # the raw coordinates
      model=dict(name="mlp", hidden=10, activation="tanh", init_std=0.3, variant="optim"),
      optim=dict(name="sgd", lr=0.03),
      # the hand-written backward sums over the batch; 200 points: float32 throughout,
      # so the four variants agree to 1e-7
      train=dict(batch_size=10, loss_reduction="sum", epochs=150, amp="none",
                 channels_last=False)),
    *(P(f"1ab-circles-{v}", f"1-ab: the 2-layer tanh MLP on circles, variant '{v}' (course "
        "defaults)", "1ab-circles", model=dict(variant=v))
      for v in ("manual", "autograd", "nn", "optim")),
    P("1ab-svm", "1-ab bonus: SVMs (linear, poly, RBF, sigmoid, LinearSVC; a C sweep) beside "
      "the MLP", "1ab-circles-optim", task="svm"),
    # N(0, 0.3) saturates tanh on 784 inputs (torch's init does not); summed over 100
    # examples, lr 0.03 would be 3: the mean
    P("1ab-mnist", "1-ab: the MLP (tanh, 100 hidden) on flattened MNIST, SGD 0.03, batch 100",
      "1ab-circles", data=dict(name="mnist", normalize="standardize"),
      model=dict(hidden=100, init_std=None),
      train=dict(batch_size=100, loss_reduction="mean", epochs=10)),
    P("1ab-fashion", "1-ab: the same MLP on flattened Fashion-MNIST", "1ab-mnist",
      data=dict(name="fashion-mnist"), train=dict(epochs=5)),
    # --- practical 1-cd: the course CNN, one improvement at a time --------------------
    P("1cd-lenet-mnist", "1-cd start: LeNet-5 (tanh, conv 6-16, fc 120-84) on MNIST, SGD 0.1, "
      "batch 128", data=dict(name="mnist", normalize="none"),
      model=dict(name="lenet", activation="tanh"), optim=dict(name="sgd", lr=0.1),
      train=dict(batch_size=128, epochs=10)),
    P("1cd-baseline", "1-cd step 1: the course CNN on CIFAR-10, plain SGD lr 0.1, batch 128, "
      "[0,1] pixels", data=dict(name="cifar10", normalize="none"),
      model=dict(name="cnn", activation="relu"), optim=dict(name="sgd", lr=0.1, momentum=0.0),
      train=dict(batch_size=128, epochs=30)),
    P("1cd-standardize", "1-cd step 2: + per-channel standardization fitted on the training "
      "split", "1cd-baseline", data=dict(normalize="standardize")),  # course: its constants
    P("1cd-augment", "1-cd step 3: + RandomCrop(28) and horizontal flip (CenterCrop(28) at "
      "test)", "1cd-standardize", data=dict(crop=28, flip=True)),
    # Momentum 0.9 multiplies the step by about 1 / (1 - 0.9) = 10: lr 0.01 keeps the
    # baseline's effective step (0.1 with momentum diverges without batch norm).
    P("1cd-schedule", "1-cd step 4: + SGD momentum 0.9 and ExponentialLR(0.95) per epoch",
      "1cd-augment", optim=dict(momentum=0.9, lr=0.01),
      schedule=dict(name="exponential", gamma=0.95)),
    P("1cd-dropout", "1-cd step 5: + dropout 0.5 between fc4 and fc5", "1cd-schedule",
      model=dict(dropout=0.5)),
    P("1cd-batchnorm", "1-cd step 6: + BatchNorm2d after each convolution (the full stack)",
      "1cd-dropout", model=dict(batchnorm=True)),
    # --- practical 1-e: vision transformers -------------------------------------------
    P("1e-vit-mnist", "1-e: the course ViT (embed 32, patch 7, 2 blocks, 4 heads, mlp 4) on "
      "MNIST", data=dict(name="mnist"), model=dict(name="vit", **COURSE_VIT),
      optim=dict(name="adam", lr=0.001), train=dict(batch_size=128, epochs=10)),
    P("1e-vit-fashion", "1-e: the course ViT on Fashion-MNIST", "1e-vit-mnist",
      data=dict(name="fashion-mnist")),
    # 8,000 images overfit the course recipe at about 93%: small shifts and rotations and
    # a cosine schedule (same architecture) bring it past 95%.
    P("1e-vit-mnist-testsplit", "1-e: the course ViT on MNIST's test split alone (8,000 "
      "train / 2,000 held out)", "1e-vit-mnist",
      data=dict(test_only=True, holdout=2000, pad=2, crop=28, rotate=10.0),
      optim=dict(lr=0.002), schedule=dict(name="cosine"), train=dict(epochs=40)),
    # a 22M-parameter transformer: Adam 1e-3 is unstable from scratch
    P("1e-timm-scratch", "1-e: timm's vit_small_patch16_224 from scratch on MNIST "
      "(img_size=28, in_chans=1)", "1e-vit-mnist",
      model=dict(name="timm:vit_small_patch16_224", timm_input="native"),
      optim=dict(lr=0.0001), train=dict(epochs=5)),
    P("1e-timm-pretrained", "1-e: the same timm ViT fine-tuned from ImageNet weights "
      "(model.pretrained_file=...)", "1e-timm-scratch", model=dict(pretrained=True)),
    # A ViT small enough for 2 CPU cores that reaches 93% in 16 epochs
    # (docs/practical-1e.md). A convolutional stem to patch 4 (about a point over the
    # linear patch projection) whose first layer is the fixed whitening of the 3x3
    # patches, as in fashion-fast, and a 3x3 depthwise convolution over the patch grid in
    # each MLP (LocalViT): the locality small data cannot teach, for about a sixth more
    # time a step. Mean pooling, learned positions, and one register token: an extra
    # learned token no pooling reads, which the patches can attend to; without it the
    # recipe learns far slower on small data. 1-pixel shifts with label smoothing 0.2;
    # no stochastic depth, which a 16-epoch run does not need. A weight average, and
    # test-time flips and 1-pixel shifts, on the test split after every 4th epoch: its six
    # views cost about a third of an epoch's training.
    P("vit-fashion", "A strong small ViT on Fashion-MNIST: whitened conv stem to patch 4, "
      "64-d, 4 blocks with local MLPs, AdamW + warmup-cosine, smoothing, EMA, test-time "
      "flip + shift, 16 epochs (tested every 4th)", "1e-vit-fashion",
      model=dict(patch_size=4, embed_dim=64, nb_blocks=4, num_heads=4, mlp_ratio=2.0,
                 pool="mean", registers=1, pos_embed="learned", stem="conv", whiten=True,
                 local_mlp=True),
      optim=dict(name="adamw", lr=0.002, weight_decay=0.05),
      schedule=dict(name="warmup-cosine", interval="step", warmup_epochs=1.0),
      data=dict(flip=True, pad=1, crop=28),
      train=dict(label_smoothing=0.2, epochs=16, ema=0.999, tta=True, tta_shift=1,
                 eval_every=4)),
    # The 40-epoch recipe it replaces: a plain conv stem and MLPs, stochastic depth 0.1,
    # smoothing 0.1, test-time flips only. 93.21% +- 0.15 over 3 seeds, 17.5-19.1 minutes each on a
    # 2-core AMD EPYC Zen 5 (AVX-512 BF16, no AMX; torch 2.14.1).
    P("vit-fashion-40", "The 40-epoch small ViT: conv stem to patch 4, 64-d, 4 blocks, "
      "stochastic depth, AdamW + warmup-cosine, EMA, test-time flip", "vit-fashion",
      model=dict(whiten=False, local_mlp=False, drop_path=0.1),
      train=dict(label_smoothing=0.1, epochs=40, tta_shift=0, eval_every=1)),
    # The 40-epoch ViT for digits: no flips (a mirrored 2 or 7 is not a digit), so no
    # test-time flips either; 10 epochs, the course's budget for MNIST, so that the 1-e
    # study `1e-vit-vs-cnn` compares it with the CNN at the same budget.
    P("vit-mnist", "The small ViT of vit-fashion-40 on MNIST, without flips, 10 epochs",
      "vit-fashion-40", data=dict(name="mnist", flip=False), train=dict(tta=False, epochs=10)),
    # The fast-training recipe (benchmarks/time_to_accuracy.py; docs/fast-recipe.md): a
    # small VGG-like net with batch norm whose first layer is the fixed whitening of the
    # training patches, large nesterov steps on a one-cycle schedule stepped per batch,
    # label smoothing, flips and 1-pixel shifts, a weight average, and test-time flips
    # and shifts, for 8 epochs. Each ingredient's worth: `tinyvision study
    # fashion-fast-ablation`.
    P("fashion-fast", "Fashion-MNIST fast: VGG-like 32-64-128 + batch norm, whitened first "
      "layer, nesterov one-cycle, smoothing, flip + 1-pixel shift, EMA, test-time flip + "
      "shift, 8 epochs", data=dict(name="fashion-mnist", flip=True, pad=1, crop=28),
      model=dict(name="vgg", width=32, whiten=True),
      optim=dict(name="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
      schedule=dict(name="one-cycle", interval="step", pct_start=0.25),
      # The budget (5 minutes less start-up and the final figures) cuts the 8 epochs on a
      # machine too slow for them (docs/fast-recipe.md has the seconds per machine)
      train=dict(batch_size=128, epochs=8, label_smoothing=0.2, ema=0.99, tta=True,
                 tta_shift=1, time_budget=280)),
    # The 20-epoch recipe, without the whitened first layer: 20 epochs of batch 256 at lr
    # 0.2, 2-pixel shifts (docs/speed.md measures it on three machines).
    P("fashion-fast-20", "The 20-epoch fast recipe: VGG-like 32-64-128 + batch norm, "
      "nesterov one-cycle, smoothing, flip + 2-pixel shift, EMA, test-time flip",
      "fashion-fast", data=dict(pad=2), model=dict(whiten=False), optim=dict(lr=0.2),
      train=dict(batch_size=256, epochs=20, label_smoothing=0.1, tta_shift=0)),
    # --- general ---------------------------------------------------------------------
    P("mlp-fashion", "A one-hidden-layer MLP (256 ReLU units) on Fashion-MNIST, SGD with "
      "momentum", data=dict(name="fashion-mnist"),
      model=dict(name="mlp", hidden=256, activation="relu"),
      optim=dict(name="sgd", lr=0.05, momentum=0.9), train=dict(batch_size=128, epochs=10)),
    P("cnn-fashion", "The course CNN (conv 32-64-64, fc 1000) on 1x28x28 Fashion-MNIST, SGD "
      "momentum", data=dict(name="fashion-mnist"), model=dict(name="cnn"),
      optim=dict(name="sgd", lr=0.05, momentum=0.9), train=dict(batch_size=128, epochs=10)),
)
# fmt: on


@cache
def all_presets() -> dict[str, Preset]:
    return dict(sorted((p.name, p) for p in PRESETS))


def get_preset(name: str) -> Preset:
    presets = all_presets()
    if name not in presets:
        raise UserError(f"unknown preset '{name}'; `tinyvision list` shows the presets")
    return presets[name]


def preset_overrides(name: str) -> dict[str, Any]:
    """The preset's overrides with its parents' applied first (the stacking)."""
    preset = get_preset(name)
    inherited = preset_overrides(preset.parent) if preset.parent else {}
    return {**inherited, **preset.overrides}


def build_config(
    name: str, overrides: list[str] | None = None, shared: list[str] | None = None
) -> Config:
    """Base defaults, then the preset (and its parents), then the user's overrides.

    `overrides` must all apply to the final model (a model.* key it does not read is
    refused); `shared` ones (a study's, applied to every step) are skipped where the
    step's model does not read them.
    """
    overrides, shared = list(overrides or []), list(shared or [])
    cfg = _assemble(name, [*shared, *overrides])
    unused = [a for a in shared if not _applies(cfg, parse_assignment(a)[0])]
    if unused:
        shared = [a for a in shared if a not in unused]
        cfg = _assemble(name, [*shared, *overrides])
    check_model_keys(cfg, [parse_assignment(a)[0] for a in overrides])
    cfg.overrides = [*shared, *overrides]
    return cfg.validate()


def _assemble(name: str, assignments: list[str]) -> Config:
    cfg = Config(preset=name)
    for key, value in preset_overrides(name).items():
        assign(cfg, key, value)
    return apply_overrides(cfg, assignments)


def _applies(cfg: Config, key: str) -> bool:
    try:
        check_model_keys(cfg, [key])
    except UserError:
        return False
    return True
