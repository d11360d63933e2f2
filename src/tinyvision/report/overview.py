"""The report's first page: each practical's key results beside what the course reports,
whether the course's conclusions hold on these records, and the variants that must agree.

The course's numbers are the values its reports give (`tinyvision.syllabus.table`), each
shown with the setup it was measured in (data, epochs, learning rate, model). A run on
other data, a smaller budget or another model is not expected to match them: the
overview says which data each practical ran on and which rows' budget or model is not
the course's, so that a reader compares the trend (each step better than the last)
rather than the numbers.
"""

from __future__ import annotations

import io as bytes_io
import math
import statistics
from pathlib import Path

from tinyvision.experiment.folder import METRICS
from tinyvision.records_read import RecordError, read_csv_rows, trained_rows
from tinyvision.report.blocks import Block, Code, para, pct, text_of
from tinyvision.report.collect import PRACTICALS, Figure, Group, Run, group_practical, practical_of
from tinyvision.syllabus.answers import setup_differences
from tinyvision.syllabus.lookup import references_for
from tinyvision.syllabus.table import Reference

# The course's data for each practical: as written, and as tinyvision names the datasets.
COURSE_DATA = {
    "1-ab": ("circles and MNIST", {"circles", "mnist"}),
    "1-cd": ("CIFAR-10", {"cifar10"}),
    "1-e": ("MNIST", {"mnist"}),
}
# Runs that compute the same thing four ways and must agree: shown as one comparison.
VARIANT_PREFIX, VARIANTS = "1ab-circles-", ("manual", "autograd", "nn", "optim")
MAX_SWEEP_ROWS = 8  # settings of one sweep in the overview; the rest are in its section
COMPETITIVE_POINTS = 1.0  # a ViT within this of the CNN is "competitive"


def course_for_run(preset: str = "", study: str = "", step: str = "") -> str:
    """The course's values for what a preset (or a study's step) runs, each with its setup
    (`tinyvision.syllabus.table`): `70.46% (CIFAR-10, 30 epochs, lr 0.05); ...`."""
    return "; ".join(str(r) for r in references_for(preset, study, step))


def setup_differs(label: str, epochs: list[int], model: str, refs: list[Reference]) -> str:
    """`label: 1 epoch, not 30-50` when a row's budget or model is not the course's (its
    data is the data note's)."""
    differs = setup_differences(None, epochs, model, tuple(refs))
    return f"{label}: {', '.join(differs)}" if differs else ""


def _setup_note(differs: list[str]) -> list[Block]:
    """1-cd's small-budget warning, for the rows whose budget or model is not the course's."""
    differs = [d for d in differs if d]
    if not differs:
        return []
    return [
        para(
            "The course's numbers beside these rows were measured in another setup ("
            + "; ".join(differs)
            + "), so compare the trend, not the numbers."
        )
    ]


def _epochs(value) -> list[int]:
    number = _number(text_of(value))
    return [int(number)] if number is not None and number >= 0 else []


def variant_runs(runs: list[Run]) -> list[Run]:
    """The MLP variants on circles among `runs`, in the course's order."""
    order = {f"{VARIANT_PREFIX}{v}": i for i, v in enumerate(VARIANTS)}
    return sorted((r for r in runs if r.preset in order), key=lambda r: order[r.preset])


def _final(run: Run) -> float | None:
    final = run.summary.get("final") or {}
    value = final.get("test_acc")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def setting_label(row: dict[str, str], axes: list[str]) -> str:
    """What tells a row's setting apart: `lr=0.1, hidden=64` (the last part of each key)."""
    return ", ".join(f"{k.split('.')[-1]}={row.get(k, '')}" for k in axes) or "all"


