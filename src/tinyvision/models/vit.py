"""Practical 1-e: the vision transformer, from scratch, read top to bottom.

An image is cut into patches; each patch becomes a token (PatchEmbed); a class token is
prepended and positional embeddings added; transformer blocks (pre-norm multi-head
self-attention, then a GELU MLP, each with a residual connection) mix the tokens; the
class token (or the mean of the tokens) goes through a last LayerNorm to the head.

Parameter names follow timm's `VisionTransformer` (patch_embed.proj, cls_token,
pos_embed, blocks.i.norm1 / attn.qkv / attn.proj / norm2 / mlp.fc1 / mlp.fc2, norm,
head), so timm weights load here (`load_timm_weights`) and give the same outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import DropPath, resample_abs_pos_embed
from torch import nn

from tinyvision.config import ATTENTION_CHOICES
from tinyvision.models.whiten import PatchWhitening

LN_EPS = 1e-6  # timm's LayerNorm epsilon, so that its weights give the same outputs


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, N, D): a convolution with stride = kernel = patch size."""

    def __init__(self, in_chans: int = 1, patch_size: int = 7, embed_dim: int = 32):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ConvStem(nn.Module):
    """(B, C, H, W) -> (B, N, D) like PatchEmbed, through small convolutions instead.

    Each 3x3 stride-2 convolution (batch norm, ReLU) halves the image, doubling the
    channels up to D, until the grid is the patch grid; a 1x1 convolution then projects
    to D ("Early convolutions help transformers see better", Xiao et al., 2021). A
    token then sees its patch through small overlapping filters (and the edge of the
    patch before it) rather than as one hard-cut square: the locality a ViT otherwise has
    to learn from data, which small data sets cannot teach.

    `whiten`: first the frozen 3x3 whitening of the training patches (models/whiten.py,
    2 * 9 * C maps), so the first trained convolution starts from decorrelated features;
    each token then sees one pixel more around its patch.
    """

    def __init__(
        self, in_chans: int = 1, patch_size: int = 4, embed_dim: int = 64, whiten: bool = False
    ):
        super().__init__()
        halvings = patch_size.bit_length() - 1
        if patch_size != 2**halvings or halvings < 1:
            raise ValueError(f"a conv stem needs a power-of-two patch size, got {patch_size}")
        self.patch_size = patch_size
        layers: list[nn.Module] = []
        channels = in_chans
        if whiten:
            layers.append(PatchWhitening(in_chans))
            channels = layers[0].out_channels
        for i in range(halvings):
            width = max(embed_dim >> (halvings - 1 - i), 8)
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.stem = nn.Sequential(*layers)
        self.proj = nn.Conv2d(channels, embed_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.stem(x)).flatten(2).transpose(1, 2)


