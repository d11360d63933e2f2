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
from tinyvision.groups.progress import listening
from tinyvision.studies import CNN_STACK, get_study
from tinyvision.tour_progress import Step, TourProgress

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


# Seconds per training image and epoch on 2 CPU cores, roughly: only their ratios matter,
# to share the tour's bar between its steps (tinyvision.tour_progress).
COST_PER_IMAGE = {"mlp": 1 / 50_000, "cnn": 1 / 800, "vit": 1 / 600}
CIRCLES_SECONDS, REPORT_SECONDS = 1.0, 10.0
CNN_STEP_NAMES = {step: step if step == "baseline" else f"+ {step}" for step in CNN_STACK}
VIT_STEP_NAMES = {
    "vit": "the course's ViT",
    "vit-tuned": "a tuned ViT",
    "cnn": "the course CNN",
    "mlp": "an MLP",
}


def plan(budget: dict[str, int], mlp_data: str, quick: bool) -> list[Step]:
    """The tour's steps in order, each with its estimated share of the work."""
    images = budget["train"]
    steps = [
        Step("1-ab", f"circles: the MLP {how}", CIRCLES_SECONDS)
        for how in ("by hand", "with autograd", "with torch.nn", "with torch.optim")
    ]
    steps.append(Step("1-ab", "circles: the SVM kernels", 2 * CIRCLES_SECONDS))
    mlp_work = images * (budget["epochs"] + 1) * COST_PER_IMAGE["mlp"]
    steps.append(Step("1-ab", f"the MLP on {mlp_data}", mlp_work))
    cnn_work = images * budget["epochs"] * COST_PER_IMAGE["cnn"]
    steps += [Step("1-cd", name, cnn_work) for name in CNN_STEP_NAMES.values()]
    vit_epochs = budget["vit_epochs"]
    for label, name in VIT_STEP_NAMES.items():
        model = label.split("-")[0]
        steps.append(Step("1-e", name, images * vit_epochs * COST_PER_IMAGE[model]))
    if not quick:
        heads = get_study("1e-heads").steps
        work = images * budget["epochs"] * COST_PER_IMAGE["vit"]
        steps += [Step("1-e heads", label, work) for label, _, _ in heads]
    steps.append(Step("report", "the lab report", REPORT_SECONDS))
    return steps


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
    mlp_data, mlp_overrides = _choose(["mnist", "fashion-mnist"], found)
    progress = TourProgress(plan(budget, mlp_data, quick))
    progress.study_names.update({("1-cd", k): v for k, v in CNN_STEP_NAMES.items()})
    progress.study_names.update({("1-e", k): v for k, v in VIT_STEP_NAMES.items()})
    with progress:

        def say(text: str) -> None:
            print(f"tour: {text}", flush=True)

        parts = {}
        say("1-ab: the MLP four ways and the SVMs on circles")
        circles = progress.steps[:4]
        for variant, step in zip(("manual", "autograd", "nn", "optim"), circles):
            progress.start("1-ab", step.name)
            run(build_config(f"1ab-circles-{variant}"), root, device, quiet=True, data_dir=data_dir)
        progress.start("1-ab", "circles: the SVM kernels")
        run(build_config("1ab-svm"), root, device, quiet=True, data_dir=data_dir)
        progress.start("1-ab", f"the MLP on {mlp_data}")
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
        with listening(lambda name: progress.study_step("1-cd", name)):
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
        with listening(lambda name: progress.study_step("1-e", name)):
            study = run_study("1e-vit-vs-cnn", [*vit_overrides, *vit_sized], options)
        # the pictures of the course's ViT (class token, sinusoidal positions), not the tuned one
        vit_run = next(p for p in sorted(study.iterdir()) if p.name.startswith("step=vit_"))
        draw_vit_pictures(vit_run, 3)
        if not quick:
            say(f"1-e: the number of heads on {vit_data}")
            with listening(lambda name: progress.study_step("1-e heads", name)):
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
        io.write_json(
            root / "tour.json",
            {"summary": summary, "mode": mode, "parts": parts, "missing": missing},
        )
        progress.start("report", "the lab report")
        report = write_report([root], root)
        progress.finish()
        return report
