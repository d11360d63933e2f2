"""Sweeps under faults: Ctrl-C with workers, a killed sweep process, two sweeps at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tinyvision.experiment.folder import read_summary
from tinyvision.groups.executors.local import GRACE_SECONDS

GRID = ["optim.lr=0.01,0.02,0.03", "data.name=digits", "model.hidden=16"]


def _start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tinyvision",
            "sweep",
            "mlp-fashion",
            *GRID,
            *extra,
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def _workers(pid: int) -> list[int]:
    """The sweep's worker processes (not multiprocessing's resource tracker)."""
    return [p for p in _children(pid) if b"spawn_main" in _cmdline(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


def _wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _epochs_started(out: Path) -> bool:
    return any(len(m.read_text().splitlines()) > 2 for m in out.glob("sweep-*/*/metrics.csv"))


def test_ctrl_c_stops_the_workers_and_starts_no_other_point(tmp_path):
    sweep = _start(tmp_path, "train.epochs=300", "--jobs", "2")
    assert _wait(lambda: _epochs_started(tmp_path), 180), sweep.stderr
    workers = [p for p in _children(sweep.pid) if _alive(p)]
    sweep.send_signal(signal.SIGINT)  # to the sweep only, as `kill -INT` would
    start = time.monotonic()
    _, stderr = sweep.communicate(timeout=60)
    assert time.monotonic() - start < 30
    assert sweep.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert _wait(lambda: not any(_alive(p) for p in workers), 10)
    runs = [p for p in tmp_path.glob("sweep-*/*") if p.is_dir()]
    statuses = sorted((read_summary(r) or {}).get("status", "none") for r in runs)
    assert len(runs) <= 2 and set(statuses) <= {"interrupted", "completed"}, statuses


def test_ctrl_c_while_the_workers_start_is_quiet_and_quick(tmp_path):
    """The signal reaches workers still importing Python's modules (seconds of it), where
    a KeyboardInterrupt prints a traceback, or is swallowed and the worker trains on."""
    sweep = _start(tmp_path, "train.epochs=300", "--jobs", "2")
    assert _wait(lambda: len(_workers(sweep.pid)) == 2, 60), "the workers did not start"
    workers = _workers(sweep.pid)
    sweep.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, stderr = sweep.communicate(timeout=60)
    assert sweep.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert time.monotonic() - start < GRACE_SECONDS, "the workers were interrupted, not killed"
    assert _wait(lambda: not any(_alive(p) for p in workers), 10)
    runs = [p for p in tmp_path.glob("sweep-*/*") if p.is_dir()]
    assert {(read_summary(r) or {}).get("status", "none") for r in runs} <= {"interrupted"}


def test_workers_stop_when_the_sweep_is_killed(tmp_path):
    sweep = _start(tmp_path, "train.epochs=300", "--jobs", "2")
    assert _wait(lambda: _epochs_started(tmp_path), 180)
    workers = [p for p in _children(sweep.pid) if _alive(p)]
    assert workers
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait(timeout=30)
    assert _wait(lambda: not any(_alive(p) for p in workers), 30), "workers left behind"
    for run in (p for p in tmp_path.glob("sweep-*/*") if (p / "metrics.csv").is_file()):
        assert (read_summary(run) or {}).get("status") == "interrupted"


def test_two_identical_sweeps_share_the_points(tmp_path):
    first, second = _start(tmp_path, "train.epochs=3"), _start(tmp_path, "train.epochs=3")
    for sweep in (first, second):
        _, stderr = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, stderr
    runs = sorted(p for p in tmp_path.glob("sweep-*/*") if p.is_dir())
    assert len(runs) == 3
    for run in runs:
        assert read_summary(run)["status"] == "completed"
        # trained once: the header, epoch 0 (before training), epochs 1-3
        assert len((run / "metrics.csv").read_text().splitlines()) == 5
