"""Write notebooks/1ab-mlp.ipynb, 1cd-cnn.ipynb and 1e-vit.ipynb, without outputs.

The notebooks are generated so that their text stays reviewable here, in one place;
`make test` executes them (tests/test_notebooks.py). Run: `python scripts/make-notebooks.py`.
"""

from __future__ import annotations

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


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [new_markdown_cell(t) if kind == "md" else new_code_cell(t) for kind, t in cells]
    for number, cell in enumerate(nb.cells):  # stable ids: the same script, the same files
        cell.id = f"cell-{number}"
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
        "`tv.models.mlp_manual` holds the course's functions. The hand-written gradients "
        "must equal what autograd computes on the same loss.",
    ),
    (
        "code",
        """\
import torch

from tinyvision.models import mlp_manual as mm

torch.manual_seed(0)
X = torch.randn(16, 2)
Y = torch.nn.functional.one_hot(torch.randint(0, 2, (16,)), 2).float()
params = mm.init_params(2, 10, 2, std=0.3)
yhat, outputs = mm.forward(params, X)
by_hand = mm.backward(params, outputs, Y)

leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
loss, _ = mm.loss_accuracy(mm.forward(leaves, X)[0], Y)
loss.backward()
pd.DataFrame(
    {k: [float((by_hand[k] - leaves[k].grad).abs().max())] for k in params},
    index=["largest |hand - autograd|"],
)""",
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
        "Output sizes, parameters, receptive fields and multiply-adds, layer by layer.",
    ),
    (
        "code",
        """\
from tinyvision.models.summary import format_table, summarize

cnn = tv.models.CourseCNN(in_chans=3, num_classes=10)
print(format_table(summarize(cnn, (3, 32, 32)), (3, 32, 32)))""",
    ),
    (
        "md",
        "## 2. Normalization and augmentation, then the stacked improvements\n\n"
        "`1cd-ablation` adds one improvement per step: standardization, crop + flip, "
        "momentum and a schedule, dropout, batch norm.",
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
    ("md", "## 1. Patches, attention, a block"),
    (
        "code",
        """\
import torch

x = torch.randn(2, 1, 28, 28)
patches = tv.models.PatchEmbed(in_chans=1, patch_size=7, embed_dim=32)(x)
print("patch embedding:", tuple(x.shape), "->", tuple(patches.shape), "(16 patches of 32)")
attention = tv.models.MultiHeadSelfAttention(32, num_heads=4, attention="explicit")
print("attention keeps the shape:", tuple(attention(patches).shape))
block = tv.models.Block(32, num_heads=4, mlp_ratio=4.0)
print("a pre-norm block too:", tuple(block(patches).shape))
vit = tv.models.ViT(embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4)
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
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    folder.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(notebook(cells), folder / name)
        print(f"wrote {folder / name}")


if __name__ == "__main__":
    main()
