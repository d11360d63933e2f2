"""`tinyvision grade` and `tinyvision exercises`: a class's notebooks graded in one command,
a broken notebook one row with its reason, never a crash."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from test_exercises import pieces
from test_notebooks import NOTEBOOKS

from tinyvision.check.grade import Row, csv_rows
from tinyvision.check.handout import NAMES
from tinyvision.check.pieces import PIECES

MLP = ["init_params", "forward", "loss_accuracy", "backward", "sgd"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinyvision", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def student(path: Path, replace: dict[str, str] | None = None, extra: str | None = None) -> Path:
    """A completed 1-ab exercise: the solutions' pieces, each followed by its check cell."""
    solutions = pieces(nbformat.read(NOTEBOOKS / "1ab-mlp.ipynb", as_version=4))
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# my practical 1-ab"),
        new_code_cell("import torch\n\nimport tinyvision as tv"),
    ]
    for check in MLP:
        source = (replace or {}).get(check, solutions[check])
        nb.cells.append(new_code_cell(source, metadata={"tinyvision": {"piece": check}}))
        nb.cells.append(new_code_cell(PIECES[check].check_cell()))
    if extra:
        nb.cells.append(new_code_cell(extra))
    nbformat.write(nb, path)
    return path


WRONG_BACKWARD = """\
def backward(params, outputs, Y):
    delta_y = outputs["yhat"] - Y
    delta_h = (delta_y @ params["Wy"]) * (1 - outputs["h"] ** 2)
    return {"Wy": delta_y.T @ outputs["h"], "by": delta_y.sum(0),
            "Wh": delta_h.T @ outputs["X"], "bh": delta_h.sum(0)}"""

RAISING_FORWARD = """\
def forward(params, X):
    htilde = X @ params["W_h"].T  # a key the course does not use
    return htilde, {}"""


def test_grade_a_class(tmp_path):
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    books = [
        student(class_dir / "alice.ipynb"),
        student(class_dir / "bob.ipynb", {"backward": WRONG_BACKWARD}),
        student(class_dir / "carol.ipynb", {"forward": RAISING_FORWARD}, extra="1 / 0"),
        student(class_dir / "dan.ipynb", extra="while True:\n    pass"),
    ]
    (class_dir / "eve.ipynb").write_text("{ not json")
    books.append(class_dir / "eve.ipynb")
    start = time.monotonic()
    result = _cli(
        "grade", *[str(b) for b in books], "--out", "grades.csv", "--timeout", "10", cwd=tmp_path
    )
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert seconds < 60, f"grading five notebooks took {seconds:.0f} s"
    assert "pass rate" in result.stdout and result.stdout.strip().endswith("grades: grades.csv")
    with (tmp_path / "grades.csv").open(newline="") as f:
        rows = {Path(r["notebook"]).stem: r for r in csv.DictReader(f)}
    assert list(rows) == ["alice", "bob", "carol", "dan", "eve"]
    for name in ("alice", "dan"):
        assert [rows[name][c] for c in MLP] == ["passed"] * 5, rows[name]
        assert rows[name]["total"] == "5/5"
    assert rows["dan"]["note"] == "cell 13 ran past 10 s and was stopped"
    assert rows["bob"]["backward"] == "failed" and rows["bob"]["total"] == "4/5"
    assert "not divided by the batch size" in rows["bob"]["backward reason"]
    assert rows["carol"]["forward"] == "failed" and rows["carol"]["total"] == "4/5"
    reason = rows["carol"]["forward reason"]
    assert "raised KeyError" in reason and "'W_h'" in reason
    assert 'line 2 of your cell: htilde = X @ params["W_h"].T' in reason
    assert rows["carol"]["note"] == "cell 13 raised ZeroDivisionError"
    assert [rows["eve"][c] for c in MLP] == ["missing"] * 5
    assert rows["eve"]["total"] == "0/5" and "not a readable notebook" in rows["eve"]["note"]


def test_a_dead_kernel_is_one_row(tmp_path):
    book = student(tmp_path / "crash.ipynb", extra="import os\nos._exit(1)")
    result = _cli("grade", str(book), "--timeout", "20", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with (tmp_path / "grades.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert "the kernel died" in row["note"] and row["total"] == "0/5"
    assert row["forward"] == "missing" and "not graded" in row["forward reason"]


def test_grades_csv_never_holds_a_formula():
    row = Row("=HYPERLINK(x).ipynb", {"forward": ("failed", "-1 is wrong")}, "@cmd")
    _, (line,) = csv_rows([row])
    assert line["notebook"].startswith("'=") and line["forward reason"].startswith("'-")
    assert line["note"] == "'@cmd"


def test_grade_refuses_bad_arguments(tmp_path):
    (tmp_path / "elsewhere.csv").write_text("")
    (tmp_path / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    result = _cli("grade", "x.ipynb", "--out", "link.csv", cwd=tmp_path)
    assert result.returncode == 2 and "symbolic link" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = _cli("grade", "x.ipynb", "--timeout", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--timeout" in result.stderr


def test_exercises_copies_out_and_never_overwrites(tmp_path):
    result = _cli("exercises", "mine", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in NAMES:
        assert (tmp_path / "mine" / name).read_text() == (
            NOTEBOOKS / "exercises" / name
        ).read_text()
    (tmp_path / "mine" / NAMES[0]).write_text("my work")
    result = _cli("exercises", "mine", cwd=tmp_path)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (tmp_path / "mine" / NAMES[0]).read_text() == "my work"
    # a link where a notebook would go is never written through
    other = tmp_path / "other"
    other.mkdir()
    (other / NAMES[1]).symlink_to(tmp_path / "target.ipynb")
    result = _cli("exercises", "other", cwd=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "target.ipynb").exists()
    assert not (other / NAMES[0]).exists()  # nothing half-written
    (tmp_path / "linked").symlink_to(other)
    assert _cli("exercises", "linked", cwd=tmp_path).returncode == 2


def test_without_the_runner_grade_says_what_to_install(monkeypatch):
    import importlib.util

    import pytest

    from tinyvision.check.grade import require_runner
    from tinyvision.errors import UserError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nbclient" else real(name)
    )
    with pytest.raises(UserError, match=r"nbclient missing\): pip install 'tinyvision\[grade\]'"):
        require_runner()
