"""What a classifier gets wrong: confusion.csv / .png, per-class accuracy, mistakes.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sklearn_confusion

from tinyvision.data.datasets import load_dataset
from tinyvision.experiment import hooks
from tinyvision.experiment.runner import run
from tinyvision.inference import confusion
from tinyvision.inference.confusion import CORNER, ConfusionMatrix
from tinyvision.io import read_csv
from tinyvision.presets import build_config


@pytest.fixture
def with_confusion(monkeypatch) -> dict:
    """The hook registered (the shared venv's entry points predate it), and what it draws
    and predicts captured for the tests to look at."""
    registered = hooks.registered()
    if ConfusionMatrix not in registered:
        monkeypatch.setattr(hooks, "registered", lambda: (*registered, ConfusionMatrix))
    seen: dict = {}

    def capture(name, function):
        def wrapped(*args, **kwargs):
            seen[name] = function(*args, **kwargs)
            return seen[name]

        monkeypatch.setattr(confusion, name, wrapped)

    for name in ("predict_test_split", "plot_confusion", "plot_mistakes"):
        capture(name, getattr(confusion, name))
    return seen


def _read_matrix(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header[0] == CORNER
    assert [r[0] for r in body] == header[1:], "rows and columns name the same classes"
    return header[1:], np.array([[int(v) for v in r[1:]] for r in body])


def test_confusion_of_an_image_classifier(tmp_path, idx_root, with_confusion):
    # data.crop: the model sees centre crops, mistakes.png shows the whole raw images
    overrides = ["data.name=mnist", "train.epochs=1", "data.crop=24", "data.train_subset=64"]
    cfg = build_config("mlp-fashion", overrides)
    path, summary = run(cfg, tmp_path / "runs", "cpu", quiet=True)
    assert summary["status"] == "completed"

    classes, matrix = _read_matrix(path / "confusion.csv")
    assert classes == [str(i) for i in range(10)]
    labels, predicted, confidence = with_confusion["predict_test_split"]
    assert len(labels) == matrix.sum() == 200
    reference = sklearn_confusion(labels.numpy(), predicted.numpy(), labels=range(10))
    np.testing.assert_array_equal(matrix, reference)

    final_test_acc = float(read_csv(path / "metrics.csv")[-1]["test_acc"])
    assert 100 * np.trace(matrix) / matrix.sum() == pytest.approx(final_test_acc, abs=1e-6)

    recorded = json.loads((path / "summary.json").read_text())["hooks"]["confusion"]
    recorded = recorded["per_class_test_acc"]
    assert list(recorded) == classes
    for i, name in enumerate(classes):
        expected = 100 * reference[i, i] / reference[i].sum() if reference[i].sum() else None
        assert recorded[name] == pytest.approx(expected)

    # The confusion picture: one matrix (plus its colour bar), class names on both axes.
    fig = with_confusion["plot_confusion"]
    image = fig.axes[0].images[0].get_array()
    assert np.allclose(image.sum(1), 1.0)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == classes
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == classes
    assert (path / "confusion.png").is_file()

    # Mistakes: the most confidently wrong test images, each under its label, up to 16.
    wrong = int((predicted != labels).sum())
    assert wrong > 0, "one epoch on this data leaves mistakes to show"
    fig = with_confusion["plot_mistakes"]
    titles = _labels(fig)
    assert len(titles) == min(16, wrong)
    assert (path / "mistakes.png").is_file()
    shown = confidence[predicted != labels].sort(descending=True).values[: len(titles)]
    assert all(f"({p:.0%})" in t for p, t in zip(shown.tolist(), titles))
    raw = load_dataset(cfg.data).test_x
    worst = confusion.worst_mistakes(labels, predicted, confidence, 16)
    for i, (title, index) in enumerate(zip(titles, worst.tolist())):
        np.testing.assert_array_equal(_tile(fig, i, raw.shape), raw[index, 0].numpy())
        assert f"true: {classes[labels[index]]}" in title


def _labels(fig) -> list[str]:
    """mistakes.png's labels, one per image, in order."""
    return [t.get_text() for t in fig.axes[0].texts]


def _tile(fig, i: int, shape) -> np.ndarray:
    """The i-th image of mistakes.png's montage, as drawn."""
    top, left = confusion.tile_origin(i, shape, cols=4)
    grid = np.asarray(fig.axes[0].images[0].get_array())
    return grid[top : top + shape[-2], left : left + shape[-1]]


def test_worst_mistakes_come_most_confident_first():
    labels = torch.tensor([0, 1, 2, 1, 0])
    predicted = torch.tensor([1, 1, 0, 0, 0])
    confidence = torch.tensor([0.6, 0.99, 0.9, 0.7, 0.8])
    assert confusion.worst_mistakes(labels, predicted, confidence, 16).tolist() == [2, 3, 0]
    assert confusion.worst_mistakes(labels, predicted, confidence, 2).tolist() == [2, 3]


def test_mistakes_picture_shows_each_image_under_its_classes(tmp_path):
    images = torch.randint(0, 255, (3, 3, 12, 12), dtype=torch.uint8)
    fig = confusion.plot_mistakes(
        images, ["cat", "dog", "ship"], ["dog", "cat", "truck"], [0.9, 0.8, 0.7], tmp_path / "m.png"
    )
    assert _labels(fig) == [
        "true: cat\npredicted: dog (90%)",
        "true: dog\npredicted: cat (80%)",
        "true: ship\npredicted: truck (70%)",
    ]
    grid = np.asarray(fig.axes[0].images[0].get_array())
    outside = np.ones(grid.shape[:2], dtype=bool)
    for i in range(3):  # colour images, whole and in place, on white
        top, left = confusion.tile_origin(i, images.shape, cols=3)
        tile = grid[top : top + 12, left : left + 12]
        np.testing.assert_array_equal(tile, images[i].permute(1, 2, 0))
        outside[top : top + 12, left : left + 12] = False
        x, y = fig.axes[0].texts[i].get_position()  # its label sits just above it
        assert left < x < left + 12 and top - 2 < y <= top
    assert (grid[outside] == 255).all()
    assert (tmp_path / "m.png").is_file()


def test_per_class_accuracy_of_an_absent_class():
    matrix = np.array([[3, 1, 0], [0, 0, 0], [1, 0, 1]])
    assert confusion.per_class_accuracy(matrix, ["a", "b", "c"]) == {
        "a": 75.0,
        "b": None,
        "c": 50.0,
    }


def test_points_get_the_matrix_but_no_mistakes_picture(tmp_path, with_confusion):
    cfg = build_config("1ab-circles-optim", ["train.epochs=2"])
    path, summary = run(cfg, tmp_path / "runs", "cpu", quiet=True)
    classes, matrix = _read_matrix(path / "confusion.csv")
    assert classes == ["outer ring", "inner disk"]
    final_test_acc = summary["final"]["test_acc"]
    assert 100 * np.trace(matrix) / matrix.sum() == pytest.approx(final_test_acc, abs=1e-6)
    assert set(summary["hooks"]["confusion"]["per_class_test_acc"]) == set(classes)
    assert (path / "confusion.png").is_file()
    assert not (path / "mistakes.png").exists()
    assert "plot_mistakes" not in with_confusion
