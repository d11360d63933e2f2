"""`tinyvision tour [--quick] [--minutes N]`: every practical, end to end, then the report.

The full tour fits `--minutes` (default 10) on the machine it runs on: it first times a
few training steps of each kind of run it makes, estimates its total at the fixed budgets
(`BUDGETS["full"]`) and, where that is over, cuts its studies down to fit
(`tinyvision.tour_budget`: fewer training images for the CNN ablation and the heads study,
fewer epochs for the ViT against the CNN), printing the choice and keeping it in
tour.json; its report then says which conclusions held at the smaller budget. The fixed
budgets alone (`--minutes 0`) take 4m51s on an idle 2-core AMD EPYC Zen 5 (AVX-512 BF16,
torch 2.14.1), which trains in bf16, and 25m33s on a 2-core AVX2-only Zen 3, which trains
in float32. `--quick` (a smoke test, 48 s on the Zen 5) is never timed or cut.
Each part uses the best dataset the machine has (or can download): the course's data
when it is there, else the nearest stand-in, and the report says which and how to get
the rest. A download that is impossible never fails the tour.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from tinyvision import io
from tinyvision.data import sources
from tinyvision.errors import UserError
from tinyvision.groups.progress import listening
from tinyvision.studies import CNN_STACK, get_study
from tinyvision.tour_budget import Part, Sizing, describe, size_tour
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
# A cut-down tour trains the ViT against the CNN no fewer epochs than this before it takes
# fewer images: the course's budget on MNIST (and vit-mnist's own).
VIT_MIN_EPOCHS = 10


def parts(budget: dict[str, int], quick: bool) -> list[Part]:
    """The tour's studies, at `budget`, and how each is cut down (tinyvision.tour_budget)."""
    train, test = budget["train"], budget["test"]
    studies = [
        Part("1-cd", "1cd-ablation", train, test, budget["epochs"], "images"),
        Part("1-e", "1e-vit-vs-cnn", train, test, budget["vit_epochs"], "epochs", VIT_MIN_EPOCHS),
    ]
    if not quick:
        studies.append(Part("1-e heads", "1e-heads", train, test, budget["epochs"], "images"))
    return studies


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


# Seconds per training image and epoch on 2 CPU cores, roughly, and the seconds of the
# steps at a fixed budget: an MLP on circles with its pictures (the SVMs take twice as
# long), the report. They share the tour's bar between its steps (tinyvision.tour_progress)
# where the steps were not timed, and the fixed steps' sum is the part of the estimate
# that a cut-down tour cannot cut. On a 2-core Intel Xeon (AVX-512 BF16, AMX; torch
# 2.14.1) shared with other work (load 3.8) each circles MLP took 6-7 s and the SVMs 10 s,
# most of it drawing their pictures (so about as long where training is in float32), and
# the report 1 s.
COST_PER_IMAGE = {"mlp": 1 / 50_000, "cnn": 1 / 800, "vit": 1 / 600}
CIRCLES_SECONDS, REPORT_SECONDS = 6.0, 5.0
CNN_STEP_NAMES = {step: step if step == "baseline" else f"+ {step}" for step in CNN_STACK}
VIT_STEP_NAMES = {
    "vit": "the course's ViT",
    "vit-tuned": "a tuned ViT",
    "cnn": "the course CNN",
    "mlp": "an MLP",
}


