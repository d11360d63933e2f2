"""Sweeps: the grid in parallel processes, index rows for every run, nothing trained twice."""

from __future__ import annotations

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
