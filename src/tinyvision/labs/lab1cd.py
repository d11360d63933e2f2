"""Practical 1-cd's extra: `tinyvision fcconv RUN`, a trained course CNN made fully
convolutional (fc4 and fc5 as 4x4 and 1x1 convolutions), and its class-score map."""

from __future__ import annotations

from pathlib import Path

import torch

from tinyvision.data import augment
from tinyvision.data.preprocess import to_float
from tinyvision.errors import UserError
from tinyvision.figures import plt, save_figure
from tinyvision.inference.trained import load_trained
from tinyvision.models.fc_as_conv import FullyConvolutional

PICTURE = "fc_as_conv.png"


@torch.no_grad()
def show_fc_as_conv(run_folder: Path, size: int) -> tuple[Path, float, tuple[int, ...]]:
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
    _plot(canvas, scores, data, k, run_folder / PICTURE)
    return run_folder / PICTURE, difference, tuple(scores.shape)


def _plot(canvas, scores, data, k, path: Path) -> None:
    winners = scores.argmax(0)
    shown = sorted(set(winners.flatten().tolist()))[:4]
    fig, axes = plt.subplots(1, 2 + len(shown), figsize=(3.2 * (2 + len(shown)), 3.4))
    picture = canvas.permute(1, 2, 0)
    picture = (picture - picture.min()) / (picture.max() - picture.min() + 1e-8)
    axes[0].imshow(picture.squeeze(-1).numpy(), cmap="gray" if canvas.shape[0] == 1 else None)
    axes[0].set_title(f"{k}x{k} test images")
    axes[1].imshow(winners.numpy(), cmap="tab10", vmin=0, vmax=9)
    axes[1].set_title("best class per position")
    for ax, c in zip(axes[2:], shown):
        ax.imshow(scores[c].numpy(), cmap="viridis")
        ax.set_title(f"score map: {data.classes[c]}")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)
