"""Sweeps on Ray: the same numbers as local, a killed worker resumed, nothing run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tinyvision.cli import main
from tinyvision.errors import UserError
from tinyvision.io import read_csv
from tinyvision.runs import index, ray_executor
from tinyvision.runs.folder import LOCK, read_summary
from tinyvision.runs.sweep import Options, run_sweep

GRID = ["optim.lr=0.02,0.1", "data.name=digits", "model.hidden=32", "train.epochs=2"]
# One Ray instance per test session: under pytest-xdist all of these run in one worker.
pytestmark = pytest.mark.xdist_group("ray")

NUMBERS = ("final_test_acc", "best_test_acc", "final_train_acc", "params")


def _numbers(folder: Path) -> dict:
    return {
        (r["optim.lr"], r["seed"]): [r[k] for k in NUMBERS] for r in read_csv(folder / "sweep.csv")
    }


def test_a_sweep_on_ray_gives_the_local_numbers_and_reruns_nothing(
    ray_instance, tmp_path, capsys, monkeypatch
):
    local = run_sweep("mlp-fashion", GRID, seeds=2, out=tmp_path / "local", device="cpu")
    monkeypatch.chdir(tmp_path)  # --out relative to the driver's folder, as users write it
    on_ray = Options(seeds=2, out=Path("ray"), device="cpu", executor="ray", cpus_per_run=1)
    folder = run_sweep("mlp-fashion", GRID, on_ray)
    assert folder.name == local.name
    assert _numbers(folder) == _numbers(local)
    rows = read_csv(folder / "sweep.csv")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"completed"}
    assert len(index.rows(tmp_path / "ray")) == 4
    assert (folder / "comparison.png").is_file()
    out = capsys.readouterr().out
    assert "[4/4]" in out
    for lr in ("0.02", "0.1"):  # a line as each Ray task starts, before the one as it ends
        for seed in (0, 1):
            name = f"lr={lr} seed {seed}"
            assert out.index(f"  started {name} (") < out.index(f"] {name}: completed")

    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*/metrics.csv")}
    run_sweep("mlp-fashion", GRID, on_ray)
    assert "(4 already done)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*/metrics.csv")} == stamps
    assert not list((tmp_path / "ray").glob(".ray-check-*"))  # the token is cleaned up


def _kill_after_first_epoch(out: Path, killed: list[int]) -> None:
    """SIGKILL the process training the run once its first checkpoint is on disk."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for run in out.glob("sweep-*/*/"):
            metrics = run / "metrics.csv"
            if (run / "checkpoint.pt").is_file() and metrics.is_file():
                if len(metrics.read_text().splitlines()) >= 2:
                    pid = json.loads((run / LOCK).read_text())["pid"]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.02)


def test_a_killed_worker_is_retried_from_its_checkpoint(ray_instance, tmp_path, capsys):
    killed: list[int] = []
    watcher = threading.Thread(target=_kill_after_first_epoch, args=(tmp_path, killed))
    watcher.start()
    grid = ["optim.lr=0.02", "data.name=digits", "model.hidden=32", "train.epochs=150"]
    options = Options(out=tmp_path, device="cpu", executor="ray", cpus_per_run=1)
    folder = run_sweep("mlp-fashion", grid, options)
    watcher.join()
    assert killed, "the worker was never killed"
    out = capsys.readouterr().out
    retried = [line for line in out.splitlines() if "its Ray worker died" in line]
    assert retried == [
        "  all seed 0: its Ray worker died; Ray starts it again (retry 1 of 3), from its "
        "last checkpoint"
    ], out
    assert (folder / "ray.log").is_file()  # Ray's own messages, not the terminal's
    (run,) = [p for p in folder.iterdir() if p.is_dir()]
    summary = read_summary(run)
    assert summary["status"] == "completed"
    assert 1 <= summary["resumed_from_epoch"] < 150  # resumed, not restarted
    epochs = [int(r["epoch"]) for r in read_csv(run / "metrics.csv")]
    assert epochs == list(range(1, 151))  # no epoch recorded twice


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(["sweep", "mlp-fashion", *GRID, "--executor", "ray", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "pip install 'tinyvision[ray]'" in err and "Traceback" not in err
    assert not list(tmp_path.glob("sweep-*/*/"))


