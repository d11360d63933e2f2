"""Studies: named lists of labelled runs, each answering one of the course's questions.

`tinyvision study NAME [KEY=VALUE ...]` runs every step (the KEY=VALUE overrides apply to
all of them, e.g. `data.name=fashion-mnist train.epochs=5`), then writes the study folder:
`sweep.csv` (one row per run), `table.md` (the table for a report), `comparison.png`
(train/test accuracy and loss, one line per step) and `lr.png` (the learning rate per
epoch of each step). The stack `1cd-ablation` is the course reports' main table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from tinyvision.errors import UserError
from tinyvision.io import read_csv, write_text
from tinyvision.runs.folder import METRICS
from tinyvision.runs.sweep import Options, Point, folder_for, run_points

Step = tuple[str, str, list[str]]  # label, preset, overrides


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    steps: tuple[Step, ...]


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
        ["none", "standardize", "gcn", "zca", "minmax", "l1", "l2"])),
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
    # Each "-" step takes one ingredient out of the recipe (README "Speed"), each "+" step
    # adds one of the candidates for fewer epochs (docs/fast-recipe.md); the steps that
    # only change evaluation (tta, tta_shift, ema) train exactly as the full recipe does,
    # seed for seed. `train.epochs=8 train.time_budget=0` measures them at 8 epochs.
    Study("fashion-fast-ablation", "the fast recipe less one ingredient at a time, and "
          "with each candidate ingredient added", tuple(
        (label, "fashion-fast", overrides) for label, overrides in (
            ("full recipe", []),
            ("+ test-time shifts", ["train.tta_shift=1"]),
            ("+ whitened first layer", ["model.whiten=true"]),
            ("+ label smoothing 0.2", ["train.label_smoothing=0.2"]),
            ("+ batch 128 (lr 0.1)", ["train.batch_size=128", "optim.lr=0.1"]),
            ("- test-time flip", ["train.tta=false"]),
            ("- weight average", ["train.ema=0"]),
            ("- label smoothing", ["train.label_smoothing=0"]),
            ("- flip and shifts", ["data.flip=false", "data.pad=0"]),
            ("- nesterov one-cycle", ["optim.nesterov=false", "optim.lr=0.05",
                                      "schedule.name=exponential", "schedule.interval=epoch"]),
            ("- VGG net (course CNN + BN)", ["model.name=cnn", "model.batchnorm=true"]),
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
    """Every step (the overrides apply to the steps whose model reads them), then the table.

    `fields` are Options' (out=, seeds=, jobs=, device=, quiet=) when no `options` is given.
    """
    options = options or Options(**fields)
    study = get_study(name)
    points = [
        Point(preset, {"step": label}, extra, seed, shared=list(overrides))
        for label, preset, extra in study.steps
        for seed in range(options.seeds)
    ]
    spec = {"kind": "study", "study": name, "overrides": overrides, "seeds": options.seeds}
    folder = folder_for(options.out, "study", name, spec)
    run_points(points, folder, spec, options)
    rows = read_csv(folder / "sweep.csv")
    write_text(folder / "table.md", markdown_table(study, rows, overrides))
    lrs = {
        p.label: read_csv(p.run_dir / METRICS)
        for p in points
        if p.seed == 0 and (p.run_dir / METRICS).is_file()
    }
    if lrs:
        from tinyvision.figures import plot_lr  # matplotlib only once there is a figure

        plot_lr(lrs, folder / "lr.png", title=f"{name}: learning rate per epoch")
    return folder


def markdown_table(study: Study, rows: list[dict], overrides: list[str]) -> str:
    """Per step: epochs, lr, final and best test accuracy, gap, params, tokens, time (seed mean)."""
    lines = [f"# {study.name}: {study.description}", ""]
    if overrides:
        lines += [f"Overrides for every step: `{' '.join(overrides)}`", ""]
    lines += [
        "| step | epochs | lr | final test acc | best test acc | train-test gap | params "
        "| tokens | s/epoch | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, _, _ in study.steps:
        mine = [r for r in rows if r["step"] == label and r["final_test_acc"]]
        if not mine:
            lines.append(f"| {label} | | | not run | | | | | | |")
            continue

        def mean(key: str, mine: list[dict] = mine) -> float:
            return statistics.fmean(float(r[key]) for r in mine)

        spread = ""
        if len(mine) > 1:
            spread = f" ± {statistics.stdev(float(r['final_test_acc']) for r in mine):.2f}"
        lines.append(
            f"| {label} | {mine[0]['epochs_done']} | {float(mine[0]['lr']):g} | "
            f"{mean('final_test_acc'):.2f}%{spread} | {mean('best_test_acc'):.2f}% | "
            f"{mean('gap'):.2f} | {int(float(mine[0]['params'])):,} | {mine[0]['tokens'] or ''} | "
            f"{mean('seconds') / max(int(mine[0]['epochs_done']), 1):.1f} | {mean('seconds'):.0f} |"
        )
    return "\n".join(lines) + "\n"
