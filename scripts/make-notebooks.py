"""Write notebooks/1ab-mlp.ipynb, 1cd-cnn.ipynb and 1e-vit.ipynb, without outputs, and
their exercise versions, notebooks/exercises/*.ipynb (also the package's copies).

The notebooks are generated so that their text stays reviewable here, in one place;
`make test` executes them (tests/test_notebooks.py, tests/test_exercises.py). Run:
`python scripts/make-notebooks.py`.

A cell that holds a piece of code the course asks students to write is a ("piece", check,
code) entry: a code cell marked {"tinyvision": {"piece": check}}, `check` a name of
tinyvision.check.pieces. `exercise()` turns each into the blank and its check cell.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SETUP = """\
import os

import pandas as pd
from IPython.display import Image, display

import tinyvision as tv

# TINYVISION_NOTEBOOK_QUICK=1 makes every training tiny (the tests run the notebooks so);
# unset, the budgets are the ones the README reports.
QUICK = os.environ.get("TINYVISION_NOTEBOOK_QUICK") == "1"
OUT = os.environ.get("TINYVISION_NOTEBOOK_OUT", "runs")  # where the run folders go
print("quick budgets" if QUICK else "full budgets", "- runs in", OUT)"""


def _cell(entry: tuple) -> nbformat.NotebookNode:
    kind, *rest = entry
    if kind == "md":
        return new_markdown_cell(rest[0])
    if kind == "piece":
        return new_code_cell(rest[1], metadata={"tinyvision": {"piece": rest[0]}})
    return new_code_cell(rest[0])


def notebook(cells: list[tuple]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [_cell(entry) for entry in cells]
    for number, cell in enumerate(nb.cells):  # stable ids: the same script, the same files
        cell.id = f"cell-{number}"
    return nb


EXERCISE_INTRO = """\
**Exercise version.** Each cell that ends in `raise NotImplementedError` is yours to write:
its docstring gives the conventions and shapes. The cell after it checks your code against
tinyvision's and says in a line or two what differs; until your version passes, the rest
of the notebook runs on tinyvision's own (and says so), so every cell runs from the start."""


