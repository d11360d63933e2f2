"""Sweeps on Ray: the same numbers as local, a killed worker resumed, nothing run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinyvision.cli import main
from tinyvision.errors import UserError
from tinyvision.experiment import index
from tinyvision.experiment.folder import LOCK, read_summary
from tinyvision.groups.executors import ray as ray_executor
from tinyvision.groups.points import Options
from tinyvision.groups.sweep import run_sweep
from tinyvision.io import read_csv

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
    numbers = [[r[k] for k in NUMBERS] for r in read_csv(folder / "sweep.csv")]
    assert numbers == [[r[k] for k in NUMBERS] for r in read_csv(local / "sweep.csv")]
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


def _trainers_past_first_epoch(out: Path) -> Iterator[int]:
    """The pid training a run once its first checkpoint is on disk, looked for again
    every 20 ms for 300 s."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for run in out.glob("sweep-*/*/"):
            metrics = run / "metrics.csv"
            if (run / "checkpoint.pt").is_file() and metrics.is_file():
                if len(metrics.read_text().splitlines()) >= 2:
                    yield json.loads((run / LOCK).read_text())["pid"]
        time.sleep(0.02)


def _kill_after_first_epoch(out: Path, killed: list[int]) -> None:
    """SIGKILL the process training the run once its first checkpoint is on disk."""
    pid = next(_trainers_past_first_epoch(out), None)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)


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
    assert epochs == list(range(151))  # epoch 0 (before training), no epoch recorded twice


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
    from tinyvision.groups.search import run_search

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
    assert list(tmp_path.iterdir()) == [], "a folder was made before the cluster answered"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gpus-per-run", "0.5"], "lower --gpus-per-run"),
        (["--cpus-per-run", "64"], "lower --cpus-per-run"),
    ],
)
def test_resources_no_node_has_are_refused_before_anything_is_submitted(
    ray_instance, tmp_path, capsys, flags, message
):
    start = time.monotonic()
    argv = ["sweep", "mlp-fashion", *GRID, "--executor", "ray", *flags, "--out", str(tmp_path)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message in err and "no node of the Ray cluster has them" in err
    assert time.monotonic() - start < 60
    assert list(tmp_path.iterdir()) == [], "a folder was made for runs that can never start"


class _LostRay:
    """A Ray whose local raylet dies once the tasks are submitted (each had started its run)."""

    class exceptions:  # noqa: N801 - the shape of ray.exceptions
        class RayError(Exception):
            pass

        class LocalRayletDiedError(RayError):
            pass

    cancelled: list = []

    @staticmethod
    def nodes():
        return [{"Alive": True, "Resources": {"CPU": 2.0}}]

    @classmethod
    def remote(cls, fn):
        class Task:
            def options(self, **_):
                return self

            def remote(self, run_point, point, out, device, group, threads):
                from tinyvision.experiment.folder import RunFolder

                folder = RunFolder(point.run_dir, out)  # a run that started, then died
                folder.make()
                cfg = point.config().to_dict()
                folder.write_config(cfg)
                folder.index("running", cfg)
                return object()

        return Task()

    @classmethod
    def wait(cls, refs, num_returns=1, timeout=None):
        raise cls.exceptions.LocalRayletDiedError("the raylet on this node died")

    @classmethod
    def cancel(cls, ref):
        cls.cancelled.append(ref)


def test_a_dead_raylet_is_one_line_and_the_runs_are_recorded_interrupted(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(ray_executor, "connect", lambda options: _LostRay)
    monkeypatch.setattr(ray_executor, "check_shared_out", lambda ray, out: None)
    monkeypatch.setattr(ray_executor, "check_data", lambda points: None)
    argv = ["sweep", "mlp-fashion", *GRID, "--executor", "ray", "--cpus-per-run", "1"]
    code = main([*argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "Ray cluster went away (LocalRayletDiedError); 2 runs recorded interrupted" in err
    assert {r["status"] for r in index.rows(tmp_path)} == {"interrupted"}
    assert len(index.rows(tmp_path)) == 2


def test_waiting_runs_are_explained():
    class Busy:
        @staticmethod
        def available_resources():
            return {"CPU": 0.0}

    note = ray_executor.pending_note(Busy, 3, 2, 0.5)
    assert note.startswith("3 runs waiting for room: each asks for 2 CPUs and 0.5 GPUs")
    assert "free now: 0 CPUs, 0 GPUs" in note


def _ancestors(pid: int) -> list[int]:
    """The process's parents, nearest first (Linux's /proc)."""
    chain = []
    while pid > 1:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        pid = int(fields[1])
        chain.append(pid)
    return chain


def _remove_node_mid_epoch(cluster, out: Path, removed: list) -> None:
    """Once the run's second epoch is under way, remove the node whose worker trains it."""
    for pid in _trainers_past_first_epoch(out):
        parents = set(_ancestors(pid))
        for node in cluster.worker_nodes:
            if node.all_processes["raylet"][0].process.pid in parents:
                cluster.remove_node(node, allow_graceful=False)
                removed.append(node)
                return


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_lost_node_is_retried_on_the_other_from_its_checkpoint(ray_cluster, tmp_path):
    _, cluster = ray_cluster
    grid = ["optim.lr=0.02", "data.name=digits", "model.hidden=32", "train.epochs=150"]
    local = run_sweep("mlp-fashion", grid, out=tmp_path / "local", device="cpu", quiet=True)
    removed: list = []
    out = tmp_path / "ray"
    watcher = threading.Thread(target=_remove_node_mid_epoch, args=(cluster, out, removed))
    watcher.start()
    try:
        options = Options(out=out, device="cpu", executor="ray", cpus_per_run=1, quiet=True)
        folder = run_sweep("mlp-fashion", grid, options)
        watcher.join()
    finally:
        watcher.join()
        if removed:  # the session's cluster keeps its two nodes for the tests after this one
            cluster.add_node(num_cpus=1)
    assert removed, "the node running the point was never removed"
    (run,) = [p for p in folder.iterdir() if p.is_dir()]
    summary = read_summary(run)
    assert summary["status"] == "completed"
    assert 1 <= summary["resumed_from_epoch"] < 150  # resumed on the other node, not restarted
    epochs = [int(r["epoch"]) for r in read_csv(run / "metrics.csv")]
    assert epochs == list(range(151))  # epoch 0 (before training), then none recorded twice
    numbers = [[r[k] for k in NUMBERS] for r in read_csv(folder / "sweep.csv")]
    assert numbers == [[r[k] for k in NUMBERS] for r in read_csv(local / "sweep.csv")]
