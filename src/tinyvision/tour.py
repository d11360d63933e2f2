"""`tinyvision tour [--quick]`: every practical, end to end, then the report.

Budgets are chosen so that the tour finishes within 10 minutes on 2 CPU cores that
train in bf16: 4m51s (`--quick`: 48 s) on an idle 2-core AMD EPYC Zen 5 (AVX-512 BF16,
torch 2.14.1). A CPU that trains in float32 takes longer: 25m33s on a 2-core AVX2-only
Zen 3.
Each part uses the best dataset the machine has (or can download): the course's data
when it is there, else the nearest stand-in, and the report says which and how to get
the rest. A download that is impossible never fails the tour.
"""

from __future__ import annotations

from pathlib import Path

from tinyvision import io
from tinyvision.data import sources
from tinyvision.errors import UserError

# Images per training split, test images, epochs; vit_epochs for the ViT against the
# CNN: a transformer needs more steps than a CNN before it is competitive (on the MNIST
# test split, 8,000 images: 92.9% against the CNN's 98.4% after 4 epochs, 98.95% both
# after 30: about 3 minutes on a 2-core AMD EPYC Zen 5), so the full tour gives that
# comparison 30 epochs.
BUDGETS = {
    "quick": {"train": 3000, "test": 1000, "epochs": 2, "vit_epochs": 2},
    "full": {"train": 12000, "test": 4000, "epochs": 4, "vit_epochs": 30},
}


def availability(name: str, data_dir: Path | None = None) -> tuple[str, str]:
    """('full' | 'test-only' | 'missing', how it was found or how to get it)."""
    train = sources.find_split(name, "train", data_dir)
    test = sources.find_split(name, "test", data_dir)
    if train and test:
        return "full", f"found in {train[0].parent}"
    try:
        sources.download(name, quiet=True)
        return "full", "downloaded into the cache"
    except sources.NotDownloaded as e:
        reason = e.short  # one line, not every mirror's network error
    except UserError as e:
        reason = str(e)
    if test:
        return "test-only", f"only the test split was found ({test[0].parent}); {reason}"
    how = f"tinyvision data fetch {name} where there is a network, or " + sources.where_to_put(
        name, "train", data_dir
    )
    return "missing", how


def _choose(preferences: list[str], found: dict[str, tuple[str, str]]) -> tuple[str, list[str]]:
    """The first usable dataset and the overrides it needs."""
    for name in preferences:
        state = found[name][0] if name in found else "full"
        if state == "full":
            return name, [f"data.name={name}"]
        if state == "test-only":
            return name, [f"data.name={name}", "data.test_only=true", "data.holdout=2000"]
    return "digits", ["data.name=digits"]


def run_tour(out: Path, quick: bool, device: str = "auto", data_dir: Path | None = None) -> Path:
    from tinyvision.experiment.runner import run
    from tinyvision.groups.points import Options
    from tinyvision.labs.lab1cd import show_fc_as_conv
    from tinyvision.labs.lab1e import draw_vit_pictures
    from tinyvision.presets import build_config
    from tinyvision.report.html import write_report
    from tinyvision.studies import run_study

    budget = BUDGETS["quick" if quick else "full"]
    root = out / ("tour-quick" if quick else "tour")
    found = {n: availability(n, data_dir) for n in ("mnist", "fashion-mnist", "cifar10")}
    subsets = [f"data.train_subset={budget['train']}", f"data.test_subset={budget['test']}"]
    sized = [*subsets, f"train.epochs={budget['epochs']}"]

    def say(text: str) -> None:
        print(f"tour: {text}", flush=True)

    parts = {}
    say("1-ab: the MLP four ways and the SVMs on circles")
    for variant in ("manual", "autograd", "nn", "optim"):
        run(build_config(f"1ab-circles-{variant}"), root, device, quiet=True, data_dir=data_dir)
    run(build_config("1ab-svm"), root, device, quiet=True, data_dir=data_dir)
    mlp_data, mlp_overrides = _choose(["mnist", "fashion-mnist"], found)
    run(
        build_config("1ab-mnist", [*mlp_overrides, f"train.epochs={budget['epochs'] + 1}"]),
        root,
        device,
        quiet=True,
        data_dir=data_dir,
    )
    parts["1-ab"] = {
        "dataset": f"circles (generated); {mlp_data}",
        "why": "circles is the course's data; the MLP on images uses " + mlp_data,
    }

    cnn_data, cnn_overrides = _choose(["cifar10", "fashion-mnist", "mnist"], found)
    if cnn_data == "digits":  # 8x8 images: the course's 28-pixel crops become 6-pixel ones
        cnn_overrides.append("data.crop=6")
    say(f"1-cd: the CNN ablation on {cnn_data}")
    options = Options(out=root, device=device, quiet=True, data_dir=data_dir)
    study = run_study("1cd-ablation", [*cnn_overrides, *sized], options)
    baseline = next(p for p in sorted(study.iterdir()) if p.name.startswith("step=baseline"))
    if cnn_data != "digits":  # fc4 as a 4x4 convolution needs the course's 28 or 32 pixels
        show_fc_as_conv(baseline, 56)
    parts["1-cd"] = {
        "dataset": cnn_data,
        "why": "CIFAR-10 is the course's data"
        + ("" if cnn_data == "cifar10" else f"; it is missing, so {cnn_data} stands in"),
    }

    vit_data, vit_overrides = _choose(["mnist", "fashion-mnist"], found)
    if vit_data == "digits":  # 8x8 images: 4-pixel patches, the tuned ViT's crop too
        vit_overrides += ["model.patch_size=4", "data.crop=8"]
    say(f"1-e: the ViT against the CNN and the MLP on {vit_data}")
    vit_sized = [*subsets, f"train.epochs={budget['vit_epochs']}"]
    study = run_study("1e-vit-vs-cnn", [*vit_overrides, *vit_sized], options)
    # the pictures of the course's ViT (class token, sinusoidal positions), not the tuned one
    vit_run = next(p for p in sorted(study.iterdir()) if p.name.startswith("step=vit_"))
    draw_vit_pictures(vit_run, 3)
    if not quick:
        say(f"1-e: the number of heads on {vit_data}")
        run_study("1e-heads", [*vit_overrides, *sized], options)
    parts["1-e"] = {
        "dataset": vit_data,
        "why": "MNIST is the course's data"
        + (
            ""
            if vit_data == "mnist" and found["mnist"][0] == "full"
            else f"; {vit_data} as available"
        ),
    }

    missing = {n: how for n, (state, how) in found.items() if state != "full"}
    mode = "quick" if quick else "full"
    summary = (
        f"The {mode} tour: each practical at a reduced budget ({budget['train']:,} "
        f"training images at most, {budget['epochs']} epochs for the CNN ablation, "
        f"{budget['vit_epochs']} for the ViT against the CNN)."
    )
    io.write_json(root / "tour.json", {"summary": summary, "parts": parts, "missing": missing})
    say("writing the report")
    return write_report([root], root)