def settings(group: Group, axes: list[str]) -> list[tuple[str, float, float, int]]:
    """(label, mean, std, seeds) of the final test accuracy, one per setting of a group."""
    by_label: dict[str, list[float]] = {}
    for row in group.rows:
        label = setting_label(row, axes)
        value = _number(row.get("final_test_acc", ""))
        if value is not None and row.get("status") == "completed":
            by_label.setdefault(label, []).append(value)
    return [
        (label, statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
        for label, v in by_label.items()
    ]


def _mean_std(mean: float, std: float, seeds: int) -> str:
    return f"{mean:.2f}%" + (f" ± {std:.2f} ({seeds} seeds)" if seeds > 1 else "")


def ablation_verdict(
    steps: list[tuple[str, float, float, int]], test_images: int | None = None
) -> str:
    """Does each step do at least as well as the one before, within the seed spread?

    With one seed there is no spread; with the number of test images known, a drop counts
    when it is beyond the test set's own sampling error for the difference of the two
    accuracies, sqrt(p0 (1 - p0) / n + p1 (1 - p1) / n): on 3,300 images one image is 0.03
    points, and two runs of equal worth differ by about 0.7 points as often as not.
    """
    seeds = min((n for *_, n in steps), default=0)
    sampled = seeds <= 1 and bool(test_images)
    drops = []
    for (prev, m0, s0, _), (step, m1, s1, _) in zip(steps, steps[1:]):
        spread = max(s0, s1)
        if sampled:
            p0, p1 = m0 / 100, m1 / 100
            spread = 100 * math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / test_images)
        if m0 - m1 > spread:
            drops.append(f"{step} is {m0 - m1:.2f} points below {prev}")
    if seeds > 1:
        spread = "within the seed spread"
    elif sampled:
        spread = f"within the sampling error of one seed on {test_images:,} test images"
    else:
        spread = "(one seed: no spread, any drop counts)"
    if not drops:
        return f"Each step at least as good as the one before {spread}: reproduced."
    return (
        f"Each step at least as good as the one before {spread}: not reproduced here, "
        + "; ".join(drops)
        + "."
    )


def test_images(group: Group) -> int | None:
    """The fewest test images any run of the group was measured on (None: not recorded)."""
    data = [r.summary.get("data") for r in group.runs]  # the user's files: any shape
    counts = [_count(d.get("n_test")) for d in data if isinstance(d, dict)]
    return min((n for n in counts if n), default=None)


def vit_verdict(steps: dict[str, float]) -> str:
    """Is the ViT at its tuned settings (else the course's) within a point of the CNN?"""
    course, tuned, cnn = (steps.get(f"step={k}") for k in ("vit", "vit-tuned", "cnn"))
    vit = tuned if tuned is not None else course
    if vit is None or cnn is None:
        return ""
    which = "The tuned ViT" if tuned is not None else "The ViT"
    defaults = (
        f" The course's ViT at its defaults reaches {course:.2f}%."
        if tuned is not None and course is not None
        else ""
    )
    gap = cnn - vit
    if gap <= COMPETITIVE_POINTS:
        return (
            f"{which} ({vit:.2f}%) is competitive with the CNN ({cnn:.2f}%): within "
            f"{COMPETITIVE_POINTS:g} point, as the course finds.{defaults}"
        )
    return (
        f"The CNN ({cnn:.2f}%) leads {which[0].lower() + which[1:]} ({vit:.2f}%) by "
        f"{gap:.2f} points: the course's 'competitive at its tuned settings' does not "
        f"reproduce at this budget.{defaults}"
    )


