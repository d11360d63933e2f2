"""tinyvision search: Optuna's TPE over config keys, pruning, best.json, continuing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyvision.cli import main
from tinyvision.errors import UserError
from tinyvision.experiment.folder import read_summary
from tinyvision.groups.search import Space, parse_space, run_search
from tinyvision.io import read_csv
from tinyvision.report.html import write_report

optuna = pytest.importorskip("optuna", reason="Optuna is not installed (pip install -e '.[dev]')")

SPACE = ["optim.lr=log:1e-3:1", "train.epochs=8"]


def _journal_trials(folder: Path) -> list:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "optuna.journal"))
    )
    return optuna.load_study(study_name="search", storage=storage).get_trials()


def test_a_pruned_search_writes_its_table_figures_and_a_runnable_best(tmp_path, capsys):
    folder = run_search("1ab-circles-optim", SPACE, 6, prune="median", out=tmp_path, device="cpu")
    out = capsys.readouterr().out
    for n in range(6):  # each trial's start, then its end, on lines of their own
        start, end = out.index(f"  started trial {n} ("), out.index(f"  trial {n} [")
        assert start < end
    rows = read_csv(folder / "search.csv")
    assert [int(r["trial"]) for r in rows] == list(range(6))
    pruned = [r for r in rows if r["state"] == "pruned"]
    assert pruned, "no trial was pruned"
    for r in pruned:  # a pruned trial is a run that ended early with status `pruned`
        summary = read_summary(folder / r["run"])
        assert summary["status"] == "pruned" and 2 <= summary["epochs_done"] < 8
    lrs = [float(r["optim.lr"]) for r in rows]
    assert all(1e-3 <= lr <= 1 for lr in lrs) and len(set(lrs)) == 6
    for name in ("history.png", "parameters.png", "comparison.png"):
        assert (folder / name).stat().st_size > 5_000
    best = json.loads((folder / "best.json").read_text())
    complete = [r for r in rows if r["state"] == "complete"]
    top = max(complete, key=lambda r: float(r["value"]))
    assert best["trial"] == int(top["trial"]) and best["final_test_acc"] == float(top["value"])

    html = write_report([folder], tmp_path / "report", warn=lambda line: None).read_text()
    assert "search of 1ab-circles-optim" in html and "history.png" in html
    assert html.count("<tr>") >= 7 and "pruned" in html  # a row per trial

    capsys.readouterr()
    code = main(["run", str(folder / "best.json"), "--out", str(tmp_path / "again"), "--quiet"])
    assert code == 0
    (again,) = [p for p in (tmp_path / "again").iterdir() if p.is_dir()]
    # the same config on the CPU: the best trial's accuracy, exactly
    assert read_summary(again)["final"]["test_acc"] == float(top["value"])


def test_a_search_started_again_keeps_its_trials_and_adds_to_them(tmp_path):
    first = run_search("1ab-circles-optim", SPACE, 3, out=tmp_path, device="cpu", quiet=True)
    before = read_csv(first / "search.csv")
    stamps = {p: p.stat().st_mtime_ns for p in first.glob("trial-*/metrics.csv")}
    again = run_search("1ab-circles-optim", SPACE, 5, out=tmp_path, device="cpu", quiet=True)
    assert again == first
    after = read_csv(first / "search.csv")
    assert len(after) == 5 and after[:3] == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing trained twice
    assert len(_journal_trials(first)) == 5


def test_an_interrupted_search_resumes_its_running_trial(tmp_path):
    command = [
        sys.executable,
        "-m",
        "tinyvision",
        "search",
        "1ab-circles-optim",
        "optim.lr=log:1e-2:0.3",
        "train.epochs=60",
        "--trials",
        "2",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    search = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    metrics = None
    while time.monotonic() < deadline and search.poll() is None:
        found = list(tmp_path.glob("search-*/trial-000/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) >= 4:  # epochs 0, 1, 2
            metrics = found[0]
            break
        time.sleep(0.05)
    assert metrics is not None, search.communicate()
    search.send_signal(signal.SIGINT)
    _, stderr = search.communicate(timeout=60)
    assert search.returncode == 130 and "Traceback" not in stderr, stderr
    trial = metrics.parent
    assert read_summary(trial)["status"] == "interrupted"
    [state] = [t.state.name for t in _journal_trials(trial.parent)]
    assert state == "RUNNING"

    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = read_summary(trial)
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] >= 2
    assert [int(r["epoch"]) for r in read_csv(metrics)] == list(range(61))
    # Optuna's public API cannot hand a gone driver's trial object to a new one: the
    # interrupted trial ends failed and a trial of the same values continues its folder.
    trials = _journal_trials(trial.parent)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].user_attrs["continues"] == 0 and trials[1].params == trials[0].params
    assert trials[1].user_attrs["run"] == "trial-000"
    assert trials[1].value == summary["final"]["test_acc"]
    rows = read_csv(trial.parent / "search.csv")
    assert [r["status"] for r in rows] == ["continued as trial 1", "completed", "completed"]
    assert [r["run"] for r in rows] == ["", "trial-000", "trial-002"]


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("optim.lr=log:0:1", "a log space needs LOW > 0"),
        ("optim.lr=log:1e-3", "expected log:LOW:HIGH"),
        ("optim.lr=float:0.5:0.1", "LOW must be a number below HIGH"),
        ("model.hidden=int:1.5:8", "expected int:LOW:HIGH"),
        ("train.batch_size=choice:32", "a choice needs two values or more"),
        ("optim.bogus=float:0:1", "optim.bogus"),
        ("optim.lr=float:-1:0.1", "optim.lr"),  # a bound the config refuses
    ],
)
def test_a_bad_space_is_one_line_before_anything_runs(tmp_path, capsys, word, message):
    code = main(["search", "1ab-circles-optim", word, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("search-*"))


def test_spaces_and_fixed_words_are_told_apart():
    spaces, fixed = parse_space(
        [
            "optim.lr=log:1e-4:1e-1",
            "model.dropout=float:0:0.6",
            "train.batch_size=choice:32,64,128",
            "model.nb_blocks=int:1:8",
            "train.epochs=3",
        ]
    )
    assert fixed == ["train.epochs=3"]
    assert spaces[0] == Space("optim.lr", "log", 1e-4, 1e-1)
    assert spaces[2].choices == ("32", "64", "128")
    assert spaces[3] == Space("model.nb_blocks", "int", 1, 8)
    with pytest.raises(UserError, match="nothing to search"):
        parse_space(["train.epochs=3"])


def test_without_optuna_search_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    code = main(["search", "1ab-circles-optim", *SPACE, "--out", str(tmp_path)])
    assert code == 2 and "pip install 'tinyvision[search]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "recipe",
    ['["not", "an object"]', '{"preset": 3}', '{"preset": "mlp-fashion", "overrides": "x=1"}'],
)
def test_a_bad_recipe_file_is_one_line(tmp_path, capsys, recipe):
    path = tmp_path / "best.json"
    path.write_text(recipe)
    code = main(["run", str(path), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "Traceback" not in err


def test_the_python_api_searches_and_loads_a_search(tmp_path):
    import tinyvision as tv

    found = tv.search(
        "1ab-circles-optim",
        {"optim.lr": "log:1e-3:1"},
        trials=2,
        out=tmp_path,
        quiet=True,
        device="cpu",
        train__epochs=3,
    )
    assert isinstance(found, tv.Search) and list(found.table["trial"]) == [0, 1]
    assert found.best["preset"] == "1ab-circles-optim"
    assert "train.epochs=3" in found.best["overrides"]
    loaded = tv.load(found.path)
    assert isinstance(loaded, tv.Search) and "2 trials, 2 complete" in repr(loaded)
    assert len(loaded.history().axes[0].lines) >= 2
    assert "<table" in loaded._repr_html_()


@pytest.mark.parametrize("damage", ["garbage", "link"])
def test_a_damaged_or_linked_journal_is_one_line(tmp_path, capsys, damage):
    folder = run_search("1ab-circles-optim", SPACE, 1, out=tmp_path, device="cpu", quiet=True)
    journal = folder / "optuna.journal"
    if damage == "garbage":
        journal.write_text('{"op_code": 0, "worker_id": "x"\n\x00\x01 not json\n')
    else:
        journal.unlink()
        journal.symlink_to(tmp_path / "elsewhere.journal")
    code = main(["search", "1ab-circles-optim", *SPACE, "--trials", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "optuna.journal" in err and "Traceback" not in err, err
    assert not (tmp_path / "elsewhere.journal").exists()


def test_a_trial_that_ran_all_its_epochs_is_complete_not_pruned():
    """The pruner may say "prune" after the last epoch: nothing is left to save, and the
    trial's value is a finished run's, so it ends complete."""
    from types import SimpleNamespace

    from tinyvision.groups.search import TrialPruning

    reported: list[tuple[float, int]] = []
    trial = SimpleNamespace(report=lambda v, step: reported.append((v, step)))
    trial.should_prune = lambda: True
    hook = object.__new__(TrialPruning)
    hook.trial = trial
    exp = SimpleNamespace(cfg=SimpleNamespace(train=SimpleNamespace(epochs=3)))
    assert hook.verdict(exp, {"epoch": 2, "test_acc": 50.0}) == "pruned"
    assert hook.verdict(exp, {"epoch": 3, "test_acc": 60.0}) is None
    assert reported == [(50.0, 2), (60.0, 3)]  # the last epoch is still reported