def test_ray_flags_need_the_ray_executor(tmp_path, capsys):
    code = main(["sweep", "mlp-fashion", *GRID, "--gpus-per-run", "0.5", "--out", str(tmp_path)])
    assert code == 2
    assert "--gpus-per-run: only with --executor ray" in capsys.readouterr().err


class _ElsewhereRay:
    """A Ray whose workers run on a node that does not mount the driver's --out."""

    class exceptions:  # noqa: N801 - the shape of ray.exceptions
        class GetTimeoutError(Exception):
            pass

    @staticmethod
    def remote(fn):
        class Task:
            def options(self, **_):
                return self

            def remote(self, path):
                return fn(path + ".elsewhere")

        return Task()

    @staticmethod
    def get(value, timeout=None):
        return value


def test_an_out_folder_the_workers_cannot_see_stops_before_anything_runs(tmp_path):
    with pytest.raises(UserError, match="shared filesystem"):
        ray_executor.check_shared_out(_ElsewhereRay, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_search_on_ray_reports_every_epoch_into_the_search_journal(ray_instance, tmp_path):
    optuna = pytest.importorskip("optuna")
    from tinyvision.runs.search import run_search

    options = Options(jobs=2, out=tmp_path, device="cpu", executor="ray", cpus_per_run=1)
    space = ["optim.lr=log:1e-3:1", "train.epochs=6"]
    folder = run_search("1ab-circles-optim", space, 4, options, prune="median")
    rows = read_csv(folder / "search.csv")
    assert len(rows) == 4 and {r["state"] for r in rows} <= {"complete", "pruned"}
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "optuna.journal"))
    )
    for trial in optuna.load_study(study_name="search", storage=storage).get_trials():
        # written by the Ray workers, one value per epoch they trained
        epochs = read_summary(folder / f"trial-{trial.number:03d}")["epochs_done"]
        assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
    assert (folder / "best.json").is_file()


def test_ctrl_c_on_the_driver_records_the_runs_interrupted(ray_instance, tmp_path):
    address = ray_instance.get_runtime_context().gcs_address  # the session's instance
    command = [
        sys.executable,
        "-m",
        "tinyvision",
        "sweep",
        "mlp-fashion",
        "optim.lr=0.01,0.02",
        "data.name=digits",
        "model.hidden=32",
        "train.epochs=3000",
        "--executor",
        "ray",
        "--address",
        address,
        "--cpus-per-run",
        "1",
        "--out",
        str(tmp_path),
    ]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        metrics = list(tmp_path.glob("sweep-*/*/metrics.csv"))
        if len(metrics) == 2 and all(len(m.read_text().splitlines()) > 3 for m in metrics):
            break
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 130 and "Traceback" not in stderr, stderr
    runs = [p for p in tmp_path.glob("sweep-*/*") if p.is_dir()]
    assert len(runs) == 2
    for run in runs:
        summary = read_summary(run)
        assert summary["status"] == "interrupted" and summary["epochs_done"] < 3000


def test_missing_data_is_one_error_on_the_driver_before_any_task(ray_instance, tmp_path):
    options = Options(out=tmp_path, device="cpu", executor="ray", cpus_per_run=1)
    grid = ["optim.lr=0.01,0.1", "train.epochs=1"]  # mlp-fashion: Fashion-MNIST, absent here
    with pytest.raises(UserError, match="fashion-mnist"):
        run_sweep("mlp-fashion", grid, options)
    assert not [p for p in tmp_path.glob("sweep-*/*") if p.is_dir()]  # no run was started


@pytest.mark.parametrize(
    ("address", "message"),
    [("127.0.0.1:1", "no Ray cluster answers there"), ("nowhere", "expected HOST:PORT")],
)
def test_an_address_without_a_cluster_is_one_line_at_once(tmp_path, capsys, address, message):
    pytest.importorskip("ray")
    start = time.monotonic()
    argv = ["sweep", "mlp-fashion", *GRID, "--executor", "ray", "--address", address]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert time.monotonic() - start < 30
