"""The practicals' notebooks: stored clean, one heading per question of the course map in
its order, the pieces students write marked and checked (a wrong piece fails its check),
and each notebook runs top to bottom (quick budgets)."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import needs_fashion, needs_mnist_test

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
SCRIPT = Path(__file__).parents[1] / "scripts" / "make-notebooks.py"
COURSE_MAP = Path(
    os.environ.get("TINYVISION_COURSE_MAP")
    or Path(__file__).parents[2] / "shared" / "course" / "questions.md"
)

# notebook -> (the map's section title, the id prefix of its headings)
PRACTICALS = {
    "1ab-mlp.ipynb": ("1-ab", "1ab"),
    "1cd-cnn.ipynb": ("1-cd", "1cd"),
    "1e-vit.ipynb": ("1-e", "1e"),
}

# piece -> (the name its cell defines, tinyvision's reference or the parameter names)
PIECES = {
    "1ab-mlp.ipynb": {
        "init_params": ("init_params", ["nx", "nh", "ny"]),
        "forward": ("forward", "tinyvision.models.mlp_manual:forward"),
        "loss_accuracy": ("loss_accuracy", "tinyvision.models.mlp_manual:loss_accuracy"),
        "backward": ("backward", "tinyvision.models.mlp_manual:backward"),
        "sgd": ("sgd", "tinyvision.models.mlp_manual:sgd"),
    },
    "1cd-cnn.ipynb": {
        "conv_output_size": ("conv_output_size", "tinyvision.models.arithmetic:conv_output_size"),
        "receptive_field": ("receptive_field", "tinyvision.models.arithmetic:receptive_field"),
        "cnn": ("CourseCNN", "tinyvision.models.cnn:CourseCNN"),
        "standardize": ("standardize", ["train_x", "test_x"]),
        "zca": ("zca", ["train_x", "test_x", "epsilon"]),
        "random_crop": ("random_crop", "tinyvision.data.augment:random_crop"),
    },
    "1e-vit.ipynb": {
        "attention": ("SelfAttention", "tinyvision.models.vit:SelfAttention"),
        "multihead_attention": (
            "MultiHeadSelfAttention",
            "tinyvision.models.vit:MultiHeadSelfAttention",
        ),
        "block": ("Block", "tinyvision.models.vit:Block"),
        "patch_embed": ("PatchEmbed", "tinyvision.models.vit:PatchEmbed"),
        "positional_embedding": (
            "get_positional_embeddings",
            "tinyvision.models.vit:get_positional_embeddings",
        ),
        "vit": ("ViT", "tinyvision.models.vit:ViT"),
    },
}

# Wrong pieces, each a mistake a student could make: its check must fail.
WRONG = {
    "1ab-mlp.ipynb": [
        ("forward", "h = torch.tanh(htilde)", "h = torch.sigmoid(htilde)"),
        ("loss_accuracy", ".sum(dim=1).mean()", ".sum(dim=1).sum()"),
        ("backward", '(1 - outputs["h"] ** 2)', '(1 - outputs["h"])'),
        ("backward", 'delta_y.T @ outputs["h"]', 'outputs["h"].T @ delta_y @ torch.eye(2)'),
        ("sgd", "-= eta *", "+= eta *"),
    ],
    "1cd-cnn.ipynb": [
        ("conv_output_size", "return span // stride + 1", "return span // stride"),
        ("receptive_field", "r + (kernel - 1) * j", "r + (kernel - 1) * stride"),
        ("cnn", "nn.Conv2d(32, 64, 5, padding=2)", "nn.Conv2d(32, 64, 3, padding=1)"),
        (
            "standardize",
            "(test_x - mean) / std",
            "(test_x - test_x.mean(dim=dims, keepdim=True)) / std",
        ),
        ("zca", ".rsqrt()", ".sqrt()"),
        ("random_crop", "image[:, t:t + size, l:l + size]", "image[:, l:l + size, t:t + size]"),
    ],
    "1e-vit.ipynb": [
        ("attention", "/ math.sqrt(q.shape[-1])", "/ q.shape[-1]"),
        ("multihead_attention", "math.sqrt(self.head_dim)", "math.sqrt(d)"),
        ("block", "x = x + self.attn(self.norm1(x))", "x = self.attn(self.norm1(x))"),
        ("patch_embed", "stride=patch_size)", "stride=patch_size - 1)"),
        (
            "positional_embedding",
            "math.sin(angle) if j % 2 == 0 else math.cos(angle)",
            "math.cos(angle) if j % 2 == 0 else math.sin(angle)",
        ),
        ("vit", "[:, 0])", ".mean(dim=1))"),
    ],
}


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


def course_ids(section: str) -> list[str]:
    """The bold ids (Q1, B1, E1, ...) of one practical's section of the course map, in order."""
    if not COURSE_MAP.is_file():
        pytest.skip(f"the course map {COURSE_MAP} is absent (set TINYVISION_COURSE_MAP)")
    ids, inside = [], False
    for line in COURSE_MAP.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            inside = line[2:].split()[0] == section
        elif inside and (found := re.match(r"- \*\*([QBE]\d+)\b", line)):
            ids.append(found[1])
    assert ids, f"no question ids found for {section} in {COURSE_MAP}"
    return ids


