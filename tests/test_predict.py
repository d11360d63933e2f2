"""`tinyvision predict`: a trained run classifies the user's own PNG and JPEG files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinyvision.cli import main
from tinyvision.data import image_files
from tinyvision.data.image_files import read_image
from tinyvision.data.loader import BatchTransform
from tinyvision.data.preprocess import to_float
from tinyvision.errors import UserError
from tinyvision.experiment.runner import run
from tinyvision.inference.predict import predict
from tinyvision.inference.trained import load_trained
from tinyvision.presets import build_config


def _train(tmp_path: Path, preset: str, *overrides: str) -> Path:
    cfg = build_config(preset, ["data.name=mnist", "train.epochs=1", *overrides])
    path, summary = run(cfg, tmp_path / "runs", "cpu", quiet=True)
    assert summary["status"] == "completed"
    return path


def _model_on_test_images(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The run's model on the original test images, through the run's own test transform
    (its recorded normalization, its centre crop): raw images, classes, probabilities."""
    trained = load_trained(path, None, "test")
    raw = trained.data.test_x
    transform = BatchTransform(trained.cfg.data, trained.stats, train=False)
    with torch.no_grad():
        probs = torch.softmax(trained.model(transform(raw, torch.Generator())), 1)
    return raw, probs.argmax(1), probs


def _surest(probs: torch.Tensor) -> int:
    """The test image the model is surest of: resampling cannot change its class."""
    return int(probs.max(1).values.argmax())


def _save_upscaled_rgb(image: torch.Tensor, path: Path, side: int = 64) -> Path:
    grey = Image.fromarray(image[0].numpy(), "L")
    grey.convert("RGB").resize((side, side), Image.Resampling.NEAREST).save(path)
    return path


def test_predict_matches_the_model_on_the_original_image(tmp_path, idx_root, capsys):
    path = _train(tmp_path, "cnn-fashion", "data.train_subset=300")
    raw, classes, probs = _model_on_test_images(path)
    i = _surest(probs)
    picture = _save_upscaled_rgb(raw[i], tmp_path / "digit.png")

    (prediction,) = predict(path, [picture], top=5)
    assert len(prediction.top) == 5
    assert prediction.top[0].index == int(classes[i])
    assert prediction.top[0].name == str(int(classes[i]))  # MNIST's class names
    shown = [g.probability for g in prediction.top]
    assert shown == sorted(shown, reverse=True) and 0 < sum(shown) <= 1 + 1e-6

    assert main(["predict", str(path), str(picture), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    (entry,) = answer["predictions"]
    assert entry["image"] == str(picture)
    assert entry["top"][0]["index"] == int(classes[i])
    assert len(entry["top"]) == 5

    # Lines: the image, then one line per class; --top beyond the classes shows them all.
    assert main(["predict", str(path), str(picture), str(picture), "--top", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * (1 + 10)
    assert lines[0] == str(picture) and lines[1].split()[0] == str(int(classes[i]))


def test_predict_with_a_cropped_run_and_a_jpeg(tmp_path, idx_root):
    """data.crop: the picture is scaled to the dataset's size, then centre-cropped like
    the test images, so the model gets its 24 x 24 input."""
    path = _train(tmp_path, "mlp-fashion", "data.crop=24", "data.normalize=standardize")
    raw, classes, probs = _model_on_test_images(path)
    i = _surest(probs)
    picture = tmp_path / "digit.jpg"
    Image.fromarray(raw[i, 0].numpy(), "L").convert("RGB").save(picture, quality=100)
    (prediction,) = predict(path, [picture], top=3)
    assert prediction.top[0].index == int(classes[i])
    assert len(prediction.top) == 3


@pytest.mark.parametrize(
    "mode,value",
    [("L", 128), ("RGB", (128, 128, 128)), ("RGBA", (128, 128, 128, 255)), ("P", 0), ("I;16", 0)],
)
def test_any_colour_becomes_the_runs_channels(tmp_path, mode, value):
    picture = Image.new(mode, (50, 30), value)
    if mode == "P":
        picture.putpalette([128, 128, 128] * 256)
    if mode == "I;16":
        picture = Image.fromarray(np.full((30, 50), 128 * 257, dtype=np.uint16))
    path = tmp_path / "picture.png"
    picture.save(path)
    for channels in (1, 3):
        image = read_image(path, channels, (28, 28))
        assert image.shape == (channels, 28, 28) and image.dtype == torch.uint8
        assert image.min() == image.max() == 128


def test_transparent_pixels_are_black(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (255, 255, 255, 0)).save(path)
    assert read_image(path, 1, (8, 8)).max() == 0


def test_a_text_file_named_png_is_one_line_exit_2(tmp_path, idx_root, capsys):
    path = _train(tmp_path, "mlp-fashion", "data.train_subset=100")
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture at all\n")
    assert main(["predict", str(path), str(fake)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert str(fake) in line and "not a PNG or JPEG image" in line

    missing = tmp_path / "nowhere.png"
    assert main(["predict", str(path), str(missing)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(missing) in line

    assert main(["predict", str(path), str(tmp_path)]) == 2  # a folder
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "not a file" in line

    good = tmp_path / "good.png"
    Image.new("L", (28, 28)).save(good)
    assert main(["predict", str(path), str(good), "--top", "0"]) == 2
    assert main(["predict", str(tmp_path / "no-run"), str(good)]) == 2
    (line, *rest) = capsys.readouterr().err.strip().splitlines()
    assert "--top 0" in line and len(rest) == 1 and "no such run folder" in rest[0]


def test_sizes_are_bounded_before_decoding(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    Image.new("L", (300, 200)).save(big)
    monkeypatch.setattr(image_files, "MAX_PIXELS", 300 * 200 - 1)
    with pytest.raises(UserError, match="too many pixels"):
        read_image(big, 1, (28, 28))
    monkeypatch.setattr(image_files, "MAX_FILE_BYTES", 10)
    with pytest.raises(UserError, match="bytes"):
        read_image(big, 1, (28, 28))


def test_a_bomb_is_refused_by_its_header(tmp_path):
    """A PNG whose header claims 100,000 x 100,000 pixels: refused, nothing decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(UserError, match="too many pixels"):
        read_image(path, 1, (28, 28))


def test_points_data_is_refused(tmp_path):
    cfg = build_config("1ab-circles-optim", ["train.epochs=1"])
    path, _ = run(cfg, tmp_path / "runs", "cpu", quiet=True)
    good = tmp_path / "good.png"
    Image.new("L", (28, 28)).save(good)
    with pytest.raises(UserError, match="not on pictures"):
        predict(path, [good])


def test_raw_scaling_matches_training(tmp_path):
    """A grey PNG holding a test image exactly gives back the same uint8 pixels, so the
    model sees the [0, 1] floats training gave it (uint8 / 255)."""
    pixels = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    path = tmp_path / "exact.png"
    Image.fromarray(pixels, "L").save(path)
    image = read_image(path, 1, (28, 28))
    np.testing.assert_array_equal(image[0].numpy(), pixels)
    assert torch.equal(to_float(image), torch.from_numpy(pixels).float()[None] / 255)
