"""train.time_budget: a run sized to the machine before its first step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinyvision.errors import UserError
from tinyvision.experiment.runner import resume, run
from tinyvision.groups.sweep import run_sweep
from tinyvision.io import read_csv
from tinyvision.presets import build_config
from tinyvision.train import budget, loop, optim

from conftest import interrupt_at_epoch, measured_epochs

# The fast recipe on the 8x8 digits (1,437 training images, 23 batches of 64; 360 test
# images, one batch): batch norm, augmentation, label smoothing, a weight average and
# test-time flips, all of which the timing must leave alone.
TINY = [
    "data.name=digits",
    "data.crop=8",
    "data.pad=1",
    "train.batch_size=64",
    "model.width=8",
    "train.ema=0.9",
]
TIMING = {"epoch_seconds", "images_per_second"}
STEP_S, TEST_S = 0.5, 0.25  # what the fake clock says a training step / test batch takes
EPOCH_S = STEP_S * 23 + TEST_S  # its epoch: 23 training steps and one test batch
# the evaluation before training: test batches of 1,000, two over the training images
# and one over the test images
BEFORE_S = 3 * TEST_S


def _fitting(epochs: int) -> float:
    """A budget that holds `epochs` of the fake clock's epochs, and not one more."""
    return epochs * EPOCH_S / (1 - budget.MARGIN) + 1


def _metrics(path):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_csv(path / "metrics.csv")]


def _fake_clock(
    monkeypatch,
    step_s: float = STEP_S,
    test_s: float = TEST_S,
    epoch_s: float | None = None,
) -> list[str]:
    """Batches run as usual; their seconds are the fake clock's, and so are the epochs'
    as measured (metrics.csv): `epoch_s`, or as long as the timed batches say (the plan
    after the first epoch then keeps the count). Returns what was timed."""
    timed: list[str] = []

    def timer(batch) -> float:
        batch()
        timed.append(batch.__name__)
        return {"train_step": step_s, "test_batch": test_s}[batch.__name__]

    monkeypatch.setattr(budget, "wall_clock", timer)
    measured = step_s * 23 + test_s if epoch_s is None else epoch_s
    measured_epochs(monkeypatch, measured, 3 * test_s)
    return timed


def test_epochs_within_the_budget():
    # 10% of the budget is left unplanned: 100 s hold 9 epochs of 10 s, not 10
    assert budget.epochs_within(100, 10, asked=20) == 9
    assert budget.epochs_within(100, 8.9, asked=20) == 10
    assert budget.epochs_within(100, 10, asked=4) == 4  # train.epochs stays the most
    assert budget.epochs_within(100, 500, asked=4) == 1  # and one epoch the least
    assert budget.epochs_within(100, 0.0, asked=4) == 4


def test_an_epoch_is_the_sum_of_its_batches_not_their_median():
    """One slow batch in three (a busy neighbour, a collection) lengthens an epoch by its
    share: the mean says so, the median would not."""
    seconds = iter([5.0, 1.0, 1.0, 10.0])  # the warm-up first
    assert budget._mean_seconds(lambda: None, 0.0, lambda batch: next(seconds)) == 4.0


def test_a_budget_sizes_the_run_and_records_how(tmp_path, monkeypatch, capsys):
    timed = _fake_clock(monkeypatch)
    epoch_s = EPOCH_S
    seconds = 3 * epoch_s / (1 - budget.MARGIN) + 1  # three epochs fit, four do not
    cfg = build_config("fashion-fast", [*TINY, "train.epochs=6", f"train.time_budget={seconds}"])
    path, summary = run(cfg, tmp_path, "cpu")

    assert summary["status"] == "completed" and summary["epochs_done"] == 3
    assert json.loads((path / "config.json").read_text())["train"]["epochs"] == 3
    assert len(read_csv(path / "metrics.csv")) == 1 + 3  # epoch 0, then the three
    assert summary["time_budget"] == {
        "seconds": seconds,
        "asked_epochs": 6,
        "epochs": 3,
        "epoch_estimate_s": epoch_s,
        "train_estimate_s": STEP_S * 23,
        "test_estimate_s": TEST_S,
        "first_epoch_s": epoch_s,  # measured as estimated: planned again, still three
        "planned_epochs": 3,
    }
    assert json.loads((path / "start.json").read_text())["time_budget"] == summary["time_budget"]
    # a warm-up batch each, then MIN_STEPS timed (their fake seconds pass SHARE of the
    # budget): the one test batch is timed again and again
    assert timed.count("train_step") == timed.count("test_batch") == budget.MIN_STEPS + 1
    assert f"time budget {seconds:g}s: 3 of 6 epochs (about {epoch_s:.1f}s an epoch" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("fits, asked", [(2, 5), (3, 3)])