def _group_rows(
    group: Group, axes: list[str]
) -> tuple[list[tuple[str, ...]], list[str], list[str]]:
    """Overview rows of a sweep, study or search, where their setup is not the course's,
    and what its conclusions say."""
    data = group.runs[0].config["data"]["name"] if group.runs else ""
    study = str(group.spec.get("study") or "")
    if group.is_search:
        done = [r for r in group.rows if _number(r.get("value", "")) is not None]
        done = [r for r in done if r.get("state") == "complete"]
        if not done:
            return [], [], []
        best = max(done, key=lambda r: _number(r["value"]) or 0.0)
        label = f"{group.name}: best of {len(group.rows)} trials (trial {best.get('trial')})"
        return [(label, data, text_of(best.get("epochs_done")), pct(best["value"]), "")], [], []
    found = settings(group, axes)
    epochs = {}  # a setting's epochs, as its first run recorded them
    models = {}  # and its model
    by_folder = {r.path.name: r for r in group.runs}
    for row in group.rows:
        epochs.setdefault(setting_label(row, axes), text_of(row.get("epochs_done")))
        run = by_folder.get(str(row.get("run")))
        models.setdefault(setting_label(row, axes), run.model if run else "")
    rows, differs = [], []
    for label, mean, std, seeds in found[:MAX_SWEEP_ROWS]:
        step = label.removeprefix("step=")
        refs = references_for(study=study, step=step) if study else []
        name = f"{group.name}: {step}"
        rows.append(
            (
                name,
                data,
                epochs.get(label, ""),
                _mean_std(mean, std, seeds),
                "; ".join(str(r) for r in refs),
            )
        )
        differs.append(setup_differs(name, _epochs(epochs.get(label)), models.get(label), refs))
    if len(found) > MAX_SWEEP_ROWS:
        rows.append((f"{group.name}: {len(found) - MAX_SWEEP_ROWS} more settings", "", "", "", ""))
    notes, verdicts = [d for d in differs if d], []
    if study == "1cd-ablation" and len(found) > 1:
        verdicts.append(ablation_verdict(found, test_images(group)))
    if study == "1e-vit-vs-cnn":
        verdicts.append(vit_verdict({label: mean for label, mean, _, _ in found}))
    return rows, notes, [v for v in verdicts if v]


def overview_blocks(
    loose: list[Run], groups: list[Group], tour: dict | None, axes_of
) -> list[Block]:
    """The Overview section: per practical, a results table, the data note, the verdicts."""
    blocks = [Block("h2", "Overview")]
    parts = (tour or {}).get("parts", {})
    conclusions: list[tuple[str, str]] = []  # (practical, verdict), for the caveat on top
    for key, title in PRACTICALS.items():
        mine = [r for r in loose if practical_of(r.preset, r.model) == key]
        my_groups = [g for g in groups if group_practical(g) == key]
        if not mine and not my_groups:
            continue
        rows, notes, differs = [], [], []
        variants = variant_runs(mine)
        if len(variants) > 1:
            finals = [_final(r) for r in variants]
            shown = [f for f in finals if f is not None]
            result = (
                f"{min(shown):.2f}%" + (f" to {max(shown):.2f}%" if max(shown) > min(shown) else "")
                if shown
                else ""
            )
            names = ", ".join(r.preset[len(VARIANT_PREFIX) :] for r in variants)
            rows.append(
                (
                    f"the MLP {len(variants)} ways ({names})",
                    variants[0].config["data"]["name"],
                    text_of(variants[0].summary.get("epochs_done")),
                    result,
                    course_for_run(variants[0].preset),
                )
            )
        for run in (r for r in mine if r not in variants):
            rows.append(
                (
                    run.preset or run.path.name,
                    run.config["data"]["name"],
                    text_of(run.summary.get("epochs_done")),
                    pct(_final(run)),
                    course_for_run(run.preset),
                )
            )
            refs = references_for(run.preset)
            epochs = _epochs(run.summary.get("epochs_done"))
            differs.append(setup_differs(rows[-1][0], epochs, run.model, refs))
        for group in my_groups:
            group_rows, group_differs, group_notes = _group_rows(group, axes_of(group))
            rows += group_rows
            differs += group_differs
            notes += group_notes
            conclusions += [(key, note) for note in group_notes]
        blocks.append(Block("h3", f"Overview: {title}"))
        header = ("experiment", "data", "epochs", "final test accuracy", "the course reports")
        blocks.append(Block("table", header=header, rows=tuple(rows)))
        blocks += _data_note(key, rows, parts.get(key))
        blocks += _setup_note(differs)
        blocks += [para(note) for note in notes]
    blocks[1:1] = budget_caveat(tour, conclusions)
    return blocks


