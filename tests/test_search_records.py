"""A search's records agree with what ran: folders, journal, sampler, seed.

Started again with its journal moved away, a search never lets a trial stand on a run
folder that trained other values; a torn journal resumes; a bad sampler seed leaves
nothing behind; a diverged trial is no result; a search started again does not propose
its finished values again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyvision.cli import main
from tinyvision.experiment.folder import read_summary
from tinyvision.groups.search import JOURNAL, run_search
from tinyvision.io import read_csv

from conftest import one_line_error

optuna = pytest.importorskip("optuna", reason="Optuna is not installed (pip install -e '.[dev]')")

PRESET = "1ab-circles-optim"
SPACE = ["optim.lr=log:1e-3:1", "train.epochs=1"]


def _trials(folder: Path) -> list:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / JOURNAL))
    )
    return optuna.load_study(study_name="search", storage=storage).get_trials()


def _search(out: Path, trials: int, *words: str, seed: int = 0) -> Path:
    return run_search(
        PRESET, [*SPACE, *words], trials, out=out, device="cpu", quiet=True, seed=seed
    )


def _rows_match_their_folders(folder: Path) -> list[dict]:
    """Every search.csv row names a folder whose config trained the row's value."""
    rows = read_csv(folder / "search.csv")
    for row in rows:
        if row["run"]:
            config = json.loads((folder / row["run"] / "config.json").read_text())
            assert config["optim"]["lr"] == float(row["optim.lr"]), (row, config["optim"])
            summary = read_summary(folder / row["run"])
            if row["value"]:
                assert float(row["value"]) == summary["final"]["test_acc"]
    best = folder / "best.json"
    if best.exists():
        recipe = json.loads(best.read_text())
        config = json.loads((folder / recipe["run"] / "config.json").read_text())
        assert f"optim.lr={config['optim']['lr']!r}" in recipe["overrides"]
        assert read_summary(folder / recipe["run"])["status"] == "completed"
    return rows


def test_a_restarted_search_never_reuses_a_folder_of_other_values(tmp_path):
    folder = _search(tmp_path, 2)
    _rows_match_their_folders(folder)
    # Another study's trial 0 trained other values into trial-000 (as a search started
    # with its journal moved away, on other values, would leave it).
    (folder / JOURNAL).rename(tmp_path / "moved.journal")
    config_path = folder / "trial-000" / "config.json"
    config = json.loads(config_path.read_text())
    config["optim"]["lr"] = 0.0229
    config_path.write_text(json.dumps(config))
    kept = {p: p.read_bytes() for p in (folder / "trial-000").iterdir() if p.is_file()}

    _search(tmp_path, 2)

    rows = _rows_match_their_folders(folder)
    assert [r["run"] for r in rows] == ["trial-000-2", "trial-001"]
    assert float(rows[0]["optim.lr"]) != 0.0229
    assert {p: p.read_bytes() for p in kept} == kept, "the other values' folder was changed"
    assert json.loads((folder / "best.json").read_text())["run"] in ("trial-000-2", "trial-001")


def test_results_never_name_a_folder_that_trained_other_values(tmp_path):
    """The same guard where records are written from the journal (search.csv, best.json)."""
    folder = _search(tmp_path, 2)
    for run in ("trial-000", "trial-001"):
        path = folder / run / "config.json"
        config = json.loads(path.read_text())
        config["optim"]["lr"] = 0.5
        path.write_text(json.dumps(config))
    _search(tmp_path, 2)  # nothing left to run: the records are rewritten
    rows = read_csv(folder / "search.csv")
    assert [r["run"] for r in rows] == ["", ""]
    assert not (folder / "best.json").exists(), "best.json names a folder of other values"


