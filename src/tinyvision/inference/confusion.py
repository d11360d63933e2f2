"""What a classifier gets wrong: the confusion matrix and its worst mistakes on the test split.

A run hook every classifier gets (any model, any data with classes). When a run
completes, the final model classifies the test split through the run's own test loader,
exactly as the last row of metrics.csv was measured, and the run folder gets:

- `confusion.csv`: counts, one row per true class, one column per predicted class;
- `confusion.png`: the same matrix with each row divided by its true class's count;
- `hooks.confusion.per_class_test_acc` in summary.json: {class name: test accuracy in percent};
- `mistakes.png` (image data only): the test images the model got wrong with the
  highest probability, up to 16, with their true and predicted classes.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tinyvision.config import Config
from tinyvision.experiment.hooks import Hook
from tinyvision.figures import plt, save_figure
from tinyvision.io import write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tinyvision.data.datasets import Dataset
    from tinyvision.experiment.parts import Experiment

CONFUSION_CSV, CONFUSION_PNG, MISTAKES_PNG = "confusion.csv", "confusion.png", "mistakes.png"
CORNER = "true \\ predicted"  # the header of the class-name column of confusion.csv
MAX_MISTAKES = 16
MAX_ANNOTATED_CLASSES = 20  # beyond this the cells are too small for their numbers


@torch.inference_mode()
def predict_test_split(exp: Experiment) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """True classes, predicted classes and the predicted class's probability, on the CPU,
    in the test loader's order (it does not shuffle: the order of `data.test_x`)."""
    learner = exp.learner
    learner.model.eval()
    labels, predicted, confidence = [], [], []
    for x, y in exp.test_loader:
        logits = learner.infer(x)
        # The very call metrics.csv's accuracy makes, so that ties are broken the same way.
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices[:, 0]
        probability = torch.softmax(logits.float(), 1).gather(1, top[:, None])[:, 0]
        labels.append(y)
        predicted.append(top)
        confidence.append(probability)
    return torch.cat(labels).cpu(), torch.cat(predicted).cpu(), torch.cat(confidence).cpu()


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    pairs = labels.long() * classes + predicted.long()
    return torch.bincount(pairs, minlength=classes * classes).view(classes, classes).numpy()


def per_class_accuracy(matrix: np.ndarray, classes: list[str]) -> dict[str, float | None]:
    """Test accuracy (percent) of each true class; None for a class with no test examples."""
    totals = matrix.sum(1)
    return {
        name: (100.0 * float(matrix[i, i]) / float(totals[i]) if totals[i] else None)
        for i, name in enumerate(classes)
    }


def worst_mistakes(
    labels: torch.Tensor, predicted: torch.Tensor, confidence: torch.Tensor, limit: int
) -> torch.Tensor:
    """Indices of the wrong predictions made with the highest probability, highest first."""
    wrong = (predicted != labels).nonzero()[:, 0]
    order = torch.sort(confidence[wrong], descending=True, stable=True).indices
    return wrong[order[:limit]]


def write_confusion_csv(matrix: np.ndarray, classes: list[str], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([CORNER, *classes])
    for name, row in zip(classes, matrix):
        writer.writerow([name, *(int(v) for v in row)])
    write_text(path, buffer.getvalue())


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path) -> Figure:
    """The matrix normalized per true class (each row sums to 1), class names on the axes."""
    totals = matrix.sum(1, keepdims=True)
    rates = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    n = len(classes)
    side = min(max(4.0, 0.55 * n + 2.5), 16.0)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    shown = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= MAX_ANNOTATED_CLASSES:
        for i in range(n):
            for j in range(n):
                colour = "white" if rates[i, j] > 0.5 else "black"
                text = f"{100 * rates[i, j]:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(n), labels=classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels=classes, fontsize=8)
    ax.grid(False)
    accuracy = 100 * np.trace(matrix) / max(matrix.sum(), 1)
    ax.set(
        xlabel="predicted class",
        ylabel="true class",
        title=f"test confusion (%, per true class): accuracy {accuracy:.2f}%",
    )
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def tile_origin(i: int, shape: tuple[int, ...], cols: int) -> tuple[int, int]:
    """Top-left pixel (row, column) of the i-th image in `plot_mistakes`'s montage."""
    h, w = shape[-2:]
    r, c = divmod(i, cols)
    return r * (h + _band(h)) + _band(h), c * (w + _gap(w))