# The course's conclusions the overview checks, in the course's words, by practical.
CONCLUSIONS = {
    "1-cd": "each improvement of the CNN at least as good as the one before",
    "1-e": "the tuned ViT competitive with the CNN",
}


def held(verdict: str) -> bool:
    """Whether a verdict of ablation_verdict or vit_verdict says the conclusion holds."""
    return "not reproduced" not in verdict and "does not reproduce" not in verdict


def is_quick_tour(tour: dict | None) -> bool:
    if not isinstance(tour, dict):
        return False
    return tour.get("mode") == "quick" or text_of(tour.get("summary")).startswith("The quick")


def cut_down(tour: dict | None) -> dict | None:
    """A full tour's `sizing` record when the tour was cut down to fit its minutes (the
    record is the user's file: anything not shaped as the tour writes it is no cut)."""
    if not isinstance(tour, dict) or is_quick_tour(tour):
        return None
    sizing = tour.get("sizing")
    if not isinstance(sizing, dict) or sizing.get("cut") is not True:
        return None
    return sizing


def _json_number(value) -> float | None:
    """A finite number from a JSON record (not a bool, which Python counts as an int)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def _count(value) -> int | None:
    return (
        value if isinstance(value, int) and _json_number(value) is not None and value >= 0 else None
    )


def how_cut(sizing: dict, part: str) -> str:
    """`4 epochs on 2,600 of 12,000 training images` for a part of a cut-down tour."""
    budget = (
        (sizing.get("parts") or {}).get(part) if isinstance(sizing.get("parts"), dict) else None
    )
    if not isinstance(budget, dict):
        return ""
    keys = ("epochs", "full_epochs", "train_images", "full_train_images")
    epochs, full_epochs, images, full_images = (_count(budget.get(k)) for k in keys)
    if epochs is None or images is None:
        return ""

    def of(now: int, was: int | None) -> str:
        return f"{now:,}" if was is None or was == now else f"{now:,} of {was:,}"

    return f"{of(epochs, full_epochs)} epochs on {of(images, full_images)} training images"


def _minutes(value) -> str:
    """`10 minutes`, `1 minute`; `minutes` where the record's value is not a number."""
    value = _json_number(value)
    if value is None or value <= 0:
        return "minutes"
    return f"{value:g} minute" + ("" if value == 1 else "s")


def budget_caveat(tour: dict | None, conclusions: list[tuple[str, str]]) -> list[Block]:
    """At the top of a quick tour's overview, per conclusion: whether it held, and that
    one not reproduced is expected at this smoke-test budget (`tinyvision tour` trains
    long enough for the course's conclusions to hold). A full tour cut down to fit its
    minutes on a slow machine says so too, and how each part was cut."""
    sizing = cut_down(tour)
    if sizing is not None and conclusions:
        return _cut_down_caveat(sizing, conclusions)
    if not is_quick_tour(tour) or not conclusions:
        return []
    blocks = [
        para(
            "The quick tour is a smoke test: every practical runs, at a budget too small "
            "for the course's conclusions to be expected. Not reproduced here is expected; ",
            Code("tinyvision tour"),
            " (the full tour) is where they hold.",
        )
    ]
    for key, verdict in conclusions:
        what = CONCLUSIONS.get(key, "the course's conclusion")
        if held(verdict):
            blocks.append(para(f"{key}, {what}: reproduced, even at this budget."))
        else:
            blocks.append(
                para(
                    f"{key}, {what}: not reproduced at this budget, as expected of a smoke test; ",
                    Code("tinyvision tour"),
                    " is where this conclusion holds.",
                )
            )
    return blocks