def test_a_sized_run_trains_as_one_told_its_epochs(tmp_path, monkeypatch, fits, asked):
    """Timing on a copy, with its own batches and random state, leaves the run as it was:
    shortened (a second learner built) or not (the first one kept). Dropout and the
    mixup / cutmix choice draw from torch's global generator."""
    _fake_clock(monkeypatch)
    mixed = [*TINY, "model.dropout=0.2", "data.mixup=0.2", "data.cutmix=1.0"]
    sized_cfg = build_config(
        "fashion-fast", [*mixed, f"train.epochs={asked}", f"train.time_budget={_fitting(fits)}"]
    )
    sized, summary = run(sized_cfg, tmp_path / "a", "cpu", quiet=True)
    told_cfg = build_config("fashion-fast", [*mixed, f"train.epochs={fits}", "train.time_budget=0"])
    told, told_summary = run(told_cfg, tmp_path / "b", "cpu", quiet=True)
    assert summary["epochs_done"] == fits and summary["time_budget"]["epochs"] == fits
    assert summary["time_budget"]["planned_epochs"] == fits  # planned again: the same count
    assert "time_budget" not in told_summary
    assert _metrics(sized) == _metrics(told)


def test_resume_keeps_the_epochs_the_budget_chose(tmp_path, monkeypatch):
    """The count is in config.json; a resume on a faster machine does not size it again."""
    _fake_clock(monkeypatch)
    seconds = _fitting(3)
    overrides = [*TINY, "train.epochs=8", f"train.time_budget={seconds}"]
    full, planned = run(build_config("fashion-fast", overrides), tmp_path / "a", "cpu", quiet=True)

    real_epoch = interrupt_at_epoch(monkeypatch, at=2)
    with pytest.raises(KeyboardInterrupt):
        run(build_config("fashion-fast", overrides), tmp_path / "b", "cpu", quiet=True)
    monkeypatch.setattr(loop, "epoch", real_epoch)
    timed = _fake_clock(monkeypatch, step_s=100.0)  # sized again, it would get one epoch
    (cut,) = (tmp_path / "b").glob("fashion-fast-*")
    _, summary = resume(cut, "cpu", quiet=True)
    assert timed == [] and summary["status"] == "completed" and summary["epochs_done"] == 3
    assert summary["time_budget"] == planned["time_budget"]
    assert _metrics(cut) == _metrics(full)


