"""The pieces of code the course asks students to write: one table, read by the checks,
by the exercise notebooks' generator (scripts/make-notebooks.py) and by `tinyvision grade`.

Each piece: the check's name (`tv.check.<check>`), the name the notebook defines, its
signature, a docstring stating the conventions and shapes, and tinyvision's reference
("module:attribute"). No torch here: the generator and the command line read it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

INDENT = "    "


@dataclass(frozen=True)
class Piece:
    check: str  # tv.check.<check>
    name: str  # what the notebook defines
    practical: str  # the exercise notebook it belongs to
    header: str  # "def f(a, b):" or "class C(nn.Module):"
    doc: str
    reference: str  # "tinyvision.models.mlp_manual:forward"
    methods: tuple[str, ...] = ()  # a class's method signatures, blanked one by one

    @property
    def is_class(self) -> bool:
        return self.header.startswith("class ")

    def blank(self) -> str:
        """The exercise: the signature, the docstring, `raise NotImplementedError`."""
        lines = [self.header, *_docstring(self.doc, INDENT)]
        if not self.is_class:
            return "\n".join([*lines, f"{INDENT}raise NotImplementedError"])
        for method in self.methods:
            lines += ["", f"{INDENT}{method}"]
            if method.startswith("def __init__"):
                lines.append(f"{INDENT * 2}super().__init__()")
            lines.append(f"{INDENT * 2}raise NotImplementedError")
        return "\n".join(lines)

    def check_cell(self) -> str:
        """The cell after the piece: check it, keep it if it passed, else the reference."""
        return f"{self.name} = tv.check.{self.check}({self.name}).use()"


def _docstring(text: str, indent: str) -> list[str]:
    body = text.strip("\n").splitlines()
    return [f'{indent}"""{body[0]}', *[f"{indent}{line}" if line else "" for line in body[1:]]] + [
        f'{indent}"""'
    ]


_MLP = "tinyvision.models.mlp_manual"
_VIT = "tinyvision.models.vit"