def _cut_down_caveat(sizing: dict, conclusions: list[tuple[str, str]]) -> list[Block]:
    full = _json_number(sizing.get("full_estimate_s"))
    took = (
        f" (its fixed budgets were estimated at about {math.ceil(full / 60)} minutes here)"
        if full is not None and full > 0
        else ""
    )
    blocks = [
        para(
            f"This full tour was cut down to fit {_minutes(sizing.get('minutes'))} on "
            f"this machine{took}, so its studies trained less than the full tour's fixed "
            "budgets. A conclusion not reproduced here may be the smaller budget's doing; ",
            Code("tinyvision tour --minutes 0"),
            " runs the fixed budgets, however long they take.",
        )
    ]
    for key, verdict in conclusions:
        what = CONCLUSIONS.get(key, "the course's conclusion")
        how = how_cut(sizing, key)
        at = f" ({how})" if how else ""
        if held(verdict):
            blocks.append(para(f"{key}, {what}: reproduced, even at this cut-down budget{at}."))
        else:
            blocks.append(
                para(
                    f"{key}, {what}: not reproduced at this cut-down budget{at}; the fixed "
                    "budgets (",
                    Code("tinyvision tour --minutes 0"),
                    ") are where this conclusion holds.",
                )
            )
    return blocks


def _data_note(key: str, rows: list[tuple[str, ...]], part: dict | None) -> list[Block]:
    course, names = COURSE_DATA.get(key, ("", set()))
    used = sorted({row[1] for row in rows if row[1]})
    if not course or set(used) <= names:
        return []
    why = f" ({text_of(part.get('why'))})" if isinstance(part, dict) and part.get("why") else ""
    return [
        para(
            f"The course's numbers are for {course}; these runs used {', '.join(used)}{why}"
            " and may have a smaller budget, so compare the trend, not the numbers."
        )
    ]


def _loss_curve(run: Run) -> list[float] | None:
    """The training loss of each trained epoch, from 1 (epoch 0 is measured before training
    and, from the same initial weights, is the same for every variant)."""
    try:
        rows = trained_rows(read_csv_rows(run.path / METRICS, ("epoch", "train_loss")))
        return [float(r["train_loss"]) for r in rows]
    except (RecordError, ValueError):
        return None


def variants_blocks(variants: list[Run]) -> list[Block]:
    """The four MLP variants as one comparison: their loss curves overlaid, the largest
    difference between them, and their final test accuracies."""
    from tinyvision.figures import plt

    curves = {r.preset[len(VARIANT_PREFIX) :]: _loss_curve(r) for r in variants}
    curves = {name: c for name, c in curves.items() if c}
    blocks = [Block("h3", f"The MLP {len(variants)} ways: one comparison")]
    length = min((len(c) for c in curves.values()), default=0)
    if len(curves) > 1 and length:
        gap = max(
            max(c[i] for c in curves.values()) - min(c[i] for c in curves.values())
            for i in range(length)
        )
        finals = ", ".join(f"{r.preset[len(VARIANT_PREFIX) :]} {pct(_final(r))}" for r in variants)
        blocks.append(
            para(
                "The same network trained with hand-written gradients, autograd, torch.nn and "
                f"torch.optim. Largest difference in training loss between them at any epoch: "
                f"{gap:.3g}. Final test accuracy: {finals}."
            )
        )
        fig, ax = plt.subplots(figsize=(7, 4))
        for (name, curve), style in zip(curves.items(), ("-", "--", ":", "-.")):
            ax.plot(range(1, len(curve) + 1), curve, style, lw=2, label=name)
        ax.set(xlabel="epoch", ylabel="training loss", title=f"largest difference {gap:.3g}")
        ax.legend()
        fig.tight_layout()
        buffer = bytes_io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        figure = Figure(Path("mlp-variants") / "loss.png", buffer.getvalue(), "image/png")
        blocks.append(Block("figure", figure=figure, text="the variants' training loss"))
    return blocks