def exercise(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise notebook of a solution notebook: each piece blanked, then checked."""
    from tinyvision.check.pieces import PIECES

    nb = copy.deepcopy(solution)
    intro = new_markdown_cell(EXERCISE_INTRO)
    intro.id = "exercise-intro"
    cells = [nb.cells[0], intro]
    for cell in nb.cells[1:]:
        check = cell.metadata.get("tinyvision", {}).get("piece")
        if check is None:
            cells.append(cell)
            continue
        piece = PIECES[check]
        cell.source = piece.blank()
        checked = new_code_cell(piece.check_cell(), metadata={"tinyvision": {"check": check}})
        checked.id = f"{cell.id}-check"
        cells += [cell, checked]
    nb.cells = cells
    return nb


MLP = [
    (
        "md",
        "# Practical 1-ab: a neural network from scratch\n\n"
        "The two-layer MLP (tanh, 10 hidden units) on the circles data, written four ways: "
        "the backward pass by hand, autograd, `torch.nn`, `torch.optim`. Then SVMs on the "
        "same data. Everything runs on the CPU in seconds.",
    ),
    ("code", SETUP),
    (
        "md",
        "## 1. The forward and backward passes by hand\n\n"
        "The course's five functions, with rows as samples: X is (N, nx), Y one-hot "
        "(N, ny). The hand-written gradients must equal what autograd computes on the "
        "same loss.",
    ),
    (
        "code",
        """\
import torch
import torch.nn.functional as F""",
    ),
    (
        "piece",
        "init_params",
        """\
def init_params(nx, nh, ny):
    \"\"\"Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,), drawn from N(0, 0.3).\"\"\"
    return {
        "Wh": torch.randn(nh, nx) * 0.3,
        "bh": torch.randn(nh) * 0.3,
        "Wy": torch.randn(ny, nh) * 0.3,
        "by": torch.randn(ny) * 0.3,
    }""",
    ),
    (
        "piece",
        "forward",
        """\
def forward(params, X):
    \"\"\"yhat (N, ny), and what the backward pass needs.\"\"\"
    htilde = X @ params["Wh"].T + params["bh"]
    h = torch.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    # SoftMax: exp of y~ minus its row's max never overflows, and the result is the same
    e = torch.exp(ytilde - ytilde.max(1, keepdim=True).values)
    yhat = e / e.sum(1, keepdim=True)
    return yhat, {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}""",
    ),
    (
        "piece",
        "loss_accuracy",
        """\
def loss_accuracy(Yhat, Y):
    \"\"\"Mean cross-entropy against one-hot Y, and accuracy as a fraction.\"\"\"
    loss = -(Y * torch.log(Yhat.clamp_min(1e-30))).sum(1).mean()
    accuracy = (Yhat.argmax(1) == Y.argmax(1)).float().mean()
    return loss, accuracy""",
    ),
    (
        "piece",
        "backward",
        """\
def backward(params, outputs, Y):
    \"\"\"The gradients of the mean cross-entropy, by hand.\"\"\"
    delta_y = (outputs["yhat"] - Y) / len(Y)  # dL/dy~, averaged over the batch
    delta_h = (delta_y @ params["Wy"]) * (1 - outputs["h"] ** 2)  # dL/dh~: tanh' = 1 - h^2
    return {
        "Wy": delta_y.T @ outputs["h"],
        "by": delta_y.sum(0),
        "Wh": delta_h.T @ outputs["X"],
        "bh": delta_h.sum(0),
    }""",
    ),
    (
        "piece",
        "sgd",
        """\
def sgd(params, grads, eta):
    \"\"\"One step down the gradient.\"\"\"
    return {name: params[name] - eta * grads[name] for name in params}""",
    ),
    (
        "code",
        """\
torch.manual_seed(0)
X = torch.randn(16, 2)
Y = F.one_hot(torch.randint(0, 2, (16,)), 2).float()
params = init_params(2, 10, 2)
yhat, outputs = forward(params, X)
by_hand = backward(params, outputs, Y)

leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
loss, _ = loss_accuracy(forward(leaves, X)[0], Y)
loss.backward()
pd.DataFrame(
    {k: [float((by_hand[k] - leaves[k].grad).abs().max())] for k in params},
    index=["largest |hand - autograd|"],
)""",
    ),
    (
        "md",
        "The five functions train the MLP on the circles (the course's sizes: 10 hidden "
        "units, batches of 10, eta = 0.03).",
    ),
    (
        "code",
        """\
from tinyvision.data.synthetic import circles_splits

(train_x, train_y), (test_x, test_y) = circles_splits(200, 200)
X, X_test = torch.from_numpy(train_x), torch.from_numpy(test_x)
Y = F.one_hot(torch.from_numpy(train_y), 2).float()
Y_test = F.one_hot(torch.from_numpy(test_y), 2).float()
torch.manual_seed(0)
params = init_params(2, 10, 2)
for _ in range(20 if QUICK else 150):  # epochs
    for start in range(0, len(X), 10):
        yhat, outputs = forward(params, X[start : start + 10])
        params = sgd(params, backward(params, outputs, Y[start : start + 10]), 0.03)
loss, accuracy = loss_accuracy(forward(params, X_test)[0], Y_test)
print(f"the MLP above on the circles' test points: loss {loss:.3f}, accuracy {accuracy:.1%}")""",
    ),
    (
        "md",
        "## 2. The same network four ways\n\n"
        "Same seed, same data, same initial weights: the four variants must train alike.",
    ),
    (
        "code",
        """\
epochs = 20 if QUICK else 150
variants = {
    v: tv.run(f"1ab-circles-{v}", out=OUT, quiet=True, train__epochs=epochs)
    for v in ("manual", "autograd", "nn", "optim")
}
losses = pd.DataFrame({v: r.metrics["train_loss"] for v, r in variants.items()})
print("largest difference between the variants' train loss:",
      float((losses.max(axis=1) - losses.min(axis=1)).max()))
losses.plot(title="train loss, the four variants", xlabel="epoch")""",
    ),
    (
        "code",
        """\
variants["optim"]""",
    ),
    (
        "code",
        """\
display(Image(filename=str(variants["optim"].path / "decision_boundary.png")))""",
    ),
    (
        "md",
        "## 3. SVMs on the same data\n\n"
        "Linear, polynomial, RBF and sigmoid kernels, and a sweep of C, beside the MLP.",
    ),
    (
        "code",
        """\
svm = tv.run("1ab-svm", out=OUT, quiet=True, train__epochs=epochs)
display(pd.read_csv(svm.path / "svm.csv"))
display(Image(filename=str(svm.path / "svm_boundaries.png")))""",
    ),
]

CNN = [
    (
        "md",
        "# Practical 1-cd: convolutional networks\n\n"
        "The course trains its CNN on CIFAR-10, which this notebook cannot download offline: "
        "it uses Fashion-MNIST (1x28x28) instead, with small budgets. The questions are the "
        "same: the network's arithmetic, normalization and augmentation, and the stack of "
        "classic improvements.",
    ),
    ("code", SETUP),
    (
        "md",
        "## 1. The network's arithmetic\n\n"
        "Output sizes and receptive fields by hand, then the network itself: its output "
        "sizes, parameters, receptive fields and multiply-adds, layer by layer.",
    ),
    (
        "code",
        """\
import torch
from torch import nn""",
    ),
    (
        "piece",
        "conv_output_size",
        """\
def conv_output_size(size, kernel, stride=1, padding=0, ceil_mode=False):
    \"\"\"floor((size + 2p - k) / s) + 1, or rounded up with ceil_mode.\"\"\"
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input
    return out""",
    ),
    (
        "piece",
        "receptive_field",
        """\
def receptive_field(layers):
    \"\"\"(r, j) after each (kernel, stride) layer: r += (k - 1) j, then j *= s.\"\"\"
    r, j, out = 1, 1, []
    for kernel, stride in layers:
        r, j = r + (kernel - 1) * j, j * stride
        out.append((r, j))
    return out""",
    ),
    (
        "code",
        """\
layers = {  # name: (kernel, stride, padding)
    "conv1": (5, 1, 2), "pool1": (2, 2, 0), "conv2": (5, 1, 2), "pool2": (2, 2, 0),
    "conv3": (5, 1, 2), "pool3": (2, 2, 0),
}
size, sizes = 32, []
for kernel, stride, padding in layers.values():
    size = conv_output_size(size, kernel, stride, padding)
    sizes.append(size)
fields = receptive_field([(k, s) for k, s, _ in layers.values()])
pd.DataFrame(
    {"output size": sizes, "receptive field": [r for r, _ in fields]}, index=list(layers)
)""",
    ),
    (
        "piece",
        "cnn",
        """\
class CourseCNN(nn.Module):
    \"\"\"conv 32 -> pool -> conv 64 -> pool -> conv 64 -> pool -> fc 1000 -> fc classes.\"\"\"

    def __init__(self, in_chans=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 32, 5, padding=2)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = nn.Conv2d(64, 64, 5, padding=2)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)  # 4x4 on 28x28 crops too
        self.fc4 = nn.Linear(64 * 4 * 4, 1000)
        self.fc5 = nn.Linear(1000, num_classes)

    def forward(self, x):
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = self.pool3(torch.relu(self.conv3(x)))
        return self.fc5(torch.relu(self.fc4(x.flatten(1))))""",
    ),
    (
        "code",
        """\
