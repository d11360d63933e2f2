"""The Python API (`import tinyvision as tv`): the CLI's engine, objects instead of paths."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import tinyvision as tv
from tinyvision.errors import UserError
from tinyvision.io import read_csv

TINY = {"data.name": "digits", "train.batch_size": 64, "optim.lr": 0.05}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tv.Run:
    out = tmp_path_factory.mktemp("api")
    return tv.run("mlp-fashion", TINY, out=out, device="cpu", quiet=True, train__epochs=2)


def test_run_returns_its_metrics_as_a_dataframe(trained):
    metrics = trained.metrics
    assert isinstance(metrics, pd.DataFrame)
    rows = read_csv(trained.path / "metrics.csv")
    assert len(metrics) == len(rows) == 3  # epoch 0 (before training), 1, 2
    assert metrics["epoch"].tolist() == [0, 1, 2]
    assert metrics["test_acc"].tolist() == [float(r["test_acc"]) for r in rows]
    assert trained.config["train"]["epochs"] == 2 and trained.config["data"]["name"] == "digits"
    assert trained.summary["status"] == "completed"
    assert "mlp-fashion" in repr(trained) and "completed" in repr(trained)
    assert f"{trained.summary['final']['test_acc']:.2f}%" in repr(trained)


def test_overrides_in_every_form_mean_the_same(tmp_path):
    from tinyvision.api import overrides_list

    as_list = ["optim.lr=0.01", "train.tta=true"]
    assert overrides_list({"optim.lr": 0.01, "train.tta": True}) == as_list
    assert overrides_list(optim__lr=0.01, train__tta=True) == as_list
    assert overrides_list(as_list) == as_list
    with pytest.raises(UserError, match="list of 'key=value'"):
        overrides_list("optim.lr=0.1")


def test_bad_overrides_raise_the_cli_line(tmp_path):
    with pytest.raises(UserError) as error:
        tv.run("mlp-fashion", out=tmp_path, optim__lr=-1)
    assert "optim.lr must be positive" in str(error.value) and "\n" not in str(error.value)
    assert not any(tmp_path.iterdir()), "nothing written for bad input"


def test_load_gives_the_model_in_eval_mode(trained):
    run = tv.load(trained.path)
    assert isinstance(run, tv.Run) and not run.model.training
    x = torch.zeros(1, 1, 8, 8)
    assert run.model(x).shape == (1, 10)


def test_predict_agrees_with_the_command_line(trained, tmp_path):
    run = tv.load(trained.path)
    data = run._trained.data
    picture = tmp_path / "digit.png"
    image = np.asarray(data.test_x[0, 0])
    Image.fromarray(image).convert("RGB").resize((64, 64), Image.NEAREST).save(picture)
    cli = subprocess.run(
        [sys.executable, "-m", "tinyvision", "predict", str(trained.path), str(picture)]
        + ["--json", "--top", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    (printed,) = json.loads(cli.stdout)["predictions"]
    (mine,) = run.predict(picture, top=3)
    assert [name for name, _ in mine] == [g["class"] for g in printed["top"]]
    for (_, p), g in zip(mine, printed["top"]):
        assert p == pytest.approx(g["probability"], abs=1e-6)
    # Arrays of the run's own images: the run's test predictions, as its accuracy says.
    guesses = run.predict(data.test_x, top=1)
    right = [g[0][0] == data.classes[int(y)] for g, y in zip(guesses, data.test_y)]
    assert 100 * np.mean(right) == pytest.approx(run.summary["final"]["test_acc"], abs=1e-6)
    with pytest.raises(UserError, match="expected uint8"):
        run.predict(np.zeros((2, 8, 8), dtype=np.float32))


def test_sweep_table_is_sweep_csv(tmp_path):
    fixed = {k: v for k, v in TINY.items() if k != "optim.lr"}
    sweep = tv.sweep(
        "mlp-fashion", fixed, out=tmp_path, device="cpu", quiet=True, optim__lr="0.01,0.1"
    )
    table = sweep.table
    rows = read_csv(sweep.path / "sweep.csv")
    assert len(table) == len(rows) == 2
    assert table["final_test_acc"].tolist() == [float(r["final_test_acc"]) for r in rows]
    assert isinstance(tv.load(sweep.path), tv.Sweep)
    assert len(sweep.runs) == 2 and all(r.summary["status"] == "completed" for r in sweep.runs)
    fig = sweep.plot()
    assert len(fig.axes[0].lines) == 2
    index = tv.runs(tmp_path)
    assert isinstance(index, pd.DataFrame) and len(index) == 2
    assert set(index["status"]) == {"completed"}


def test_views_escape_what_a_folder_says(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["preset"] = "<script>alert(1)</script>"
    (copy / "config.json").write_text(json.dumps(config))
    page = tv.load(copy)._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_plot_is_a_figure_of_the_curves(trained):
    fig = trained.plot()
    accuracy = fig.axes[0]
    assert [len(line.get_xdata()) for line in accuracy.lines] == [3, 3]  # epochs 0, 1, 2
    assert list(accuracy.lines[0].get_xdata()) == [0, 1, 2]


def test_course_pieces_by_their_names():
    assert tv.models.ViT.__name__ == "ViT" and tv.models.PatchEmbed.__name__ == "PatchEmbed"
    assert callable(tv.models.mlp_manual.backward) and tv.models.CourseCNN.__name__ == "CourseCNN"
    with pytest.raises(AttributeError):
        tv.models.NoSuchThing  # noqa: B018


def test_import_and_help_stay_torch_free():
    code = (
        "import sys, runpy, contextlib, io\n"
        "import tinyvision\n"
        "sys.argv = ['tinyvision', '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    runpy.run_module('tinyvision', run_name='__main__')\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_examples_are_the_runs_own_data_and_labels(trained):
    run = tv.load(trained.path)
    data = run._trained.data
    x, y = run.examples("test", count=5)
    assert x.dtype == torch.uint8 and torch.equal(x, data.test_x[:5])
    assert torch.equal(y, data.test_y[:5])
    train_x, train_y = run.examples("train")
    assert torch.equal(train_x, data.train_x) and torch.equal(train_y, data.train_y)
    assert run.classes == list(data.classes) and len(run.classes) == 10
    # What the run says it scored on its test split, these examples score.
    guesses = run.predict(run.examples("test")[0], top=1)
    right = [g[0][0] == run.classes[int(label)] for g, label in zip(guesses, data.test_y)]
    assert 100 * np.mean(right) == pytest.approx(run.summary["final"]["test_acc"], abs=1e-6)
    with pytest.raises(UserError, match="choose 'train' or 'test'"):
        run.examples("validation")
    with pytest.raises(UserError, match="at least 1"):
        run.examples(count=0)
