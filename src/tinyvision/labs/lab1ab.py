"""Practical 1-ab's extras: decision boundaries on the circles, and the SVM comparison.

Two run hooks (see `tinyvision.experiment.hooks`): `DecisionBoundary` draws the boundary of
any classifier of 2-D points after every epoch (`decision_boundary.png` and `.gif`);
`SVMComparison`, for `task=svm`, fits scikit-learn's SVMs on the same split after the
MLP has trained and writes their table, C sweep and boundaries beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinyvision import io
from tinyvision.config import Config
from tinyvision.errors import UserError
from tinyvision.experiment.hooks import Hook
from tinyvision.figures import plt, save_figure
from tinyvision.models import svm

GRID_STEPS = np.arange(-2, 2, 0.1)  # the course's grid: [-2, 2) in steps of 0.1, 40 x 40
MAX_GIF_FRAMES = 30
GIF_COLOURS = 64  # one palette for every frame: about half the size of per-frame ones


def grid_points() -> np.ndarray:
    xx, yy = np.meshgrid(GRID_STEPS, GRID_STEPS)
    return np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)


def _contour(ax, image: np.ndarray):
    """The 0.5 contour of the class-1 probability over the grid."""
    centres = GRID_STEPS + (GRID_STEPS[1] - GRID_STEPS[0]) / 2
    return ax.contour(centres, centres, image, levels=[0.5], colors="k", linewidths=1)


def _draw(
    ax,
    prob: np.ndarray,
    points: Sequence[tuple[np.ndarray, np.ndarray, str]],
    title: str,
    support: np.ndarray | None = None,
):
    """Class-1 probability (or score) over the grid, the 0.5 contour, and the points.

    Returns the probability image and its contour, which `save_gif` redraws per frame."""
    step = GRID_STEPS[1] - GRID_STEPS[0]
    extent = (GRID_STEPS[0], GRID_STEPS[-1] + step, GRID_STEPS[0], GRID_STEPS[-1] + step)
    image = prob.reshape(len(GRID_STEPS), -1)
    shown = ax.imshow(image, origin="lower", extent=extent, cmap="RdBu", vmin=0, vmax=1, alpha=0.55)
    contour = _contour(ax, image)
    for x, y, marker in points:
        ax.scatter(
            x[:, 0],
            x[:, 1],
            c=y,
            cmap="RdBu",
            vmin=0,
            vmax=1,
            s=14,
            marker=marker,
            edgecolors="k",
            linewidths=0.3,
        )
    if support is not None:
        ax.scatter(
            support[:, 0],
            support[:, 1],
            s=60,
            facecolors="none",
            edgecolors="gold",
            linewidths=1.2,
            label="support vectors",
        )
        ax.legend(loc="lower right", fontsize="x-small")
    ax.set(xlim=extent[:2], ylim=extent[2:], title=title, aspect="equal")
    return shown, contour


def plot_boundary(prob: np.ndarray, train: tuple, test: tuple, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    _draw(ax, prob, [(*train, "o"), (*test, "^")], title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_panels(panels: list[dict], train: tuple, test: tuple, path: Path) -> None:
    """One panel per classifier: each dict has prob, title and optionally support."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw(
            ax, panel["prob"], [(*train, "o"), (*test, "^")], panel["title"], panel.get("support")
        )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def save_gif(frames: np.ndarray, train: tuple, path: Path, duration_ms: int = 80) -> None:
    """The boundary as it forms: one frame per epoch (subsampled to MAX_GIF_FRAMES)."""
    from PIL import Image

    every = max(1, -(-len(frames) // MAX_GIF_FRAMES))
    chosen = sorted({*range(0, len(frames), every), len(frames) - 1})
    # One figure, laid out once; each frame swaps the image and the contour and renders
    # the canvas. A figure, a layout and a PNG per frame took 6.8 s for 31 frames on a
    # 2-core AVX2-only AMD EPYC Zen 3 (2.3 s so), longer than training a 1-ab run there.
    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    shown, contour = _draw(ax, frames[chosen[-1]], [(*train, "o")], f"epoch {chosen[-1] + 1}")
    fig.tight_layout()
    pictures = []
    for i in chosen:
        image = frames[i].reshape(len(GRID_STEPS), -1)
        shown.set_data(image)
        contour.remove()
        contour = _contour(ax, image)
        ax.set_title(f"epoch {i + 1}")
        fig.canvas.draw()
        pictures.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB"))
    plt.close(fig)
    # The last frame holds every colour the boundary ends with; sharing its palette
    # (without dithering noise) lets the GIF encoder store only what changes.
    palette = pictures[-1].quantize(GIF_COLOURS)
    images = [p.quantize(palette=palette, dither=Image.Dither.NONE) for p in pictures]
    io.atomic_write(
        path,
        lambda tmp: images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=duration_ms,
            loop=0,
        ),
    )


def is_points(data) -> bool:
    """2-D points (the circles), where a classifier's boundary can be drawn."""
    return data.train_x.ndim == 2 and data.train_x.shape[1] == 2


def _splits(data) -> tuple[tuple, tuple]:
    return (data.train_x.numpy(), data.train_y.numpy()), (data.test_x.numpy(), data.test_y.numpy())


@torch.inference_mode()
def boundary_probabilities(exp, grid: torch.Tensor) -> np.ndarray:
    """The trained classifier's class-1 probability over the grid."""
    return torch.softmax(exp.learner.predict(grid).float(), 1)[:, 1].cpu().numpy()


class DecisionBoundary(Hook):
    """The class-1 probability over the course's grid after every epoch (2-D data only)."""

    name = "decision_boundary"

    @classmethod
    def applies(cls, cfg: Config, data) -> bool:
        return is_points(data)

    def __init__(self, exp) -> None:
        super().__init__(exp)
        self.grid = torch.from_numpy(grid_points()).to(exp.learner.device)
        self.frames: list[np.ndarray] = []

    def on_epoch_end(self, exp, folder: Path, row: dict) -> None:
        self.frames.append(boundary_probabilities(exp, self.grid))

    def state(self) -> dict[str, Any]:
        return {"frames": torch.from_numpy(np.stack(self.frames)) if self.frames else None}

    def load(self, state: dict[str, Any]) -> None:
        frames = state.get("frames")
        self.frames = list(frames.numpy()) if frames is not None else []

    def on_finish(self, exp, folder: Path, status: str) -> dict[str, Any]:
        if not self.frames:
            return {}
        train, test = _splits(exp.data)
        title = f"decision boundary after {len(self.frames)} epochs"
        plot_boundary(self.frames[-1], train, test, folder / "decision_boundary.png", title)
        save_gif(np.stack(self.frames), train, folder / "decision_boundary.gif")
        return {}


# --- the SVM comparison -----------------------------------------------------------------

TABLE_COLUMNS = ("kernel", "C", "train_acc", "test_acc", "n_support")
# svm_c_boundaries.png: the kernel whose boundary shows the C trade-off (it can follow the
# rings: a small C smooths it and keeps many support vectors, a large one bends it)
C_PANELS_KERNEL = "rbf"


class SVMComparison(Hook):
    """`task=svm`: after the MLP trains, the SVMs on the same split, into its folder."""

    name = "svm_comparison"

    @classmethod
    def applies(cls, cfg: Config, data) -> bool:
        if cfg.task != "svm":
            return False
        if not is_points(data):
            raise UserError("task=svm compares on 2-D points: use data.name=circles")
        return True

    def on_finish(self, exp, folder: Path, status: str) -> dict[str, Any]:
        if status != "completed":
            return {}
        grid = torch.from_numpy(grid_points()).to(exp.learner.device)
        return run_svm_comparison(exp.data, boundary_probabilities(exp, grid), folder)


def run_svm_comparison(data, mlp_probability, folder: Path) -> dict:
    """svm.csv (C = 1), svm_c_sweep.csv and .png, svm_boundaries.png (with the MLP's),
    svm_c_boundaries.png (the RBF SVM's boundary for each C)."""
    train = (data.train_x.numpy(), data.train_y.numpy())
    test = (data.test_x.numpy(), data.test_y.numpy())
    grid = grid_points()
    table, panels = [], []
    for kernel in svm.KERNELS:
        row, model = svm.fit_score(kernel, 1.0, train, test)
        table.append(row)
        support = getattr(model, "support_vectors_", None)
        panels.append(
            {
                "prob": svm.decision_probability(model, grid),
                "support": support,
                "title": f"{kernel} (C=1): test {row['test_acc']:.1f}%",
            }
        )
    panels.append({"prob": mlp_probability, "title": "MLP (1-ab, course defaults)"})
    sweep, c_panels = [], []
    for kernel in svm.KERNELS:
        for C in svm.C_VALUES:
            row, model = svm.fit_score(kernel, C, train, test)
            sweep.append(row)
            if kernel == C_PANELS_KERNEL:
                c_panels.append(_c_panel(row, model, grid))
    io.write_csv(folder / "svm.csv", TABLE_COLUMNS, table)
    io.write_csv(folder / "svm_c_sweep.csv", TABLE_COLUMNS, sweep)
    plot_panels(panels, train, test, folder / "svm_boundaries.png")
    plot_panels(c_panels, train, test, folder / "svm_c_boundaries.png")
    _plot_c_sweep(sweep, folder / "svm_c_sweep.png")
    return {"svm": table, "svm_c_sweep": sweep}


def _c_panel(row: dict, model, grid: np.ndarray) -> dict:
    """One C's boundary, with its train and test accuracy and its support vectors."""
    return {
        "prob": svm.decision_probability(model, grid),
        "support": getattr(model, "support_vectors_", None),
        "title": (
            f"{row['kernel']} C={row['C']:g}: train {row['train_acc']:.1f}%, "
            f"test {row['test_acc']:.1f}%\n{row['n_support']} support vectors"
        ),
    }


def _plot_c_sweep(rows: list[dict], path: Path) -> None:
    fig, (ax_acc, ax_sv) = plt.subplots(1, 2, figsize=(10, 4))
    for kernel in svm.KERNELS:
        mine = [r for r in rows if r["kernel"] == kernel]
        cs = [r["C"] for r in mine]
        ax_acc.plot(cs, [r["test_acc"] for r in mine], marker="o", label=f"{kernel} test")
        ax_acc.plot(cs, [r["train_acc"] for r in mine], ls=":", color=ax_acc.lines[-1].get_color())
        if mine[0]["n_support"] != "":
            ax_sv.plot(cs, [r["n_support"] for r in mine], marker="o", label=kernel)
    ax_acc.set(
        xscale="log", xlabel="C", ylabel="accuracy (%)", title="accuracy against C (dotted: train)"
    )
    ax_sv.set(xscale="log", xlabel="C", ylabel="support vectors", title="support vectors")
    for ax in (ax_acc, ax_sv):
        ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
