"""The exercise notebooks: generated from the solution notebooks, shipped in the package,
and run top to bottom both filled in (every check ✔) and left blank (the references)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from test_notebooks import NOTEBOOKS, SCRIPT, execute, outputs
from torch import nn

import tinyvision as tv
from tinyvision.check.pieces import PIECES

from conftest import needs_fashion, needs_mnist_test

EXERCISES = NOTEBOOKS / "exercises"
PACKAGED = Path(tv.__file__).parent / "check" / "exercises"
NAMES = ["1ab-mlp.ipynb", "1cd-cnn.ipynb", "1e-vit.ipynb"]


def pieces(nb: nbformat.NotebookNode) -> dict[str, str]:
    """{check: the cell's source} of the cells marked as pieces."""
    return {
        c.metadata["tinyvision"]["piece"]: c.source
        for c in nb.cells
        if c.get("metadata", {}).get("tinyvision", {}).get("piece")
    }


def test_every_piece_has_a_solution_cell_in_its_notebook():
    found = {}
    for name in NAMES:
        for check in pieces(nbformat.read(NOTEBOOKS / name, as_version=4)):
            found[check] = name
    assert found == {c: f"{p.practical}.ipynb" for c, p in PIECES.items()}


@pytest.mark.parametrize("name", NAMES)
def test_the_solutions_pass_their_checks(name):
    namespace = {"torch": torch, "nn": nn, "F": F, "math": math}
    for check, source in pieces(nbformat.read(NOTEBOOKS / name, as_version=4)).items():
        exec(compile(source, f"<{check}>", "exec"), namespace)
        result = tv.check.run(check, namespace[PIECES[check].name])
        assert result.passed, str(result)


def test_stored_exercises_are_generated_and_packaged(tmp_path):
    copy = tmp_path / "scripts"
    copy.mkdir()
    (copy / SCRIPT.name).write_text(SCRIPT.read_text())
    subprocess.run([sys.executable, str(copy / SCRIPT.name)], check=True, capture_output=True)
    for name in NAMES:
        generated = (tmp_path / "notebooks" / "exercises" / name).read_text()
        assert (EXERCISES / name).read_text() == generated, f"{name}: run make-notebooks.py"
        assert (PACKAGED / name).read_text() == generated, f"{name}: run make-notebooks.py"
        nb = nbformat.read(EXERCISES / name, as_version=4)
        blanks = pieces(nb)
        assert blanks and all(
            s.rstrip().endswith("raise NotImplementedError") for s in blanks.values()
        )
        for i, cell in enumerate(nb.cells):  # each blank is followed by its check
            check = cell.get("metadata", {}).get("tinyvision", {}).get("piece")
            if check:
                assert nb.cells[i + 1].source == PIECES[check].check_cell()


def filled(name: str, tmp_path: Path) -> str:
    """The exercise notebook with the solution notebook's pieces written in."""
    solutions = pieces(nbformat.read(NOTEBOOKS / name, as_version=4))
    nb = nbformat.read(EXERCISES / name, as_version=4)
    for cell in nb.cells:
        check = cell.get("metadata", {}).get("tinyvision", {}).get("piece")
        if check:
            cell.source = solutions[check]
    folder = tmp_path / "filled"
    folder.mkdir()
    nbformat.write(nb, folder / name)
    return str(folder / name)


def check_lines(nb: nbformat.NotebookNode) -> list[str]:
    return [
        "".join(o.get("text", "") for o in cell.outputs if o.get("name") != "stderr")
        for cell in nb.cells
        if cell.get("metadata", {}).get("tinyvision", {}).get("check")
    ]


def run_both(name: str, tmp_path: Path) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    for folder in ("blank", "done"):
        (tmp_path / folder).mkdir()
    blank = execute(f"exercises/{name}", tmp_path / "blank")
    done = execute(Path(filled(name, tmp_path)), tmp_path / "done")
    return blank, done


def assert_checks(blank, done, count: int) -> None:
    lines = check_lines(blank)
    assert len(lines) == count
    assert all("not implemented yet" in t and "uses tinyvision's" in t for t in lines), lines
    lines = check_lines(done)
    assert len(lines) == count and all(t.startswith("✔") for t in lines), lines


def test_mlp_exercise(tmp_path):
    blank, done = run_both("1ab-mlp.ipynb", tmp_path)
    assert_checks(blank, done, 5)
    for nb in (blank, done):  # the pieces, the student's or the references, train the MLP
        assert "the notebook's MLP after" in outputs(nb)


@needs_fashion
def test_cnn_exercise(tmp_path, real_data):
    blank, done = run_both("1cd-cnn.ipynb", tmp_path)
    assert_checks(blank, done, 6)
    assert "epoch 1: train accuracy" in outputs(blank) and "epoch 1: train accuracy" in outputs(
        done
    )


@needs_fashion
@needs_mnist_test
def test_vit_exercise(tmp_path, real_data):
    blank, done = run_both("1e-vit.ipynb", tmp_path)
    assert_checks(blank, done, 6)
    for nb in (blank, done):  # the pieces, the student's or the references, train a ViT
        assert "the notebook's ViT after one epoch" in outputs(nb)
