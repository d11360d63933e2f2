"""Figures: the one place that sets up matplotlib, and the standard records' figures.

Every picture tinyvision draws goes through here: `plt` is matplotlib headless (figures
are files, never windows) with the house style, and `save_figure` writes atomically and
frees the figure. The figures every run and sweep writes live here too: a run's curves,
a sweep's four-panel comparison, the learning rate per epoch. Each returns its figure,
saved and closed but still holding its axes and lines, so tests can check what is drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

# Headless: figures are files, never windows. In a Jupyter kernel its own inline backend
# (headless too) stays, so that the figures the API returns show in the notebook.
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # before pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.layout_engine import PlaceHolderLayoutEngine  # noqa: E402

from tinyvision import io  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

plt.rcParams.update({"axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 110})
DPI = 110


def save_figure(fig, path: Path | None) -> None:
    """Write the figure atomically (format from the suffix), then free it. With no path
    it is only freed from pyplot: still drawable, e.g. as a notebook cell's result."""
    if path is None:
        plt.close(fig)
        return
    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        # What `tight_layout()` leaves behind: its layout is done, but savefig would lay
        # the whole figure out once more before drawing it (a third of a figure's time).
        fig.set_layout_engine(None)
    try:
        io.atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=DPI))
    finally:
        plt.close(fig)


PANELS = (
    ("train_acc", "train accuracy (%)"),
    ("test_acc", "test accuracy (%)"),
    ("train_loss", "train loss"),
    ("test_loss", "test loss"),
)


def _column(rows: Sequence[dict], key: str) -> np.ndarray:
    return np.array([float(r[key]) for r in rows])


def _measured(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points with a value: an epoch whose test pass was skipped (train.eval_every)
    holds NaN, which would cut the line; the measured points are joined across it."""
    kept = ~np.isnan(y)
    return x[kept], y[kept]


def plot_curves(rows: Sequence[dict], path: Path | None, title: str = "") -> Figure:
    """Accuracy and loss per epoch, train and test, side by side. Epoch 0, when recorded,
    is the untrained model (chance accuracy, loss about ln of the class count)."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = _column(rows, "epoch")
    for split, style in (("train", "-"), ("test", "--")):
        for ax, key in ((ax_acc, f"{split}_acc"), (ax_loss, f"{split}_loss")):
            ax.plot(*_measured(epochs, _column(rows, key)), style, marker="o", ms=3, label=split)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    for ax in (ax_acc, ax_loss):
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_comparison(
    groups: dict[str, list[Sequence[dict]]], path: Path | None, title: str = ""
) -> Figure:
    """Four panels (train/test accuracy, train/test loss), one line per setting.

    `groups` maps a setting's label to the metrics rows of its runs (one per seed); the
    line is their mean and the band their spread.
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for label, runs in groups.items():
        length = min(len(r) for r in runs)
        if length == 0:
            continue
        epochs = _column(runs[0][:length], "epoch")
        for ax, (key, name) in zip(axes.flat, PANELS):
            values = np.stack([_column(r[:length], key) for r in runs])
            x, mean = _measured(epochs, values.mean(0))
            (line,) = ax.plot(x, mean, marker="o", ms=2, label=label)
            if len(runs) > 1:
                std = _measured(epochs, values.std(0))[1]
                ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            ax.set(title=name, ylabel=name)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_lr(groups: dict[str, Sequence[dict]], path: Path | None, title: str = "") -> Figure:
    """The learning rate at the start of each epoch, one line per schedule: settings with
    the same schedule share a line and its label ("vit, cnn, mlp"), since one line drawn
    over another would hide it."""
    fig, ax = plt.subplots(figsize=(7, 4))
    schedules: dict[tuple, list[str]] = {}
    for label, rows in groups.items():
        rows = [r for r in rows if float(r["epoch"]) >= 1]  # epoch 0 trains nothing
        key = (tuple(_column(rows, "epoch")), tuple(_column(rows, "lr")))
        schedules.setdefault(key, []).append(label)
    for (epochs, lrs), labels in schedules.items():
        ax.plot(epochs, lrs, marker="o", ms=2, label=", ".join(labels))
    ax.set(xlabel="epoch", ylabel="learning rate", title=title or "learning rate")
    ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def _mosaic(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, C, H, W) -> one (rows * H, columns * W, C) picture, 1-pixel gaps, each image
    stretched to [0, 1] on its own (normalized or whitened values are not pixels)."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1, c), 0.5)  # grey gaps
    for i, image in enumerate(images):
        low, high = image.min(), image.max()
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
        r, k = divmod(i, columns)
        canvas[r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = image.transpose(
            1, 2, 0
        )
    return canvas


def plot_image_pairs(
    before, after, path: Path | None, titles: tuple[str, str] = ("before", "after")
) -> Figure:
    """Two grids of images side by side: a batch before a transform and after it."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 5), layout="constrained")
    columns = max(1, int(np.ceil(np.sqrt(len(before)))))
    for ax, images, title in zip(axes, (before, after), titles):
        picture = _mosaic(np.asarray(images, dtype=np.float64), columns)
        grey = picture.shape[-1] == 1
        ax.imshow(picture[..., 0] if grey else picture, cmap="gray" if grey else None)
        size = "x".join(map(str, np.asarray(images).shape[-2:]))
        ax.set_title(f"{title}\n{len(images)} images, {size}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    save_figure(fig, path)
    return fig
