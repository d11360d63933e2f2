"""Studies: named lists of labelled runs, each answering one of the course's questions.

`tinyvision study NAME [KEY=VALUE ...]` runs every step (the KEY=VALUE overrides apply to
all of them, e.g. `data.name=fashion-mnist train.epochs=5`), then writes the study folder
(`tinyvision.groups.study`). The stack `1cd-ablation` is the course reports' main table.
"""

from __future__ import annotations

from pathlib import Path

from tinyvision.errors import UserError
from tinyvision.groups import study
from tinyvision.groups.points import Options
from tinyvision.groups.study import Step, Study


def _one_key(base: str, key: str, values: list[str]) -> tuple[Step, ...]:
    return tuple((f"{key.split('.')[-1]}={v}", base, [f"{key}={v}"]) for v in values)


CNN_STACK = ("baseline", "standardize", "augment", "schedule", "dropout", "batchnorm")
# fmt: off
STUDIES = {s.name: s for s in (
    Study("1cd-ablation", "the course's CNN improvements stacked one by one",
          tuple((step, f"1cd-{step}", []) for step in CNN_STACK)),
    Study("1cd-lr", "learning rate of plain SGD", _one_key(
        "1cd-standardize", "optim.lr", ["0.001", "0.01", "0.05", "0.1", "0.5"])),
    Study("1cd-batch-size", "batch size", _one_key(
        "1cd-standardize", "train.batch_size", ["16", "64", "128", "512"])),
    Study("1cd-dropout-rate", "dropout rate before fc5", _one_key(
        "1cd-schedule", "model.dropout", ["0", "0.25", "0.5", "0.75"])),
    Study("1cd-normalization", "normalization schemes", _one_key(
        "1cd-baseline", "data.normalize",
        ["none", "standardize", "gcn", "zca", "pca", "minmax", "l1", "l2"])),
    # 1-cd Q25: a transform used in training and not at test (or at test only) is a mismatch
    # between the data trained on and the data measured; data.test_rotate rotates the test
    # split (the same angles at every evaluation)
    Study("1cd-rotation", "rotation in training, at test, both or neither", (
        ("train 0, test 0", "1cd-standardize", []),
        ("train +-30, test 0", "1cd-standardize", ["data.rotate=30"]),
        ("train +-30, test +-30", "1cd-standardize", ["data.rotate=30", "data.test_rotate=30"]),
        ("train 0, test +-30", "1cd-standardize", ["data.test_rotate=30"]),
    )),
    Study("1cd-augmentation", "augmentation methods, one at a time", (
        ("none", "1cd-standardize", []),
        ("crop28+flip", "1cd-standardize", ["data.crop=28", "data.flip=true"]),
        ("translate (pad 4, crop)", "1cd-standardize", ["data.pad=4", "data.flip=false"]),
        ("flip", "1cd-standardize", ["data.flip=true"]),
        ("rotate 15", "1cd-standardize", ["data.rotate=15"]),
        ("affine", "1cd-standardize", ["data.translate=0.1", "data.scale=0.1", "data.shear=10"]),
        ("colour jitter", "1cd-standardize", ["data.jitter=0.4"]),
        ("random erasing", "1cd-standardize", ["data.erase=0.5"]),
        ("cutout 8", "1cd-standardize", ["data.cutout=8"]),
        ("mixup 0.2", "1cd-standardize", ["data.mixup=0.2"]),
        ("cutmix 1", "1cd-standardize", ["data.cutmix=1.0"]),
    )),
    Study("1cd-optimizers", "optimizers at their usual learning rates", (
        ("sgd 0.1", "1cd-augment", []),
        ("sgd momentum", "1cd-augment", ["optim.momentum=0.9", "optim.lr=0.01"]),
        ("sgd nesterov", "1cd-augment",
         ["optim.momentum=0.9", "optim.nesterov=true", "optim.lr=0.01"]),
        ("adam", "1cd-augment", ["optim.name=adam", "optim.lr=0.001"]),
        ("adamw", "1cd-augment", ["optim.name=adamw", "optim.lr=0.001",
                                  "optim.weight_decay=0.05"]),
        ("adagrad", "1cd-augment", ["optim.name=adagrad", "optim.lr=0.01"]),
        ("adadelta", "1cd-augment", ["optim.name=adadelta", "optim.lr=1.0"]),
        ("rmsprop", "1cd-augment", ["optim.name=rmsprop", "optim.lr=0.0005"]),
    )),
    Study("1cd-schedules", "learning-rate schedules (SGD momentum 0.9)", tuple(
        (name, "1cd-schedule", [f"schedule.name={name}", *extra]) for name, extra in (
            ("constant", []), ("step", ["schedule.step_size=10", "schedule.gamma=0.5"]),
            ("exponential", []), ("cosine", []), ("polynomial", []), ("linear", []),
            ("one-cycle", ["optim.lr=0.05", "schedule.interval=step"]),
            ("warmup-cosine", ["schedule.warmup_epochs=2", "schedule.interval=step"]),
        ))),
    # Each "-" step takes one ingredient out of the recipe, each "+" step adds one of the
    # candidates measured and left out (docs/fast-recipe.md); the steps that only change
    # evaluation (tta, tta_shift, ema) train exactly as the full recipe does, seed for seed.
    Study("fashion-fast-ablation", "the fast recipe less one ingredient at a time, and "
          "with each candidate ingredient left out of it added", tuple(
        (label, "fashion-fast", overrides) for label, overrides in (
            ("full recipe", []),
            ("- whitened first layer", ["model.whiten=false"]),
            ("- batch 128 (256, lr 0.2)", ["train.batch_size=256", "optim.lr=0.2"]),
            ("- 1-pixel shifts (2-pixel)", ["data.pad=2"]),
            ("- test-time shifts", ["train.tta_shift=0"]),
            ("- test-time flip", ["train.tta=false"]),
            ("- weight average", ["train.ema=0"]),
            ("- label smoothing", ["train.label_smoothing=0"]),
            ("- flip and shifts", ["data.flip=false", "data.pad=0"]),
            ("- nesterov one-cycle", ["optim.nesterov=false", "optim.lr=0.05",
                                      "schedule.name=exponential", "schedule.interval=epoch"]),
            ("- VGG net (course CNN + BN)", ["model.name=cnn", "model.batchnorm=true"]),
            ("+ alternating flips", ["data.alternate_flip=true"]),
            ("+ identity-initialized convolutions", ["model.dirac=true"]),
            ("+ no weight decay on 1-D parameters", ["optim.norm_decay=false"]),
            ("+ Lookahead", ["train.lookahead=0.5"]),
        ))),
    Study("1e-embed-dim", "ViT embedding size", _one_key(
        "1e-vit-mnist", "model.embed_dim", ["16", "32", "64", "128"])),
    Study("1e-patch-size", "ViT patch size (tokens per image)", _one_key(
        "1e-vit-mnist", "model.patch_size", ["2", "4", "7", "14", "28"])),
    Study("1e-blocks", "ViT depth (number of blocks)", _one_key(
        "1e-vit-mnist", "model.nb_blocks", ["1", "2", "4", "8"])),
    Study("1e-heads", "ViT attention heads", _one_key(
        "1e-vit-mnist", "model.num_heads", ["1", "2", "4", "8"])),
    Study("1e-mlp-ratio", "ViT MLP size (ratio to the embedding)", _one_key(
        "1e-vit-mnist", "model.mlp_ratio", ["1", "2", "4", "8"])),
    Study("1e-vit-vs-cnn", "ViT against the course CNN and an MLP, same data and budget", (
        ("vit", "1e-vit-mnist", []),
        ("vit-tuned", "vit-mnist", []),
        ("cnn", "1e-vit-mnist", ["model.name=cnn"]),
        ("mlp", "1e-vit-mnist", ["model.name=mlp", "model.hidden=256"]),
    )),
)}
# fmt: on


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise UserError(f"unknown study '{name}'; choose one of {', '.join(STUDIES)}")
    return STUDIES[name]


def run_study(name: str, overrides: list[str], options: Options | None = None, **fields) -> Path:
    """The study `name`; `fields` are Options' (out=, seeds=, jobs=, device=, quiet=) when
    no `options` is given."""
    return study.run_study(get_study(name), overrides, options or Options(**fields))