def tinyvision_cells(nb: nbformat.NotebookNode, key: str) -> list[tuple[int, str]]:
    return [
        (i, c.metadata["tinyvision"][key])
        for i, c in enumerate(nb.cells)
        if key in c.metadata.get("tinyvision", {})
    ]


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


@pytest.mark.parametrize("name", list(PRACTICALS))
def test_every_question_of_the_map_has_its_heading_in_order(name):
    section, prefix = PRACTICALS[name]
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    headings = [
        found[1]
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if (found := re.match(rf"### {re.escape(prefix)}\.([QBE]\d+) — \S", line))
    ]
    assert headings == course_ids(section), f"{name}: headings and the course map differ"


@pytest.mark.parametrize("name", list(PRACTICALS))
def test_pieces_are_marked_and_each_is_followed_by_its_check(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    pieces = tinyvision_cells(nb, "piece")
    assert sorted(p for _, p in pieces) == sorted(PIECES[name]), name
    for index, piece in pieces:
        defined, _ = PIECES[name][piece]
        assert re.search(rf"^(def|class) {defined}\b", nb.cells[index].source, re.M), piece
        following = nb.cells[index + 1]
        assert following.metadata.get("tinyvision", {}).get("checks") == piece, (
            f"{name}: the cell after the piece {piece!r} is not its check"
        )


def _signature_names(target) -> list[str]:
    function = target.__init__ if inspect.isclass(target) else target
    return [p for p in inspect.signature(function).parameters if p != "self"]


def _run_cell(source: str, namespace: dict) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, "<cell>", "exec"), namespace)


@pytest.mark.parametrize("name", list(PRACTICALS))
def test_pieces_match_the_references_and_wrong_pieces_fail_their_checks(name, monkeypatch):
    """The setup cells, the pieces and their checks alone, in order, in this process: they
    pass as written, each piece has tinyvision's names and signature, and each wrong piece
    of WRONG makes its check fail."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("TINYVISION_NOTEBOOK_QUICK", "1")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    wrong = {}
    for piece, old, new in WRONG[name]:
        wrong.setdefault(piece, []).append((old, new))
    namespace: dict = {"__name__": "__notebook__"}
    caught = 0
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("tinyvision", {})
        if "piece" in meta:
            piece = meta["piece"]
            check = nb.cells[index + 1].source
            for old, new in wrong.get(piece, []):
                assert old in cell.source, f"{piece}: {old!r} is not in the piece"
                trial = dict(namespace)
                with pytest.raises(Exception):  # noqa: B017 - an assert or a shape error
                    _run_cell(cell.source.replace(old, new), trial)
                    _run_cell(check, trial)
                caught += 1
            _run_cell(cell.source, namespace)
            defined, reference = PIECES[name][piece]
            if isinstance(reference, str):
                module, attribute = reference.split(":")
                expected = _signature_names(getattr(importlib.import_module(module), attribute))
            else:
                expected = reference
            mine = _signature_names(namespace[defined])
            assert mine == expected[: len(mine)] and mine, f"{piece}: {mine} against {expected}"
        elif meta.get("setup") or "checks" in meta:
            _run_cell(cell.source, namespace)
        plt.close("all")
    assert caught == len(WRONG[name])


def test_mlp_notebook(tmp_path, real_data):
    nb = execute("1ab-mlp.ipynb", tmp_path)
    text = outputs(nb)
    assert "largest difference between the variants' train loss" in text
    assert "forward agrees with tinyvision's" in text and "sgd agrees with tinyvision's" in text
    assert (next(tmp_path.glob("1ab-svm-*")) / "svm.csv").is_file()


@needs_fashion
def test_cnn_notebook(tmp_path, real_data):
    nb = execute("1cd-cnn.ipynb", tmp_path)
    text = outputs(nb)
    assert "final_test_acc" in text and "random_crop agrees with tinyvision's" in text
    assert len(list(tmp_path.glob("study-1cd-ablation-*/*/metrics.csv"))) == 6
    # the picture of one's own: written, shown with its true label, then predicted
    assert (tmp_path / "my-picture.png").is_file()
    (shown,) = [c for c in nb.cells if "my-picture.png" in c.source]
    assert any("image/png" in o.get("data", {}) for o in shown.outputs)
    assert re.search(r"true label: \S.*; predicted: ", text)


@needs_fashion
@needs_mnist_test
def test_vit_notebook(tmp_path, real_data):
    nb = execute("1e-vit.ipynb", tmp_path)
    assert "PatchEmbed agrees with tinyvision's" in outputs(nb)
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