class MLP(nn.Module):
    """Two linear layers with a GELU between: D -> hidden -> D."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LocalMLP(MLP):
    """The MLP with a 3x3 depthwise convolution over the patch grid between its two
    layers (LocalViT, Li et al., 2021): each hidden feature of a patch also sees the
    same feature of its 8 neighbours. The tokens before the patches skip it."""

    def __init__(self, in_features: int, hidden_features: int, grid: int, num_prefix: int):
        super().__init__(in_features, hidden_features)
        self.grid, self.num_prefix = grid, num_prefix
        self.conv = nn.Conv2d(
            hidden_features, hidden_features, 3, padding=1, groups=hidden_features
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))
        prefix, patches = h[:, : self.num_prefix], h[:, self.num_prefix :]
        b, n, c = patches.shape
        grid = patches.transpose(1, 2).reshape(b, c, self.grid, self.grid)
        patches = self.act(self.conv(grid)).flatten(2).transpose(1, 2)
        return self.fc2(torch.cat([prefix, patches], dim=1))


class SelfAttention(nn.Module):
    """One head: Q = x Wq, K = x Wk, V = x Wv; softmax(Q K^T / sqrt(d)) V; a projection."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.q = nn.Linear(embed_dim, embed_dim)
        self.k = nn.Linear(embed_dim, embed_dim)
        self.v = nn.Linear(embed_dim, embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        return self.proj(attention @ v)


class MultiHeadSelfAttention(nn.Module):
    """h heads of dimension D / h, computed together from one fused qkv projection.

    head_i = softmax(Q_i K_i^T / sqrt(D / h)) V_i ;  out = concat(head_1..head_h) W_o.
    `attention="explicit"` runs exactly these equations (and can keep the attention maps);
    `"fused"` calls `F.scaled_dot_product_attention`, which computes the same thing.
    `"auto"` takes the fused kernel on GPUs and the equations on CPU: there PyTorch's
    fused kernel is the slower one for these short sequences and small heads (under bf16
    autocast it trains 4x slower than the equations on a 2-core AMD EPYC Zen 5 with
    AVX-512 BF16, torch 2.14.1; `benchmarks/attention.py` measures it).
    """

    def __init__(self, embed_dim: int, num_heads: int = 4, attention: str = "auto"):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        if attention not in ATTENTION_CHOICES:
            raise ValueError(f"attention={attention!r}: choose one of {ATTENTION_CHOICES}")
        self.attention_impl = attention
        self.keep_attention = False
        self.attention: torch.Tensor | None = None  # (B, heads, N, N) when kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, heads, N, head_dim)
        if self.keep_attention or not self._fused(x):
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            attention = torch.softmax(scores, dim=-1)
            if self.keep_attention:
                self.attention = attention.detach()
            heads = attention @ v
        else:
            heads = F.scaled_dot_product_attention(q, k, v)
        return self.proj(heads.transpose(1, 2).reshape(b, n, d))

    def _fused(self, x: torch.Tensor) -> bool:
        if self.attention_impl == "auto":
            return x.device.type != "cpu"
        return self.attention_impl == "fused"


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        attention: str = "auto",
        drop_path: float = 0.0,
        local: tuple[int, int] | None = None,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.attn = MultiHeadSelfAttention(embed_dim, num_heads, attention)
        self.norm2 = nn.LayerNorm(embed_dim, eps=LN_EPS)
        # local: (grid side, tokens before the patches) for a LocalMLP; None: the plain MLP
        hidden = int(embed_dim * mlp_ratio)
        self.mlp = MLP(embed_dim, hidden) if local is None else LocalMLP(embed_dim, hidden, *local)
        # Stochastic depth (timm's): in training, each residual branch is dropped for whole
        # samples with probability `drop_path`, the kept ones scaled by 1 / (1 - drop_path)
        # so that the expected output is unchanged and evaluation keeps every branch.
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def get_positional_embeddings(sequence_length: int, d: int) -> torch.Tensor:
    """Sinusoidal embeddings (Vaswani et al.): sin on even dimensions, cos on odd ones.

    PE[i, 2j] = sin(i / 10000^(2j/d)),  PE[i, 2j+1] = cos(i / 10000^(2j/d)).
    """
    position = torch.arange(sequence_length, dtype=torch.float32)[:, None]
    frequency = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    result = torch.zeros(sequence_length, d)
    result[:, 0::2] = torch.sin(position * frequency)
    result[:, 1::2] = torch.cos(position * frequency[: d // 2])
    return result


class ViT(nn.Module):
    def __init__(
        self,
        embed_dim: int = 32,
        nb_blocks: int = 2,
        patch_size: int = 7,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int = 28,
        pos_embed: str = "sinusoidal",
        pool: str = "cls",
        attention: str = "auto",
        registers: int = 0,
        stem: str = "patch",
        drop_path: float = 0.0,
        whiten: bool = False,
        local_mlp: bool = False,
    ):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"patch size {patch_size} does not divide the {img_size} image")
        self.patch_size, self.pool = patch_size, pool
        self.grid = img_size // patch_size
        # Tokens before the patches: the class token (cls pooling only) and `registers`
        # extra learned tokens that every layer can attend to but no pooling reads
        # (Darcet et al., 2024, "Vision Transformers Need Registers"); timm's names.
        self.num_prefix = (1 if pool == "cls" else 0) + registers
        self.num_tokens = self.grid * self.grid + self.num_prefix
        if stem == "conv":
            self.patch_embed = ConvStem(in_chans, patch_size, embed_dim, whiten)
        else:
            self.patch_embed = PatchEmbed(in_chans, patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if pool == "cls" else None
        self.reg_token = nn.Parameter(torch.zeros(1, registers, embed_dim)) if registers else None
        table = get_positional_embeddings(self.num_tokens, embed_dim)[None]
        if pos_embed == "learned":
            self.pos_embed = nn.Parameter(table.clone().normal_(std=0.02))
        else:  # fixed: a buffer, saved with the weights but never trained
            self.register_buffer("pos_embed", table)
        # stochastic depth grows linearly with depth: the first block is never dropped
        local = (self.grid, self.num_prefix) if local_mlp else None
        rates = [drop_path * i / max(nb_blocks - 1, 1) for i in range(nb_blocks)]
        self.blocks = nn.Sequential(
            *[Block(embed_dim, num_heads, mlp_ratio, attention, rate, local) for rate in rates]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes)
        for token in (self.cls_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x)
        prefix = [
            t.expand(len(tokens), -1, -1) for t in (self.cls_token, self.reg_token) if t is not None
        ]
        tokens = torch.cat([*prefix, tokens], dim=1) if prefix else tokens
        return self.norm(self.blocks(tokens + self.pos_embed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.forward_features(x)
        if self.cls_token is not None:
            return self.head(tokens[:, 0])
        return self.head(tokens[:, self.num_prefix :].mean(1))  # the patches only

    def keep_attention(self, keep: bool = True) -> None:
        for block in self.blocks:
            block.attn.keep_attention = keep


def load_timm_weights(model: ViT, state: dict[str, torch.Tensor]) -> list[str]:
    """Load a timm VisionTransformer state dict; returns the keys left out (head, extras).

    The keys and shapes must match ours (asserted), except: the positional embeddings are
    resampled to our grid, the class token (and its position) is dropped when we pool by
    the mean, and the head is dropped when the class count differs.
    """
    ours = model.state_dict()
    state = dict(state)
    if "cls_token" in state and model.cls_token is None and model.reg_token is None:
        state.pop("cls_token")
        grid_tokens = state["pos_embed"].shape[1] if "pos_embed" in state else 0
        if grid_tokens and math.isqrt(grid_tokens - 1) ** 2 == grid_tokens - 1:
            state["pos_embed"] = state["pos_embed"][:, 1:]
    skipped = [k for k in state if k not in ours]  # timm extras (e.g. fc_norm off) or foreign
    for key in skipped:
        state.pop(key)
    if "pos_embed" in state:
        # (1, prefix + g*g, D) -> (1, prefix + grid*grid, D): the patches resized bicubically
        # (antialiased when the grid shrinks), the prefix tokens' positions kept
        state["pos_embed"] = resample_abs_pos_embed(
            state["pos_embed"], [model.grid, model.grid], num_prefix_tokens=model.num_prefix
        )
    if "head.weight" in state and state["head.weight"].shape != ours["head.weight"].shape:
        skipped += ["head.weight", "head.bias"]
        state.pop("head.weight")
        state.pop("head.bias", None)
    for key, value in state.items():
        if value.shape != ours[key].shape:
            raise ValueError(f"{key}: timm has {tuple(value.shape)}, ours {tuple(ours[key].shape)}")
    missing = [k for k in ours if k not in state and not k.startswith("head.")]
    if missing:
        raise ValueError(f"keys missing from the timm weights: {missing}")
    model.load_state_dict(state, strict=False)
    return skipped
