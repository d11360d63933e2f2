"""train.threads: 0 times a few steps at 1 and at all threads and keeps the faster; N forces N."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from tinyvision.config import apply_overrides
from tinyvision.errors import UserError
from tinyvision.experiment.runner import run
from tinyvision.presets import build_config
from tinyvision.train import threads
from tinyvision.train.loop import Learner

pytestmark = pytest.mark.thread_probe

TINY = [
    "data.name=digits",
    "data.train_subset=128",
    "data.test_subset=64",
    "train.epochs=1",
    "train.batch_size=32",
    "train.amp=none",
    "train.channels_last=false",
]


@pytest.fixture(autouse=True)
def _torch_threads_restored(monkeypatch):
    """Each test starts with 2 threads available and leaves torch's count as it found it."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "_available", None)
    monkeypatch.setattr(threads, "_applied", None)
    yield
    torch.set_num_threads(before)


def _timer(seconds_at: dict[int, float], calls: list[int]):
    """Runs the step (the probe's code is exercised), reports a made-up time per count."""

    def timer(_candidate, step) -> float:
        step()
        calls.append(torch.get_num_threads())
        return seconds_at[torch.get_num_threads()]

    return timer


def _choose(seconds_at: dict[int, float], calls: list[int], **kwargs) -> threads.Threads:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    return threads.choose(
        kwargs.pop("forced", 0),
        model,
        lambda params: torch.optim.SGD(params, lr=0.1),
        (1, 8, 8),
        16,
        10,
        kwargs.pop("device", torch.device("cpu")),
        timer=_timer(seconds_at, calls),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("seconds_at", "count"),
    [
        ({1: 0.01, 2: 0.05}, 1),  # a busy machine: the second thread waits on the first
        ({1: 0.05, 2: 0.01}, 2),  # an idle one: two threads twice as fast
        ({1: 0.0100, 2: 0.0095}, 1),  # within the margin: the machine's other work comes first
    ],
)
def test_the_faster_count_is_chosen_and_applied(seconds_at, count):
    calls: list[int] = []
    chosen = _choose(seconds_at, calls)
    assert (chosen.count, chosen.source, chosen.available) == (count, "probe", 2)
    assert torch.get_num_threads() == count
    assert sorted(set(calls)) == [1, 2] and len(calls) == 2 * threads.ROUNDS  # interleaved
    assert calls[:2] == [1, 2]
    speeds = chosen.record()["images_per_s"]
    assert speeds == {
        "1": pytest.approx(16 / seconds_at[1]),
        "2": pytest.approx(16 / seconds_at[2]),
    }


def test_a_run_that_chose_one_thread_leaves_the_next_all_of_them():
    _choose({1: 0.01, 2: 0.05}, [])
    assert torch.get_num_threads() == 1
    again = _choose({1: 0.05, 2: 0.01}, [])
    assert (again.count, again.available, torch.get_num_threads()) == (2, 2, 2)


def test_forced_resumed_and_fixed_are_not_timed():
    calls: list[int] = []
    assert (_choose({}, calls, forced=1).count, torch.get_num_threads()) == (1, 1)
    assert _choose({}, calls, forced=3).source == "forced" and torch.get_num_threads() == 3
    torch.set_num_threads(2)
    resumed = _choose({}, calls, resumed=1)
    assert (resumed.count, resumed.source, torch.get_num_threads()) == (1, "resumed", 1)
    fixed = _choose({}, calls, device=torch.device("meta"))  # not a CPU: nothing to time
    assert (fixed.count, fixed.source) == (2, "fixed")
    assert calls == []


def test_a_forced_count_is_recorded_and_applied(tmp_path, monkeypatch):
    """train.threads=N: the run trains on N threads (seen inside its training steps), and
    summary.json says so, with how the count was chosen."""
    seen: list[int] = []
    step = Learner.train_step

    def spying(self, x, y):
        seen.append(torch.get_num_threads())
        return step(self, x, y)

    monkeypatch.setattr(Learner, "train_step", spying)
    for forced in (1, 3):
        seen.clear()
        cfg = build_config("cnn-fashion", [*TINY, f"train.threads={forced}"])
        path, summary = run(cfg, tmp_path, "cpu", quiet=True)
        recorded = json.loads((path / "summary.json").read_text())
        assert recorded["threads"] == forced
        assert recorded["thread_choice"] == {
            "count": forced,
            "source": "forced",
            "available": 2,
            "images_per_s": {},
        }
        assert seen and set(seen) == {forced}
        assert json.loads((path / "config.json").read_text())["train"]["threads"] == forced


def test_auto_records_its_timings(tmp_path):
    path, summary = run(build_config("cnn-fashion", TINY), tmp_path, "cpu", quiet=True)
    choice = summary["thread_choice"]
    assert choice["source"] == "probe" and choice["available"] == 2
    assert set(choice["images_per_s"]) == {"1", "2"}
    assert all(v > 0 for v in choice["images_per_s"].values())
    assert summary["threads"] == choice["count"] in (1, 2)


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_bad_count_is_one_line(value):
    with pytest.raises(UserError, match="train.threads") as caught:
        apply_overrides(build_config("mlp-fashion"), [f"train.threads={value}"]).validate()
    assert "\n" not in str(caught.value)


def test_bad_count_on_the_command_line_exits_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tinyvision", "run", "mlp-fashion", "train.threads=-2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "train.threads" in done.stderr
    assert "Traceback" not in done.stderr