from tinyvision.models.summary import format_table, summarize

cnn = CourseCNN(in_chans=3, num_classes=10)
print(format_table(summarize(cnn, (3, 32, 32)), (3, 32, 32)))""",
    ),
    (
        "md",
        "## 2. Normalization and augmentation, then the stacked improvements\n\n"
        "Standardization and ZCA whitening fitted on the training split, and random crops, "
        "first by hand on a small batch. Then `1cd-ablation` adds one improvement per "
        "step: standardization, crop + flip, momentum and a schedule, dropout, batch norm.",
    ),
    (
        "piece",
        "standardize",
        """\
def standardize(train_x, test_x):
    \"\"\"Per channel (x - mean) / std, the statistics from the training split only.\"\"\"
    mean = train_x.mean((0, 2, 3), keepdim=True)
    std = train_x.std((0, 2, 3), keepdim=True)
    return (train_x - mean) / std, (test_x - mean) / std""",
    ),
    (
        "piece",
        "zca",
        """\
def zca(train_x, test_x, epsilon):
    \"\"\"ZCA whitening, W = U (S + eps)^-1/2 U^T from the training covariance.\"\"\"
    flat = train_x.reshape(len(train_x), -1)
    mean = flat.mean(0)
    s, u = torch.linalg.eigh((flat - mean).T @ (flat - mean) / len(flat))
    w = u @ torch.diag((s.clamp_min(0) + epsilon).rsqrt()) @ u.T
    white = [(x.reshape(len(x), -1) - mean) @ w for x in (train_x, test_x)]
    return white[0].reshape(train_x.shape), white[1].reshape(test_x.shape)""",
    ),
    (
        "piece",
        "random_crop",
        """\
