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


def plot_curves(rows: Sequence[dict], path: Path | None, title: str = "") -> Figure:
    """Accuracy and loss per epoch, train and test, side by side."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = _column(rows, "epoch")
    for split, style in (("train", "-"), ("test", "--")):
        ax_acc.plot(epochs, _column(rows, f"{split}_acc"), style, marker="o", ms=3, label=split)
        ax_loss.plot(epochs, _column(rows, f"{split}_loss"), style, marker="o", ms=3, label=split)
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
            mean = values.mean(0)
            (line,) = ax.plot(epochs, mean, marker="o", ms=2, label=label)
            if len(runs) > 1:
                std = values.std(0)
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            ax.set(title=name, ylabel=name)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def plot_lr(groups: dict[str, Sequence[dict]], path: Path, title: str = "") -> Figure:
    """The learning rate at the start of each epoch, one line per setting."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rows in groups.items():
        ax.plot(_column(rows, "epoch"), _column(rows, "lr"), marker="o", ms=2, label=label)
    ax.set(xlabel="epoch", ylabel="learning rate", title=title or "learning rate")
    ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
    return fig