def _band(h: int) -> int:  # the space above each image, for its two lines of labels
    return max(1, round(0.3 * h))


def _gap(w: int) -> int:
    return max(1, round(0.1 * w))


def montage(images: torch.Tensor, cols: int) -> np.ndarray:
    """The images (uint8, N x C x H x W) tiled `cols` to a row on white, as one picture:
    H x W for grey images, H x W x 3 for colour ones."""
    count, channels, h, w = images.shape
    rows = -(-count // cols)
    last = tile_origin(rows * cols - 1, images.shape, cols)
    size = (last[0] + h, last[1] + w)
    grid = np.full((*size, channels), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        top, left = tile_origin(i, images.shape, cols)
        grid[top : top + h, left : left + w] = image.permute(1, 2, 0).numpy()
    return grid[..., 0] if channels == 1 else grid


def plot_mistakes(
    images: torch.Tensor,
    true_names: list[str],
    predicted_names: list[str],
    confidence: list[float],
    path: Path,
) -> Figure:
    """The images (uint8, C x H x W, as the dataset holds it), 4 to a row, each under its
    true and predicted class.

    One picture with the labels written on it, not one panel per image: sixteen matplotlib
    axes cost over a second to build and draw, and this runs at the end of every run.
    """
    count, _, h, w = images.shape
    cols = min(4, count)
    grid = montage(images, cols)
    fig = plt.figure(figsize=(2.3 * cols, 2.3 * cols * grid.shape[0] / grid.shape[1] + 0.4))
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.5 / fig.get_figheight()))
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255)
    ax.set_anchor("N")  # any spare height goes below the images, not under the title
    ax.axis("off")
    for i in range(count):
        top, left = tile_origin(i, images.shape, cols)
        label = f"true: {true_names[i]}\npredicted: {predicted_names[i]} ({confidence[i]:.0%})"
        ax.text(left + w / 2, top - 0.5, label, ha="center", va="bottom", fontsize=8)
    fig.suptitle("the test images the model is most sure of, and wrong", y=0.995, va="top")
    save_figure(fig, path)
    return fig


def is_images(data: Dataset) -> bool:
    return data.test_x.ndim == 4


class ConfusionMatrix(Hook):
    """Every classifier: confusion.csv / .png, per-class test accuracy, mistakes.png."""

    name = "confusion"

    @classmethod
    def applies(cls, cfg: Config, data: Dataset) -> bool:
        return data.num_classes >= 2

    def on_finish(self, exp: Experiment, folder: Path, status: str) -> dict[str, Any]:
        # Only a completed run: a diverged model has no meaningful classes, and the model of
        # an interrupted one is mid-epoch (resuming it completes it, and then we run).
        if status != "completed":
            return {}
        classes = list(exp.data.classes)
        labels, predicted, confidence = predict_test_split(exp)
        matrix = confusion_matrix(labels, predicted, len(classes))
        write_confusion_csv(matrix, classes, folder / CONFUSION_CSV)
        plot_confusion(matrix, classes, folder / CONFUSION_PNG)
        if is_images(exp.data) and len(labels) == len(exp.data.test_x):
            worst = worst_mistakes(labels, predicted, confidence, MAX_MISTAKES)
            if len(worst):  # a perfect model has nothing to show
                plot_mistakes(
                    exp.data.test_x[worst].cpu(),
                    [classes[i] for i in labels[worst].tolist()],
                    [classes[i] for i in predicted[worst].tolist()],
                    confidence[worst].tolist(),
                    folder / MISTAKES_PNG,
                )
        return {"per_class_test_acc": per_class_accuracy(matrix, classes)}