def plan(
    budget: dict[str, int],
    mlp_data: str,
    quick: bool,
    timed: dict[str, tuple[float, ...]] | None = None,
) -> list[Step]:
    """The tour's steps in order, each with its estimated share of the work: `timed`, a
    study's estimated seconds run by run where the tour was sized (tinyvision.tour_budget)."""
    images = budget["train"]
    timed = timed or {}
    steps = [
        Step("1-ab", f"circles: the MLP {how}", CIRCLES_SECONDS)
        for how in ("by hand", "with autograd", "with torch.nn", "with torch.optim")
    ]
    steps.append(Step("1-ab", "circles: the SVM kernels", 2 * CIRCLES_SECONDS))
    mlp_work = images * (budget["epochs"] + 1) * COST_PER_IMAGE["mlp"]
    steps.append(Step("1-ab", f"the MLP on {mlp_data}", mlp_work))
    cnn_work = images * budget["epochs"] * COST_PER_IMAGE["cnn"]
    cnn = timed.get("1-cd") or [cnn_work] * len(CNN_STEP_NAMES)
    steps += [Step("1-cd", name, work) for name, work in zip(CNN_STEP_NAMES.values(), cnn)]
    vit_epochs = budget["vit_epochs"]
    vits = timed.get("1-e") or [
        images * vit_epochs * COST_PER_IMAGE[label.split("-")[0]] for label in VIT_STEP_NAMES
    ]
    steps += [Step("1-e", name, work) for name, work in zip(VIT_STEP_NAMES.values(), vits)]
    if not quick:
        heads = get_study("1e-heads").steps
        work = images * budget["epochs"] * COST_PER_IMAGE["vit"]
        heads_work = timed.get("1-e heads") or [work] * len(heads)
        steps += [Step("1-e heads", label, w) for (label, _, _), w in zip(heads, heads_work)]
    steps.append(Step("report", "the lab report", REPORT_SECONDS))
    return steps


def fixed_seconds(budget: dict[str, int], mlp_data: str, quick: bool) -> float:
    """The estimate for the steps whose budget the tour does not cut: 1-ab, the report."""
    studies = {p.name for p in parts(budget, quick)}
    return sum(s.work for s in plan(budget, mlp_data, quick) if s.part not in studies)


def summary_of(budget: dict[str, int], quick: bool, sizing: Sizing | None) -> str:
    """tour.json's summary: the budget the tour ran at (the report shows it first)."""
    mode = "quick" if quick else "full"
    if sizing is not None and sizing.cut:
        full = {c.part: c for c in sizing.full}
        how = "; ".join(describe(c, full[c.part]) for c in sizing.choices)
        return (
            f"The full tour, cut down to fit {minutes_text(sizing.minutes)} on this machine (its "
            f"fixed budgets were estimated at about {math.ceil(sizing.full_estimate_s / 60)} "
            f"minutes here): {how}."
        )
    return (
        f"The {mode} tour: each practical at a reduced budget ({budget['train']:,} "
        f"training images at most, {budget['epochs']} epochs for the CNN ablation, "
        f"{budget['vit_epochs']} for the ViT against the CNN)."
    )


def minutes_text(minutes: float) -> str:
    return f"{minutes:g} minute" + ("" if minutes == 1 else "s")


def check_minutes(minutes: float) -> float:
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
        raise UserError(f"--minutes {minutes!r}: give a number of minutes (0: the fixed budgets)")
    if not math.isfinite(minutes) or minutes < 0:
        raise UserError(
            f"--minutes {minutes:g}: give the minutes the tour may take, a number from 0 "
            "(0: the fixed budgets, however long they take here)"
        )
    return float(minutes)