def _cut_before_the_first_epoch(monkeypatch, out: Path, seconds: float) -> Path:
    """A five-epoch run on a time budget, Ctrl-C before its first epoch; every patch undone."""
    overrides = [*TINY, "train.epochs=5", f"train.time_budget={seconds}"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(build_config("fashion-fast", overrides), out, "cpu", quiet=True)
    monkeypatch.undo()
    (cut,) = out.glob("fashion-fast-*")
    return cut


def test_a_resume_before_the_first_checkpoint_keeps_the_record(tmp_path, monkeypatch):
    _fake_clock(monkeypatch)
    cut = _cut_before_the_first_epoch(monkeypatch, tmp_path, _fitting(2))
    assert not (cut / "checkpoint.pt").exists()
    _, summary = resume(cut, "cpu", quiet=True)
    assert summary["epochs_done"] == 2 and summary["time_budget"]["epochs"] == 2


def test_a_run_killed_before_its_first_checkpoint_keeps_the_record(tmp_path, monkeypatch):
    """kill -9 leaves no summary.json: the sizing was written with the config."""
    _fake_clock(monkeypatch)
    cut = _cut_before_the_first_epoch(monkeypatch, tmp_path, _fitting(2))
    (cut / "summary.json").unlink()  # as a kill -9 leaves it
    assert json.loads((cut / "start.json").read_text())["time_budget"]["epochs"] == 2
    _, summary = resume(cut, "cpu", quiet=True)
    assert summary["epochs_done"] == 2 and summary["time_budget"]["epochs"] == 2


@pytest.mark.parametrize(
    "fits, measured, epochs",
    [
        (3, EPOCH_S / 2, 6),  # twice as fast as timed: twice the epochs
        (4, 2 * EPOCH_S, 2),  # twice as slow: half
        (3, 4 * EPOCH_S, 1),  # the first epoch took all the budget: the run ends there
    ],
)
def test_the_first_epoch_measured_plans_the_run_again(
    tmp_path, monkeypatch, capsys, fits, measured, epochs
):
    _fake_clock(monkeypatch, epoch_s=measured)
    seconds = _fitting(fits)
    asked = build_config("fashion-fast", [*TINY, "train.epochs=8", f"train.time_budget={seconds}"])
    path, summary = run(asked, tmp_path, "cpu")

    assert summary["status"] == "completed" and summary["epochs_done"] == epochs
    rows = read_csv(path / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(epochs + 1))
    # what was measured: the same rule as the first plan, the epoch's true length in it
    assert epochs == budget.epochs_within(seconds - BEFORE_S, measured, 8)
    record = {
        "seconds": seconds,
        "asked_epochs": 8,
        "epochs": epochs,
        "epoch_estimate_s": EPOCH_S,
        "train_estimate_s": STEP_S * 23,
        "test_estimate_s": TEST_S,
        "first_epoch_s": measured,
        "planned_epochs": fits,
    }
    assert summary["time_budget"] == record
    assert json.loads((path / "start.json").read_text())["time_budget"] == record
    config = json.loads((path / "config.json").read_text())
    assert config["train"]["epochs"] == epochs
    assert config == budget.sized_config(asked, epochs).to_dict()
    err = capsys.readouterr().err
    assert (
        f"time budget {seconds:g}s: the first epoch took {measured:.1f}s (estimated "
        f"{EPOCH_S:.1f}s): {epochs} of 8 epochs, not {fits}"
    ) in err
    assert f"epoch   2/{epochs} " in err or epochs == 1  # the progress counts to the new total
    # one-cycle stepped per batch: epoch 1 ran under the first plan, which starts as every
    # one-cycle does; from epoch 2 on, the rate is the new length's at the same step
    schedule = budget.sized_config(asked, epochs).schedule
    factor = optim.lr_factor(schedule, epochs * 23, 0)
    assert float(rows[1]["lr"]) == pytest.approx(asked.optim.lr * factor(0))
    assert [float(r["lr"]) for r in rows[2:]] == pytest.approx(
        [asked.optim.lr * factor(23 * e) for e in range(1, epochs)]
    )


def _warmup_4_of_8_sized_to_2() -> list[str]:
    """A warmup-cosine run of 8 epochs, 4 of them warmup, whose budget fits 2."""
    warmup = ["schedule.name=warmup-cosine", "schedule.interval=epoch", "schedule.warmup_epochs=4"]
    return [*TINY, "train.epochs=8", f"train.time_budget={_fitting(2)}", *warmup, "optim.lr=0.01"]


def test_a_warmup_planned_again_keeps_its_share(tmp_path, monkeypatch):
    """A warmup of 4 epochs out of 8, sized to 2 (1 epoch of warmup) then planned again to
    4, is 2 epochs from there on: the peak comes after epoch 2, as in a run told 4."""
    _fake_clock(monkeypatch, epoch_s=EPOCH_S / 2)
    overrides = _warmup_4_of_8_sized_to_2()
    asked = build_config("fashion-fast", overrides)
    path, summary = run(asked, tmp_path, "cpu", quiet=True)
    recorded = json.loads((path / "config.json").read_text())
    assert summary["epochs_done"] == 4 and summary["time_budget"]["planned_epochs"] == 2
    assert recorded["schedule"]["warmup_epochs"] == 2.0
    first = optim.lr_factor(budget.sized_config(asked, 2).schedule, 2, 1)
    then = optim.lr_factor(budget.sized_config(asked, 4).schedule, 4, 2)
    lrs = [float(row["lr"]) for row in read_csv(path / "metrics.csv")[1:]]
    assert lrs == pytest.approx([0.01 * first(0)] + [0.01 * then(t) for t in (1, 2, 3)])
    # epoch 1 at (0 + 1) / (1 + 1) of the rate, then 2/3 of it, the peak at epoch 3
    assert lrs[:3] == pytest.approx([0.005, 0.01 * 2 / 3, 0.01])


@pytest.mark.parametrize("at", [2, 4])
def test_resume_goes_on_to_the_count_planned_again(tmp_path, monkeypatch, at):
    """Cut before the second epoch (the checkpoint just after the new plan) or later:
    config.json holds the new count, so the resumed run ends where an uninterrupted one
    does, with the same schedule and numbers, and plans nothing again."""
    _fake_clock(monkeypatch, epoch_s=EPOCH_S / 2)
    overrides = [*TINY, "train.epochs=8", f"train.time_budget={_fitting(3)}"]
    full, planned = run(build_config("fashion-fast", overrides), tmp_path / "a", "cpu", quiet=True)
    assert planned["epochs_done"] == 6

    real_epoch = interrupt_at_epoch(monkeypatch, at=at)
    with pytest.raises(KeyboardInterrupt):
        run(build_config("fashion-fast", overrides), tmp_path / "b", "cpu", quiet=True)
    monkeypatch.setattr(loop, "epoch", real_epoch)
    timed = _fake_clock(monkeypatch, epoch_s=EPOCH_S / 4)  # planned again, it would grow
    (cut,) = (tmp_path / "b").glob("fashion-fast-*")
    assert json.loads((cut / "config.json").read_text())["train"]["epochs"] == 6
    _, summary = resume(cut, "cpu", quiet=True)
    assert timed == [] and summary["status"] == "completed" and summary["epochs_done"] == 6
    assert summary["time_budget"] == planned["time_budget"]
    assert _metrics(cut) == _metrics(full)


def test_no_plan_again_without_a_budget(tmp_path, monkeypatch):
    """An unsized run trains its train.epochs however long its first epoch took."""
    measured_epochs(monkeypatch, 1000.0, 1000.0)
    cfg = build_config("fashion-fast", [*TINY, "train.epochs=3", "train.time_budget=0"])
    path, summary = run(cfg, tmp_path, "cpu", quiet=True)
    assert summary["epochs_done"] == 3 and "time_budget" not in summary
    assert json.loads((path / "config.json").read_text()) == cfg.to_dict()


@pytest.mark.parametrize(
    "overrides, says",
    [
        (["train.time_budget=-5"], "train.time_budget is seconds"),
        (["model.variant=manual", "train.time_budget=60"], "times an optimizer's steps"),
        (["train.compile=true", "train.time_budget=60"], "cannot foresee torch.compile"),
    ],
)
def test_a_budget_that_cannot_apply_is_refused(overrides, says):
    with pytest.raises(UserError, match=says):
        build_config("1ab-circles", overrides)


@pytest.mark.parametrize(
    "record",
    [
        None,
        "3 epochs",
        {"seconds": 60, "asked_epochs": 6, "epochs": 3},  # keys missing
        {key: True for key in budget.RECORD_KEYS},  # booleans are not counts
        {**{key: 1 for key in budget.RECORD_KEYS}, "epochs": "3"},
        {**{key: 1 for key in budget.RECORD_KEYS}, "first_epoch_s": 2.5},  # half a re-plan
        {**{key: 1 for key in budget.RECORD_KEYS + budget.REPLAN_KEYS}, "planned_epochs": None},
    ],
)
def test_a_damaged_record_is_not_kept(record):
    assert budget.checked_record(record) is None


@pytest.mark.parametrize("keys", [budget.RECORD_KEYS, budget.RECORD_KEYS + budget.REPLAN_KEYS])
def test_a_whole_record_is_kept_to_its_keys(keys):
    """A record planned again after the first epoch, or one from before runs were."""
    record = {**{key: 2 for key in keys}, "note": "<script>"}
    assert budget.checked_record(record) == {key: 2 for key in keys}


def test_a_sweep_trains_its_points_unsized_unless_asked(tmp_path, monkeypatch):
    """Sized one by one, a group's points would differ in length; a budget the user
    gives sizes each of them."""
    timed = _fake_clock(monkeypatch)
    unsized = run_sweep(
        "fashion-fast",
        ["train.label_smoothing=0,0.1", *TINY, "train.epochs=2"],
        out=tmp_path,
        device="cpu",
        quiet=True,
    )
    assert timed == []
    assert [r["epochs_done"] for r in read_csv(unsized / "sweep.csv")] == ["2", "2"]
    grid = [
        "train.label_smoothing=0,0.1",
        *TINY,
        "train.epochs=4",
        f"train.time_budget={_fitting(1)}",
    ]
    sized = run_sweep("fashion-fast", grid, out=tmp_path, device="cpu", quiet=True)
    assert timed and [r["epochs_done"] for r in read_csv(sized / "sweep.csv")] == ["1", "1"]


def test_the_cli_refuses_a_bad_budget_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tinyvision", "run", "fashion-fast", "train.time_budget=soon"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "time_budget" in result.stderr


def test_a_sized_warmup_keeps_its_share_and_reaches_the_peak(tmp_path, monkeypatch):
    """A warmup of 4 epochs out of 8, sized to 2 epochs, becomes 1 epoch: the learning rate
    peaks in the shortened run (left at 4, it would still be climbing when the run ends)."""
    _fake_clock(monkeypatch)
    overrides = _warmup_4_of_8_sized_to_2()
    path, summary = run(build_config("fashion-fast", overrides), tmp_path, "cpu", quiet=True)
    recorded = json.loads((path / "config.json").read_text())
    assert summary["epochs_done"] == 2 and recorded["train"]["epochs"] == 2
    assert recorded["schedule"]["warmup_epochs"] == 1.0
    # epoch 1 climbs to (0 + 1) / (1 + 1) of the rate, epoch 2 starts the cosine at its peak
    # (row 0 is the evaluation before training)
    assert [float(row["lr"]) for row in read_csv(path / "metrics.csv")[1:]] == pytest.approx(
        [0.005, 0.01]
    )
