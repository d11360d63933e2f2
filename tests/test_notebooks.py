"""The practicals' notebooks run top to bottom (quick budgets), and are stored clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from conftest import needs_fashion, needs_mnist_test

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
SCRIPT = Path(__file__).parents[1] / "scripts" / "make-notebooks.py"


def execute(name: str, out: Path) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel of this interpreter; a cell's error fails the test."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    os.environ["TINYVISION_NOTEBOOK_QUICK"] = "1"
    os.environ["TINYVISION_NOTEBOOK_OUT"] = str(out)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(out)}}
    )
    client.execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> str:
    return "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )


def test_stored_notebooks_are_the_generated_ones_without_outputs(tmp_path):
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
    copy = tmp_path / "scripts"
    copy.mkdir()
    (copy / SCRIPT.name).write_text(SCRIPT.read_text())
    subprocess.run([sys.executable, str(copy / SCRIPT.name)], check=True, capture_output=True)
    for path in NOTEBOOKS.glob("*.ipynb"):
        assert (tmp_path / "notebooks" / path.name).read_text() == path.read_text(), (
            f"{path.name} differs from what scripts/make-notebooks.py writes: run it"
        )


def test_mlp_notebook(tmp_path, monkeypatch):
    nb = execute("1ab-mlp.ipynb", tmp_path)
    text = outputs(nb)
    assert "largest difference between the variants' train loss" in text
    assert (next(tmp_path.glob("1ab-svm-*")) / "svm.csv").is_file()


@needs_fashion
def test_cnn_notebook(tmp_path, real_data):
    nb = execute("1cd-cnn.ipynb", tmp_path)
    assert "final_test_acc" in outputs(nb)
    assert len(list(tmp_path.glob("study-1cd-ablation-*/*/metrics.csv"))) == 6


@needs_fashion
@needs_mnist_test
def test_vit_notebook(tmp_path, real_data):
    nb = execute("1e-vit.ipynb", tmp_path)
    assert "(16 patches of 32)" in outputs(nb)
    # the run's progress: a bar updated in place, ending as the epoch's line
    shown = [
        o["data"]["text/html"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if "text/html" in o.get("data", {})
    ]
    assert any("epoch   1/1" in h and "train loss" in h for h in shown)
    assert list(tmp_path.glob("1e-timm-scratch-*/summary.json"))
