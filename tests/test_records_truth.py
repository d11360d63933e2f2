"""Records that say what ran, and the small doors to a trained run.

A resumed run goes on as it began (its precision, its normalization, its time budget's
sizing, even when it was killed before its first checkpoint); hooks cannot overwrite the
measured keys of summary.json; `predict` and `Run.predict` take hostile names and odd
arguments in one line; `tv.runs` of a folder that is not there says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyvision as tv
from tinyvision.cli import main
from tinyvision.errors import UserError
from tinyvision.experiment import runner
from tinyvision.experiment.hooks import Hook
from tinyvision.presets import build_config
from tinyvision.train import loop

from conftest import interrupt_at_epoch, one_line_error, run_cli

DIGITS = ["data.name=digits", "model.hidden=32", "train.batch_size=64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    path, _ = runner.run(build_config("mlp-fashion", [*DIGITS, "train.epochs=1"]), out, "cpu", True)
    return path


# --- predict ------------------------------------------------------------------------------


def test_predict_prints_control_characters_in_names_escaped(trained, tmp_path):
    picture = tmp_path / "a\x1b[31mred\nline.png"
    Image.new("L", (8, 8), 200).save(picture, format="PNG")
    result = run_cli("predict", str(trained), str(picture), "--top", "2")
    assert result.returncode == 0, result.stderr
    # the name on one line, then one line per class (a flat grey square unlike the digits
    # also gets a note or a warning line)
    lines = [x for x in result.stdout.splitlines() if not x.startswith(("  note:", "  warning:"))]
    assert len(lines) == 3, lines
    assert "\x1b" not in result.stdout
    assert lines[0].endswith("a\\x1b[31mred\\x0aline.png")


def test_a_linked_weights_file_is_named_a_refused_link(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "model.safetensors").rename(tmp_path / "weights.safetensors")
    (run / "model.safetensors").symlink_to(tmp_path / "weights.safetensors")
    picture = tmp_path / "x.png"
    Image.new("L", (8, 8), 200).save(picture)
    code = main(["predict", str(run), str(picture)])
    one_line_error(code, capsys.readouterr().err, "model.safetensors", "symbolic link, refused")


@pytest.mark.parametrize(
    ("top", "images"),
    [("3", None), (None, None), (True, None), (2, [b"x.png"]), (2, [object()]), (2, 3.5)],
)
def test_run_predict_refuses_odd_arguments_in_one_line(trained, tmp_path, top, images):
    run = tv.load(trained)
    picture = tmp_path / "x.png"
    Image.new("L", (8, 8), 200).save(picture)
    with pytest.raises(UserError) as error:
        run.predict(picture if images is None else images, top=top)
    assert "\n" not in str(error.value)


def test_run_predict_takes_pil_images_and_arrays_as_files(trained, tmp_path):
    run = tv.load(trained)
    picture = tmp_path / "x.png"
    image = Image.fromarray(np.asarray(run._trained.data.test_x[0, 0])).convert("RGB")
    image.resize((32, 32), Image.Resampling.NEAREST).save(picture)
    from_file = run.predict(picture, top=3)
    with Image.open(picture) as opened:
        assert run.predict(opened, top=3) == from_file
        twice = run.predict([opened, opened], top=3)  # a batch of 2: float sums may differ
    assert len(twice) == 2
    for guesses in twice:
        assert [n for n, _ in guesses] == [n for n, _ in from_file[0]]
        assert [p for _, p in guesses] == pytest.approx([p for _, p in from_file[0]], abs=1e-6)
    arrays = [np.asarray(run._trained.data.test_x[i, 0]) for i in range(2)]
    assert run.predict(arrays, top=1) == run.predict(np.stack(arrays), top=1)  # same batch


def test_tv_runs_of_a_missing_folder_raises(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        tv.runs(tmp_path / "nonexistent")
    assert tv.runs(tmp_path).empty  # a folder with no runs yet is an empty table


# --- summary.json: measured keys first ------------------------------------------------------


class _Boastful(Hook):
    name = "boastful"

    def on_finish(self, exp, folder, status):
        return {"status": "completed", "final": {"test_acc": 100.0}, "best_test_acc": 100.0}


def test_a_hook_cannot_overwrite_what_was_measured(tmp_path, monkeypatch):
    interrupt_at_epoch(monkeypatch, at=2)
    cfg = build_config("mlp-fashion", [*DIGITS, "train.epochs=3"])
    with pytest.raises(KeyboardInterrupt):
        runner.run(cfg, tmp_path, "cpu", quiet=True, hooks=[_Boastful])
    (path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((path / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_done"] == 1
    assert summary["best_test_acc"] < 100.0 and summary["final"]["test_acc"] < 100.0
    assert summary["hooks"]["boastful"]["status"] == "completed"


# --- resume goes on as the run began ---------------------------------------------------------


def _interrupted(tmp_path: Path, monkeypatch) -> tuple[Path, dict]:
    real = interrupt_at_epoch(monkeypatch, at=2)
    cfg = build_config("mlp-fashion", [*DIGITS, "train.epochs=2", "train.amp=auto"])
    with pytest.raises(KeyboardInterrupt):
        runner.run(cfg, tmp_path, "cpu", quiet=True)
    monkeypatch.setattr(loop, "epoch", real)
    (path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return path, json.loads((path / "start.json").read_text())


def _record(path: Path, name: str, **changes) -> None:
    data = json.loads((path / name).read_text())
    data.update(changes)
    (path / name).write_text(json.dumps(data))


def test_resume_keeps_the_recorded_precision_and_normalization(tmp_path, monkeypatch, capsys):
    path, start = _interrupted(tmp_path, monkeypatch)
    began = start["precision"]["amp"]
    other = "none" if began == "bf16" else "bf16"  # as if it began on another machine
    for name in ("start.json", "summary.json"):
        _record(path, name, precision={**start["precision"], "amp": other})
    saved = (path / "normalization.safetensors").read_bytes()

    def refit(*args, **kwargs):
        raise AssertionError("the normalization was fitted again on resume")

    monkeypatch.setattr("tinyvision.experiment.prepare.fit_normalization", refit)
    _, summary = runner.resume(path, "cpu", quiet=True)

    assert summary["status"] == "completed" and summary["amp"] == other
    assert summary["precision"]["amp"] == other and summary["precision"]["source"] == "recorded"
    assert (path / "normalization.safetensors").read_bytes() == saved
    assert capsys.readouterr().err == ""


def test_resume_says_so_when_the_config_forces_another_precision(tmp_path, monkeypatch, capsys):
    path, start = _interrupted(tmp_path, monkeypatch)
    for name in ("start.json", "summary.json"):
        _record(path, name, precision={**start["precision"], "amp": "bf16"})
    config = json.loads((path / "config.json").read_text())
    config["train"]["amp"] = "none"
    (path / "config.json").write_text(json.dumps(config))
    _, summary = runner.resume(path, "cpu", quiet=True)
    assert summary["amp"] == "none"
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "resuming with amp=none" in line and "began with amp=bf16" in line