PIECE_LIST = [
    Piece(
        "init_params",
        "init_params",
        "1ab-mlp",
        "def init_params(nx, nh, ny):",
        """The MLP's parameters, a dict of float32 tensors drawn from N(0, 0.3).

Shapes (rows index outputs, as in torch.nn.Linear):
    Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,)
""",
        f"{_MLP}:init_params",
    ),
    Piece(
        "forward",
        "forward",
        "1ab-mlp",
        "def forward(params, X):",
        """The forward pass for a batch X (N, nx), one sample a row.

    h~ = X Wh^T + bh,  h = tanh(h~),  y~ = h Wy^T + by,  y^ = SoftMax(y~) over each row
Returns (yhat, outputs): yhat (N, ny), and outputs, a dict holding what the backward
pass needs: "X" (N, nx), "htilde" (N, nh), "h" (N, nh), "ytilde" (N, ny), "yhat" (N, ny).
The SoftMax must not overflow on large logits (subtract each row's max first).
""",
        f"{_MLP}:forward",
    ),
    Piece(
        "loss_accuracy",
        "loss_accuracy",
        "1ab-mlp",
        "def loss_accuracy(Yhat, Y):",
        """The mean cross-entropy and the accuracy of predictions Yhat (N, ny) against
one-hot labels Y (N, ny).

    L = - 1/N sum_i sum_j Y_ij log Yhat_ij
Returns (loss, accuracy): two scalar tensors; accuracy is a fraction in [0, 1] (the
share of rows where argmax Yhat = argmax Y).
""",
        f"{_MLP}:loss_accuracy",
    ),
    Piece(
        "backward",
        "backward",
        "1ab-mlp",
        "def backward(params, outputs, Y):",
        """The gradients of the mean cross-entropy, by hand (no autograd).

outputs: the dict forward returns; Y: one-hot labels (N, ny).
    dL/dy~ = (Yhat - Y) / N
    dWy = (dL/dy~)^T h          dby = sum over the batch of dL/dy~
    dL/dh~ = (dL/dy~ Wy) * (1 - h^2)
    dWh = (dL/dh~)^T X          dbh = sum over the batch of dL/dh~
Returns a dict {"Wh", "bh", "Wy", "by"}, each gradient with its parameter's shape.
""",
        f"{_MLP}:backward",
    ),
    Piece(
        "sgd",
        "sgd",
        "1ab-mlp",
        "def sgd(params, grads, eta):",
        """One gradient step on every parameter: p <- p - eta * dL/dp.

params and grads: dicts with the keys "Wh", "bh", "Wy", "by". Returns the updated params
(updating them in place is fine; grads must stay as they are).
""",
        f"{_MLP}:sgd",
    ),
    Piece(
        "conv_output_size",
        "conv_output_size",
        "1cd-cnn",
        "def conv_output_size(size, kernel, stride=1, padding=0, ceil_mode=False):",
        """The output width (an int) of a convolution or pooling layer on an input `size` wide.

    floor((size + 2 * padding - kernel) / stride) + 1
With ceil_mode=True the division rounds up instead, as in nn.MaxPool2d(ceil_mode=True),
except that the last window must start inside the input (padding included):
if (out - 1) * stride >= size + padding, it is dropped (out - 1).
""",
        "tinyvision.models.arithmetic:conv_output_size",
    ),
    Piece(
        "receptive_field",
        "receptive_field",
        "1cd-cnn",
        "def receptive_field(layers):",
        """Receptive field r and jump j after each layer, for a stack of (kernel, stride) layers.

Start from the input: r = 1, j = 1 (the jump: input pixels between two neighbouring
outputs). Each layer: r <- r + (kernel - 1) * j, then j <- j * stride.
Returns a list of (r, j) pairs, one per layer: [(5, 1), (6, 2)] for [(5, 1), (2, 2)].
""",
        "tinyvision.models.arithmetic:receptive_field",
    ),
    Piece(
        "standardize",
        "standardize",
        "1cd-cnn",
        "def standardize(train_x, test_x):",
        """Per-channel standardization: (x - mean) / std, for images (N, C, H, W) as floats.

The mean and std of each channel are computed on the training split only (over N, H
and W) and applied to both splits. Returns (train_x, test_x), the inputs unchanged.
""",
        "tinyvision.check.references:standardize",
    ),
    Piece(
        "zca",
        "zca",
        "1cd-cnn",
        "def zca(train_x, test_x, epsilon):",
        """ZCA whitening of images (N, C, H, W), fitted on the training split only.

Flatten each image to D = C*H*W values; mu: the training mean (D,); Sigma: the training
covariance (D, D) of the centred data (divided by N); Sigma = U diag(S) U^T;
    W = U diag(1 / sqrt(S + epsilon)) U^T,   x -> (x - mu) W   (both splits)
Returns (train_x, test_x) with the input shapes.
""",
        "tinyvision.check.references:zca",
    ),
    Piece(
        "random_crop",
        "random_crop",
        "1cd-cnn",
        "def random_crop(x, size, generator):",
        """A size x size window of each image of the batch x (B, C, H, W), at a random
position drawn per image, every position equally likely (top in 0..H-size, left in
0..W-size). Draw with `generator` (torch.randint(..., generator=generator)), so the
same seed gives the same crops. Returns (B, C, size, size).
""",
        "tinyvision.data.augment:random_crop",
    ),
    Piece(
        "cnn",
        "CourseCNN",
        "1cd-cnn",
        "class CourseCNN(nn.Module):",
        """The course CNN, for images (B, in_chans, 32, 32) (or 28 x 28 random crops):

    conv1 5x5, 32 filters, padding 2 -> ReLU -> max-pool 2x2 stride 2
    conv2 5x5, 64 filters, padding 2 -> ReLU -> max-pool 2x2 stride 2
    conv3 5x5, 64 filters, padding 2 -> ReLU -> max-pool 2x2 stride 2, ceil_mode=True
    flatten (64 * 4 * 4 = 1024) -> fc4 1000 -> ReLU -> fc5 num_classes
forward returns the logits (B, num_classes). ceil_mode on the last pool keeps 4 x 4 on
28 x 28 crops. 1,191,170 parameters with in_chans=3 and 10 classes.
""",
        "tinyvision.models.cnn:CourseCNN",
        ("def __init__(self, in_chans=3, num_classes=10):", "def forward(self, x):"),
    ),
    Piece(
        "attention",
        "SelfAttention",
        "1e-vit",
        "class SelfAttention(nn.Module):",
        """One head of self-attention on tokens x (B, N, D), D = embed_dim.

Layers, in this order: self.q, self.k, self.v, self.proj, each nn.Linear(D, D).
    Q = q(x), K = k(x), V = v(x);   A = softmax(Q K^T / sqrt(D)) over the keys (last axis)
    returns proj(A V), (B, N, D)
""",
        f"{_VIT}:SelfAttention",
        ("def __init__(self, embed_dim):", "def forward(self, x):"),
    ),
    Piece(
        "multihead_attention",
        "MultiHeadSelfAttention",
        "1e-vit",
        "class MultiHeadSelfAttention(nn.Module):",
        """h = num_heads heads of self-attention on tokens x (B, N, D), each of size d = D / h.

Layers, in this order: self.qkv = nn.Linear(D, 3 * D) (Q, K and V at once; its output
reads as (3, h, d) per token: Q first, head 0 first), self.proj = nn.Linear(D, D).
    Q, K, V: each (B, h, N, d);  head_i = softmax(Q_i K_i^T / sqrt(d)) V_i
    returns proj(the heads concatenated per token, head 0 first), (B, N, D)
""",
        f"{_VIT}:MultiHeadSelfAttention",
        ("def __init__(self, embed_dim, num_heads):", "def forward(self, x):"),
    ),
    Piece(
        "block",
        "Block",
        "1e-vit",
        "class Block(nn.Module):",
        """A pre-norm transformer block on tokens x (B, N, D).

Layers, in this order: self.norm1 = nn.LayerNorm(D), self.attn =
MultiHeadSelfAttention(D, num_heads), self.norm2 = nn.LayerNorm(D), and the MLP
self.mlp = nn.Sequential(nn.Linear(D, int(D * mlp_ratio)), nn.GELU(), nn.Linear(.., D)).
    x = x + attn(norm1(x));   x = x + mlp(norm2(x));   returns x, (B, N, D)
""",
        f"{_VIT}:Block",
        ("def __init__(self, embed_dim, num_heads, mlp_ratio):", "def forward(self, x):"),
    ),
    Piece(
        "patch_embed",
        "PatchEmbed",
        "1e-vit",
        "class PatchEmbed(nn.Module):",
        """Cut images x (B, C, H, W) into non-overlapping patch_size x patch_size patches and
project each to embed_dim: self.proj = nn.Conv2d(C, embed_dim, patch_size,
stride=patch_size). Returns the tokens (B, N, embed_dim), N = (H/p) * (W/p), the patches
in reading order (row by row, left to right).
""",
        f"{_VIT}:PatchEmbed",
        ("def __init__(self, in_chans, patch_size, embed_dim):", "def forward(self, x):"),
    ),
    Piece(
        "positional_embedding",
        "get_positional_embeddings",
        "1e-vit",
        "def get_positional_embeddings(sequence_length, d):",
        """Sinusoidal positional embeddings, a tensor (sequence_length, d); positions from 0.

    PE[i, 2j] = sin(i / 10000^(2j / d)),   PE[i, 2j+1] = cos(i / 10000^(2j / d))
""",
        f"{_VIT}:get_positional_embeddings",
    ),
    Piece(
        "vit",
        "ViT",
        "1e-vit",
        "class ViT(nn.Module):",
        """The vision transformer on images x (B, in_chans, img_size, img_size).

Layers, in this order: self.patch_embed = PatchEmbed(in_chans, patch_size, embed_dim);
self.cls_token, a learned (1, 1, embed_dim) parameter; self.pos_embed, the fixed
sinusoidal table get_positional_embeddings(N + 1, embed_dim) (a buffer); self.blocks,
nb_blocks Blocks; self.norm = nn.LayerNorm(embed_dim); self.head = nn.Linear(embed_dim,
num_classes).
    tokens = patch_embed(x); put the class token first (index 0): (B, N + 1, D);
    add pos_embed; the blocks; norm; returns head(the class token's output), (B, num_classes)
""",
        f"{_VIT}:ViT",
        (
            "def __init__(self, embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4, "
            "mlp_ratio=4.0, num_classes=10, in_chans=1, img_size=28):",
            "def forward(self, x):",
        ),
    ),
]

PIECES = {p.check: p for p in PIECE_LIST}