def random_crop(x, size, generator):
    \"\"\"A size x size window of each image, at a position drawn per image.\"\"\"
    b, _, h, w = x.shape
    tops = torch.randint(0, h - size + 1, (b,), generator=generator).tolist()
    lefts = torch.randint(0, w - size + 1, (b,), generator=generator).tolist()
    windows = [x[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(zip(tops, lefts))]
    return torch.stack(windows)""",
    ),
    (
        "code",
        """\
generator = torch.Generator().manual_seed(0)
spread = torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)  # three channels, three spreads
images = torch.rand(600, 3, 4, 4, generator=generator) * spread + spread
train_s, test_s = standardize(images[:500], images[500:])
print("standardized train: channel means", train_s.mean((0, 2, 3)).numpy().round(3),
      "stds", train_s.std((0, 2, 3)).numpy().round(3))
train_w, _ = zca(images[:500], images[500:], 1e-3)
flat = train_w.reshape(500, -1)
covariance = (flat - flat.mean(0)).T @ (flat - flat.mean(0)) / 500
error = float((covariance - torch.eye(48)).abs().max())
print(f"whitened train: largest |covariance - identity| {error:.3f}")
print("random crops of 3x3:", tuple(random_crop(images, 3, generator).shape))""",
    ),
    (
        "code",
        """\
budget = dict(data__name="fashion-mnist", train__epochs=5, data__train_subset=20000)
if QUICK:
    budget.update(train__epochs=1, data__train_subset=1000, data__test_subset=1000)
stack = tv.study("1cd-ablation", out=OUT, quiet=True, **budget)
stack.table[["step", "final_test_acc", "best_test_acc", "final_train_acc", "seconds"]]""",
    ),
    (
        "code",
        """\
stack.plot()""",
    ),
    ("md", "## 3. What the last model gets wrong"),
    (
        "code",
        """\
last = stack.runs[-1]
display(Image(filename=str(last.path / "confusion.png")))
display(Image(filename=str(last.path / "mistakes.png")))""",
    ),
    (
        "md",
        "## 4. Predictions on a picture of your own\n\n"
        "Any PNG or JPEG: converted to the run's input with the run's own normalization.",
    ),
    (
        "code",
        """\
import numpy as np
from PIL import Image as PILImage

picture = os.path.join(OUT, "my-picture.png")
image = np.asarray(last._trained.data.test_x[0, 0])
PILImage.fromarray(image).resize((64, 64)).convert("RGB").save(picture)
last.predict(picture, top=3)""",
    ),
]

VIT = [
    (
        "md",
        "# Practical 1-e: vision transformers\n\n"
        "The ViT's pieces, built from the course's code and inspected one by one, then "
        "trained on Fashion-MNIST, a study of one of its sizes, and a `timm` ViT.",
    ),
    ("code", SETUP),
    (
        "md",
        "## 1. Attention, a block, patches, positions: the ViT\n\n"
        "Tokens are rows: x is (B, N, D). Each piece below is then put together into the "
        "ViT and run on a batch of images.",
    ),
    (
        "code",
        """\
import math

import torch
from torch import nn""",
    ),
    (
        "piece",
        "attention",
        """\
class SelfAttention(nn.Module):
    \"\"\"One head: softmax(Q K^T / sqrt(D)) V, then a linear projection.\"\"\"

    def __init__(self, embed_dim):
        super().__init__()
        self.q = nn.Linear(embed_dim, embed_dim)
        self.k = nn.Linear(embed_dim, embed_dim)
        self.v = nn.Linear(embed_dim, embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        return self.proj(attention @ v)""",
    ),
    (
        "piece",
        "multihead_attention",
        """\
class MultiHeadSelfAttention(nn.Module):
    \"\"\"h heads of size D / h from one fused qkv layer, concatenated, projected.\"\"\"

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, heads, N, head_dim)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(b, n, d))""",
    ),
    (
        "piece",
        "block",
        """\
class Block(nn.Module):
    \"\"\"Pre-norm: x + attn(norm1(x)), then x + mlp(norm2(x)).\"\"\"

    def __init__(self, embed_dim, num_heads, mlp_ratio):
        super().__init__()
        hidden = int(embed_dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = MultiHeadSelfAttention(embed_dim, num_heads)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim)
        )

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))""",
    ),
    (
        "piece",
        "patch_embed",
        """\
