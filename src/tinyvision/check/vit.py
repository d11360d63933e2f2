"""Checks of practical 1-e's pieces: attention, multi-head attention, the block, the patch
embedding, the positional embedding and the ViT.

The student's module is built with the case's sizes, given the reference's weights (by
name when the names are tinyvision's, else parameter by parameter in the order the
docstring gives), and both run in float64 on the same seeded tokens or images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from tinyvision.check.core import (
    Failure,
    Result,
    StudentError,
    as_tensor,
    call,
    cases_line,
    compare,
    run_check,
)
from tinyvision.models import vit as ref


def _build(cls: type, *args, **kwargs) -> nn.Module:
    try:
        module = cls(*args, **kwargs)
    except Exception as error:
        raise StudentError(error) from None
    if not isinstance(module, nn.Module):
        raise Failure(f"{getattr(cls, '__name__', cls)!s}(...) is not an nn.Module")
    return module


def _shapes(params) -> str:
    return ", ".join(f"{name} {tuple(p.shape)}" for name, p in params)


def load_reference_weights(theirs: nn.Module, mine: nn.Module, skip: Callable = lambda n: False):
    """Give `theirs` the weights of `mine`: by name if they match, else in order.

    In order, each parameter takes the next of ours with as many values (reshaped): a
    Linear on flattened patches matches a Conv2d, a (D,) class token a (1, 1, D) one.
    """
    ours, state = mine.state_dict(), theirs.state_dict()
    if state.keys() == ours.keys() and all(state[k].shape == ours[k].shape for k in ours):
        theirs.load_state_dict(ours)
        return
    their_params = [(n, p) for n, p in theirs.named_parameters() if not skip(n)]
    our_params = list(mine.named_parameters())
    sizes = [p.numel() for _, p in their_params], [p.numel() for _, p in our_params]
    if sizes[0] != sizes[1]:
        cause = "the layers are not those of the docstring, or not created in its order"
        if len(sizes[0]) != len(sizes[1]):
            raise Failure(
                f"it has {len(sizes[0])} parameter tensors, expected {len(sizes[1])}: "
                f"{_shapes(our_params[:6])}{', ...' if len(our_params) > 6 else ''}",
                cause,
            )
        i = next(i for i, (a, b) in enumerate(zip(*sizes)) if a != b)
        raise Failure(
            f"its parameter {i + 1}, {_shapes(their_params[i : i + 1])}, should be "
            f"{_shapes(our_params[i : i + 1])} (in the docstring's order)",
            cause,
        )
    with torch.no_grad():
        for (_, p), (_, q) in zip(their_params, our_params):
            p.copy_(q.reshape(p.shape))


def _given_our_weights(cls: type, mine: nn.Module, *args) -> nn.Module:
    """The student's module built with `args`, in float64, given the weights of `mine`."""
    theirs = _build(cls, *args).double()
    load_reference_weights(theirs, mine)
    return theirs


def _match_layernorm_eps(theirs: nn.Module, mine: nn.Module) -> None:
    """nn.LayerNorm's default eps (1e-5) is as right as timm's (1e-6): use theirs."""
    their_norms = [m for m in theirs.modules() if isinstance(m, nn.LayerNorm)]
    our_norms = [m for m in mine.modules() if isinstance(m, nn.LayerNorm)]
    if len(their_norms) == len(our_norms):
        for t, o in zip(their_norms, our_norms):
            o.eps = t.eps


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    try:
        with torch.no_grad():
            out = module(x.clone())
    except Exception as error:
        raise StudentError(error) from None
    return as_tensor(out, "the output")


def _tokens(shape, g):
    return torch.randn(*shape, generator=g, dtype=torch.float64) * 2


def _qkv_attention(q, k, v, scale, dim=-1):
    return torch.softmax(q @ k.transpose(-2, -1) * scale, dim=dim) @ v