def run_tour(
    out: Path,
    quick: bool,
    device: str = "auto",
    data_dir: Path | None = None,
    minutes: float = 10.0,
) -> Path:
    from tinyvision.experiment.prepare import prepare, resolve_device
    from tinyvision.experiment.runner import run
    from tinyvision.groups.points import Options
    from tinyvision.labs.lab1cd import show_fc_as_conv
    from tinyvision.labs.lab1e import draw_vit_pictures
    from tinyvision.presets import build_config
    from tinyvision.report.html import write_report
    from tinyvision.studies import run_study

    minutes = check_minutes(minutes)
    budget = BUDGETS["quick" if quick else "full"]
    root = out / ("tour-quick" if quick else "tour")

    def say(text: str) -> None:
        print(f"tour: {text}", flush=True)

    found = {n: availability(n, data_dir) for n in ("mnist", "fashion-mnist", "cifar10")}
    mlp_data, mlp_overrides = _choose(["mnist", "fashion-mnist"], found)
    cnn_data, cnn_overrides = _choose(["cifar10", "fashion-mnist", "mnist"], found)
    if cnn_data == "digits":  # 8x8 images: the course's 28-pixel crops become 6-pixel ones
        cnn_overrides.append("data.crop=6")
    vit_data, vit_overrides = _choose(["mnist", "fashion-mnist"], found)
    if vit_data == "digits":  # 8x8 images: 4-pixel patches, the tuned ViT's crop too
        vit_overrides += ["model.patch_size=4", "data.crop=8"]
    data = {"1-cd": cnn_overrides, "1-e": vit_overrides, "1-e heads": vit_overrides}
    studies = parts(budget, quick)
    sized = {
        p.name: [
            f"data.train_subset={p.train}",
            f"data.test_subset={p.test}",
            f"train.epochs={p.epochs}",
        ]
        for p in studies
    }
    sizing, timed, seconds = None, None, {}
    if not quick and minutes > 0:
        say(f"timing a few training steps of each kind of run, to fit {minutes:g} minutes")
        began = time.monotonic()
        here = resolve_device(device)
        sizing = size_tour(
            studies,
            data,
            minutes,
            fixed_seconds(budget, mlp_data, quick),
            lambda cfg: prepare(cfg, here, data_dir),
        )
        seconds["timing"] = time.monotonic() - began
        for line in sizing.lines():
            say(line)
        sized = {c.part: c.overrides() for c in sizing.choices}
        timed = {c.part: c.steps_s for c in sizing.choices}
    progress = TourProgress(plan(budget, mlp_data, quick, timed))
    progress.study_names.update({("1-cd", k): v for k, v in CNN_STEP_NAMES.items()})
    progress.study_names.update({("1-e", k): v for k, v in VIT_STEP_NAMES.items()})
    with progress:
        began = time.monotonic()

        def lap(part: str) -> None:  # the seconds a part took, for tour.json
            nonlocal began
            now = time.monotonic()
            seconds[part] = now - began
            began = now

        parts_done = {}
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
        parts_done["1-ab"] = {
            "dataset": f"circles (generated); {mlp_data}",
            "why": "circles is the course's data; the MLP on images uses " + mlp_data,
        }
        lap("1-ab")

        say(f"1-cd: the CNN ablation on {cnn_data}")
        options = Options(out=root, device=device, quiet=True, data_dir=data_dir)
        with listening(lambda name: progress.study_step("1-cd", name)):
            study = run_study("1cd-ablation", [*cnn_overrides, *sized["1-cd"]], options)
        baseline = next(p for p in sorted(study.iterdir()) if p.name.startswith("step=baseline"))
        if cnn_data != "digits":  # fc4 as a 4x4 convolution needs the course's 28 or 32 pixels
            show_fc_as_conv(baseline, 56)
        parts_done["1-cd"] = {
            "dataset": cnn_data,
            "why": "CIFAR-10 is the course's data"
            + ("" if cnn_data == "cifar10" else f"; it is missing, so {cnn_data} stands in"),
        }
        lap("1-cd")

        say(f"1-e: the ViT against the CNN and the MLP on {vit_data}")
        with listening(lambda name: progress.study_step("1-e", name)):
            study = run_study("1e-vit-vs-cnn", [*vit_overrides, *sized["1-e"]], options)
        # the pictures of the course's ViT (class token, sinusoidal positions), not the tuned one
        vit_run = next(p for p in sorted(study.iterdir()) if p.name.startswith("step=vit_"))
        draw_vit_pictures(vit_run, 3)
        lap("1-e")
        if not quick:
            say(f"1-e: the number of heads on {vit_data}")
            with listening(lambda name: progress.study_step("1-e heads", name)):
                run_study("1e-heads", [*vit_overrides, *sized["1-e heads"]], options)
            lap("1-e heads")
        parts_done["1-e"] = {
            "dataset": vit_data,
            "why": "MNIST is the course's data"
            + (
                ""
                if vit_data == "mnist" and found["mnist"][0] == "full"
                else f"; {vit_data} as available"
            ),
        }

        missing = {n: how for n, (state, how) in found.items() if state != "full"}
        record = {
            "summary": summary_of(budget, quick, sizing),
            "mode": "quick" if quick else "full",
            "parts": parts_done,
            "missing": missing,
        }
        if sizing is not None:
            record["sizing"] = sizing.record()
        record["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        io.write_json(root / "tour.json", record)
        progress.start("report", "the lab report")
        report = write_report([root], root)
        lap("report")
        record["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        io.write_json(root / "tour.json", record)  # with the report's seconds too
        progress.finish()
        return report
