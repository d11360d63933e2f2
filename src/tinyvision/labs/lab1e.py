"""Practical 1-e's extra, `tinyvision attention RUN`: what a trained ViT looks at, and
how it sees an image.

- positional_embedding.png: the positional embedding table (tokens x dimensions), and
  the cosine similarity between the patch positions' embeddings;
- patch_grid.png: test images cut into the model's patches;
- attention_maps.png: per test image, the class token's attention to the patches (with
  mean pooling: the attention each patch receives, averaged over the tokens) for every
  layer and head, and the attention rollout (Abnar and Zuidema, 2020): the
  head-averaged attention plus identity, row-normalised, multiplied through the layers.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from tinyvision.data.preprocess import to_float
from tinyvision.figures import plt, save_figure
from tinyvision.inference.trained import load_trained
from tinyvision.models.vit import ViT


def attention_rollout(attentions: list[torch.Tensor]) -> torch.Tensor:
    """(B, N, N) rollout from per-layer (B, heads, N, N) attention maps."""
    result = None
    for attention in attentions:
        a = attention.mean(1)
        a = a + torch.eye(a.shape[-1])
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    return result


@torch.no_grad()
def draw_vit_pictures(run_folder: Path, count: int = 4) -> list[Path]:
    trained = load_trained(run_folder, "vit", "attention")
    data, model = trained.data, trained.model
    images = data.test_x[:count]
    x = trained.normalize(to_float(images))  # the run's own statistics, not refitted
    model.keep_attention(True)
    predictions = model(x).argmax(1)
    attentions = [block.attn.attention for block in model.blocks]
    model.keep_attention(False)
    paths = [
        run_folder / n for n in ("positional_embedding.png", "patch_grid.png", "attention_maps.png")
    ]
    _plot_positions(model, paths[0])
    _plot_patches(images, model.patch_size, paths[1])
    _plot_attention(images, attentions, model, predictions, data.classes, paths[2])
    return paths


def _plot_positions(model: ViT, path: Path) -> None:
    table = model.pos_embed[0]
    patches = F.normalize(table[model.num_prefix :], dim=1)
    similarity = patches @ patches.T
    fig, (ax_table, ax_sim) = plt.subplots(1, 2, figsize=(11, 4))
    ax_table.imshow(table.numpy(), aspect="auto", cmap="RdBu")
    token = f"token (first {model.num_prefix}: class, registers)" if model.num_prefix else "token"
    ax_table.set(title="positional embedding", xlabel="dimension", ylabel=token)
    middle = len(patches) // 2 + model.grid // 2
    ax_sim.imshow(similarity[middle].reshape(model.grid, model.grid).numpy(), cmap="viridis")
    ax_sim.set(title=f"cosine similarity to patch {middle}", xticks=[], yticks=[])
    fig.tight_layout()
    save_figure(fig, path)


def _show(ax, image: torch.Tensor) -> None:
    picture = image.permute(1, 2, 0).squeeze(-1).numpy()
    ax.imshow(picture, cmap="gray" if image.shape[0] == 1 else None)
    ax.set_xticks([])
    ax.set_yticks([])


def _plot_patches(images: torch.Tensor, patch: int, path: Path) -> None:
    fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3), squeeze=False)
    for ax, image in zip(axes[0], images):
        _show(ax, image)
        for edge in range(patch, image.shape[-1], patch):
            ax.axhline(edge - 0.5, color="red", lw=0.8)
            ax.axvline(edge - 0.5, color="red", lw=0.8)
    fig.suptitle(f"{patch}x{patch} patches")
    fig.tight_layout()
    save_figure(fig, path)


def _plot_attention(images, attentions, model: ViT, predictions, classes, path: Path) -> None:
    layers, heads = len(attentions), attentions[0].shape[1]
    rollout = attention_rollout(attentions)
    cols = 2 + layers * heads
    fig, axes = plt.subplots(
        len(images), cols, figsize=(1.8 * cols, 1.9 * len(images)), squeeze=False
    )
    size = images.shape[-1]

    def overlay(ax, weights: torch.Tensor, title: str) -> None:
        grid = weights.reshape(1, 1, model.grid, model.grid)
        ax.imshow(
            F.interpolate(grid, size=(size, size), mode="nearest")[0, 0].numpy(), cmap="inferno"
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=7)

    def read_out(attention: torch.Tensor) -> torch.Tensor:
        """What the pooled output reads from each patch: the class token's row, or (mean
        pooling) the average of every token's row."""
        prefix = model.num_prefix
        rows = attention[0] if model.cls_token is not None else attention[prefix:].mean(0)
        return rows[prefix:]

    for row, image in enumerate(images):
        _show(axes[row, 0], image)
        axes[row, 0].set_title(f"predicted {classes[predictions[row]]}", fontsize=7)
        overlay(axes[row, 1], read_out(rollout[row]), "rollout")
        for layer in range(layers):
            for head in range(heads):
                weights = read_out(attentions[layer][row, head])
                overlay(axes[row, 2 + layer * heads + head], weights, f"L{layer + 1} H{head + 1}")
    reader = "class-token" if model.cls_token is not None else "mean-pooled"
    fig.suptitle(f"{reader} attention per layer (L) and head (H)")
    fig.tight_layout()
    save_figure(fig, path)