class PatchEmbed(nn.Module):
    \"\"\"(B, C, H, W) -> (B, N, D): a convolution with stride = kernel = patch size.\"\"\"

    def __init__(self, in_chans, patch_size, embed_dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)""",
    ),
    (
        "piece",
        "positional_embedding",
        """\
def get_positional_embeddings(sequence_length, d):
    \"\"\"sin on even dimensions, cos on odd ones, at frequencies 1 / 10000^(2j/d).\"\"\"
    result = torch.zeros(sequence_length, d)
    for i in range(sequence_length):
        for j in range(0, d, 2):  # j is 2j in the formula: columns j and j + 1 share it
            result[i, j] = math.sin(i / 10000 ** (j / d))
            if j + 1 < d:
                result[i, j + 1] = math.cos(i / 10000 ** (j / d))
    return result""",
    ),
    (
        "piece",
        "vit",
        """\
class ViT(nn.Module):
    \"\"\"Patches, a class token first, positions added, blocks, a norm, the head.\"\"\"

    def __init__(self, embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4,
                 mlp_ratio=4.0, num_classes=10, in_chans=1, img_size=28):
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        tokens = (img_size // patch_size) ** 2 + 1
        self.register_buffer("pos_embed", get_positional_embeddings(tokens, embed_dim)[None])
        self.blocks = nn.Sequential(
            *[Block(embed_dim, num_heads, mlp_ratio) for _ in range(nb_blocks)]
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, x):
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(len(x), -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(tokens))[:, 0])""",
    ),
    (
        "code",
        """\
x = torch.randn(2, 1, 28, 28)
patches = PatchEmbed(in_chans=1, patch_size=7, embed_dim=32)(x)
print("patch embedding:", tuple(x.shape), "->", tuple(patches.shape), "(16 patches of 32)")
attention = MultiHeadSelfAttention(32, num_heads=4)
print("attention keeps the shape:", tuple(attention(patches).shape))
block = Block(32, num_heads=4, mlp_ratio=4.0)
print("a pre-norm block too:", tuple(block(patches).shape))
vit = ViT(embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4)
print("the ViT:", tuple(vit(x).shape), sum(p.numel() for p in vit.parameters()), "parameters")""",
    ),
    ("md", "## 2. The course ViT on Fashion-MNIST"),
    (
        "code",
        """\
budget = dict(train__epochs=1, data__train_subset=2000, data__test_subset=1000) if QUICK else {}
vit_run = tv.run("1e-vit-fashion", out=OUT, **budget)  # a progress bar per epoch, in place
vit_run""",
    ),
    (
        "code",
        """\
vit_run.plot()""",
    ),
    ("md", "## 3. A study: the patch size (tokens per image)"),
    (
        "code",
        """\
budget = dict(data__name="fashion-mnist", train__epochs=5, data__train_subset=20000)
if QUICK:
    budget.update(train__epochs=1, data__train_subset=500, data__test_subset=500)
sizes = tv.study("1e-patch-size", out=OUT, quiet=True, **budget)
sizes.table[["step", "tokens", "params", "final_test_acc", "seconds"]]""",
    ),
    (
        "md",
        "## 4. A `timm` ViT from scratch\n\n"
        "timm's `vit_small_patch16_224` at `img_size=28`: one 16x16 patch per image, as in "
        "the course. On the MNIST test split (8,000 / 2,000).",
    ),
    (
        "code",
        """\
budget = dict(train__epochs=1, data__train_subset=256) if QUICK else {}
timm_run = tv.run("1e-timm-scratch", out=OUT, quiet=True, data__test_only=True, **budget)
timm_run""",
    ),
]

NOTEBOOKS = {"1ab-mlp.ipynb": MLP, "1cd-cnn.ipynb": CNN, "1e-vit.ipynb": VIT}


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    folder = root / "notebooks"
    # the exercises twice: beside the solutions, and in the package (`tinyvision exercises`)
    exercise_folders = [folder / "exercises", root / "src" / "tinyvision" / "check" / "exercises"]
    for path in [folder, *exercise_folders]:
        path.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        solution = notebook(cells)
        nbformat.write(solution, folder / name)
        print(f"wrote {folder / name}")
        for exercises in exercise_folders:
            nbformat.write(exercise(solution), exercises / name)
            print(f"wrote {exercises / name}")


if __name__ == "__main__":
    main()
