"""Planted links and special files where a record is written: refused, never written through.

A run folder or records root is untrusted: a link planted at `index.sqlite`, at one of
SQLite's side files, at a lock file or at `checkpoint.pt` must be refused in one line
(exit 2) by the command that would write through it, leaving the linked-to file as it was.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tinyvision.cli import main
from tinyvision.groups import sweep

from conftest import copy_records, one_line_error

RUN = ["run", "1ab-circles-optim", "train.epochs=1", "--device", "cpu", "--quiet"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under root (not following links): its kind and bytes or target."""
    entries = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            entries[str(p.relative_to(root))] = ("link", str(p.readlink()))
        elif p.is_file():
            entries[str(p.relative_to(root))] = ("file", _digest(p))
        else:
            entries[str(p.relative_to(root))] = ("dir", "")
    return entries


@pytest.fixture
def other_app(tmp_path) -> Path:
    """Another application's SQLite database, in its own (rollback journal) mode."""
    folder = tmp_path / "other-app"
    folder.mkdir()
    path = folder / "app.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("CREATE TABLE accounts (name TEXT, balance INTEGER)")
        conn.execute("INSERT INTO accounts VALUES ('alice', 10)")
    conn.close()
    return path


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_a_linked_index_is_refused_by_the_writer(tmp_path, capsys, other_app, suffix):
    out = tmp_path / "out"
    out.mkdir()
    target = other_app if suffix == "" else other_app.with_name(f"app.sqlite{suffix}")
    if suffix:
        target.write_bytes(b"side file of the other application")
    before = _digest(target), _digest(other_app)
    (out / f"index.sqlite{suffix}").symlink_to(target)

    code = main([*RUN, "--out", str(out)])

    err = capsys.readouterr().err
    one_line_error(code, err, f"index.sqlite{suffix}", "symbolic link")
    assert (_digest(target), _digest(other_app)) == before, "written through the link"
    assert sorted(p.name for p in other_app.parent.iterdir()) == sorted(
        {"app.sqlite", target.name}
    ), "SQLite left -wal/-shm files beside the other application's database"
    assert [p.name for p in out.iterdir()] == [f"index.sqlite{suffix}"], "a run folder was made"


def test_a_linked_index_is_refused_by_a_sweep_before_any_folder(tmp_path, capsys, other_app):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.sqlite").symlink_to(other_app)
    before = _digest(other_app)
    code = main(
        ["sweep", "1ab-circles-optim", "train.epochs=1", "optim.lr=0.1,0.2"]
        + ["--device", "cpu", "--quiet", "--out", str(out)]
    )
    err = capsys.readouterr().err
    one_line_error(code, err, "index.sqlite", "symbolic link")
    assert _digest(other_app) == before
    assert not list(other_app.parent.glob("*-wal")) and not list(other_app.parent.glob("*-shm"))
    assert [p.name for p in out.iterdir()] == ["index.sqlite"], "a sweep folder was made"


def test_an_index_folder_where_the_index_belongs_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "index.sqlite").mkdir(parents=True)
    code = main([*RUN, "--out", str(out)])
    one_line_error(code, capsys.readouterr().err, "index.sqlite", "not a plain file")
    assert [p.name for p in out.iterdir()] == ["index.sqlite"]


def test_out_itself_may_be_a_link_the_user_named(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "named").symlink_to(real)
    assert main([*RUN, "--out", str(tmp_path / "named")]) == 0, capsys.readouterr().err
    assert (real / "index.sqlite").is_file()


