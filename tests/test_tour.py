"""The full tour sized to `--minutes`: the arithmetic against hand-worked values with
injected speeds (nothing here is timed), tour.json's record of the choice, the report's
caveat for a cut-down tour, and the option's validation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tinyvision import tour, tour_budget
from tinyvision.cli import main
from tinyvision.tour_budget import Part, Speed, choose, run_seconds

from conftest import one_line_error

CD = Part("1-cd", "1cd-ablation", 12000, 4000, 4, "images")
VIT = Part("1-e", "1e-vit-vs-cnn", 12000, 4000, 30, "epochs", 10)
# two runs each: 10 ms a training image, 2 ms a test image, 3 s to prepare, on 12,000 /
# 4,000 images; the ViT's data has 8,000 / 2,000 (MNIST's test split)
CNN_SPEED = Speed(0.01, 0.002, 3.0, 12000, 4000)
VIT_SPEED = Speed(0.001, 0.0005, 1.0, 8000, 2000)
SPEEDS = {"1-cd": [CNN_SPEED, CNN_SPEED], "1-e": [VIT_SPEED, VIT_SPEED]}


def test_a_runs_estimate_is_its_setup_epoch_0_and_its_epochs():
    # 3 s + epoch 0 (16,000 images evaluated at 2 ms) + 4 x (12,000 x 10 ms + 4,000 x 2 ms)
    assert run_seconds(CNN_SPEED, 12000, 4000, 4) == pytest.approx(3 + 32 + 4 * 128)
    # a subset larger than the data is all of it: 8,000 and 2,000 images
    assert run_seconds(VIT_SPEED, 12000, 4000, 30) == pytest.approx(1 + 5 + 30 * 9)


def _budgets(choices):
    return {c.part: (c.train, c.test, c.epochs, round(c.estimate_s, 6)) for c in choices}


def test_the_fixed_budgets_when_they_fit():
    # 2 x 547 + 2 x 276 = 1646 s
    assert _budgets(choose([CD, VIT], SPEEDS, 1646.0)) == {
        "1-cd": (12000, 4000, 4, 1094.0),
        "1-e": (12000, 4000, 30, 552.0),
    }


def test_half_the_time_cuts_the_ablations_images_and_the_vits_epochs():
    """823 s of 1646: each part keeps its setups (2 x 3 s, 2 x 1 s) and gets the same share
    of the rest, 815 / 1638. The ablation: 6 + 1088 x 815 / 1638 = 547.34 s, 273.67 a run;
    it keeps 4 epochs, and 3 + 0.042 n + 0.01 t with t = n / 3 in hundreds gives n = 5,900
    (t = 1,900: 269.8 s; 6,000 would take 275). The ViT: 2 + 550 x 815 / 1638 = 275.66 s,
    137.83 a run; it keeps its 8,000 images, and 1 + 5 + 9 E gives E = 14 (132 s)."""
    chosen = choose([CD, VIT], SPEEDS, 823.0)
    assert _budgets(chosen) == {"1-cd": (5900, 1900, 4, 539.6), "1-e": (12000, 4000, 14, 264.0)}
    assert [(c.train_images, c.test_images) for c in chosen] == [(5900, 1900), (8000, 2000)]


def test_below_ten_epochs_the_vit_takes_fewer_images():
    """300 s of 1646, a share of 292 / 1638 beside the setups: the ablation gets 6 + 1088 x
    292 / 1638 = 199.95 s (99.98 a run), so 2,000 images and the 1,000 test images of the
    floor (97 s a run; 2,100 would take 101.2); the ViT gets 2 + 550 x 292 / 1638 = 100.05 s
    (50.02 a run), under 10 epochs on all its images (96 s), so 10 epochs on fewer:
    1 + 0.0105 n + 0.0055 t with t = 1,000 gives n = 4,100 (49.55 s; 4,200: 50.6 s)."""
    assert _budgets(choose([CD, VIT], SPEEDS, 300.0)) == {
        "1-cd": (2000, 1000, 4, 194.0),
        "1-e": (4100, 1000, 10, 99.1),
    }


def test_no_time_at_all_gives_the_smallest_budgets():
    # 2,000 images, 1,000 test images, 1 epoch: 3 + 6 + 22 = 31 s and 1 + 1.5 + 2.5 = 5 s a run
    assert _budgets(choose([CD, VIT], SPEEDS, -5.0)) == {
        "1-cd": (2000, 1000, 1, 62.0),
        "1-e": (2000, 1000, 1, 10.0),
    }


def test_the_order_of_cuts_of_each_part():
    images = tour_budget.candidates(CD, CNN_SPEED)
    assert images[:3] == [(12000, 4), (11900, 4), (11800, 4)]
    assert images[-4:] == [(2000, 4), (2000, 3), (2000, 2), (2000, 1)]
    epochs = tour_budget.candidates(VIT, VIT_SPEED)
    assert epochs[:2] == [(12000, 30), (12000, 29)]
    at_ten = epochs.index((12000, 10))
    assert epochs[at_ten + 1 : at_ten + 3] == [(7900, 10), (7800, 10)]
    assert epochs[-10:] == [(2000, e) for e in range(10, 0, -1)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fake_prepare(clock: FakeClock, calls: list):
    """Prepared runs with a CNN's or a ViT's speed: each takes 2 s of the fake clock."""

    def prepare(cfg):
        calls.append(cfg)
        clock.now += 2.0
        assert cfg.train.time_budget == tour_budget.TIMING_BUDGET_S  # sized, so timed
        vit = cfg.data.name == "mnist"
        images = (8000, 2000) if vit else (cfg.data.train_subset, cfg.data.test_subset)
        per_image = VIT_SPEED if vit else CNN_SPEED
        plan = SimpleNamespace(
            train_s=per_image.train_s * images[0], test_s=per_image.test_s * images[1]
        )
        loaders = [SimpleNamespace(labels=[0] * n) for n in images]
        return SimpleNamespace(sized=plan, train_loader=loaders[0], test_loader=loaders[1])

    return prepare


def test_the_tour_times_each_kind_of_run_once_and_sizes_with_what_is_left():
    clock, calls = FakeClock(), []
    data = {"1-cd": ["data.name=fashion-mnist"], "1-e": ["data.name=mnist"]}
    sizing = tour_budget.size_tour([CD, VIT], data, 60.0, 40.0, _fake_prepare(clock, calls), clock)
    # the ablation's six runs are three models (plain, + dropout, + batch norm); the ViT
    # against the CNN: four
    assert len(calls) == 7 and sizing.kinds == 7
    assert sizing.timing_s == 14.0
    assert {c.data.train_subset for c in calls} == {12000}
    # each run's setup is the 2 s its timing took: 6 x 546 + 4 x 277 at the fixed budgets
    assert sizing.full_estimate_s == pytest.approx(14 + 40 + 6 * 546 + 4 * 277)
    speeds = {
        "1-cd": [Speed(0.01, 0.002, 2.0, 12000, 4000)] * 6,
        "1-e": [Speed(0.001, 0.0005, 2.0, 8000, 2000)] * 4,
    }
    left = 3600 * 0.9 - 14 - 40  # an hour, less the margin, the timing and the fixed steps
    assert sizing.choices == tuple(choose([CD, VIT], speeds, left))
    assert sizing.cut and not sizing.over
    assert sizing.estimate_s <= 3600 * 0.9
    record = sizing.record()
    assert record["parts"]["1-cd"]["full_train_images"] == 12000
    assert record["parts"]["1-cd"]["epochs"] == 4 and record["parts"]["1-cd"]["full_epochs"] == 4
    assert record["parts"]["1-cd"]["train_images"] < 12000
    assert record["parts"]["1-e"]["epochs"] < 30
    lines = sizing.lines()
    assert lines[0].startswith("timed 7 kinds of run in 14s: the fixed budgets would take")
    assert "over --minutes 60, so the studies are cut down:" in lines[0]
    assert lines[1].startswith("  1-cd: 4 epochs on ") and " of 12,000 training images" in lines[1]
    assert lines[-1].endswith("(--minutes 0 runs the fixed budgets)")


def test_a_fast_machine_keeps_the_fixed_budgets():
    clock = FakeClock()
    data = {"1-cd": ["data.name=fashion-mnist"], "1-e": ["data.name=mnist"]}
    sizing = tour_budget.size_tour([CD, VIT], data, 90.0, 40.0, _fake_prepare(clock, []), clock)
    assert not sizing.cut and not sizing.over
    assert [(c.train, c.epochs) for c in sizing.choices] == [(12000, 4), (12000, 30)]
    (line,) = sizing.lines()
    assert line.endswith("within --minutes 90: the fixed budgets")


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "ten"])
def test_a_bad_minutes_is_one_line(value, tmp_path, capsys):
    code = main(["tour", "--minutes", value, "--out", str(tmp_path)])
    one_line_error(code, capsys.readouterr().err, "--minutes")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_a_cut_down_full_tour_records_its_budgets_and_its_report_says_so(
    tmp_path, monkeypatch, capsys
):
    """The full tour, at tiny budgets on the built-in digits, told that every image takes
    a second: it cuts every study to its smallest, trains at that, records it in
    tour.json, and its report's overview says how each conclusion's part was cut."""
    monkeypatch.setitem(
        tour.BUDGETS, "full", {"train": 300, "test": 100, "epochs": 2, "vit_epochs": 3}
    )
    monkeypatch.setattr(tour_budget, "MIN_TRAIN", 100)
    monkeypatch.setattr(tour_budget, "MIN_TEST", 50)

    def slow(configs, prepare, clock, timed=None):
        return [Speed(1.0, 0.1, 0.0, 300, 100) for _ in configs]

    monkeypatch.setattr(tour_budget, "time_runs", slow)
    assert main(["tour", "--minutes", "1", "--out", str(tmp_path), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "over --minutes 1, so the studies are cut down:" in printed
    assert "  1-cd: 1 of 2 epochs on 100 of 300 training images (50 of 100 test)" in printed
    assert "  1-e: 1 of 3 epochs on 100 of 300 training images" in printed
    record = json.loads((tmp_path / "tour" / "tour.json").read_text())
    assert record["mode"] == "full" and record["sizing"]["cut"] is True
    assert record["sizing"]["minutes"] == 1.0
    assert record["sizing"]["parts"]["1-e heads"]["train_images"] == 100
    assert record["summary"].startswith("The full tour, cut down to fit 1 minute on this machine")
    assert set(record["seconds"]) == {"timing", "1-ab", "1-cd", "1-e", "1-e heads", "report"}
    # the runs trained at the budget recorded
    (study,) = (tmp_path / "tour").glob("study-1e-vit-vs-cnn-*")
    config = json.loads((study / "step=vit-tuned_seed0" / "config.json").read_text())
    assert config["train"]["epochs"] == 1 and config["data"]["train_subset"] == 100
    html = (tmp_path / "tour" / "report.html").read_text()
    assert "This full tour was cut down to fit 1 minute on this machine" in html
    assert "tinyvision tour --minutes 0" in html
    assert "at this cut-down budget (1 of 2 epochs on 100 of 300 training images)" in html
    assert "at this cut-down budget (1 of 3 epochs on 100 of 300 training images)" in html


def test_the_caveat_of_a_cut_down_tour_per_conclusion():
    from tinyvision.report.overview import budget_caveat

    def said(blocks):
        return ["".join(str(getattr(p, "text", p)) for p in b.parts) for b in blocks]

    sizing = {
        "minutes": 10,
        "cut": True,
        "full_estimate_s": 1530.0,
        "parts": {
            "1-cd": {"epochs": 4, "full_epochs": 4, "train_images": 2600,
                     "full_train_images": 12000},
            "1-e": {"epochs": 10, "full_epochs": 30, "train_images": 8000,
                    "full_train_images": 8000},
        },
    }  # fmt: skip
    verdicts = [("1-cd", "Each step ...: not reproduced here, dropout is 1.00 points below")]
    verdicts.append(("1-e", "The tuned ViT (97.50%) is competitive with the CNN (97.80%)"))
    full = {"summary": "The full tour, cut down ...", "mode": "full", "sizing": sizing}
    lines = said(budget_caveat(full, verdicts))
    assert lines[0].startswith(
        "This full tour was cut down to fit 10 minutes on this machine (its fixed budgets "
        "were estimated at about 26 minutes here)"
    )
    assert lines[1] == (
        "1-cd, each improvement of the CNN at least as good as the one before: not "
        "reproduced at this cut-down budget (4 epochs on 2,600 of 12,000 training images); "
        "the fixed budgets (tinyvision tour --minutes 0) are where this conclusion holds."
    )
    assert lines[2] == (
        "1-e, the tuned ViT competitive with the CNN: reproduced, even at this cut-down "
        "budget (10 of 30 epochs on 8,000 training images)."
    )
    # a full tour at its fixed budgets, and a record that is not the tour's: no caveat
    assert budget_caveat({**full, "sizing": {**sizing, "cut": False}}, verdicts) == []
    assert budget_caveat({**full, "sizing": "cut"}, verdicts) == []
    odd = {**sizing, "parts": {"1-cd": {"epochs": "four", "train_images": True}}, "minutes": []}
    lines = said(budget_caveat({**full, "sizing": odd}, verdicts))
    assert lines[0].startswith("This full tour was cut down to fit minutes on this machine")
    assert "not reproduced at this cut-down budget; the fixed budgets" in lines[1]


def test_plan_shares_the_bar_by_the_timed_seconds():
    budget = tour.BUDGETS["full"]
    timed = {"1-cd": tuple(float(i) for i in range(1, 7)), "1-e": (10.0, 20.0, 30.0, 40.0)}
    timed["1-e heads"] = (1.0, 1.0, 1.0, 1.0)
    steps = tour.plan(budget, "mnist", False, timed)
    assert [s.work for s in steps if s.part == "1-cd"] == [1, 2, 3, 4, 5, 6]
    assert [s.work for s in steps if s.part == "1-e"] == [10, 20, 30, 40]
    fixed = tour.fixed_seconds(budget, "mnist", False)
    assert fixed == pytest.approx(sum(s.work for s in steps if s.part in ("1-ab", "report")))
    assert fixed == pytest.approx(6 * tour.CIRCLES_SECONDS + 12000 * 5 / 50_000 + 5.0)
