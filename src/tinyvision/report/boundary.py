"""Decision boundaries of 2-D classifiers: the course's grid, a PNG and an animated GIF."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from tinyvision.runs.files import atomic_write, save_figure  # noqa: E402

GRID_STEPS = np.arange(-2, 2, 0.1)  # the course's grid: [-2, 2) in steps of 0.1, 40 x 40
MAX_GIF_FRAMES = 60


def grid_points() -> np.ndarray:
    xx, yy = np.meshgrid(GRID_STEPS, GRID_STEPS)
    return np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)


def _draw(
    ax,
    prob: np.ndarray,
    points: Sequence[tuple[np.ndarray, np.ndarray, str]],
    title: str,
    support: np.ndarray | None = None,
) -> None:
    """Class-1 probability (or score) over the grid, the 0.5 contour, and the points."""
    step = GRID_STEPS[1] - GRID_STEPS[0]
    extent = (GRID_STEPS[0], GRID_STEPS[-1] + step, GRID_STEPS[0], GRID_STEPS[-1] + step)
    image = prob.reshape(len(GRID_STEPS), -1)
    ax.imshow(image, origin="lower", extent=extent, cmap="RdBu", vmin=0, vmax=1, alpha=0.55)
    centres = GRID_STEPS + step / 2
    ax.contour(centres, centres, image, levels=[0.5], colors="k", linewidths=1)
    for x, y, marker in points:
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu", vmin=0, vmax=1, s=14,
                   marker=marker, edgecolors="k", linewidths=0.3)  # fmt: skip
    if support is not None:
        ax.scatter(support[:, 0], support[:, 1], s=60, facecolors="none",
                   edgecolors="gold", linewidths=1.2, label="support vectors")  # fmt: skip
        ax.legend(loc="lower right", fontsize="x-small")
    ax.set(xlim=extent[:2], ylim=extent[2:], title=title, aspect="equal")


def plot_boundary(prob: np.ndarray, train: tuple, test: tuple, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    _draw(ax, prob, [(*train, "o"), (*test, "^")], title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_panels(panels: list[dict], train: tuple, test: tuple, path: Path) -> None:
    """One panel per classifier: each dict has prob, title and optionally support."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw(ax, panel["prob"], [(*train, "o"), (*test, "^")], panel["title"],
              panel.get("support"))  # fmt: skip
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def save_gif(frames: np.ndarray, train: tuple, path: Path, duration_ms: int = 80) -> None:
    """The boundary as it forms: one frame per epoch (subsampled to MAX_GIF_FRAMES)."""
    from PIL import Image

    every = max(1, -(-len(frames) // MAX_GIF_FRAMES))
    chosen = sorted({*range(0, len(frames), every), len(frames) - 1})
    images = []
    for i in chosen:
        fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
        _draw(ax, frames[i], [(*train, "o")], f"epoch {i + 1}")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        images.append(Image.open(buffer).convert("P", palette=Image.Palette.ADAPTIVE))
    atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0,
    ))  # fmt: skip


class BoundaryRecorder:
    """Records the class-1 probability over the grid after every epoch (2-D data only)."""

    def __init__(self, data, device: torch.device):
        self.data = data
        self.grid = torch.from_numpy(grid_points()).to(device)
        self.frames: list[np.ndarray] = []

    def on_epoch_end(self, predict: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.frames.append(self.probabilities(predict))

    @torch.inference_mode()
    def probabilities(self, predict) -> np.ndarray:
        return torch.softmax(predict(self.grid).float(), 1)[:, 1].cpu().numpy()

    def state(self) -> dict:
        return {"boundary_frames": torch.from_numpy(np.stack(self.frames)) if self.frames else None}

    def load(self, state: dict) -> None:
        frames = state.get("boundary_frames")
        self.frames = list(frames.numpy()) if frames is not None else []

    def finish(self, folder: Path) -> None:
        if not self.frames:
            return
        d = self.data
        train = (d.train_x.numpy(), d.train_y.numpy())
        test = (d.test_x.numpy(), d.test_y.numpy())
        title = f"decision boundary after {len(self.frames)} epochs"
        plot_boundary(self.frames[-1], train, test, folder / "decision_boundary.png", title)
        save_gif(np.stack(self.frames), train, folder / "decision_boundary.gif")