@pytest.fixture
def stopped(recorded, tmp_path) -> tuple[Path, Path]:
    """A copy of a recorded run whose summary says it was interrupted: resumable."""
    root, run_dir = copy_records(recorded, tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["status"] = "interrupted"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return root, run_dir


@pytest.mark.parametrize(
    "name", ["checkpoint.pt", ".lock", "config.json", "model.safetensors", "metrics.csv"]
)
def test_resume_refuses_a_linked_record_and_writes_nothing(stopped, tmp_path, capsys, name):
    root, run_dir = stopped
    outside = tmp_path / "outside" / name
    outside.parent.mkdir()
    if (run_dir / name).exists():
        (run_dir / name).rename(outside)
    else:
        outside.write_bytes(b"someone else's file")
    (run_dir / name).symlink_to(outside)
    before, target = _tree(root), _digest(outside)

    code = main(["resume", str(run_dir), "--device", "cpu", "--quiet"])

    err = capsys.readouterr().err
    one_line_error(code, err, name, "symbolic link")
    assert _tree(root) == before, "resume changed the run folder"
    assert _digest(outside) == target, "written through the link"


@pytest.mark.parametrize("name", ["summary.json", "config.json", "checkpoint.pt"])
def test_resume_refuses_a_folder_where_a_record_belongs(stopped, capsys, name):
    root, run_dir = stopped
    (run_dir / name).unlink()
    (run_dir / name).mkdir()
    before = _tree(root)
    code = main(["resume", str(run_dir), "--device", "cpu", "--quiet"])
    one_line_error(code, capsys.readouterr().err, name, "a folder where a record belongs")
    assert _tree(root) == before


def test_a_linked_lock_file_is_one_line_for_a_new_run_too(tmp_path):
    from tinyvision.errors import UserError
    from tinyvision.experiment.folder import RunFolder

    folder = RunFolder(tmp_path / "out" / "run", tmp_path / "out")
    folder.make()
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (folder.path / ".lock").symlink_to(target)
    with pytest.raises(UserError, match="symbolic link where the lock file belongs"):
        with folder.lock():
            pass
    assert target.read_text() == "keep"


def test_a_linked_point_lock_is_one_line(tmp_path):
    from tinyvision.errors import UserError

    point = sweep.Point("1ab-circles-optim", {}, [], 0, run_dir=tmp_path / "point_seed0")
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / ".point_seed0.lock").symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"):
        with sweep.claim(point):
            pass
    assert target.read_text() == "keep"


# --- folders, pipes and devices where a record is expected --------------------------------


@pytest.mark.parametrize("name", ["config.json", "summary.json", "metrics.csv"])
def test_a_folder_in_a_records_place_is_one_line_or_a_skipped_run(stopped, tmp_path, capsys, name):
    root, run_dir = stopped
    (run_dir / name).unlink()
    (run_dir / name).mkdir()
    before = _tree(root)

    code = main(["runs", "show", str(run_dir)])
    one_line_error(code, capsys.readouterr().err, name, "not a plain file (a folder)")

    code = main(["report", str(root), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    if name != "metrics.csv":  # the report reads no metrics.csv: the run stays in it
        (line,) = err.strip().splitlines()
        assert f"{name}: not a plain file (a folder)" in line and "left out" in line
    assert (tmp_path / "rep" / "report.html").is_file()
    assert _tree(root) == before


def test_a_folder_given_as_a_recipe_is_one_line(tmp_path, capsys):
    (tmp_path / "best.json").mkdir()
    code = main(["run", str(tmp_path / "best.json"), "--out", str(tmp_path / "out")])
    one_line_error(code, capsys.readouterr().err, "best.json", "not a plain file (a folder)")
    assert not (tmp_path / "out").exists()


def test_a_fifo_where_a_data_file_belongs_is_named(idx_root, tmp_path, capsys):
    import os

    images = idx_root / "mnist" / "train-images-idx3-ubyte.gz"
    images.unlink()
    os.mkfifo(images)
    code = main(
        ["run", "mlp-fashion", "data.name=mnist", "train.epochs=1", "--out", str(tmp_path / "o")]
    )
    line = one_line_error(code, capsys.readouterr().err, "train-images-idx3-ubyte", "named pipe")
    assert "not found" not in line
    assert not (tmp_path / "o").exists()


def test_a_read_only_out_is_named_read_only_never_to_be_deleted():
    from tinyvision.experiment import index

    error = index._write_error(
        Path("/runs"), sqlite3.OperationalError("attempt to write a readonly database")
    )
    assert (
        "read-only" in str(error)
        and "delete" not in str(error)
        and "move it away" not in str(error)
    )


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_linked_side_file_is_refused_by_the_reader_too(stopped, tmp_path, capsys, suffix):
    root, _ = stopped
    target = tmp_path / f"elsewhere{suffix}"
    target.write_bytes(b"someone else's file")
    (root / f"index.sqlite{suffix}").symlink_to(target)
    code = main(["runs", "ls", "--out", str(root)])
    one_line_error(code, capsys.readouterr().err, f"index.sqlite{suffix}", "symbolic link")
    assert target.read_bytes() == b"someone else's file"
