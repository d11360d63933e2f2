"""`predict` on a picture drawn the other way round (dark on white for data that is light on
black): inverted by default, with a note; a picture unlike any training image: a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from tinyvision.api import load
from tinyvision.cli import main
from tinyvision.data.loader import BatchTransform
from tinyvision.experiment.runner import run
from tinyvision.inference.predict import predict
from tinyvision.inference.trained import load_trained
from tinyvision.presets import build_config

from conftest import REAL_DATA


def _save(image: torch.Tensor, path: Path, side: int = 28) -> Path:
    """A greyscale uint8 (1, H, W) image as a PNG of `side` pixels a side."""
    picture = Image.fromarray(image[0].numpy(), "L")
    picture.resize((side, side), Image.Resampling.NEAREST).save(path)
    return path


def _surest_right(path: Path) -> tuple[torch.Tensor, int]:
    """The test image the run classifies right with the highest probability, its class."""
    trained = load_trained(path, None, "test")
    transform = BatchTransform(trained.cfg.data, trained.stats, train=False)
    with torch.no_grad():
        probs = torch.softmax(trained.model(transform(trained.data.test_x, torch.Generator())), 1)
    right = probs.argmax(1) == trained.data.test_y
    sure = torch.where(right, probs.max(1).values, torch.zeros(()))
    i = int(sure.argmax())
    return trained.data.test_x[i], int(trained.data.test_y[i])


def _inverted_case(tmp_path: Path, path: Path, capsys) -> None:
    """The original, drawn dark on white: predicted as the original, with the note; JSON
    and the Python API say so; --no-invert keeps it (and says that too)."""
    original, label = _surest_right(path)
    classes = load_trained(path, None, "test").data.classes
    on_white = _save(255 - original, tmp_path / "on-white.png")
    as_is = _save(original, tmp_path / "as-is.png")

    plain, inverted = predict(path, [as_is, on_white], top=3)
    assert not plain.inverted and plain.note == "" and plain.top[0].index == label
    assert inverted.inverted and inverted.top[0].index == label
    assert "inverted" in inverted.note and "--no-invert" in inverted.note

    capsys.readouterr()
    assert main(["predict", str(path), str(on_white)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("  note: its background (border ") and out[1].count("\n") == 0
    assert out[2].split()[0] == classes[label].split()[0]

    assert main(["predict", str(path), str(on_white), "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["predictions"]
    assert shown["inverted"] is True and "inverted" in shown["note"]
    assert shown["top"][0]["index"] == label

    assert main(["predict", str(path), str(on_white), "--json", "--no-invert"]) == 0
    (kept,) = json.loads(capsys.readouterr().out)["predictions"]
    assert kept["inverted"] is False and kept["note"].endswith("kept as it is")

    (answer,) = load(path).predict([on_white], top=1)
    assert answer.inverted and answer[0][0] == classes[label] and "invert=False" in answer.note
    assert "image 0: note: its background" in capsys.readouterr().out
    (kept_answer,) = load(path).predict([on_white], top=1, invert=False)
    assert not kept_answer.inverted


def test_a_picture_drawn_dark_on_white_is_inverted_synthetic(tmp_path, idx_root, capsys):
    """Always runs: light squares on a dark background, the data the tests write."""
    cfg = build_config("cnn-fashion", ["data.name=mnist", "train.epochs=1"])
    path, summary = run(cfg, tmp_path / "runs", "cpu", quiet=True)
    assert summary["status"] == "completed"
    _inverted_case(tmp_path, path, capsys)


@pytest.mark.skipif(
    not (REAL_DATA / "fashion-mnist").is_dir(),
    reason=f"Fashion-MNIST is not in {REAL_DATA} (set TINYVISION_DATA to its folder)",
)
def test_a_fashion_mnist_picture_on_white_is_predicted_as_the_original(tmp_path, real_data, capsys):
    overrides = ["data.train_subset=6000", "data.test_subset=1000", "train.epochs=2"]
    path, summary = run(build_config("mlp-fashion", overrides), tmp_path / "r", "cpu", quiet=True)
    assert summary["status"] == "completed" and summary["final"]["test_acc"] > 75
    _inverted_case(tmp_path, path, capsys)


def test_a_picture_unlike_any_training_image_gets_a_warning(tmp_path, idx_root, capsys):
    cfg = build_config("mlp-fashion", ["data.name=mnist", "train.epochs=1"])
    path, _ = run(cfg, tmp_path / "runs", "cpu", quiet=True)
    noise = torch.randint(0, 256, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    picture = _save(noise.to(torch.uint8), tmp_path / "noise.png", side=28)
    original, _ = _surest_right(path)
    usual = _save(original, tmp_path / "usual.png", side=28)
    odd, fine = predict(path, [picture, usual])
    assert "unlike any of the run's training images" in odd.warning
    assert fine.warning == ""
    capsys.readouterr()
    assert main(["predict", str(path), str(picture)]) == 0
    assert "  warning: unlike any of the run's training images" in capsys.readouterr().out