def attention(cls: type) -> Result:
    def body(cls):
        g = torch.Generator().manual_seed(6)
        cases = [
            ("2 x 5 tokens of 8", (2, 5, 8)),
            ("a batch of one token", (1, 1, 4)),
            ("3 x 4 tokens of 16", (3, 4, 16)),
        ]
        for name, shape in cases:
            d = shape[-1]
            torch.manual_seed(0)
            mine = ref.SelfAttention(d).double()
            theirs = _given_our_weights(cls, mine, d)
            x = _tokens(shape, g)
            got = _run(theirs, x)
            with torch.no_grad():
                expected = mine(x)
                q, k, v = mine.q(x), mine.k(x), mine.v(x)
                variants = [
                    (
                        "attention without the 1/sqrt(d) scale",
                        lambda: mine.proj(_qkv_attention(q, k, v, 1)),
                    ),
                    (
                        "scaled by 1/d: the scale is 1/sqrt(d)",
                        lambda: mine.proj(_qkv_attention(q, k, v, 1 / d)),
                    ),
                    (
                        "the softmax runs over the queries (dim=-2): it runs over the keys "
                        "(dim=-1)",
                        lambda: mine.proj(_qkv_attention(q, k, v, d**-0.5, dim=-2)),
                    ),
                    (
                        "the output projection proj is missing",
                        lambda: _qkv_attention(q, k, v, d**-0.5),
                    ),
                ]
                compare("the output", got, expected, name, variants)
        return cases_line([c[0] for c in cases])

    return run_check("attention", cls, body)


def _mhsa_variants(mine: ref.MultiHeadSelfAttention, x: torch.Tensor):
    b, n, d = x.shape
    h, hd = mine.num_heads, mine.head_dim
    qkv = mine.qkv(x)

    def heads(order: str):
        if order == "3hd":
            t = qkv.view(b, n, 3, h, hd).permute(2, 0, 3, 1, 4)
        elif order == "h3d":
            t = qkv.view(b, n, h, 3, hd).permute(3, 0, 2, 1, 4)
        else:  # reshaped to (B, heads, N, hd) without moving the token axis
            t = qkv.view(b, n, 3, d).permute(2, 0, 1, 3).reshape(3, b, h, n, hd)
        return t[0], t[1], t[2]

    def out(order="3hd", scale=hd**-0.5, merge="right"):
        q, k, v = heads(order)
        o = _qkv_attention(q, k, v, scale)
        merged = o.transpose(1, 2).reshape(b, n, d) if merge == "right" else o.reshape(b, n, d)
        return mine.proj(merged)

    return [
        (
            "heads split along the wrong axis: qkv's output reads (3, heads, head_dim) per token",
            lambda: out("h3d"),
        ),
        (
            "heads split along the wrong axis: view (B, N, heads, head_dim), then transpose "
            "to (B, heads, N, head_dim)",
            lambda: out("tokens"),
        ),
        ("attention without the 1/sqrt(d) scale", lambda: out(scale=1.0)),
        (
            "scaled by 1/sqrt(embed_dim): each head scales by 1/sqrt(head_dim)",
            lambda: out(scale=d**-0.5),
        ),
        (
            "the heads are merged in the wrong order: transpose (B, heads, N, d) to "
            "(B, N, heads, d) before reshaping to (B, N, D)",
            lambda: out(merge="wrong"),
        ),
    ]


def multihead_attention(cls: type) -> Result:
    def body(cls):
        g = torch.Generator().manual_seed(7)
        cases = [
            ("2 heads, 2 x 5 tokens of 8", (2, 5, 8), 2),
            ("3 heads, a batch of one", (1, 3, 12), 3),
            ("4 heads, 2 x 6 tokens of 16", (2, 6, 16), 4),
        ]
        for name, shape, heads in cases:
            d = shape[-1]
            torch.manual_seed(0)
            mine = ref.MultiHeadSelfAttention(d, heads, attention="explicit").double()
            theirs = _given_our_weights(cls, mine, d, heads)
            x = _tokens(shape, g)
            got = _run(theirs, x)
            with torch.no_grad():
                compare("the output", got, mine(x), name, _mhsa_variants(mine, x))
        return cases_line([c[0] for c in cases])

    return run_check("multihead_attention", cls, body)


