"""Practical 1-cd's extra: `tinyvision fcconv RUN`, a trained course CNN made fully
convolutional (fc4 and fc5 as 4x4 and 1x1 convolutions), and its class-score map."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from tinyvision.data import augment
from tinyvision.data.preprocess import to_float
from tinyvision.errors import UserError
from tinyvision.figures import plt, save_figure
from tinyvision.inference.trained import load_trained
from tinyvision.models.fc_as_conv import FullyConvolutional

PICTURE = "fc_as_conv.png"


class FcConv(NamedTuple):
    picture: Path  # fc_as_conv.png
    difference: float  # largest |fc scores - conv scores| on the model's own input size
    score_shape: tuple[int, ...]  # (classes, H', W') on the mosaic
    mosaic: int  # the mosaic's side: the k x k whole test images that fit in --size


@torch.no_grad()
def show_fc_as_conv(run_folder: Path, size: int) -> FcConv:
    """The trained CNN and its fully convolutional twin: the same scores on the model's
    input size, and a map of class scores on a mosaic of test images (fc_as_conv.png)."""
    trained = load_trained(run_folder, "cnn", "fcconv")
    data, cnn, shape = trained.data, trained.model, trained.input_shape
    side = shape[-1]
    if size < 2 * side:
        raise UserError(f"--size {size}: use at least twice the model's input ({2 * side})")
    fcn = FullyConvolutional(cnn).eval()
    normalize = trained.normalize  # the run's own statistics, not refitted
    images = normalize(to_float(data.test_x[:256]))
    if images.shape[-1] != side:
        images = augment.center_crop(images, side)
    difference = (cnn(images) - fcn(images).flatten(1)).abs().max().item()

    k = size // side  # a k x k mosaic of test images: the score map should follow it
    tiles = images[: k * k]
    canvas = (
        tiles.view(k, k, *tiles.shape[1:])
        .permute(2, 0, 3, 1, 4)
        .reshape(tiles.shape[1], k * side, k * side)
    )
    scores = fcn(canvas[None])[0]  # (classes, H', W')
    _plot(canvas, scores, data, k, side, run_folder / PICTURE)
    return FcConv(run_folder / PICTURE, difference, tuple(scores.shape), k * side)


def _plot(canvas, scores, data, k: int, side: int, path: Path) -> None:
    from matplotlib.patches import Patch

    winners = scores.argmax(0)
    shown = sorted(set(winners.flatten().tolist()))[:4]
    n = len(data.classes)
    colours = plt.get_cmap("tab10" if n <= 10 else "tab20", max(n, 2))
    panels = 2 + len(shown)
    fig, axes = plt.subplots(1, panels, figsize=(3.4 * panels, 4.4))
    picture = canvas.permute(1, 2, 0)
    picture = (picture - picture.min()) / (picture.max() - picture.min() + 1e-8)
    axes[0].imshow(picture.squeeze(-1).numpy(), cmap="gray" if canvas.shape[0] == 1 else None)
    mosaic = k * side
    axes[0].set_title(f"{k}x{k} test images\n({mosaic}x{mosaic} pixels)", fontsize=9)
    rows, cols = winners.shape
    axes[1].imshow(winners.numpy(), cmap=colours, vmin=-0.5, vmax=max(n, 2) - 0.5)
    axes[1].set_title(f"best class per position\n({rows}x{cols} score map)", fontsize=9)
    for ax, c in zip(axes[2:], shown):
        ax.imshow(scores[c].numpy(), cmap="viridis")
        ax.set_title(f"score map:\n{data.classes[c]}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    present = sorted(set(winners.flatten().tolist()))
    handles = [Patch(color=colours(c), label=str(data.classes[c])) for c in present]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 5),
        fontsize=8,
        title="best class (colour)",
        title_fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(handles) - 1) // 5), 1, 1))
    save_figure(fig, path)
    return fig
