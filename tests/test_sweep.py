"""Sweeps: the grid in parallel processes, index rows for every run, nothing trained twice."""

from __future__ import annotations

from pathlib import Path

from tinyvision.experiment import index
from tinyvision.groups.sweep import run_sweep
from tinyvision.io import read_csv

GRID = ["optim.lr=0.01,0.05,0.1"]
FIXED = ["data.name=digits", "train.epochs=2", "train.batch_size=128"]


def test_sweep_jobs_seeds_and_rerun(tmp_path, capsys):
    folder = run_sweep(
        "mlp-fashion", [*GRID, *FIXED], seeds=2, jobs=2, out=tmp_path, device="cpu", quiet=False
    )
    rows = read_csv(folder / "sweep.csv")
    assert len(rows) == 6
    assert sorted({r["optim.lr"] for r in rows}) == ["0.01", "0.05", "0.1"]
    assert all(r["status"] == "completed" for r in rows)
    assert float(rows[0]["final_test_acc_std"]) >= 0 and rows[0]["final_test_acc_mean"]
    assert (folder / "comparison.png").stat().st_size > 10_000
    recorded = index.rows(tmp_path)
    assert len(recorded) == 6 and {r["sweep"] for r in recorded} == {folder.name}
    assert all(r["status"] == "completed" for r in recorded)

    capsys.readouterr()
    again = run_sweep(
        "mlp-fashion", [*GRID, *FIXED], seeds=2, jobs=2, out=tmp_path, device="cpu", quiet=False
    )
    assert again == folder
    assert "(6 already done)" in capsys.readouterr().out
    assert len(index.rows(tmp_path)) == 6


def test_the_cli_and_the_api_run_the_same_sweep(tmp_path, capsys):
    """One path: `tinyvision sweep` and `tv.sweep` give the same folder and the same records
    (timings aside), with the data folder passed as an argument, not through the environment."""
    import os

    import tinyvision as tv
    from tinyvision.cli import main
    from tinyvision.records_read import read_json_object

    words = ["optim.lr=0.01,0.05", "data.name=digits", "train.epochs=1", "train.batch_size=128"]
    data = os.environ.get("TINYVISION_DATA")
    argv = ["sweep", "mlp-fashion", *words, "--out", str(tmp_path / "cli"), "--device", "cpu"]
    assert main([*argv, "--quiet", "--data-dir", str(tmp_path / "data")]) == 0
    assert os.environ.get("TINYVISION_DATA") == data, "--data-dir changed the environment"
    cli = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("sweep: "))
    api = tv.sweep("mlp-fashion", words, out=tmp_path / "api", device="cpu", quiet=True).path
    assert cli.name == api.name and cli.is_dir()
    timing = {"seconds", "epoch_seconds", "images_per_second"}

    def table(path):
        return [{k: v for k, v in r.items() if k not in timing} for r in read_csv(path)]

    assert table(cli / "sweep.csv") == table(api / "sweep.csv")
    assert read_json_object(cli / "sweep.json") == read_json_object(api / "sweep.json")
    runs = sorted(p.name for p in api.iterdir() if p.is_dir())
    assert len(runs) == 2 and runs == sorted(p.name for p in cli.iterdir() if p.is_dir())
    for name in runs:
        assert read_json_object(cli / name / "config.json") == read_json_object(
            api / name / "config.json"
        )
        assert table(cli / name / "metrics.csv") == table(api / name / "metrics.csv")


def test_finished_points_are_not_run_again(tmp_path, monkeypatch, capsys):
    """One FINISHED set: completed, diverged and pruned points are skipped; interrupted and
    failed ones are run (resumed) again."""
    from tinyvision import io
    from tinyvision.experiment.status import EXIT_CODES, FINISHED
    from tinyvision.groups import sweep

    assert FINISHED == {"completed", "diverged", "pruned"}
    assert EXIT_CODES == {
        "completed": 0,
        "diverged": 3,
        "pruned": 0,
        "interrupted": 130,
        "failed": 1,
    }
    handed: list[list] = []
    monkeypatch.setattr(sweep, "execute_points", lambda todo, *rest: handed.append(todo))
    grid = ["optim.lr=0.01,0.02,0.03,0.04,0.05", "data.name=digits"]
    sweep.run_sweep("mlp-fashion", grid, out=tmp_path, quiet=True)
    points = handed[0]
    statuses = ["completed", "diverged", "pruned", "interrupted", "failed"]
    for point, status in zip(points, statuses):
        point.run_dir.mkdir()
        io.write_json(point.run_dir / "summary.json", {"status": status})
    sweep.run_sweep("mlp-fashion", grid, out=tmp_path)
    assert [p.values for p in handed[1]] == [p.values for p in points[3:]]
    assert "5 runs (3 already done)" in capsys.readouterr().out


def test_a_sweep_reads_its_runs_records_as_untrusted(tmp_path):
    """metrics.csv and config.json through records_read: a link is never followed, a cell
    that is not a number or a cut file counts as no curve, not as a crash."""
    import json

    from tinyvision.groups.points import Point
    from tinyvision.groups.sweep import _config_lr, metrics_rows

    run = tmp_path / "run"
    run.mkdir()
    point = Point("mlp-fashion", {}, [], 0, run_dir=run)
    header = "epoch,train_loss,train_acc,test_loss,test_acc,lr\n"
    (run / "metrics.csv").write_text(header + "1,0.5,80,0.6,75,0.1\n")
    (run / "config.json").write_text(json.dumps({"optim": {"lr": 0.1}}))
    assert len(metrics_rows(point)) == 1 and _config_lr(point) == 0.1
    (run / "metrics.csv").write_text(header + "1,0.5,80,0.6,nan?,0.1\n")
    assert metrics_rows(point) == []
    (run / "metrics.csv").write_text(header + "1,0.5,80\n")
    assert metrics_rows(point) == []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "metrics.csv").write_text(header + "1,0.5,80,0.6,75,0.1\n")
    (elsewhere / "config.json").write_text(json.dumps({"optim": {"lr": 0.1}}))
    for name in ("metrics.csv", "config.json"):
        (run / name).unlink()
        (run / name).symlink_to(elsewhere / name)
    assert metrics_rows(point) == [] and _config_lr(point) is None