def block(cls: type) -> Result:
    def body(cls):
        g = torch.Generator().manual_seed(8)
        cases = [
            ("8 wide, 2 heads, mlp_ratio 2", (2, 5, 8), 2, 2.0),
            ("a batch of one, 3 heads, mlp_ratio 4", (1, 4, 12), 3, 4.0),
        ]
        for name, shape, heads, ratio in cases:
            d = shape[-1]
            torch.manual_seed(0)
            mine = ref.Block(d, heads, ratio, attention="explicit").double()
            with torch.no_grad():  # non-trivial norms, so that their place shows
                for norm in (mine.norm1, mine.norm2):
                    norm.weight.uniform_(0.5, 1.5)
                    norm.bias.uniform_(-0.5, 0.5)
            theirs = _given_our_weights(cls, mine, d, heads, ratio)
            _match_layernorm_eps(theirs, mine)
            x = _tokens(shape, g)
            got = _run(theirs, x)
            with torch.no_grad():
                attn, mlp, n1, n2 = mine.attn, mine.mlp, mine.norm1, mine.norm2

                def post_norm():
                    y = n1(x + attn(x))
                    return n2(y + mlp(y))

                def residual_from_norm():
                    z = n1(x)
                    y = z + attn(z)
                    z2 = n2(y)
                    return z2 + mlp(z2)

                def relu():
                    y = x + attn(n1(x))
                    h = n2(y)
                    return y + mlp.fc2(F.relu(mlp.fc1(h)))

                variants = [
                    (
                        "LayerNorm after the residual (post-norm): pre-norm is x + attn(norm1(x))",
                        post_norm,
                    ),
                    (
                        "the residual adds the normalized tokens: it adds x, x + attn(norm1(x))",
                        residual_from_norm,
                    ),
                    (
                        "no residual connections: x + attn(...), then x + mlp(...)",
                        lambda: mlp(n2(attn(n1(x)))),
                    ),
                    ("ReLU in the MLP: the block uses GELU", relu),
                ]
                compare("the output", got, mine(x), name, variants)
        return cases_line([c[0] for c in cases])

    return run_check("block", cls, body)


def patch_embed(cls: type) -> Result:
    def body(cls):
        g = torch.Generator().manual_seed(9)
        cases = [
            ("1x28x28, patches of 7", (2, 1, 28, 28), 7, 8),
            ("3x8x12 (non-square), patches of 4, a batch of one", (1, 3, 8, 12), 4, 6),
            ("2x6x6, patches of 3", (2, 2, 6, 6), 3, 5),
        ]
        for name, shape, p, d in cases:
            torch.manual_seed(0)
            mine = ref.PatchEmbed(shape[1], p, d).double()
            theirs = _given_our_weights(cls, mine, shape[1], p, d)
            x = torch.randn(*shape, generator=g, dtype=torch.float64)
            got = _run(theirs, x)
            with torch.no_grad():
                grid = mine.proj(x)  # (B, D, H/p, W/p)
                variants = [
                    (
                        "the features come before the tokens: transpose to (B, N, embed_dim)",
                        lambda: grid.flatten(2),
                    ),
                    (
                        "the patches are in column order: flatten the (H/p, W/p) grid row by row",
                        lambda: grid.transpose(2, 3).flatten(2).transpose(1, 2),
                    ),
                ]
                compare("the tokens", got, mine(x), name, variants)
        return cases_line([c[0] for c in cases])

    return run_check("patch_embed", cls, body)


def _table(n: int, d: int, start: int = 0, pair: bool = True, swap: bool = False, halves=False):
    position = torch.arange(start, start + n, dtype=torch.float64)[:, None]
    columns = torch.arange(d, dtype=torch.float64)
    exponent = (columns - columns % 2) / d if pair else columns / d
    angle = position / 10000**exponent
    sin, cos = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    if halves:
        half = d // 2
        frequency = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        return torch.cat([sin(position * frequency), cos(position * frequency[:half])], 1)
    return torch.where(columns % 2 == 0, sin(angle), cos(angle))