def test_a_journal_with_a_torn_last_record_resumes(tmp_path, capsys):
    folder = _search(tmp_path, 1)
    journal = folder / JOURNAL
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 5, "worker_id": "ab')  # a crash mid-append

    code = main(
        ["search", PRESET, *SPACE, "--trials", "2", "--quiet", "--device", "cpu"]
        + ["--out", str(tmp_path)]
    )

    err = capsys.readouterr().err
    assert code == 0, err
    (line,) = err.strip().splitlines()
    assert "torn last record" in line and "Traceback" not in err
    assert journal.read_bytes().startswith(whole)
    assert [t.state.name for t in _trials(folder)] == ["COMPLETE", "COMPLETE"]
    _rows_match_their_folders(folder)


def test_a_journal_cut_in_half_resumes_from_its_whole_records(tmp_path, capsys):
    folder = _search(tmp_path, 2)
    journal = folder / JOURNAL
    data = journal.read_bytes()
    journal.write_bytes(data[: len(data) // 2])
    whole = data[: data[: len(data) // 2].rfind(b"\n") + 1]

    code = main(
        ["search", PRESET, *SPACE, "--trials", "2", "--quiet", "--device", "cpu"]
        + ["--out", str(tmp_path)]
    )

    err = capsys.readouterr().err
    assert code == 0, err
    assert "torn last record" in err and "Traceback" not in err
    assert journal.read_bytes().startswith(whole)
    _rows_match_their_folders(folder)


def test_a_journal_damaged_before_its_end_is_one_line(tmp_path, capsys):
    folder = _search(tmp_path, 1)
    journal = folder / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    lines.insert(1, b'{"op_code": 4, "wor\n')
    journal.write_bytes(b"".join(lines))
    before = journal.read_bytes()

    code = main(["search", PRESET, *SPACE, "--trials", "2", "--quiet", "--out", str(tmp_path)])

    one_line_error(code, capsys.readouterr().err, "optuna.journal", "record 2", "damaged", "move")
    assert journal.read_bytes() == before


@pytest.mark.parametrize("seed", ["-5", str(2**32)])
def test_a_bad_sampler_seed_is_one_line_and_leaves_no_folder(tmp_path, capsys, seed):
    out = tmp_path / "out"
    code = main(
        ["search", PRESET, *SPACE, "--trials", "1", "--sampler-seed", seed, "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "sampler-seed" in err
    assert not out.exists() or not list(out.iterdir())


def test_diverged_trials_are_failed_and_never_best(tmp_path):
    words = ["data.name=digits", "model.hidden=32", "data.normalize=none", "train.epochs=2"]
    folder = run_search(
        "mlp-fashion",
        ["optim.lr=choice:1e12,1e13", *words],
        2,
        out=tmp_path,
        device="cpu",
        quiet=True,
    )
    rows = read_csv(folder / "search.csv")
    assert [r["status"] for r in rows] == ["diverged", "diverged"]
    assert [r["state"] for r in rows] == ["fail", "fail"]
    assert not (folder / "best.json").exists()
    assert {t.state.name for t in _trials(folder)} == {"FAIL"}


def test_a_search_started_again_does_not_propose_its_values_again(tmp_path):
    first = _search(tmp_path, 3)
    again = _search(tmp_path, 6)
    assert again == first
    values = [t.params["optim.lr"] for t in _trials(first)]
    assert len(values) == 6 and len(set(values)) == 6, values
    _rows_match_their_folders(first)


def test_two_drivers_on_one_study_draw_different_values(tmp_path):
    """Two identical searches at once: each trial's values are drawn from its own number."""
    from tinyvision.groups.points import Options
    from tinyvision.groups.search import Search, open_study, parse_space

    spaces, fixed = parse_space(SPACE)
    folder = tmp_path / "search"
    folder.mkdir()
    options = Options(out=tmp_path, device="cpu", quiet=True)
    drivers = [
        Search(
            optuna,
            open_study(optuna, folder, 0, None),
            PRESET,
            spaces,
            fixed,
            folder,
            options,
            None,
        )
        for _ in range(2)
    ]
    points = [drivers[i % 2]._ask() for i in range(4)]  # interleaved, as at once
    values = [p.values["optim.lr"] for p in points]
    assert len(set(values)) == 4, values
    assert [p.trial for p in points] == [0, 1, 2, 3]
    assert len({p.run_dir for p in points}) == 4
