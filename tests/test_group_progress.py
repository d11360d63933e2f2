"""Sweeps, studies and searches say when each run starts and ends; a live table on a terminal."""

from __future__ import annotations

import io
import re

import pytest

from tinyvision.groups.progress import GroupProgress
from tinyvision.groups.sweep import run_sweep

GRID = ["optim.lr=0.05,0.1", "data.name=digits", "train.epochs=1", "train.batch_size=128"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_sweep_says_each_run_starts_then_ends(tmp_path, capsys, jobs):
    run_sweep("mlp-fashion", GRID, jobs=jobs, out=tmp_path, device="cpu")
    lines = capsys.readouterr().out.splitlines()
    for lr in ("0.05", "0.1"):
        name = f"lr={lr} seed 0"
        starts = [i for i, line in enumerate(lines) if line.startswith(f"  started {name} (")]
        ends = [
            i for i, line in enumerate(lines) if re.match(rf"  \[\d/2\] {name}: completed", line)
        ]
        assert len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0], lines
    assert "queued)" in "\n".join(lines)


def test_quiet_says_nothing(tmp_path, capsys):
    run_sweep("mlp-fashion", GRID, out=tmp_path, device="cpu", quiet=True)
    assert capsys.readouterr().out == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_table_of_the_runs_stays_below_the_lines(tmp_path):
    screen = Terminal()
    runs = {"lr=0.1 seed 0": tmp_path / "a", "lr=0.5 seed 0": tmp_path / "b"}
    with GroupProgress(runs, stream=screen) as progress:
        progress.started("lr=0.1 seed 0")
        table = screen.getvalue()
        assert re.search(r"lr=0\.1 seed 0\s+running", table)
        assert re.search(r"lr=0\.5 seed 0\s+queued", table)
        progress.ended("lr=0.1 seed 0", "  [1/2] lr=0.1 seed 0: completed", "completed")
    shown = screen.getvalue()
    assert "  started lr=0.1 seed 0 (1 running, 1 queued)" in shown
    assert "  [1/2] lr=0.1 seed 0: completed" in shown
    assert re.search(r"lr=0\.1 seed 0\s+completed", shown)


def test_not_on_a_terminal_plain_lines_only(tmp_path):
    stream = io.StringIO()
    with GroupProgress({"trial 0": tmp_path / "t0"}, stream=stream) as progress:
        progress.ended("trial 0", "  trial 0 [1]: completed", "completed")
    assert stream.getvalue() == (
        "  started trial 0 (1 running, 0 queued)\n  trial 0 [1]: completed\n"
    )


def test_ctrl_c_on_a_sweep_says_to_rerun_the_sweep(monkeypatch, capsys):
    from tinyvision import commands
    from tinyvision.cli import main

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "sweep", interrupted)
    assert main(["sweep", "mlp-fashion", "optim.lr=0.1,0.2", "--jobs", "2"]) == 130
    err = capsys.readouterr().err
    assert "rerun `tinyvision sweep mlp-fashion optim.lr=0.1,0.2 --jobs 2`" in err
    assert "tinyvision resume" not in err
    monkeypatch.setattr(commands, "run", interrupted)
    assert main(["run", "mlp-fashion"]) == 130
    assert "`tinyvision resume RUN` continues a run" in capsys.readouterr().err


def test_the_tours_bar_on_a_terminal_and_its_estimate():
    from tinyvision.tour_progress import Step, TourProgress

    now = iter([0.0, 30.0, 60.0, 90.0])
    screen = Terminal()
    steps = [Step("1-cd", "baseline", 1.0), Step("1-cd", "+ standardize", 1.0)]
    steps.append(Step("report", "the lab report", 2.0))
    with TourProgress(steps, stream=screen, clock=lambda: next(now)) as progress:
        progress.start("1-cd", "baseline")
        progress.start("1-cd", "+ standardize")  # 30 s for 1 of 4: 90 s left
        assert "about 1m30s left" in screen.getvalue()
        progress.study_names[("report", "x")] = "the lab report"
        progress.study_step("report", "step=x seed 0")
        progress.finish()
    shown = screen.getvalue()
    for line in ("1-cd step 1/2: baseline", "1-cd step 2/2: + standardize"):
        assert line in shown
    assert "report step 1/1: the lab report" in shown and "done in" in shown


def test_a_large_group_shows_its_running_and_latest_runs(tmp_path):
    from tinyvision.groups.progress import MAX_ROWS

    screen = Terminal()
    names = [f"step {i} seed 0" for i in range(MAX_ROWS + 8)]
    with GroupProgress({n: tmp_path / n for n in names}, stream=screen) as progress:
        for name in names[: MAX_ROWS + 2]:
            progress.ended(name, f"  {name}: completed", "completed")
        progress.started(names[MAX_ROWS + 2])
        table = progress._table()
    assert table.row_count == MAX_ROWS + 1  # the rows shown, and the count of the others
    shown = [cell for cell in table.columns[0]._cells]
    assert names[MAX_ROWS + 2] in shown  # the running one
    assert names[0] not in shown and names[MAX_ROWS + 1] in shown  # the latest ended
    assert shown[-1] == "... 8 more (5 queued)"  # 3 ended earlier, 5 queued