def positional_embedding(fn: Callable) -> Result:
    def body(fn):
        cases = [
            ("17 positions of 32", 17, 32),
            ("one position", 1, 8),
            ("50 of 16", 50, 16),
            ("5 of 6", 5, 6),
        ]
        for name, n, d in cases:
            got = call(fn, n, d, names=("sequence_length", "d"))
            variants = [
                (
                    "sin and cos swapped: sin on even columns, cos on odd ones",
                    lambda: _table(n, d, swap=True),
                ),
                (
                    "the frequency uses the column index k: columns 2j and 2j+1 share 10000^(2j/d)",
                    lambda: _table(n, d, pair=False),
                ),
                (
                    "sin and cos side by side in halves: they alternate, sin on even columns",
                    lambda: _table(n, d, halves=True),
                ),
                ("the positions start at 1: they start at 0", lambda: _table(n, d, start=1)),
            ]
            compare("the table", got, ref.get_positional_embeddings(n, d).double(), name, variants)
        return cases_line([c[0] for c in cases])

    return run_check("positional_embedding", fn, body)


VIT_CASES = [
    (
        "16 wide, 2 blocks, 1x28x28, patches of 7",
        dict(
            embed_dim=16,
            nb_blocks=2,
            patch_size=7,
            num_heads=2,
            mlp_ratio=2.0,
            num_classes=10,
            in_chans=1,
            img_size=28,
        ),
        2,
    ),
    (
        "12 wide, 1 block, 3x8x8, patches of 4, a batch of one",
        dict(
            embed_dim=12,
            nb_blocks=1,
            patch_size=4,
            num_heads=3,
            mlp_ratio=2.0,
            num_classes=5,
            in_chans=3,
            img_size=8,
        ),
        1,
    ),
]


def _vit_variants(mine: ref.ViT, x: torch.Tensor):
    tokens = mine.patch_embed(x)
    b, n, _ = tokens.shape
    cls = mine.cls_token.expand(b, -1, -1)
    pos = mine.pos_embed

    def finish(t, read=0, norm=True):
        t = mine.blocks(t)
        t = mine.norm(t) if norm else t
        return mine.head(t[:, read] if read is not None else t[:, 1:].mean(1))

    return [
        (
            "the positional embedding is added before the class token is put first: the class "
            "token takes position 0, the patches 1..N",
            lambda: finish(torch.cat([cls, tokens + pos[:, :n]], 1)),
        ),
        (
            "the class token is put last: it goes first (index 0), and the head reads token 0",
            lambda: finish(torch.cat([tokens, cls], 1) + pos, read=-1),
        ),
        (
            "the class token is put last: it goes first (index 0), and the head reads token 0",
            lambda: finish(torch.cat([tokens, cls], 1) + pos, read=0),
        ),
        (
            "the head reads the mean of the tokens: it reads the class token (index 0)",
            lambda: finish(torch.cat([cls, tokens], 1) + pos, read=None),
        ),
        (
            "the last LayerNorm (norm) is missing before the head",
            lambda: finish(torch.cat([cls, tokens], 1) + pos, norm=False),
        ),
    ]


def vit(cls: type) -> Result:
    def body(cls):
        g = torch.Generator().manual_seed(10)
        for name, sizes, batch in VIT_CASES:
            torch.manual_seed(0)
            mine = ref.ViT(**sizes, attention="explicit").double()
            with torch.no_grad():  # a class token that matters, so that its place shows
                mine.cls_token.normal_(std=1.0)
            theirs = _build(cls, **sizes).double()
            # a learned positional embedding is not ours: it is set to the sinusoidal table
            tokens = (sizes["img_size"] // sizes["patch_size"]) ** 2 + 1
            table = ref.get_positional_embeddings(tokens, sizes["embed_dim"]).double()

            def is_pos(n: str) -> bool:
                return "pos" in n.lower()

            load_reference_weights(theirs, mine, skip=is_pos)
            with torch.no_grad():
                for n, p in theirs.named_parameters():
                    if is_pos(n) and p.numel() == table.numel():
                        p.copy_(table.reshape(p.shape))
            _match_layernorm_eps(theirs, mine)
            x = torch.randn(
                batch,
                sizes["in_chans"],
                sizes["img_size"],
                sizes["img_size"],
                generator=g,
                dtype=torch.float64,
            )
            got = _run(theirs, x)
            with torch.no_grad():
                compare("the logits", got, mine(x), name, _vit_variants(mine, x))
        return cases_line([c[0] for c in VIT_CASES])

    return run_check("vit", cls, body)
