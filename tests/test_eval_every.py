"""train.eval_every: the test split evaluated after every Nth epoch and after the last.

The epochs between train exactly as before (evaluation draws nothing random), their
test columns are NaN, and every reader of metrics.csv takes NaN as "not measured".
"""

from __future__ import annotations

import json
import math

import pytest

from tinyvision.errors import UserError
from tinyvision.experiment.runner import resume, run
from tinyvision.io import read_csv
from tinyvision.presets import build_config

from conftest import run_cut_at_epoch

TINY = ["data.name=digits", "train.batch_size=64", "optim.lr=0.05", "model.dropout=0.3"]
TIMING = ("epoch_seconds", "images_per_second")
TEST_COLUMNS = ("test_loss", "test_acc", "test_acc5")


def _rows(path):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_csv(path)]


def test_every_nth_epoch_and_the_last_are_evaluated_the_training_unchanged(tmp_path, capsys):
    every, each = (
        run(build_config("mlp-fashion", [*TINY, "train.epochs=5", f"train.eval_every={n}"]),
            tmp_path / str(n), "cpu")
        for n in (2, 1)
    )  # fmt: skip
    (path, summary), (full_path, full) = every, each
    rows, full_rows = _rows(path / "metrics.csv"), _rows(full_path / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    evaluated = {"0", "2", "4", "5"}  # epoch 0, every 2nd, and the last
    for row, full_row in zip(rows, full_rows, strict=True):
        if row["epoch"] in evaluated:
            assert row == full_row
        else:  # trained alike, measured on the training batches only
            assert all(row[k] == "nan" for k in TEST_COLUMNS)
            assert {k: v for k, v in row.items() if k not in TEST_COLUMNS} == {
                k: v for k, v in full_row.items() if k not in TEST_COLUMNS
            }
    assert summary["final"]["test_acc"] == full["final"]["test_acc"]
    assert summary["best_epoch"] in (2, 4, 5)
    assert summary["best_test_acc"] == max(float(rows[i]["test_acc"]) for i in (2, 4, 5))
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("epoch ")]
    skipped = [x for x in lines if "test not evaluated" in x]
    assert [x.split()[1] for x in skipped] == ["1/5", "3/5"]  # of the eval_every=2 run


def test_a_resumed_run_evaluates_the_same_epochs(tmp_path, monkeypatch):
    overrides = [*TINY, "train.epochs=4", "train.eval_every=3"]
    full, _ = run(build_config("mlp-fashion", overrides), tmp_path / "a", "cpu", quiet=True)

    cut = run_cut_at_epoch(monkeypatch, build_config("mlp-fashion", overrides), tmp_path / "b", 3)
    cut_summary = json.loads((cut / "summary.json").read_text())
    # two epochs, neither evaluated: the record has no test accuracy to claim
    assert cut_summary["status"] == "interrupted" and cut_summary["final"]["test_acc"] is None
    assert cut_summary["best_test_acc"] is None

    _, resumed = resume(cut, "cpu", quiet=True)
    assert resumed["status"] == "completed"
    assert _rows(cut / "metrics.csv") == _rows(full / "metrics.csv")
    assert [r["test_acc"] == "nan" for r in _rows(cut / "metrics.csv")] == [
        False, True, True, False, False  # epochs 0-4: 3 is the 3rd, 4 the last
    ]  # fmt: skip


def test_the_curves_join_the_measured_points():
    from tinyvision.figures import plot_curves

    rows = [
        {"epoch": e, "train_acc": 50 + e, "train_loss": 1 / (e + 1),
         "test_acc": a, "test_loss": loss}
        for e, a, loss in ((0, 10, 2.3), (1, math.nan, math.nan), (2, 80, 0.5), (3, 85, 0.4))
    ]  # fmt: skip
    fig = plot_curves(rows, None)
    acc_axis, loss_axis = fig.axes
    train, test = acc_axis.lines
    assert list(train.get_xdata()) == [0, 1, 2, 3]
    assert list(test.get_xdata()) == [0, 2, 3] and list(test.get_ydata()) == [10, 80, 85]
    assert list(loss_axis.lines[1].get_ydata()) == [2.3, 0.5, 0.4]


def test_show_leaves_an_unevaluated_epochs_test_cells_empty(tmp_path, capsys):
    from tinyvision.cli import main

    path, _ = run(
        build_config("mlp-fashion", [*TINY, "train.epochs=2", "train.eval_every=2"]),
        tmp_path,
        "cpu",
        quiet=True,
    )
    assert main(["runs", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower()


def test_pruning_judges_only_evaluated_epochs():
    from tinyvision.groups.search import TrialPruning

    class Trial:
        reported: list = []

        def report(self, value, step):
            self.reported.append((value, step))

        def should_prune(self):
            return True

    exp = type("Exp", (), {"cfg": build_config("mlp-fashion", ["train.epochs=4"])})()
    hook = TrialPruning.__new__(TrialPruning)
    hook.trial = Trial()
    assert hook.verdict(exp, {"epoch": 1, "test_acc": math.nan}) is None
    assert hook.trial.reported == []
    assert hook.verdict(exp, {"epoch": 2, "test_acc": 70.0}) == "pruned"
    assert hook.trial.reported == [(70.0, 2)]


def test_a_time_budget_is_refused_beside_eval_every():
    with pytest.raises(UserError, match="train.eval_every=1"):
        build_config("fashion-fast", ["train.eval_every=2"])
    with pytest.raises(UserError, match="train.eval_every must be positive"):
        build_config("mlp-fashion", ["train.eval_every=0"])
    assert build_config("fashion-fast", ["train.eval_every=2", "train.time_budget=0"])


def test_a_report_shows_no_figure_for_what_was_not_measured():
    from tinyvision.report.blocks import num, pct

    assert pct(math.nan) == "" and num(math.nan) == ""
    assert pct(93.456) == "93.46%" and num(1234.5) == "1,234.5"
