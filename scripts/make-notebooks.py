"""Write notebooks/1ab-mlp.ipynb, 1cd-cnn.ipynb and 1e-vit.ipynb, without outputs.

Each notebook walks its practical question by question, in the course's order: one
heading per question (`### 1cd.Q16 — ...`, the ids the course table uses), the question
in the project's words, the derivation where one is asked, the experiment, and the
answer computed from the run's records. The pieces of code the course asks students to
write are code cells marked with the metadata `{"tinyvision": {"piece": NAME}}`, each
checked against tinyvision's own reference with `torch.testing.assert_close`.

The notebooks are generated so that their text stays reviewable here, in one place;
`make test` executes them (tests/test_notebooks.py). Run: `python scripts/make-notebooks.py`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

Cell = tuple[str, str, "dict | None"]  # kind, text, the cell's `tinyvision` metadata


def md(text: str) -> Cell:
    return ("md", dedent(text).strip(), None)


def code(text: str) -> Cell:
    return ("code", dedent(text).strip(), None)


def setup(text: str) -> Cell:
    """Imports and budgets: what a piece's check may use besides the pieces before it."""
    return ("code", dedent(text).strip(), {"setup": True})


def piece(name: str, text: str) -> Cell:
    """A piece of code the course asks students to write (exercise notebooks blank it)."""
    return ("code", dedent(text).strip(), {"piece": name})


def check(name: str, text: str) -> Cell:
    """The cell right after a piece: it compares the piece with tinyvision's reference and
    fails on a wrong one. It runs on the setup cells, the pieces and the checks before it
    alone (no training run), so the tests can run it on wrong pieces too."""
    return ("code", dedent(text).strip(), {"checks": name})


def question(qid: str, title: str, text: str) -> Cell:
    """The heading the course table links to, then the question in the project's words."""
    return md(f"### {qid} — {title}\n\n" + dedent(text).strip())


SETUP = """\
import math
import os

import pandas as pd
import torch
from IPython.display import Image, display
from torch.testing import assert_close

import tinyvision as tv

# TINYVISION_NOTEBOOK_QUICK=1 makes every training tiny (the tests run the notebooks so);
# unset, the budgets are the notebook's defaults, given in its introduction.
QUICK = os.environ.get("TINYVISION_NOTEBOOK_QUICK") == "1"
OUT = os.environ.get("TINYVISION_NOTEBOOK_OUT", "runs")  # where the run folders go
# Quick runs are too small to be worth timing bf16 and channels-last against float32.
FAST = dict(train__amp="none", train__channels_last=False) if QUICK else {}
print("quick budgets" if QUICK else "default budgets", "- runs in", OUT)


def show(path):
    display(Image(filename=str(path)))"""


def notebook(cells: list[Cell]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    made = []
    for kind, text, meta in cells:
        cell = new_markdown_cell(text) if kind == "md" else new_code_cell(text)
        if meta is not None:
            cell.metadata["tinyvision"] = meta
        made.append(cell)
    nb.cells = made
    for number, cell in enumerate(nb.cells):  # stable ids: the same script, the same files
        cell.id = f"cell-{number}"
    return nb


EXERCISE_INTRO = """\
**Exercise version.** Each cell that ends in `raise NotImplementedError` is yours to write:
its docstring gives the conventions and shapes. The cell after it checks your code against
tinyvision's and says in a line or two what differs; until your version passes, the rest
of the notebook runs on tinyvision's own (and says so), so every cell runs from the start."""


def exercise(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise notebook of a solution notebook: each piece blanked, then checked by
    `tv.check`, which gives the cells after it the student's piece once it passes and
    tinyvision's reference until then."""
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
        # the solution cell's own imports stay: the blank must still define its names
        imports = [ln for ln in cell.source.splitlines() if ln.startswith(("import ", "from "))]
        cell.source = "\n".join([*imports, *([""] if imports else []), piece.blank()])
        checked = new_code_cell(piece.check_cell(), metadata={"tinyvision": {"check": check}})
        checked.id = f"{cell.id}-check"
        cells += [cell, checked]
    nb.cells = cells
    return nb


# --- 1-ab: the MLP from scratch, and SVMs -------------------------------------------------

MLP = [
    md(
        """
        # Practical 1-ab: a neural network from scratch, and SVMs

        A two-layer perceptron (tanh hidden layer, SoftMax output, cross-entropy loss) on the
        circles data: two classes on concentric rings, 200 training and 200 test points. The
        notebook follows the practical's questions in order: part 1-a (theory, `1ab.Q1` to
        `1ab.Q17`), then part 1-b (implementation, `1ab.B1` to `1ab.B6`). The functions the
        course asks you to write (`forward`, `loss_accuracy`, `backward`, `sgd`) are written
        here and checked against tinyvision's own (`tv.models.mlp_manual`); the experiments
        run through the Python API (`tv.run`, `tv.sweep`), so every number below is read
        from a run's records. `tinyvision course 1ab` lists the same questions with the
        command that answers each.

        Budgets: the circles runs train 150 epochs (the course's), MNIST the preset's 10.
        `TINYVISION_NOTEBOOK_QUICK=1` makes them tiny (10 epochs, 1,000 MNIST images), to
        check that the notebook runs.
        """
    ),
    setup(SETUP),
    code(
        """
        EPOCHS = 10 if QUICK else 150  # the course trains 150 epochs
        # The reference run of the theory part: the hand-written MLP with the course's
        # defaults (10 hidden units, batch 10, SGD 0.03, weights from N(0, 0.3)).
        base = tv.run("1ab-circles-manual", out=OUT, quiet=True, train__epochs=EPOCHS)
        base
        """
    ),
    md("## Part 1-a: theory\n\n**The supervised data set**"),
    question(
        "1ab.Q1",
        "Training, validation and test sets",
        """
        What is each of the three subsets for?

        *Answer.* The **training** set is what the weights are fitted on. The
        **validation** set is held out from fitting and used to choose what the gradient
        does not choose: the hyperparameters (learning rate, width, number of epochs) and
        the moment to stop. The **test** set is used once, at the end, for an estimate of
        the error on unseen data that no choice has been tuned to. The circles data
        come as two splits only; tinyvision's `data.test_only=true` makes a held-out
        split from a single one (the MNIST runs below).
        """,
    ),
    code(
        """
        train_x, train_y = base.examples("train")
        test_x, test_y = base.examples("test")
        pd.DataFrame(
            {
                "examples": [len(train_y), len(test_y)],
                **{f"class {c!r}": [int((train_y == i).sum()), int((test_y == i).sum())]
                   for i, c in enumerate(base.classes)},
            },
            index=["train", "test"],
        )
        """
    ),
    question(
        "1ab.Q2",
        "The number of examples N",
        """
        How does the size of the training set change what is learnt?

        *Answer.* More examples pin the decision boundary down better and average out the
        noise of individual points, so the model generalizes better; with few examples a
        flexible model fits their noise (overfitting). Each epoch also costs more, since
        it holds more batches. The sweep trains the same network on 20, 200 and 2,000
        circles points and tests all three on the same 200.
        """,
    ),
    code(
        """
        sizes = tv.sweep("1ab-circles-optim", {"data.n_train": "20,200,2000"}, out=OUT,
                         quiet=True, train__epochs=EPOCHS)
        table = sizes.table
        table[["data.n_train", "final_train_acc", "final_test_acc", "gap", "seconds"]]
        """
    ),
    code(
        """
        small, large = table.iloc[0], table.iloc[-1]
        print(f"N = {int(small['data.n_train'])}: train-test gap {small['gap']:.1f} points; "
              f"N = {int(large['data.n_train'])}: {large['gap']:.1f} points")
        print(f"an epoch of N = {int(large['data.n_train'])} took "
              f"{large['seconds'] / max(small['seconds'], 1e-9):.1f}x the time of "
              f"N = {int(small['data.n_train'])}")
        """
    ),
    md("**The network's architecture**"),
    question(
        "1ab.Q3",
        "Why a non-linearity",
        """
        Why must an activation function sit between the two linear layers?

        *Answer.* Two linear maps in a row are one linear map: $W_2(W_1x + b_1) + b_2 =
        (W_2W_1)x + (W_2b_1 + b_2)$. Without the tanh, the two-layer network can only draw
        a straight boundary, and the circles' classes are rings. The cell checks the
        identity on two `nn.Linear` layers.
        """,
    ),
    code(
        """
        torch.manual_seed(0)
        first, second = torch.nn.Linear(2, 10), torch.nn.Linear(10, 2)
        x = torch.randn(5, 2)
        one_map = torch.nn.Linear(2, 2)
        with torch.no_grad():
            one_map.weight.copy_(second.weight @ first.weight)
            one_map.bias.copy_(second.weight @ first.bias + second.bias)
        assert_close(second(first(x)), one_map(x))
        print("two linear layers without activation = one linear layer (2 -> 2)")
        """
    ),
    question(
        "1ab.Q4",
        "The sizes n_x, n_h, n_y",
        """
        What are the input, hidden and output sizes, and how is each chosen?

        *Answer.* $n_x$ is the dimension of an input (fixed by the data), $n_y$ the number
        of classes (fixed by the task), and $n_h$ the width of the hidden layer: a
        hyperparameter, chosen on validation data. Read from the trained run's weights:
        """,
    ),
    code(
        """
        shapes = {name: tuple(value.shape) for name, value in base.model.params().items()}
        n_h, n_x = shapes["Wh"]
        n_y = shapes["Wy"][0]
        print(shapes)
        print(f"n_x = {n_x} (coordinates of a point), n_h = {n_h} (the preset's model.hidden), "
              f"n_y = {n_y} (classes: {base.classes})")
        print("the course's figure draws n_x = 2, n_h = 4, n_y = 2")
        """
    ),
    question(
        "1ab.Q5",
        "y and ŷ",
        """
        What do the vectors $y$ and $\\hat y$ hold, and how do they differ?

        *Answer.* $y$ is the truth, one-hot: 1 for the true class and 0 elsewhere.
        $\\hat y$ is the network's output: a probability for each class, each in $[0, 1]$,
        summing to 1. Three test points:
        """,
    ),
    code(
        """
        with torch.no_grad():
            yhat = torch.softmax(base.model(test_x[:3]), dim=1)
        y = torch.nn.functional.one_hot(test_y[:3], n_y)
        pd.DataFrame(
            torch.cat([y.float(), yhat], 1).numpy(),
            columns=[f"y {c}" for c in base.classes] + [f"ŷ {c}" for c in base.classes],
        )
        """
    ),
    question(
        "1ab.Q6",
        "Why SoftMax at the output",
        """
        Why is the output activation a SoftMax?

        *Answer.* $\\mathrm{SoftMax}(\\tilde y)_i = e^{\\tilde y_i} / \\sum_j e^{\\tilde y_j}$
        turns any scores into a probability distribution over the classes (positive,
        summing to 1), read as $P(y = i \\mid x)$. It keeps the order of the scores, is
        differentiable, and tends to the one-hot of the largest score as the scores grow:
        a soft, differentiable arg max. Adding a constant to every score changes nothing.
        """,
    ),
    code(
        """
        scores = torch.tensor([[2.0, 1.0, -1.0]])
        for scale in (1, 5, 50):
            print(f"SoftMax({scale} x scores) =", torch.softmax(scale * scores, 1).numpy().round(4))
        assert_close(torch.softmax(scores + 100, 1), torch.softmax(scores, 1))
        print("rows sum to", float(torch.softmax(scores, 1).sum()), "- shifting every score by 100 "
              "changes nothing")
        """
    ),
    question(
        "1ab.Q7",
        "The forward pass",
        r"""
        Write the equations from the input $x$ to $\tilde h$, $h$, $\tilde y$ and $\hat y$.

        *Answer.* With one example per row (a batch $X$ of shape $N \times n_x$), weights
        stored as `nn.Linear` stores them ($W_h$: $n_h \times n_x$, $W_y$: $n_y \times n_h$):

        $$\tilde H = X W_h^\top + b_h,\qquad H = \tanh(\tilde H),\qquad
        \tilde Y = H W_y^\top + b_y,\qquad \hat Y = \mathrm{SoftMax}(\tilde Y)\ \text{(per row)}.$$

        `forward` returns $\hat Y$ and the intermediate values the backward pass needs.
        """,
    ),
    piece(
        "init_params",
        """
        def init_params(nx, nh, ny):
            \"\"\"Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,), drawn from N(0, 0.3).\"\"\"
            return {
                "Wh": torch.randn(nh, nx) * 0.3,
                "bh": torch.randn(nh) * 0.3,
                "Wy": torch.randn(ny, nh) * 0.3,
                "by": torch.randn(ny) * 0.3,
            }
        """,
    ),
    check(
        "init_params",
        """
        drawn = init_params(2, 10, 2)
        shapes = {name: tuple(p.shape) for name, p in drawn.items()}
        assert shapes == {"Wh": (10, 2), "bh": (10,), "Wy": (2, 10), "by": (2,)}, shapes
        print("init_params: the shapes nn.Linear would give,", shapes)
        """,
    ),
    piece(
        "forward",
        """
        def forward(params, X):
            \"\"\"Ŷ, and what backward needs: X, h~, h, y~, ŷ (one example per row).\"\"\"
            htilde = X @ params["Wh"].T + params["bh"]
            h = torch.tanh(htilde)
            ytilde = h @ params["Wy"].T + params["by"]
            # SoftMax per row; subtracting the row's largest score avoids overflow in exp
            e = torch.exp(ytilde - ytilde.max(dim=1, keepdim=True).values)
            yhat = e / e.sum(dim=1, keepdim=True)
            return yhat, {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}
        """,
    ),
    check(
        "forward",
        """
        from tinyvision.models import mlp_manual as reference

        torch.manual_seed(0)
        params = reference.init_params(2, 10, 2, std=0.3)
        X = torch.randn(16, 2)
        Y = torch.nn.functional.one_hot(torch.randint(0, 2, (16,)), 2).float()
        mine, mine_outputs = forward(params, X)
        ours, our_outputs = reference.forward(params, X)
        assert_close(mine, ours)
        for key in our_outputs:
            assert_close(mine_outputs[key], our_outputs[key])
        print("forward agrees with tinyvision's on every output:", ", ".join(our_outputs))
        """,
    ),
    md("**The loss function**"),
    question(
        "1ab.Q8",
        "Which way ŷ must move",
        r"""
        For the cross-entropy and for the squared error, in which direction must each
        $\hat y_i$ move to lower the loss?

        *Answer.* Cross-entropy $\ell = -\sum_i y_i \log \hat y_i$ gives
        $\partial \ell / \partial \hat y_i = -y_i / \hat y_i$: negative for the true
        class, so $\hat y_{\text{true}}$ must rise towards 1; the other terms are absent
        from the loss, and since the outputs sum to 1, they fall towards 0 as it rises.
        Squared error $\ell = \sum_i (\hat y_i - y_i)^2$ gives $2(\hat y_i - y_i)$: every
        output moves towards its target. The signs, by autograd:
        """,
    ),
    code(
        """
        yhat = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
        y = torch.tensor([1.0, 0.0, 0.0])
        cross_entropy = -(y * torch.log(yhat)).sum()
        (d_ce,) = torch.autograd.grad(cross_entropy, yhat)
        (d_se,) = torch.autograd.grad(((yhat - y) ** 2).sum(), yhat)
        pd.DataFrame({"y": y, "ŷ": yhat.detach(), "dCE/dŷ": d_ce, "dSE/dŷ": d_se,
                      "CE: ŷ moves": ["up" if g < 0 else "down" if g > 0 else "(not in CE)"
                                      for g in d_ce],
                      "SE: ŷ moves": ["up" if g < 0 else "down" for g in d_se]})
        """
    ),
    question(
        "1ab.Q9",
        "Classification or regression",
        """
        Which of the two losses suits classification, which regression, and why?

        *Answer.* Cross-entropy for classification: it scores a probability distribution
        (it pairs with the SoftMax), its log punishes a confident wrong answer without
        bound, and its gradient through the SoftMax stays large while the answer is wrong
        (1ab.Q15: $\\hat y - y$). Squared error for regression, where targets are real
        numbers: it is the negative log-likelihood of Gaussian noise; on SoftMax outputs
        its gradient fades as an output saturates, even a wrong one.
        """,
    ),
    md("**The optimization algorithm**"),
    question(
        "1ab.Q10",
        "Full batch, mini-batch or one example at a time",
        """
        Compare gradient descent on the whole training set, on small batches, and on one
        example at a time. Which is the usual choice?

        *Answer.* The full batch gives the exact gradient, but each step costs a pass over
        all the data (and memory for all of it), and it follows the landscape into the
        first minimum it meets. One example per step is cheap but very noisy (the noise
        can help escape poor minima, but the loss never settles). Mini-batches are the
        usual compromise: a gradient estimate good enough, steps cheap enough, and
        vectorized. One sweep answers this question, 1ab.Q11 and the batch-size and
        learning-rate part of 1ab.B1: the hand-written MLP (gradients summed over the
        batch, as the course's) at four learning rates and batches of 1, 10 and 200 (= all
        the training points). At the course's $\\eta = 0.03$:
        """,
    ),
    code(
        """
        grid = tv.sweep("1ab-circles-manual",
                        {"optim.lr": "0.001,0.03,0.3,1", "train.batch_size": "1,10,200"},
                        out=OUT, quiet=True, train__epochs=EPOCHS)
        table = grid.table.drop(columns="lr")  # the learning rate each run recorded: the same
        points = table.rename(columns={"optim.lr": "lr", "train.batch_size": "batch"})
        points["curves"] = [tv.load(grid.path / name).metrics for name in points["run"]]


        def jitter(curves):  # the train loss's change from epoch to epoch, over the last half
            loss = curves["train_loss"]
            return float(loss.diff().abs()[len(loss) // 2:].mean())


        at_course_lr = points[points["lr"] == 0.03].assign(
            steps_per_epoch=lambda t: [math.ceil(200 / b) for b in t["batch"]],
            jitter=lambda t: [jitter(c) for c in t["curves"]])
        display(at_course_lr[["batch", "steps_per_epoch", "final_test_acc", "best_test_acc",
                              "jitter", "seconds"]])
        pd.DataFrame({f"batch {int(b)}": c["test_acc"] for b, c in
                      zip(at_course_lr["batch"], at_course_lr["curves"])}).plot(
            title="test accuracy at lr 0.03", xlabel="epoch");
        """
    ),
    question(
        "1ab.Q11",
        "The learning rate η",
        """
        What does the learning rate change in training?

        *Answer.* Each step is $w \\leftarrow w - \\eta\\, \\partial L / \\partial w$. Too small
        an $\\eta$ and training crawls (and may stop far from a minimum within its
        budget); too large and the steps overshoot: the loss oscillates or diverges. A
        common remedy is to start large and decay $\\eta$ (1cd.Q26), or an adaptive
        method such as Adam; $\\eta$ must also match the batch size (summed gradients grow
        with it). The sweep of 1ab.Q10 at batches of 10:
        """,
    ),
    code(
        """
        at_batch_10 = points[points["batch"] == 10]
        display(at_batch_10[["lr", "status", "final_train_acc", "final_test_acc",
                             "best_test_acc"]])
        done = at_batch_10.dropna(subset=["final_test_acc"])
        best = done.loc[done["final_test_acc"].idxmax()]
        print(f"best learning rate here: {best['lr']:g} ({best['final_test_acc']:.1f}% test)")
        print("the course's reports (150 epochs, batch 10): lr 0.1 -> 94% (loss 0.18); "
              "lr 0.0001 -> 64% (loss 0.69); lr 1 -> 65% (loss 1.88)")
        pd.DataFrame({f"lr {lr:g}": c["train_loss"] for lr, c in
                      zip(at_batch_10["lr"], at_batch_10["curves"])}).plot(
            title="train loss at batch 10", xlabel="epoch", logy=True);
        """
    ),
    question(
        "1ab.Q12",
        "The cost of the gradients against depth",
        r"""
        Compare the cost of computing every parameter's gradient naively with the cost of
        backpropagation, as the number of layers grows.

        *Answer.* Naively, each weight's derivative is found on its own: by finite
        differences, one extra forward pass per weight, so $O(W)$ passes of $O(W)$ each,
        $O(W^2)$ in all for $W$ weights; by the chain rule written out per layer, the
        derivative for layer $l$ of $L$ multiplies the $L - l$ Jacobians above it again,
        $\sum_l (L - l) = L(L-1)/2$ products, $O(L^2)$. Backpropagation computes each
        layer's $\partial \ell / \partial(\text{output})$ once, from the layer above, and
        reuses it for that layer's weights and for the layer below: one backward pass that
        costs about as much as the forward one, $O(W)$, $O(L)$ in depth.
        """,
    ),
    code(
        """
        W = base.model.num_weights()
        print(f"the course MLP has W = {W} weights: finite differences need {W + 1} forward "
              "passes per gradient; backpropagation one forward and one backward pass")
        for depth in (2, 10, 50):
            print(f"  {depth} layers: {depth * (depth - 1) // 2} Jacobian products when each "
                  f"layer's gradient is written out on its own, {depth} steps by backpropagation")
        """
    ),
    question(
        "1ab.Q13",
        "What backpropagation requires",
        """
        What must the network satisfy for this kind of optimization to work?

        *Answer.* Every operation from the input to the loss must be differentiable
        (almost everywhere, as ReLU is), so that the chain rule applies; the computation
        must be a graph without cycles (a loop in time is unrolled first); and in
        practice the gradients must neither vanish nor explode on their way down
        (saturating activations, depth; skip connections and normalization help). A step
        function shows what fails: its gradient is zero everywhere, so nothing learns.
        """,
    ),
    code(
        """
        x = torch.linspace(-1, 1, 5, requires_grad=True)
        (grad_step,) = torch.autograd.grad(torch.sign(x).sum(), x)
        (grad_tanh,) = torch.autograd.grad(torch.tanh(x).sum(), x)
        print("d sign(x)/dx =", grad_step.numpy(), "  d tanh(x)/dx =", grad_tanh.numpy().round(3))
        """
    ),
    md("**Derivations: the gradients of the loss**"),
    question(
        "1ab.Q14",
        "Cross-entropy on a SoftMax",
        r"""
        Show that the cross-entropy of the SoftMax outputs simplifies to
        $\ell = -\sum_i y_i \tilde y_i + \log \sum_i e^{\tilde y_i}$.

        *Derivation.* Put $\hat y_i = e^{\tilde y_i} / \sum_j e^{\tilde y_j}$ into
        $\ell = -\sum_i y_i \log \hat y_i$:

        $$\ell = -\sum_i y_i\Big(\tilde y_i - \log \sum_j e^{\tilde y_j}\Big)
        = -\sum_i y_i \tilde y_i + \Big(\sum_i y_i\Big)\log \sum_j e^{\tilde y_j}
        = -\sum_i y_i \tilde y_i + \log \sum_j e^{\tilde y_j},$$

        since the one-hot $y$ sums to 1. Over a batch, the loss is the mean of $\ell$ over
        the rows. `loss_accuracy` returns it with the accuracy (the share of rows whose
        largest $\hat y$ is the true class).
        """,
    ),
    piece(
        "loss_accuracy",
        """
        def loss_accuracy(yhat, Y):
            \"\"\"Mean cross-entropy and accuracy (a fraction) of ŷ against one-hot labels Y.\"\"\"
            loss = -(Y * torch.log(yhat.clamp_min(1e-30))).sum(dim=1).mean()
            accuracy = (yhat.argmax(dim=1) == Y.argmax(dim=1)).float().mean()
            return loss, accuracy
        """,
    ),
    check(
        "loss_accuracy",
        """
        ytilde = torch.randn(16, 2)
        yhat = torch.softmax(ytilde, 1)
        loss, accuracy = loss_accuracy(yhat, Y)
        their_loss, their_accuracy = reference.loss_accuracy(yhat, Y)
        assert_close(loss, their_loss)
        assert_close(accuracy, their_accuracy)
        simplified = (-(Y * ytilde).sum(1) + torch.logsumexp(ytilde, 1)).mean()
        assert_close(loss, simplified)
        print(f"loss {float(loss):.4f} = the simplified form {float(simplified):.4f}; "
              f"accuracy {float(accuracy):.2f}, as tinyvision's")
        """,
    ),
    question(
        "1ab.Q15",
        "The gradient with respect to ỹ",
        r"""
        Derive $\partial \ell / \partial \tilde y$.

        *Derivation.* From 1ab.Q14, $\partial \ell / \partial \tilde y_i = -y_i +
        e^{\tilde y_i} / \sum_j e^{\tilde y_j} = \hat y_i - y_i$, so
        $\nabla_{\tilde y}\ell = \hat y - y$. For the mean over a batch of $N$ rows, the
        matrix $\nabla_{\tilde Y} L = (\hat Y - Y)/N$ ($N \times n_y$); with the loss
        summed over the batch, the $1/N$ goes. Checked by autograd:
        """,
    ),
    code(
        """
        ytilde = torch.randn(16, 2, requires_grad=True)
        loss, _ = loss_accuracy(torch.softmax(ytilde, 1), Y)
        (by_autograd,) = torch.autograd.grad(loss, ytilde)
        assert_close(by_autograd, (torch.softmax(ytilde, 1) - Y).detach() / len(Y))
        print("dL/dỹ = (ŷ - y) / N, as autograd finds it")
        """
    ),
    question(
        "1ab.Q16",
        "The output layer's gradients",
        r"""
        Derive $\nabla_{W_y}\ell$ and $\nabla_{b_y}\ell$ from $\nabla_{\tilde y}\ell$.

        *Derivation.* $\tilde y_i = \sum_j W_{y,ij} h_j + b_{y,i}$, so
        $\partial \ell / \partial W_{y,ij} = (\partial \ell / \partial \tilde y_i)\, h_j
        = (\hat y_i - y_i)\, h_j$ and $\partial \ell / \partial b_{y,i} = \hat y_i - y_i$.
        For a batch, with $\Delta_y = \nabla_{\tilde Y} L$ ($N \times n_y$) and $H$
        ($N \times n_h$):

        $$\nabla_{W_y} L = \Delta_y^\top H \quad (n_y \times n_h),\qquad
        \nabla_{b_y} L = \textstyle\sum_{\text{rows}} \Delta_y .$$
        """,
    ),
    question(
        "1ab.Q17",
        "The hidden layer's gradients",
        r"""
        Derive $\nabla_{\tilde h}\ell$, $\nabla_{W_h}\ell$ and $\nabla_{b_h}\ell$.

        *Derivation.* $h$ reaches the loss only through $\tilde y$:
        $\partial \ell / \partial h_j = \sum_i (\partial \ell / \partial \tilde y_i) W_{y,ij}$,
        i.e. $\nabla_h \ell = \nabla_{\tilde y}\ell\, W_y$. Through the tanh, $\partial h_j /
        \partial \tilde h_j = 1 - \tanh^2(\tilde h_j) = 1 - h_j^2$, elementwise:

        $$\Delta_h = \nabla_{\tilde H} L = (\Delta_y W_y) \odot (1 - H^2),\qquad
        \nabla_{W_h} L = \Delta_h^\top X \quad (n_h \times n_x),\qquad
        \nabla_{b_h} L = \textstyle\sum_{\text{rows}} \Delta_h .$$

        `backward` writes 1ab.Q15 to 1ab.Q17 for a batch. `reduction="mean"` averages over
        the batch (the loss of `loss_accuracy`); `"sum"` adds the examples' gradients up,
        as the course's hand-written SGD does (1ab.B1 compares the two).
        """,
    ),
    piece(
        "backward",
        """
        def backward(params, outputs, Y, reduction="mean"):
            \"\"\"The gradients of the loss with respect to Wh, bh, Wy, by, by hand.\"\"\"
            scale = 1.0 / len(Y) if reduction == "mean" else 1.0
            delta_y = (outputs["yhat"] - Y) * scale  # dL/dy~      (N, ny)
            delta_h = (delta_y @ params["Wy"]) * (1 - outputs["h"] ** 2)  # dL/dh~   (N, nh)
            return {
                "Wy": delta_y.T @ outputs["h"],
                "by": delta_y.sum(dim=0),
                "Wh": delta_h.T @ outputs["X"],
                "bh": delta_h.sum(dim=0),
            }
        """,
    ),
    check(
        "backward",
        """
        # Against autograd, in float64 so that only a wrong formula can differ
        params64 = {k: v.double() for k, v in params.items()}
        X64, Y64 = X.double(), Y.double()
        leaves = {k: v.clone().requires_grad_() for k, v in params64.items()}
        loss, _ = loss_accuracy(forward(leaves, X64)[0], Y64)
        loss.backward()
        by_hand = backward(params64, forward(params64, X64)[1], Y64)
        summed = backward(params64, forward(params64, X64)[1], Y64, reduction="sum")
        theirs = reference.backward(params64, reference.forward(params64, X64)[1], Y64)
        for name in ("Wh", "bh", "Wy", "by"):
            assert_close(by_hand[name], leaves[name].grad)
            assert_close(by_hand[name], theirs[name])
            assert_close(summed[name], len(Y) * by_hand[name])
        pd.DataFrame({k: [float((by_hand[k] - leaves[k].grad).abs().max())] for k in params},
                     index=["largest |by hand - autograd|"])
        """,
    ),
    md("## Part 1-b: implementation"),
    question(
        "1ab.B1",
        "Training the hand-written MLP",
        """
        Train the MLP with your own `forward`, `backward` and a hand-written SGD step on
        mini-batches of the circles; look at the loss and accuracy curves and at what the
        batch size and the learning rate change.

        `sgd` updates each parameter in place, $p \\leftarrow p - \\eta\\,\\nabla_p$. The loop
        below is the course's: batches of 10, $\\eta = 0.03$, gradients summed over the
        batch, weights from $\\mathcal N(0, 0.3)$.
        """,
    ),
    piece(
        "sgd",
        """
        def sgd(params, grads, eta):
            \"\"\"One gradient step, in place: p <- p - eta * dL/dp.\"\"\"
            for name in params:
                params[name] -= eta * grads[name]
            return params
        """,
    ),
    check(
        "sgd",
        """
        step = {k: v.float() for k, v in by_hand.items()}
        stepped = sgd({k: v.clone() for k, v in params.items()}, step, 0.1)
        assert_close(stepped, reference.sgd({k: v.clone() for k, v in params.items()}, step, 0.1))
        print("sgd agrees with tinyvision's")
        """,
    ),
    code(
        """
        # The course's loop, with the notebook's functions, on the run's own circles
        torch.manual_seed(0)
        weights = reference.init_params(2, 10, 2, std=0.3)
        Ytrain = torch.nn.functional.one_hot(train_y, 2).float()
        Ytest = torch.nn.functional.one_hot(test_y, 2).float()
        history = []
        for epoch in range(EPOCHS):
            order = torch.randperm(len(train_x))
            for start in range(0, len(order), 10):
                batch = order[start:start + 10]
                yhat, outputs = forward(weights, train_x[batch])
                sgd(weights, backward(weights, outputs, Ytrain[batch], reduction="sum"), 0.03)
            train_loss, train_acc = loss_accuracy(forward(weights, train_x)[0], Ytrain)
            test_loss, test_acc = loss_accuracy(forward(weights, test_x)[0], Ytest)
            history.append({"train_loss": float(train_loss), "test_loss": float(test_loss),
                            "train_acc": 100 * float(train_acc), "test_acc": 100 * float(test_acc)})
        history = pd.DataFrame(history, index=pd.RangeIndex(1, EPOCHS + 1, name="epoch"))
        assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
        print(f"the notebook's MLP after {EPOCHS} epochs: test accuracy "
              f"{history['test_acc'].iloc[-1]:.1f}%; tinyvision's run of the same recipe: "
              f"{base.summary['final']['test_acc']:.1f}% (another batch order)")
        history.plot(subplots=[("train_loss", "test_loss"), ("train_acc", "test_acc")],
                     layout=(1, 2), figsize=(10, 3.5));
        """
    ),
    md(
        """
        The batch size and the learning rate together, from the sweep of 1ab.Q10: the final
        test accuracy of each pair. With gradients summed over the batch, a step grows with
        the batch, so the larger the batch, the smaller the learning rate it takes.
        """
    ),
    code(
        """
        display(points.pivot(index="lr", columns="batch", values="final_test_acc"))
        for batch, rows in points.dropna(subset=["final_test_acc"]).groupby("batch"):
            top = rows.loc[rows["final_test_acc"].idxmax()]
            print(f"batch {int(batch)}: best lr {top['lr']:g} ({top['final_test_acc']:.1f}%)")
        """
    ),
    md(
        """
        The course also compares gradients averaged over the batch with gradients summed: summed, a
        batch of 10 steps 10 times as far, so it gets to its best sooner, less steadily.
        The boundary the run drew, epoch by epoch, is in its folder
        (`decision_boundary.gif`); its last state:
        """
    ),
    code(
        """
        averaged = tv.run("1ab-circles-manual", out=OUT, quiet=True, train__epochs=EPOCHS,
                          train__loss_reduction="mean")
        for run, how in ((averaged, "mean"), (base, "sum")):  # base: the preset, summed
            jitter = float(run.metrics.query("epoch >= 1")["train_loss"].diff().abs().mean())
            print(f"gradients {how:>4}: best test {run.summary['best_test_acc']:.1f}% at epoch "
                  f"{run.summary['best_epoch']}, mean train-loss change per epoch {jitter:.4f}")
        print("the course's report: about 100 epochs to the best averaged, about 10 summed, "
              "averaged much smoother")
        show(base.path / "decision_boundary.png")
        """
    ),
    question(
        "1ab.B2",
        "autograd",
        """
        Replace the hand-written backward pass by `torch.autograd`.

        The gradients were checked against autograd in 1ab.Q17; the run trains the same
        network with autograd's gradients (variant `autograd`), same seed, same data,
        same initial weights. It must follow the hand-written run's curve.
        """,
    ),
    code(
        """
        variants = {"manual": base}
        variants["autograd"] = tv.run("1ab-circles-autograd", out=OUT, quiet=True,
                                      train__epochs=EPOCHS)
        gap = (variants["autograd"].metrics["train_loss"] - base.metrics["train_loss"]).abs().max()
        print(f"largest difference in train loss, autograd against by hand: {gap:.2e}")
        """
    ),
    question(
        "1ab.B3",
        "torch.nn layers",
        """
        Build the forward pass from `torch.nn` layers (`nn.Linear`, `nn.Tanh`).

        With the course's $\\mathcal N(0, 0.3)$ weights the `nn` version is the same
        function and trains alike. The course's reports find it slower: that comes from
        `nn.Linear`'s own initialization (uniform, $\\pm 1/\\sqrt{\\text{fan-in}}$), which
        the second run keeps (`model.init_std=none`).
        """,
    ),
    code(
        """
        variants["nn"] = tv.run("1ab-circles-nn", out=OUT, quiet=True, train__epochs=EPOCHS)
        torch_init = tv.run("1ab-circles-nn", out=OUT, quiet=True, train__epochs=EPOCHS,
                            model__init_std=None)
        for name, run in (("N(0, 0.3)", variants["nn"]), ("nn.Linear's init", torch_init)):
            print(f"nn layers, {name}: best test {run.summary['best_test_acc']:.1f}% at epoch "
                  f"{run.summary['best_epoch']}, final {run.summary['final']['test_acc']:.1f}%")
        """
    ),
    question(
        "1ab.B4",
        "torch.optim",
        """
        Replace the hand-written update by a `torch.optim` optimizer (SGD). The four
        versions, overlaid: same seed, same data, same initial weights, so the same curve.
        """,
    ),
    code(
        """
        variants["optim"] = tv.run("1ab-circles-optim", out=OUT, quiet=True, train__epochs=EPOCHS)
        losses = pd.DataFrame({v: r.metrics["train_loss"] for v, r in variants.items()})
        print("largest difference between the variants' train loss:",
              float((losses.max(axis=1) - losses.min(axis=1)).max()))
        losses.plot(title="train loss, the four variants", xlabel="epoch");
        """
    ),
    question(
        "1ab.B5",
        "MNIST",
        """
        Apply the same MLP to MNIST (784 inputs, 100 hidden units, batch 100, SGD 0.03,
        gradients averaged). Where only MNIST's test split is on the machine,
        `data.test_only=true` trains on 8,000 of its images and tests on the other 2,000.
        """,
    ),
    code(
        """
        from tinyvision.data.sources import find_split

        if not find_split("mnist", "test"):
            print("MNIST is not on this machine: `tinyvision data fetch mnist` downloads it, then "
                  "`tinyvision run 1ab-mnist` answers this question")
        else:
            mnist = {} if find_split("mnist", "train") else {"data__test_only": True}
            if QUICK:
                mnist.update(train__epochs=1, data__train_subset=1000, data__test_subset=500)
            digits = tv.run("1ab-mnist", out=OUT, quiet=True, **mnist, **FAST)
            print(f"{digits.summary['data']['n_train']} training images: test accuracy "
                  f"{digits.summary['final']['test_acc']:.2f}% after "
                  f"{digits.summary['epochs_done']} epochs")
            display(digits.plot())
        """
    ),
    question(
        "1ab.B6",
        "SVMs",
        """
        Fit support vector machines to the circles with linear, polynomial, RBF and sigmoid
        kernels and several values of the regularization C; draw their boundaries with
        their accuracies.

        The `1ab-svm` run trains the MLP, then fits scikit-learn's SVMs on the same split:
        `svm.csv` (C = 1), `svm_c_sweep.csv` (C from 0.01 to 100) and the pictures.
        """,
    ),
    code(
        """
        svm = tv.run("1ab-svm", out=OUT, quiet=True, train__epochs=EPOCHS)
        kernels = pd.read_csv(svm.path / "svm.csv")
        display(kernels)
        show(svm.path / "svm_boundaries.png")
        """
    ),
    code(
        """
        sweep_c = pd.read_csv(svm.path / "svm_c_sweep.csv")
        display(sweep_c.pivot(index="C", columns="kernel", values="test_acc"))
        show(svm.path / "svm_c_sweep.png")
        best = kernels.loc[kernels["test_acc"].idxmax()]
        print(f"at C = 1 the best kernel is {best['kernel']} ({best['test_acc']:.1f}% test); "
              f"the MLP: {svm.summary['final']['test_acc']:.1f}%")
        for kernel, rows in sweep_c.groupby("kernel", sort=False):
            top = rows.loc[rows["test_acc"].idxmax()]
            support = rows["n_support"].dropna()
            trend = ""
            if len(support):
                trend = (f", support vectors {int(support.iloc[0])} at C = {rows['C'].iloc[0]:g}"
                         f" -> {int(support.iloc[-1])} at C = {rows['C'].iloc[-1]:g}")
            print(f"  {kernel}: best test {top['test_acc']:.1f}% at C = {top['C']:g}{trend}")
        """
    ),
    md(
        """
        *Reading.* The rings are not linearly separable: the linear kernel stays near chance;
        the RBF kernel, a bump around each support vector, draws the round boundary. A small
        C tolerates margin violations (a wide margin, many support vectors, a simpler
        boundary); a large C fits the training points harder (fewer support vectors, a
        boundary that can bend around noise).
        """
    ),
]


# --- 1-cd: convolutional networks ---------------------------------------------------------

CNN_SETUP = """\
from tinyvision.data.sources import find_split

# The course trains on CIFAR-10 (3x32x32). Where its files are absent (this notebook runs
# offline), the experiments run on Fashion-MNIST (1x28x28), with the same network.
CIFAR = bool(find_split("cifar10", "train") and find_split("cifar10", "test"))
DATA = "cifar10" if CIFAR else "fashion-mnist"
COURSE_SHAPE = (3, 32, 32)  # the course network's input: the arithmetic below is on it
if QUICK:
    MAIN = SMALL = dict(train__epochs=1, data__train_subset=256, data__test_subset=256)
else:
    MAIN = dict(train__epochs=15, data__train_subset=20000)  # the baseline and the stack
    SMALL = dict(train__epochs=5, data__train_subset=10000)  # each study of one setting
MAIN = dict(data__name=DATA, **MAIN, **FAST)
SMALL = dict(data__name=DATA, **SMALL, **FAST)
print("experiments on", DATA, "" if CIFAR else "(CIFAR-10 is not on this machine: "
      "`tinyvision data fetch cifar10` downloads it)")


def bonus_study(name):
    # A bonus question's study, at the SMALL budget. The quick switch leaves these out:
    # many runs, through the same code as the studies it does run.
    if QUICK:
        print(f"quick mode: not run here; `tinyvision study {name} data.name={DATA}` runs it")
        return None
    return tv.study(name, out=OUT, quiet=True, **SMALL)"""


CNN = [
    md(
        """
        # Practical 1-cd: convolutional networks

        The course's CNN (three 5×5 convolutions of 32, 64 and 64 filters, each followed by
        a 2×2 max-pool, then fully connected layers of 1,000 and 10 units) on CIFAR-10,
        question by question: part 1-c, the network's arithmetic (`1cd.Q1` to `1cd.Q7`);
        part 1-d, training it (`1cd.Q8` to `1cd.Q18`); part 3, improving it
        (`1cd.Q19` to `1cd.Q34`). The functions the course asks for (`conv_output_size`,
        `receptive_field`, the network, `standardize`, `zca`, `random_crop`) are written
        here and checked against tinyvision's own. `tinyvision course 1cd` lists the same
        questions with the command that answers each.

        CIFAR-10 is used where its files are on the machine; otherwise the experiments run
        on Fashion-MNIST (1×28×28 images, 10 classes) with the same network, and the
        numbers are Fashion-MNIST's. The course's reference values are shown beside them,
        labelled with their setup. Budgets: the baseline and the stacked improvements train
        15 epochs on 20,000 images; each study of one setting 5 epochs on 10,000.
        `TINYVISION_NOTEBOOK_QUICK=1` makes every run one epoch on 256 images, to check
        that the notebook runs, not to conclude anything; it leaves out the bonus studies
        of 1cd.Q25 and 1cd.Q28 (27 runs through the same code as the other studies).
        """
    ),
    setup(SETUP),
    setup(CNN_SETUP),
    md("## Part 1-c: the network's arithmetic"),
    question(
        "1cd.Q1",
        "One filter: output size and weights",
        r"""
        A convolution with a single $k \times k$ filter, padding $p$ and stride $s$ runs on
        an $x \times y \times z$ input. What is the output's size, how many weights does it
        have, and how many would a fully connected layer need for the same output size?

        *Derivation.* Along a width of $x + 2p$ padded pixels, the filter's first position
        covers pixels $0 \ldots k-1$ and each step moves $s$: it fits
        $\lfloor (x + 2p - k)/s \rfloor$ more times, so

        $$x' = \Big\lfloor \frac{x + 2p - k}{s} \Big\rfloor + 1,\qquad
        y' = \Big\lfloor \frac{y + 2p - k}{s} \Big\rfloor + 1,\qquad z' = 1 .$$

        The filter spans all $z$ input channels: $k \cdot k \cdot z$ weights plus one bias,
        the same at every position. A fully connected layer with the same $x' y'$ outputs
        links each of them to all $x y z$ inputs: $(x y z + 1) \cdot x' y'$ weights.
        (Pooling uses the same formula; PyTorch's `ceil_mode=True` rounds up instead, but
        never starts a window past the input.)
        """,
    ),
    piece(
        "conv_output_size",
        """
        def conv_output_size(size, kernel, stride=1, padding=0, ceil_mode=False):
            \"\"\"Output width of a convolution or pooling: floor((size + 2p - k) / s) + 1.\"\"\"
            span = size + 2 * padding - kernel
            if not ceil_mode:
                return span // stride + 1
            out = -(-span // stride) + 1  # rounded up
            if (out - 1) * stride >= size + padding:  # the last window would start past the input
                out -= 1
            return out
        """,
    ),
    check(
        "conv_output_size",
        """
        import torch.nn.functional as F

        from tinyvision.models import arithmetic

        checked = 0
        for size in range(5, 34):
            for kernel in range(1, 6):
                for stride in (1, 2, 3):
                    for padding in range(kernel // 2 + 1):
                        for ceil_mode in (False, True):
                            mine = conv_output_size(size, kernel, stride, padding, ceil_mode)
                            assert mine == arithmetic.conv_output_size(
                                size, kernel, stride, padding, ceil_mode), (size, kernel, stride)
                            pooled = F.max_pool2d(torch.zeros(1, 1, size, size), kernel, stride,
                                                  padding, ceil_mode=ceil_mode)
                            assert mine == pooled.shape[-1], (size, kernel, stride, padding)
                            checked += 1
        print(f"conv_output_size agrees with tinyvision's and with PyTorch's pooling on {checked} "
              "cases")

        x, z, k, p, s = 32, 3, 5, 2, 1  # the course's first layer, with one filter
        side = conv_output_size(x, k, s, p)
        conv = torch.nn.Conv2d(z, 1, k, stride=s, padding=p)
        assert conv(torch.zeros(1, z, x, x)).shape[-1] == side
        conv_count = sum(t.numel() for t in conv.parameters())
        fc_count = arithmetic.fc_weights_same_output(z, x, 1, side)
        fc = torch.nn.Linear(z * x * x, side * side)
        assert fc_count == sum(t.numel() for t in fc.parameters())
        print(f"on {x}x{x}x{z}, k={k}, p={p}, s={s}: output {side}x{side}x1, "
              f"{conv_count} weights (k*k*z + 1); a fully connected layer: {fc_count:,}")
        """,
    ),
    question(
        "1cd.Q2",
        "Convolution against a fully connected layer",
        """
        What does a convolution gain over a fully connected layer, and what is its main
        limit?

        *Answer.* Each output sees a small neighbourhood (sparse, local connections), and
        the same filter is used at every position (weight sharing): far fewer weights
        (the ratio below) and less computation, an output that shifts when the input
        shifts (translation equivariance), and, stacked, a hierarchy from edges to parts
        to objects. The limit: an output sees only its receptive field, so global
        context needs depth (1cd.Q7); and the sharing builds in translation, not scale or
        rotation.
        """,
    ),
    code(
        """
        print(f"same output from the same input: {fc_count / conv_count:,.0f} times fewer weights "
              "with the convolution")
        """
    ),
    question(
        "1cd.Q3",
        "Why spatial pooling",
        """
        What is spatial pooling for?

        *Answer.* It summarizes each small window by one value (the maximum for max-pool):
        a feature that moves within the window gives the same output (invariance to small
        shifts and deformations), and the maps shrink, so every later layer computes on
        fewer positions and sees a larger part of the image. Below, a peak moves by one
        pixel inside a 2×2 window: the pooled map does not change, and it has a quarter
        of the positions.
        """,
    ),
    code(
        """
        peak = torch.zeros(1, 1, 8, 8)
        peak[..., 4, 4] = 1.0
        moved = torch.roll(peak, shifts=(1, 1), dims=(2, 3))  # the peak at (5, 5)
        pooled, pooled_moved = F.max_pool2d(peak, 2), F.max_pool2d(moved, 2)
        print("input changed:", not torch.equal(peak, moved),
              "- pooled output changed:", not torch.equal(pooled, pooled_moved))
        print(f"positions: {peak[0, 0].numel()} before pooling, {pooled[0, 0].numel()} after")
        """
    ),
    question(
        "1cd.Q4",
        "A larger input image",
        """
        Can a CNN made for one input size (the course's example: 224×224; here the course
        network, made for 32×32) run unchanged on a larger image, all of it or part of it?

        *Answer.* The convolutions and the pools can: a filter slides over any size and
        just gives larger maps. The first fully connected layer cannot: its weight
        matrix fixes the length of the vector it takes, and a larger image flattens to a
        longer one, so the forward pass stops there. Run:
        """,
    ),
    code(
        """
        net = tv.models.CourseCNN(in_chans=3, num_classes=10).eval()
        with torch.no_grad():
            net(torch.zeros(1, *COURSE_SHAPE))  # fc4 takes its size from this first input
            maps = net.features(torch.zeros(1, 3, 64, 64))
            print("the convolutions and pools run on 3x64x64:", tuple(maps.shape[1:]),
                  f"= {maps[0].numel()} values; fc4 takes {net.fc4.in_features}")
            try:
                net(torch.zeros(1, 3, 64, 64))
            except RuntimeError as error:
                print("the forward pass fails at fc4:", str(error).splitlines()[0])
        """
    ),
    question(
        "1cd.Q5",
        "A fully connected layer as a convolution",
        r"""
        Show that a fully connected layer is a special convolution.

        *Answer.* Take one filter per output unit, as large as the whole input volume
        ($H \times W \times C$), with no padding: it fits at a single position, where its
        output is the dot product of all the inputs with its weights, plus its bias,
        exactly one unit of the fully connected layer. For the course network, fc4
        (1,024 = 64 × 4 × 4 inputs, 1,000 units) is a 4 × 4 convolution with 1,000
        filters over 64 channels, and fc5 a 1 × 1 convolution with 10 filters: the same
        numbers, reshaped. On a 32×32 input the two networks agree:
        """,
    ),
    code(
        """
        from tinyvision.models.fc_as_conv import FullyConvolutional

        fcn = FullyConvolutional(net).eval()
        x = torch.randn(4, *COURSE_SHAPE)
        with torch.no_grad():
            assert_close(fcn(x).flatten(1), net(x), rtol=1e-4, atol=1e-5)
        print("fc4 as a 4x4 convolution and fc5 as a 1x1 one give the same scores:",
              tuple(fcn(x).shape), "(a 1x1 map per class)")
        """
    ),
    question(
        "1cd.Q6",
        "The convolutional network on a larger image",
        r"""
        With every fully connected layer replaced by its convolution, run the network on a
        larger image. What comes out, and what is it good for?

        *Answer.* The network now runs on any size at least its own. The last
        convolutions slide too, so the output is a map of class scores, one vector per
        position of a 32×32 window, the windows $j = 8$ pixels apart (the jump of pool3):
        $r$ extra pixels give $r/8$ extra positions, a map of $(r/8 + 1) \times (c/8 + 1)$.
        It classifies every window of a large image in one pass, sharing the
        convolutions' work (detection, segmentation); averaging the map gives one score
        vector again. A picture of this map on a trained network is drawn at the end of
        the notebook (`tinyvision fcconv RUN` draws it for any run of the course CNN).

        (In another edition of the sheet: a convolution without weight sharing, a
        different 5×5 filter bank at every position, with $Q$ filters on a
        $C \times H \times W$ input padded to keep its size, has $5^2 \cdot C \cdot H
        \cdot W \cdot Q$ weights, biases aside.)
        """,
    ),
    code(
        """
        big = 64
        jump = arithmetic.receptive_field([(5, 1), (2, 2)] * 3)[-1][1]
        with torch.no_grad():
            scores = fcn(torch.randn(1, 3, big, big))
        extra = (big - COURSE_SHAPE[-1]) // jump
        assert tuple(scores.shape[-2:]) == (extra + 1, extra + 1)
        print(f"on {big}x{big}: a score map of shape {tuple(scores.shape[1:])}; the jump is {jump} "
              f"pixels, so {big - COURSE_SHAPE[-1]} extra pixels = {extra} extra positions")
        C, H, Q = 3, 32, 32
        unshared = arithmetic.locally_connected_weights(C, Q, 5, H, bias=False)
        assert unshared == 5**2 * C * H * H * Q
        print(f"unshared 5x5 filters, C={C}, H=W={H}, Q={Q}: {unshared:,} weights, against "
              f"{arithmetic.conv_weights(C, Q, 5, bias=False):,} shared")
        """
    ),
    question(
        "1cd.Q7",
        "Receptive fields",
        r"""
        How large is the receptive field of a neuron of the first convolution, and of the
        second? What happens deeper, and how does one read it?

        *Derivation.* Let $r_l$ be the receptive field after layer $l$ (in input pixels)
        and $j_l$ its jump, the distance in input pixels between two neighbouring outputs
        ($r_0 = j_0 = 1$). A layer of kernel $k_l$ and stride $s_l$ sees $k_l$ neighbouring
        outputs of the layer below, $j_{l-1}$ apart:

        $$r_l = r_{l-1} + (k_l - 1)\, j_{l-1}, \qquad j_l = j_{l-1}\, s_l .$$

        conv1 (5, stride 1) sees 5×5 pixels. Counting the pool between them, conv2 sees
        $6 + 4 \cdot 2 = 14$; without the pool (two 5×5 convolutions in a row) $5 + 4 = 9$.
        Deeper neurons see ever larger regions, up to the whole image, and so respond to
        larger, more abstract patterns. `receptive_field` takes the (kernel, stride) of
        each layer and returns $(r_l, j_l)$ after each.
        """,
    ),
    piece(
        "receptive_field",
        """
        def receptive_field(layers):
            \"\"\"(receptive field, jump) after each (kernel, stride) layer, from the input.\"\"\"
            r, j, out = 1, 1, []
            for kernel, stride in layers:
                r, j = r + (kernel - 1) * j, j * stride
                out.append((r, j))
            return out
        """,
    ),
    check(
        "receptive_field",
        """
        import random

        course_layers = [(5, 1), (2, 2)] * 3  # conv1, pool1, conv2, pool2, conv3, pool3
        assert receptive_field(course_layers) == arithmetic.receptive_field(course_layers)
        rng = random.Random(0)
        for _ in range(200):
            layers = [(rng.randint(1, 7), rng.randint(1, 3)) for _ in range(rng.randint(1, 8))]
            assert receptive_field(layers) == arithmetic.receptive_field(layers)
        names = ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3"]
        display(pd.DataFrame(receptive_field(course_layers), index=names,
                             columns=["receptive field", "jump"]).T)
        print("two 5x5 convolutions without the pool:", receptive_field([(5, 1), (5, 1)])[-1][0])
        """,
    ),
    md("## Part 1-d: training from scratch\n\n**The network's architecture**"),
    question(
        "1cd.Q8",
        "A convolution that keeps the size",
        r"""
        What padding and stride keep a 5×5 convolution's output the size of its input?

        *Answer.* From 1cd.Q1 with $s = 1$: $x' = x + 2p - k + 1 = x$ needs
        $p = (k - 1)/2$, so $p = 2$ for $k = 5$ (an odd kernel, for a whole $p$).
        """,
    ),
    code(
        """
        for k in (1, 3, 5, 7):
            p = (k - 1) // 2
            assert conv_output_size(32, k, 1, p) == 32 and arithmetic.same_padding(k) == p
        print("stride 1 and padding (k - 1) / 2 keep 32 at 32 for k = 1, 3, 5, 7: k = 5 needs p =",
              arithmetic.same_padding(5))
        """
    ),
    question(
        "1cd.Q9",
        "A max-pool that halves the size",
        """
        What padding and stride make a 2×2 max-pool halve its input?

        *Answer.* Stride 2 and no padding: $\\lfloor (x - 2)/2 \\rfloor + 1 = x/2$ for an
        even $x$. The windows then tile the input without overlap. Among small pools, those
        that halve 32, 16 and 8 alike:
        """,
    ),
    code(
        """
        halving = [(k, s, p) for k in (1, 2, 3) for s in (1, 2, 3) for p in range(k // 2 + 1)
                   if all(conv_output_size(n, k, s, p) == n // 2 for n in (32, 16, 8))]
        print("(kernel, stride, padding) that halve:", halving, "- a 2x2 window: stride 2, "
              "padding 0")
        """
    ),
    question(
        "1cd.Q10",
        "Each layer's output size and weights",
        """
        Give the output size and the number of weights of every layer, and comment on
        where the weights are.

        The network, written with `torch.nn` as the course asks (convolutions 5×5 with
        padding 2, 2×2 max-pools of stride 2, ReLU). tinyvision's last pool rounds up
        (`ceil_mode=True`), so that a 28×28 input (1cd.Q22's crops, or Fashion-MNIST) still
        leaves fc4 4 × 4 × 64 = 1,024 values; on 32×32 it changes nothing.
        """,
    ),
    piece(
        "cnn",
        """
        from collections import OrderedDict

        from torch import nn


        class CourseCNN(nn.Module):
            \"\"\"conv 32 -> pool -> conv 64 -> pool -> conv 64 -> pool -> fc 1000 -> fc.\"\"\"

            def __init__(self, in_chans=3, num_classes=10):
                super().__init__()
                self.features = nn.Sequential(OrderedDict([
                    ("conv1", nn.Conv2d(in_chans, 32, 5, padding=2)), ("relu1", nn.ReLU()),
                    ("pool1", nn.MaxPool2d(2, 2)),
                    ("conv2", nn.Conv2d(32, 64, 5, padding=2)), ("relu2", nn.ReLU()),
                    ("pool2", nn.MaxPool2d(2, 2)),
                    ("conv3", nn.Conv2d(64, 64, 5, padding=2)), ("relu3", nn.ReLU()),
                    ("pool3", nn.MaxPool2d(2, 2, ceil_mode=True)),
                ]))
                self.fc4 = nn.Linear(64 * 4 * 4, 1000)
                self.fc5 = nn.Linear(1000, num_classes)

            def forward(self, x):
                x = self.features(x).flatten(1)
                return self.fc5(torch.relu(self.fc4(x)))
        """,
    ),
    check(
        "cnn",
        """
        from tinyvision.models.summary import summarize

        mine = CourseCNN(in_chans=3, num_classes=10)
        rows = summarize(mine, COURSE_SHAPE)
        layers = pd.DataFrame(
            {"output": ["x".join(map(str, r.output)) for r in rows],
             "weights + biases": [r.weights + r.biases for r in rows]},
            index=[r.name for r in rows])
        total = int(layers["weights + biases"].sum())
        layers["share %"] = (100 * layers["weights + biases"] / total).round(2)
        display(layers)
        ours = tv.models.CourseCNN(in_chans=3, num_classes=10)
        with torch.no_grad():
            ours(torch.zeros(1, *COURSE_SHAPE))  # sizes its fc4
        assert total == sum(p.numel() for p in ours.parameters())
        convs = sum(r.weights + r.biases for r in rows if r.kind == "Conv2d")
        fcs = sum(r.weights + r.biases for r in rows if r.kind == "Linear")
        print(f"total {total:,}: convolutions {convs:,}, fully connected {fcs:,}; fc4 alone "
              f"{layers.loc['fc4', 'share %']:.1f}%")
        print("the course's reports: 1,191,170 in all, fc4 1,025,000 (about 86%)")
        """,
    ),
    md(
        """
        *Reading.* The convolutions, which do the seeing, hold about an eighth of the
        weights; fc4, which links every one of the 1,024 features to each of its 1,000
        units, holds most of the rest. The pools have none. `tinyvision summary cnn` prints
        this table with receptive fields and multiply-adds.
        """
    ),
    question(
        "1cd.Q11",
        "Weights against training examples",
        """
        How many weights in all, and how does that compare with the number of training
        examples?

        *Answer.* About 24 weights per CIFAR-10 training image (50,000 of them): many more
        unknowns than examples, so the network can learn its training set by heart, and
        will overfit without care (1cd.Q18).
        """,
    ),
    code(
        """
        CIFAR10_TRAIN = 50_000  # CIFAR-10's training split
        print(f"{total:,} weights for {CIFAR10_TRAIN:,} training images: "
              f"{total / CIFAR10_TRAIN:.1f} weights per image")
        """
    ),
    question(
        "1cd.Q12",
        "Against bag of words and an SVM",
        """
        How does that compare with the bag-of-words + SVM pipeline met earlier in the
        course?

        *Answer.* With a vocabulary of $K$ visual words and one linear SVM per class, the
        learnt classifier has $(K + 1)$ weights per class; counting the codebook too (K
        SIFT centres of 128 dimensions) adds $128K$. With the course's $K = 1000$ and 10
        classes, both are far below the CNN's count, but the SVM's features (SIFT) are
        designed by hand, where the CNN learns its own end to end.
        """,
    ),
    code(
        """
        K, classes, sift = 1000, 10, 128  # the course's bag-of-words setup
        svms = (K + 1) * classes
        with_codebook = sift * K + svms
        print(f"linear SVMs on {K} words: {svms:,} weights; with the codebook {with_codebook:,}; "
              f"the CNN has {total / svms:,.0f}x / {total / with_codebook:,.1f}x as many")
        """
    ),
    md("**Training the network**"),
    question(
        "1cd.Q13",
        "The training script",
        """
        Read and run the training code the course provides, `main(batch_size, lr, epochs)`.

        tinyvision's run is that script: batches of 128, plain SGD at 0.1, cross-entropy,
        top-1 and top-5 accuracy, train then test each epoch. The course's first logged
        line, `[TRAIN Batch 000/469] Loss 2.3017 Prec@1 7.8 Prec@5 50.8`, is from 60,000
        images in batches of 128. The baseline (`1cd-baseline`, pixels in [0, 1]):
        """,
    ),
    code(
        """
        baseline = tv.run("1cd-baseline", out=OUT, quiet=True, **MAIN)
        n_train = baseline.summary["data"]["n_train"]
        batch = baseline.config["train"]["batch_size"]
        print(f"{n_train:,} training images in batches of {batch}: {math.ceil(n_train / batch)} "
              "steps an epoch")
        baseline.metrics[["epoch", "train_loss", "train_acc", "train_acc5", "test_loss", "test_acc",
                          "test_acc5"]]
        """
    ),
    question(
        "1cd.Q14",
        "How train and test metrics differ",
        """
        Apart from the data, what differs in how the loss and accuracy are computed on the
        training set and on the test set?

        *Answer.* The training numbers are a running mean over the epoch's batches, each
        measured *while the weights change* (before the batch's update), in training mode
        (dropout active, batch norm on the batch's statistics). The test numbers come from
        the weights at the end of the epoch, fixed, in evaluation mode, with no backward
        pass and no update. So early on the test accuracy can exceed the train accuracy:
        the train mean includes the worse weights of the epoch's start.
        """,
    ),
    code(
        """
        first = baseline.metrics.query("epoch == 1").iloc[0]  # row 0: before training
        print(f"epoch 1: train accuracy {first['train_acc']:.1f}% (the mean over the epoch), "
              f"test {first['test_acc']:.1f}% (the epoch's last weights)")
        """
    ),
    question(
        "1cd.Q15",
        "CIFAR-10 and the course network",
        """
        Move the code to CIFAR-10 and the network of 1cd.Q10, and train until it converges.

        The notebook's network (1cd.Q10) is tinyvision's `CourseCNN`: with tinyvision's
        weights loaded, it gives the same outputs. The baseline above trained it on the
        data named below.
        """,
    ),
    code(
        """
        ours = tv.models.CourseCNN(in_chans=3, num_classes=10).eval()
        x = torch.randn(4, *COURSE_SHAPE)
        with torch.no_grad():
            expected = ours(x)  # sizes fc4
            mine.load_state_dict(ours.state_dict())
            assert_close(mine.eval()(x), expected)
        shape = "x".join(map(str, baseline.summary["input_shape"]))
        print(f"the notebook's CNN = tinyvision's; the baseline trained it on {DATA} ({shape}): "
              f"{baseline.summary['params']:,} parameters, test accuracy "
              f"{baseline.summary['final']['test_acc']:.2f}% after "
              f"{baseline.summary['epochs_done']} epochs")
        """
    ),
    question(
        "1cd.Q16",
        "The learning rate and the batch size",
        """
        What do the learning rate and the batch size change?

        *Answer.* A large learning rate takes long steps: fast at first, then the loss
        oscillates, or diverges; a small one is steady but slow and may stop short. Small
        batches give noisy gradients (a regularizing noise), cheap steps but many of them
        and poor use of the hardware; large batches give steady gradients and fast epochs
        but fewer updates per epoch, so they need a larger learning rate (roughly in
        proportion). Two studies (standardized inputs, plain SGD):
        """,
    ),
    code(
        """
        lr = tv.study("1cd-lr", out=OUT, quiet=True, **SMALL)
        display(lr.table[["step", "status", "final_test_acc", "best_test_acc", "gap", "seconds"]])
        batch_size = tv.study("1cd-batch-size", out=OUT, quiet=True, **SMALL)
        sizes = batch_size.table
        sizes["seconds per epoch"] = sizes["seconds"] / sizes["epochs_done"]
        display(sizes[["step", "final_test_acc", "best_test_acc", "gap", "seconds per epoch"]])
        lr.plot()
        """
    ),
    code(
        """
        def best_step(study):
            done = study.table.dropna(subset=["final_test_acc"])
            row = done.loc[done["final_test_acc"].idxmax()]
            return f"{row['step']} ({row['final_test_acc']:.1f}%)"

        failed = lr.table[lr.table["status"] != "completed"]["step"].tolist()
        print("best learning rate:", best_step(lr), "- runs that did not complete:",
              failed or "none")
        print("best batch size:", best_step(batch_size), "- seconds per epoch from",
              f"{sizes['seconds per epoch'].max():.1f} to {sizes['seconds per epoch'].min():.1f}")
        print("the course's reports (CIFAR-10): lr 0.01 reaches only 56% where 0.1 reaches about "
              "70%; batch 32 is noisier than 128 and ends about the same")
        """
    ),
    question(
        "1cd.Q17",
        "The error before training",
        """
        What are the train and test errors at the start of the first epoch, and what do
        they mean?

        *Answer.* Random weights give outputs that carry no information about the class:
        about one answer in ten is right (90% error, chance for 10 classes), and the
        SoftMax is close to uniform, so the cross-entropy is close to
        $-\\log(1/10) = \\ln 10$. A run's records hold this evaluation before training
        as the epoch-0 row of its metrics; here it is measured directly, on an untrained
        course network, with the baseline's test images and inputs:
        """,
    ),
    code(
        """
        assert baseline.config["data"]["normalize"] == "none"  # the baseline's input: x / 255
        images, labels = baseline.examples("test")
        torch.manual_seed(0)
        fresh = tv.models.CourseCNN(in_chans=images.shape[1], num_classes=10).eval()
        with torch.no_grad():
            logits = fresh(images.float() / 255)
        loss = float(F.cross_entropy(logits, labels))
        error = 100 * float((logits.argmax(1) != labels).float().mean())
        print(f"before training: loss {loss:.4f} (ln 10 = {math.log(10):.4f}), error {error:.1f}% "
              f"(chance: {100 - 100 / len(baseline.classes):.0f}%)")
        """
    ),
    question(
        "1cd.Q18",
        "What goes wrong",
        """
        Read the baseline's curves: what happens, and what is it called?

        *Answer.* Overfitting: the training loss keeps falling towards 0 and the training
        accuracy towards 100%, while the test loss, after a minimum, climbs back and the
        test accuracy stalls. The network learns its training images rather than the
        classes. From the run's records:
        """,
    ),
    code(
        """
        m = baseline.metrics
        low = int(m.loc[m["test_loss"].idxmin(), "epoch"])
        last = m.iloc[-1]
        print(f"test loss lowest at epoch {low} ({m['test_loss'].min():.3f}); at the last epoch "
              f"({int(last['epoch'])}) {last['test_loss']:.3f}; train accuracy "
              f"{last['train_acc']:.1f}% against test {last['test_acc']:.1f}% (gap "
              f"{last['train_acc'] - last['test_acc']:.1f} points)")
        if low == int(last["epoch"]):
            print("the test loss is still falling: this budget stops before the turn")
        print("the course's reports (CIFAR-10): test accuracy stalls near 60-70% after about 10 "
              "epochs while the test loss rises again")
        baseline.plot()
        """
    ),
    md("## Part 3: improving the results\n\n**Normalization**"),
    question(
        "1cd.Q19",
        "Standardized inputs",
        """
        Standardize each channel with the training set's mean and standard deviation, and
        compare with the baseline.

        `1cd-ablation` adds one improvement per step, each on top of the previous ones:
        standardization (here), crop and flip (1cd.Q22), momentum and a decaying learning
        rate (1cd.Q26), dropout (1cd.Q29), batch norm (1cd.Q34).
        """,
    ),
    code(
        """
        stack = tv.study("1cd-ablation", out=OUT, quiet=True, **MAIN)
        stacked = stack.runs  # one Run per step, in the stack's order
        steps = stack.table.set_index("step")
        display(steps[["final_test_acc", "best_test_acc", "final_train_acc", "gap", "seconds"]])


        def change(after, before, column="final_test_acc"):
            return steps.loc[after, column] - steps.loc[before, column]


        print(f"standardization: {change('standardize', 'baseline'):+.2f} points of test accuracy")
        print("the course's reports (CIFAR-10): 70.46% -> 76.78% (30 epochs, lr 0.05); 69% -> 74%")
        """
    ),
    piece(
        "standardize",
        """
        def standardize(train_x, test_x):
            \"\"\"Per channel, (x - mean) / std, with the training images' statistics only.\"\"\"
            dims = (0, 2, 3)  # every image and pixel of a channel
            mean = train_x.mean(dim=dims, keepdim=True)
            std = train_x.std(dim=dims, keepdim=True, unbiased=False)
            return (train_x - mean) / std, (test_x - mean) / std
        """,
    ),
    check(
        "standardize",
        """
        from tinyvision.config import DataConfig
        from tinyvision.data.preprocess import Normalizer, fit_normalization, to_float

        generator = torch.Generator().manual_seed(0)
        fake_train = torch.randint(0, 256, (400, 3, 8, 8), dtype=torch.uint8, generator=generator)
        fake_test = torch.randint(0, 200, (100, 3, 8, 8), dtype=torch.uint8, generator=generator)
        train_n, test_n = standardize(to_float(fake_train), to_float(fake_test))
        apply = Normalizer(fit_normalization(DataConfig(normalize="standardize"), fake_train))
        assert_close(train_n, apply(to_float(fake_train)), rtol=1e-4, atol=1e-4)
        assert_close(test_n, apply(to_float(fake_test)), rtol=1e-4, atol=1e-4)
        print("standardize agrees with tinyvision's")
        """,
    ),
    question(
        "1cd.Q20",
        "Statistics from the training set only",
        """
        Why are the mean and standard deviation computed on the training set only, and
        then reused as they are on the validation and test data?

        *Answer.* Everything the model uses must be learnt from training data: statistics
        taken from the test set pass information about it into the model, and the test
        score is then no longer an estimate on unseen data (a leak). Reusing the training
        statistics also applies one fixed function to every input, as a deployed model
        would to a single new image, which has no statistics of its own. The two sets'
        statistics differ, a little:
        """,
    ),
    code(
        """
        from tinyvision.data.preprocess import channel_stats

        raw_train, _ = stacked[1].examples("train", count=2000)
        raw_test, _ = stacked[1].examples("test", count=500)
        train_n, _ = standardize(to_float(raw_train), to_float(raw_test))
        print("standardized training images, per channel: mean",
              train_n.mean((0, 2, 3)).numpy().round(4), "std",
              train_n.std((0, 2, 3)).numpy().round(4))
        train_mean, train_std = channel_stats(raw_train)
        test_mean, test_std = channel_stats(raw_test)
        print("training set: mean", [round(v, 4) for v in train_mean], "std",
              [round(v, 4) for v in train_std])
        print("test set:     mean", [round(v, 4) for v in test_mean], "std",
              [round(v, 4) for v in test_std])
        """
    ),
    question(
        "1cd.Q21",
        "Other normalizations: ZCA and more",
        r"""
        Try other normalizations (ZCA whitening among them), explain how they differ, and
        compare.

        *ZCA whitening.* Flatten the images, centre them with the training mean $\mu$, and
        take the training covariance $\Sigma = U \Lambda U^\top$. The whitening matrix
        $W = U (\Lambda + \epsilon I)^{-1/2} U^\top$ rescales every principal direction to
        unit variance (up to $\epsilon$, which keeps the noise directions from blowing up),
        then rotates back, so whitened images still look like images (their edges
        stand out): $x \mapsto (x - \mu) W$. PCA whitening stops before rotating back
        ($\Lambda^{-1/2} U^\top$: `data.normalize=pca`); the study also tries per-image
        global contrast normalization (`gcn`), min-max scaling, and per-image L1 and L2
        norms.
        """,
    ),
    piece(
        "zca",
        """
        def zca(train_x, test_x, epsilon):
            \"\"\"ZCA whitening fitted on the training images, applied to both sets.\"\"\"
            flat = train_x.reshape(len(train_x), -1).double()
            mean = flat.mean(dim=0)
            centred = flat - mean
            covariance = centred.T @ centred / len(flat)
            eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
            scale = (eigenvalues.clamp_min(0) + epsilon).rsqrt()
            whitening = eigenvectors @ torch.diag(scale) @ eigenvectors.T

            def whiten(x):
                flat = x.reshape(len(x), -1).double()
                return ((flat - mean) @ whitening).reshape(x.shape).float()

            return whiten(train_x), whiten(test_x)
        """,
    ),
    check(
        "zca",
        """
        from tinyvision.data.preprocess import zca_matrix

        epsilon = 0.1  # tinyvision's data.zca_epsilon
        white_train, white_test = zca(to_float(fake_train), to_float(fake_test), epsilon)
        zca_mean, whitening = zca_matrix(fake_train, epsilon)
        for raw, white in ((fake_train, white_train), (fake_test, white_test)):
            expected = (to_float(raw).reshape(len(raw), -1) - zca_mean) @ whitening
            assert_close(white, expected.reshape(raw.shape), rtol=1e-3, atol=1e-3)
        print("zca agrees with tinyvision's")
        """,
    ),
    code(
        """
        import matplotlib.pyplot as plt

        _, white_test = zca(to_float(raw_train[:1000]), to_float(raw_test), epsilon)
        fig, axes = plt.subplots(2, 6, figsize=(9, 3.2))
        for i in range(6):
            axes[0, i].imshow(raw_test[i].permute(1, 2, 0).squeeze(-1), cmap="gray")
            w = white_test[i].permute(1, 2, 0).squeeze(-1)
            axes[1, i].imshow((w - w.min()) / (w.max() - w.min()), cmap="gray")
        for ax in axes.flat:
            ax.axis("off")
        fig.suptitle("test images (top) and ZCA-whitened (bottom)")
        plt.show()
        """
    ),
    code(
        """
        normalization = tv.study("1cd-normalization", out=OUT, quiet=True, **SMALL)
        display(normalization.table[["step", "final_test_acc", "best_test_acc", "gap", "seconds"]])
        print("best:", best_step(normalization))
        print("the course's reports (CIFAR-10): ZCA 82.0% against 76.6% for standardization, about "
              "9x slower, in one; very poor and unstable in another")
        """
    ),
    md("**Data augmentation**"),
    question(
        "1cd.Q22",
        "Random crops and horizontal flips",
        """
        Train with random crops and random horizontal flips of the training images, and
        compare.

        The course crops 28×28 windows out of the 32×32 images at random (the centre one
        at test time), and mirrors half of them. `random_crop` cuts one window per image
        at random offsets, drawn from the generator: first the top rows of the whole
        batch, then the left columns, each uniform in $0 \\ldots H - \\text{size}$ (the
        order tinyvision uses, so that one seed gives the same crops).
        """,
    ),
    piece(
        "random_crop",
        """
        def random_crop(x, size, generator):
            \"\"\"A random size x size window of each image of the batch (B, C, H, W).\"\"\"
            b, (h, w) = x.shape[0], x.shape[-2:]
            top = torch.randint(0, h - size + 1, (b,), generator=generator)
            left = torch.randint(0, w - size + 1, (b,), generator=generator)
            return torch.stack([image[:, t:t + size, l:l + size]
                                for image, t, l in zip(x, top.tolist(), left.tolist())])
        """,
    ),
    check(
        "random_crop",
        """
        from tinyvision.data import augment

        batch = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
        mine = random_crop(batch, 28, torch.Generator().manual_seed(0))
        assert_close(mine, augment.random_crop(batch, 28, torch.Generator().manual_seed(0)))
        for image, crop in zip(batch, mine):  # each crop is a window of its own image
            assert any(torch.equal(image[:, t:t + 28, l:l + 28], crop)
                       for t in range(5) for l in range(5))
        floor_side = conv_output_size(conv_output_size(conv_output_size(28, 2, 2), 2, 2), 2, 2)
        ceil_side = conv_output_size(conv_output_size(conv_output_size(28, 2, 2), 2, 2), 2, 2,
                                     ceil_mode=True)
        print("random_crop agrees with tinyvision's")
        print(f"a 28x28 crop leaves fc4 {64 * floor_side**2} values with plain pools "
              f"({floor_side}x{floor_side}x64), {64 * ceil_side**2} with the last pool rounding up")
        """,
    ),
    code(
        """
        side = stacked[0].examples("test", count=1)[0].shape[-1]
        if side == 28:
            print(f"these images are {side}x{side}: a 28x28 crop is the whole image, so only the "
                  "flip acts here (the `1cd-augmentation` study below adds shifts: pad 4, then "
                  "crop)")
        print(f"crop and flip: {change('augment', 'standardize'):+.2f} points of test accuracy; "
              f"train-test gap {steps.loc['standardize', 'gap']:.1f} -> "
              f"{steps.loc['augment', 'gap']:.1f}")
        print("the course's reports (CIFAR-10): about 80% against 70-74% before; train accuracy no "
              "longer reaches 100%")
        """
    ),
    question(
        "1cd.Q23",
        "Is a horizontal flip always valid?",
        """
        Can every kind of image be mirrored?

        *Answer.* Only where the mirror image belongs to the same class: natural objects,
        animals, vehicles, clothes. Not text or digits (a mirrored 2, 3, 4, 5 or 9 is no
        digit, b becomes d), nor images whose left and right differ in meaning (medical
        images, road signs with arrows). Some of this notebook's images, and their mirrors:
        """,
    ),
    code(
        """
        images, labels = stacked[2].examples("test", count=6)
        flipped = augment.random_flip(images, torch.Generator().manual_seed(0), p=1.0)
        fig, axes = plt.subplots(2, 6, figsize=(9, 3.6))
        for i in range(6):
            for row, picture in enumerate((images[i], flipped[i])):
                axes[row, i].imshow(picture.permute(1, 2, 0).squeeze(-1), cmap="gray")
                axes[row, i].axis("off")
            axes[0, i].set_title(stacked[2].classes[int(labels[i])], fontsize=8)
        fig.suptitle("test images (top) and their mirrors (bottom)")
        plt.show()
        """
    ),
    question(
        "1cd.Q24",
        "The limits of augmentation",
        """
        What can augmentation not do?

        *Answer.* It makes no new content: new objects, backgrounds, poses or lighting
        are not in a crop or a flip. A transformation can change the label (a flipped
        digit, a crop that cuts out the object) or make images unlike any real one. It
        costs compute at every epoch, and it cannot mend a class the data lacks.
        """,
    ),
    question(
        "1cd.Q25",
        "Other augmentations",
        """
        Find and try other augmentations.

        The study tries each on its own, on standardized inputs: shifts, flips, rotations,
        affine maps, colour jitter, random erasing, cutout, mixup and cutmix.
        """,
    ),
    code(
        """
        augmentation = bonus_study("1cd-augmentation")
        if augmentation:
            columns = ["step", "final_test_acc", "best_test_acc", "gap", "seconds"]
            display(augmentation.table[columns])
            print("best:", best_step(augmentation))
        """
    ),
    md("**Optimizers and learning-rate schedules**"),
    question(
        "1cd.Q26",
        "SGD with a decaying learning rate",
        """
        Train with SGD and a learning rate that decays along training (here: momentum 0.9
        and an exponential decay of 0.95 per epoch), and compare, stability included.
        """,
    ),
    code(
        """
        print(f"momentum and decay: {change('schedule', 'augment'):+.2f} points of test accuracy")
        before, after = (s.metrics.query("epoch >= 1")["test_loss"] for s in stacked[2:4])
        if len(after) > 1:
            print(f"test-loss change from epoch to epoch, mean: {before.diff().abs().mean():.3f} "
                  f"before, {after.diff().abs().mean():.3f} with the schedule")
        print("the course's reports (CIFAR-10): 80.35% at lr 0.05 and 81.76% at lr 0.1 "
              "(30 epochs); steadier curves")
        show(stack.path / "lr.png")
        """
    ),
    question(
        "1cd.Q27",
        "Why it helps",
        r"""
        Why do these changes help?

        *Answer.* Early, large steps cross the landscape quickly; later, small steps let
        the weights settle into a minimum instead of bouncing around it: with
        $\eta_t = \eta_0 \gamma^t$ the noise of the steps shrinks as training goes on.
        Momentum keeps a running sum of past gradients,
        $v \leftarrow \mu v + \nabla,\ w \leftarrow w - \eta v$: consistent directions add
        up (about $1/(1 - \mu) = 10$ times faster for $\mu = 0.9$) and oscillating ones
        cancel.
        """,
    ),
    code(
        """
        lrs = stacked[3].metrics.query("epoch >= 1")["lr"]
        print(f"learning rate of the schedule step: {lrs.iloc[0]:g} at epoch 1, "
              f"{lrs.iloc[-1]:.4g} at epoch {len(lrs)}")
        """
    ),
    question(
        "1cd.Q28",
        "Other optimizers and schedules",
        """
        Try other variants of SGD and other schedules.

        Two studies on the augmented network: optimizers at their usual learning rates
        (no schedule), then schedules with SGD and momentum.
        """,
    ),
    code(
        """
        optimizers, schedules = bonus_study("1cd-optimizers"), bonus_study("1cd-schedules")
        if optimizers and schedules:
            display(optimizers.table[["step", "status", "final_test_acc", "best_test_acc", "gap"]])
            display(schedules.table[["step", "status", "final_test_acc", "best_test_acc", "gap"]])
            print("best optimizer:", best_step(optimizers), "- best schedule:",
                  best_step(schedules))
            show(schedules.path / "lr.png")
        """
    ),
    md("**Dropout**"),
    question(
        "1cd.Q29",
        "Dropout",
        """
        Add dropout (between fc4 and fc5) and compare.
        """,
    ),
    code(
        """
        print(f"dropout: {change('dropout', 'schedule'):+.2f} points of test accuracy; train-test "
              f"gap {steps.loc['schedule', 'gap']:.1f} -> {steps.loc['dropout', 'gap']:.1f}")
        print("the course's reports (CIFAR-10): 81.72% (30 epochs), 83.51% (40 epochs) at lr 0.1; "
              "less overfitting")
        """
    ),
    question(
        "1cd.Q30",
        "Regularization",
        """
        What is regularization in general?

        *Answer.* Anything that limits how closely the model can fit its training data, so
        that it fits the pattern rather than the noise, trading some training accuracy for
        better generalization: penalties on the weights (L2 or weight decay, L1), noise
        in training (dropout, augmentation), early stopping, fewer or smaller layers.
        """,
    ),
    question(
        "1cd.Q31",
        "Why dropout works",
        """
        What explanations of dropout's effect does the literature give?

        *Answer.* Units cannot count on any other unit being there, so they cannot
        co-adapt (fix each other's mistakes) and each must be useful on its own (Hinton et
        al., 2012; Srivastava et al., 2014). Each batch trains a different thinned
        network that shares weights with all the others, and the full network at test time
        acts as an average of this ensemble. It can also be read as multiplicative noise
        on the activations.
        """,
    ),
    question(
        "1cd.Q32",
        "The dropout rate",
        """
        How does the dropout rate $p$ change the result?

        *Answer.* $p$ is the probability of dropping a unit. Too low, and the network still
        overfits; too high, and too little signal gets through to learn (at $p = 1$
        nothing does). The study varies it on the scheduled network:
        """,
    ),
    code(
        """
        rates = tv.study("1cd-dropout-rate", out=OUT, quiet=True, **SMALL)
        display(rates.table[["step", "final_test_acc", "final_train_acc", "gap"]])
        print("best:", best_step(rates))
        """
    ),
    question(
        "1cd.Q33",
        "Dropout in training and in testing",
        """
        How does a dropout layer behave in training and at test time?

        *Answer.* In training it zeroes each unit with probability $p$ and scales the kept
        ones by $1/(1 - p)$, so that the expected output is unchanged; at test time
        (`model.eval()`) it is the identity. (The original paper scales at test time
        instead, by $1 - p$; PyTorch scales in training.)
        """,
    ),
    code(
        """
        drop = torch.nn.Dropout(p=0.5)
        ones = torch.ones(10_000)
        torch.manual_seed(0)
        trained = drop.train()(ones)
        print(f"training: {100 * float((trained == 0).float().mean()):.1f}% zeroed, the rest = "
              f"{float(trained[trained > 0][0]):g}, mean {float(trained.mean()):.3f}")
        print("evaluation: identity =", torch.equal(drop.eval()(ones), ones))
        """
    ),
    md("**Batch normalization**"),
    question(
        "1cd.Q34",
        "Batch normalization",
        """
        Add batch normalization and compare: the last step of the stack.
        """,
    ),
    code(
        """
        print(f"batch norm: {change('batchnorm', 'dropout'):+.2f} points; the whole stack "
              f"{change('batchnorm', 'baseline'):+.2f} over the baseline")
        display(steps[["final_test_acc", "gap"]].assign(
            gain=steps["final_test_acc"].diff().round(2)))
        print("the course's stacked table (CIFAR-10, one report): vanilla 70.46% (30 epochs, lr "
              "0.05), + normalization 76.78%, + augmentation 79.5%, + optimizer 81.76% (lr 0.1), "
              "+ dropout 83.51% (40 epochs), + batch norm 84.97% (40 epochs, lr 0.1)")
        stack.plot()
        """
    ),
    md(
        """
        ## Beyond the questions

        *The methods in one line each.* Standardization puts every input channel on one
        scale, so one learning rate suits all weights. ZCA also decorrelates the pixels.
        Crops and flips show the network new, plausible views of each image, so it
        cannot learn the pixels by heart. Momentum and a decaying learning rate move fast
        early and settle late. Dropout trains an ensemble of thinned networks. Batch norm
        keeps every layer's inputs on one scale during training, which allows larger steps.

        What the last model of the stack gets wrong, its fully connected layers as
        convolutions (1cd.Q5 and 1cd.Q6: `tinyvision fcconv RUN`), and a prediction on a
        picture file.
        """
    ),
    code(
        """
        from tinyvision.labs.lab1cd import show_fc_as_conv

        last = stacked[-1]
        show(last.path / "confusion.png")
        show(last.path / "mistakes.png")
        fcconv = show_fc_as_conv(last.path, 4 * side)
        print(f"fc as convolutions: largest difference on the model's own input "
              f"{fcconv.difference:.1e}; on a {fcconv.mosaic}x{fcconv.mosaic} mosaic, a score "
              f"map of shape {fcconv.score_shape}")
        show(fcconv.picture)
        """
    ),
    md(
        """
        *A picture of your own.* Any PNG or JPEG file is converted to the run's input (its
        size and channels, its normalization). Here the file is written from one of the
        run's test images, whose true label we know.
        """
    ),
    code(
        """
        from PIL import Image as PILImage

        images, labels = last.examples("test", count=1)
        truth = last.classes[int(labels[0])]
        picture = os.path.join(OUT, "my-picture.png")
        pixels = images[0].permute(1, 2, 0).squeeze(-1).numpy()
        PILImage.fromarray(pixels).resize((64, 64)).convert("RGB").save(picture)
        fig, ax = plt.subplots(figsize=(2.4, 2.4))
        ax.imshow(PILImage.open(picture))
        ax.set_title(f"{os.path.basename(picture)}: {truth}", fontsize=9)
        ax.axis("off")
        plt.show()
        guesses = last.predict(picture, top=3)[0]
        print(f"true label: {truth}; predicted:",
              ", ".join(f"{name} {100 * p:.1f}%" for name, p in guesses))
        """
    ),
]


# --- 1-e: vision transformers -------------------------------------------------------------

VIT_SETUP = """\
from tinyvision.data.sources import find_split
from tinyvision.models import arithmetic

# Where only MNIST's test split is on the machine, data.test_only=true trains on 8,000 of
# its images and tests on the other 2,000.
MNIST = {} if find_split("mnist", "train") else {"data__test_only": True}
if QUICK:
    RUN = STUDY = dict(train__epochs=1, data__train_subset=256, data__test_subset=128)
else:
    RUN = {}  # the presets' budgets: 10 epochs for the course ViT
    STUDY = dict(train__epochs=5)  # each step of a hyperparameter study
FASHION = {**RUN, **FAST}
RUN, STUDY = {**MNIST, **RUN, **FAST}, {**MNIST, **STUDY, **FAST}
print("MNIST:", "its training split" if not MNIST else "its test split, 8,000 / 2,000")"""

VIT = [
    md(
        """
        # Practical 1-e: vision transformers

        A vision transformer written from scratch, piece by piece, then trained on MNIST;
        the influence of each of its sizes; a large `timm` ViT from scratch and pretrained;
        and the same on Fashion-MNIST. The questions are unnumbered on the course's sheet:
        `1e.E1` to `1e.E17` follow its order. The pieces the course asks you to write
        (one-head and multi-head self-attention, the block, the patch embedding, the
        positional embedding, the ViT) are written here; each is checked against
        tinyvision's (`tv.models`) by loading the same weights into both and comparing
        their outputs. `tinyvision course 1e` lists the same questions with the command
        that answers each.

        Budgets: the course ViT trains the preset's 10 epochs; each step of a
        hyperparameter study 5 epochs. `TINYVISION_NOTEBOOK_QUICK=1` makes every run one
        epoch on 256 images (128 test images), to check that the notebook runs, not to
        conclude anything; it leaves out the ViT-against-CNN study.
        """
    ),
    setup(SETUP),
    setup(VIT_SETUP),
    md("## Self-attention"),
    question(
        "1e.E1",
        "Self-attention against convolution",
        """
        What is self-attention's main property compared with a convolution, and what is
        its main difficulty in computation and memory?

        *Answer.* In one layer every token attends to every other, with weights computed
        from the tokens themselves: a global receptive field, where a convolution sees a
        small neighbourhood and needs depth (or dilation) to see further (1cd.Q7). The
        price: $n$ tokens make an $n \\times n$ attention matrix per head and layer, so time
        and memory grow as $O(n^2)$, which small patches make expensive.
        """,
    ),
    code(
        """
        for patch in (7, 2):
            n = tv.models.ViT(patch_size=patch).num_tokens
            print(f"28x28 image, patches of {patch}: {n} tokens, {n * n:,} attention weights per "
                  "head and block")
        layers = next(depth for depth in range(1, 30)
                      if arithmetic.receptive_field([(3, 1)] * depth)[-1][0] >= 28)
        print(f"stacked 3x3 convolutions (stride 1) need {layers} layers to see 28 pixels across")
        """
    ),
    question(
        "1e.E2",
        "One attention head",
        r"""
        Write the equations of one self-attention head, then the module; it ends with a
        linear output projection.

        *Derivation.* For the tokens $X$ ($n \times d$), three linear maps make queries,
        keys and values, $Q = XW_q$, $K = XW_k$, $V = XW_v$. Token $i$ weighs token $j$ by
        the similarity of its query with $j$'s key, normalized over $j$ by a SoftMax, and
        takes the weighted mean of the values; a last linear map $W_o$ projects the result:

        $$\mathrm{Attention}(X) = \mathrm{SoftMax}\!\Big(\frac{QK^\top}{\sqrt{d_k}}\Big) V\, W_o .$$

        Why $\sqrt{d_k}$: for queries and keys of independent unit-variance entries, a dot
        product sums $d_k$ terms of variance 1, so its variance is $d_k$. Unscaled, large
        $d_k$ gives large scores, a SoftMax that puts all its weight on one token, and
        vanishing gradients; dividing by $\sqrt{d_k}$ brings the variance back to 1. The
        module's linear maps are named `q`, `k`, `v` and `proj`, as tinyvision's.
        """,
    ),
    piece(
        "attention",
        """
        from collections import OrderedDict

        from torch import nn


        class SelfAttention(nn.Module):
            \"\"\"One head: SoftMax(Q K^T / sqrt(d)) V, then a projection.\"\"\"

            def __init__(self, embed_dim):
                super().__init__()
                self.q = nn.Linear(embed_dim, embed_dim)
                self.k = nn.Linear(embed_dim, embed_dim)
                self.v = nn.Linear(embed_dim, embed_dim)
                self.proj = nn.Linear(embed_dim, embed_dim)

            def forward(self, x):
                q, k, v = self.q(x), self.k(x), self.v(x)
                weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
                return self.proj(weights @ v)
        """,
    ),
    check(
        "attention",
        """
        torch.manual_seed(0)
        x = torch.randn(2, 17, 32)
        ours = tv.models.SelfAttention(32)
        mine = SelfAttention(32)
        mine.load_state_dict(ours.state_dict())
        assert_close(mine(x), ours(x))
        print("SelfAttention agrees with tinyvision's on a random (2, 17, 32) input")
        for d in (16, 64, 256):
            q, k = torch.randn(20_000, d), torch.randn(20_000, d)
            dots = (q * k).sum(1)
            top = torch.softmax(dots[:17], 0).max()
            top_scaled = torch.softmax(dots[:17] / math.sqrt(d), 0).max()
            print(f"d = {d:3}: variance of q.k {float(dots.var()):6.1f}, of q.k / sqrt(d) "
                  f"{float((dots / math.sqrt(d)).var()):.2f}; largest SoftMax weight, 17 tokens: "
                  f"{float(top):.2f} unscaled, {float(top_scaled):.2f} scaled")
        """,
    ),
    md("## Multi-head self-attention"),
    question(
        "1e.E3",
        "Multi-head self-attention",
        r"""
        Write the equations of multi-head self-attention, then the module.

        *Derivation.* $h$ heads each attend in their own subspace of dimension
        $d_h = d / h$, with their own projections; their outputs are concatenated and
        projected:

        $$\mathrm{head}_i = \mathrm{SoftMax}\!\Big(\frac{Q_i K_i^\top}{\sqrt{d_h}}\Big) V_i,
        \quad Q_i = XW^Q_i,\ K_i = XW^K_i,\ V_i = XW^V_i,\qquad
        \mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)\, W^O .$$

        The cost in weights is that of one head of size $d$: the $h$ projections of size
        $d \times d_h$ side by side are one $d \times d$ matrix. So one linear layer `qkv`
        ($d \to 3d$) makes all of them at once: its outputs are the queries, then the keys,
        then the values, and within each, head $i$ holds dimensions $i d_h$ to
        $(i + 1) d_h - 1$ (tinyvision's layout, and timm's). `proj` is $W^O$.
        """,
    ),
    piece(
        "multihead_attention",
        """
        class MultiHeadSelfAttention(nn.Module):
            \"\"\"h heads of dimension D / h from one qkv projection; concatenated, projected.\"\"\"

            def __init__(self, embed_dim, num_heads):
                super().__init__()
                self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
                self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
                self.proj = nn.Linear(embed_dim, embed_dim)

            def forward(self, x):
                b, n, d = x.shape
                qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim)
                qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, heads, N, head_dim)
                q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, heads, N, head_dim)
                weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
                heads = weights @ v  # (B, heads, N, head_dim)
                return self.proj(heads.transpose(1, 2).reshape(b, n, d))
        """,
    ),
    check(
        "multihead_attention",
        """
        for impl in ("explicit", "fused"):
            ours = tv.models.MultiHeadSelfAttention(32, num_heads=4, attention=impl)
            mine = MultiHeadSelfAttention(32, num_heads=4)
            mine.load_state_dict(ours.state_dict())
            assert_close(mine(x), ours(x), rtol=1e-4, atol=1e-5)
        # With one head, the fused layer is the one-head module of 1e.E2, its weights stacked
        one_head = MultiHeadSelfAttention(32, num_heads=1)
        single = SelfAttention(32)
        with torch.no_grad():
            for part, name in enumerate("qkv"):
                getattr(single, name).weight.copy_(one_head.qkv.weight[part * 32:(part + 1) * 32])
                getattr(single, name).bias.copy_(one_head.qkv.bias[part * 32:(part + 1) * 32])
            single.proj.load_state_dict(one_head.proj.state_dict())
        assert_close(one_head(x), single(x))
        print("MultiHeadSelfAttention agrees with tinyvision's (explicit and fused), and with one "
              "head equals SelfAttention")
        """,
    ),
    md("## The transformer block"),
    question(
        "1e.E4",
        "The transformer block",
        r"""
        Write the block's equations, then the module.

        *Derivation.* Pre-norm, as in ViT and timm: each of the two sub-layers reads a
        layer-normalized copy of the tokens and adds its output back (a residual
        connection):

        $$x' = x + \mathrm{MHSA}(\mathrm{LN}_1(x)),\qquad
        x'' = x' + \mathrm{MLP}(\mathrm{LN}_2(x')),\qquad
        \mathrm{MLP}(z) = \mathrm{GELU}(z W_1 + b_1) W_2 + b_2,$$

        with a hidden width of `mlp_ratio` × $d$ (a hyperparameter, 1e.E12). The
        residuals give the gradient a path around every sub-layer. LayerNorm's epsilon is
        $10^{-6}$, timm's; the layers are named `norm1`, `attn`, `norm2` and `mlp.fc1`,
        `mlp.fc2`, as tinyvision's.
        """,
    ),
    piece(
        "block",
        """
        class Block(nn.Module):
            \"\"\"Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x)).\"\"\"

            def __init__(self, embed_dim, num_heads, mlp_ratio):
                super().__init__()
                hidden = int(embed_dim * mlp_ratio)
                self.norm1 = nn.LayerNorm(embed_dim, eps=1e-6)
                self.attn = MultiHeadSelfAttention(embed_dim, num_heads)
                self.norm2 = nn.LayerNorm(embed_dim, eps=1e-6)
                self.mlp = nn.Sequential(OrderedDict([
                    ("fc1", nn.Linear(embed_dim, hidden)), ("act", nn.GELU()),
                    ("fc2", nn.Linear(hidden, embed_dim)),
                ]))

            def forward(self, x):
                x = x + self.attn(self.norm1(x))
                return x + self.mlp(self.norm2(x))
        """,
    ),
    check(
        "block",
        """
        ours = tv.models.Block(32, num_heads=4, mlp_ratio=4.0, attention="explicit")
        mine = Block(32, num_heads=4, mlp_ratio=4.0)
        mine.load_state_dict(ours.state_dict())
        assert_close(mine(x), ours(x), rtol=1e-4, atol=1e-5)
        print("Block agrees with tinyvision's:", tuple(mine(x).shape), "in and out")
        """,
    ),
    md("## The full ViT"),
    question(
        "1e.E5",
        "The class token",
        """
        What is the class token, and why is it used?

        *Answer.* A learnt vector of size $d$ placed before the patch tokens. It belongs
        to no patch; through the blocks it attends to all of them and gathers what the
        classification needs, and its final state alone goes to the classifier (the head).
        Averaging the patch tokens instead is the other common choice (`model.pool=mean`).

        The patch tokens come from `PatchEmbed`: the image cut into $p \\times p$ patches,
        each flattened and mapped linearly to $d$ dimensions, which is a convolution of
        kernel $p$ and stride $p$ (its layer is named `proj`, as tinyvision's).
        """,
    ),
    piece(
        "patch_embed",
        """
        class PatchEmbed(nn.Module):
            \"\"\"(B, C, H, W) -> (B, N, D): each p x p patch projected linearly to D.\"\"\"

            def __init__(self, in_chans, patch_size, embed_dim):
                super().__init__()
                self.patch_size = patch_size
                self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

            def forward(self, x):
                return self.proj(x).flatten(2).transpose(1, 2)
        """,
    ),
    check(
        "patch_embed",
        """
        import torch.nn.functional as F

        images = torch.randn(2, 1, 28, 28)
        ours = tv.models.PatchEmbed(in_chans=1, patch_size=7, embed_dim=32)
        mine = PatchEmbed(in_chans=1, patch_size=7, embed_dim=32)
        mine.load_state_dict(ours.state_dict())
        tokens = mine(images)
        assert_close(tokens, ours(images))
        # The same as cutting the patches out and applying one linear map to each
        patches = F.unfold(images, kernel_size=7, stride=7).transpose(1, 2)  # (B, 16, 49)
        linear = patches @ mine.proj.weight.reshape(32, -1).T + mine.proj.bias
        assert_close(tokens, linear, rtol=1e-4, atol=1e-5)
        print(f"PatchEmbed agrees with tinyvision's: {tuple(images.shape)} -> "
              f"{tuple(tokens.shape)}; with the class token, {tokens.shape[1] + 1} tokens")
        """,
    ),
    question(
        "1e.E6",
        "The positional embedding",
        r"""
        What is the positional embedding, and why is it needed?

        *Answer.* Self-attention treats its tokens as a set: permuting them permutes the
        output the same way, so without help the model cannot know where a patch was. A
        vector that depends on the position is added to each token. The course's is fixed
        and sinusoidal (Vaswani et al., 2017): for position $i$ and dimension pair $2j, 2j+1$,

        $$PE_{i,2j} = \sin\!\big(i / 10000^{2j/d}\big),\qquad
        PE_{i,2j+1} = \cos\!\big(i / 10000^{2j/d}\big),$$

        each pair a rotation at its own frequency, so nearby positions get similar
        vectors. A learnt table is the alternative (`model.pos_embed=learned`).
        """,
    ),
    piece(
        "positional_embedding",
        """
        def get_positional_embeddings(sequence_length, d):
            \"\"\"Sinusoidal embeddings: sin on even dimensions, cos on odd ones, (length, d).\"\"\"
            result = torch.zeros(sequence_length, d)
            for i in range(sequence_length):
                for j in range(d):
                    angle = i / 10000 ** ((j - j % 2) / d)
                    result[i, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            return result
        """,
    ),
    check(
        "positional_embedding",
        """
        import matplotlib.pyplot as plt

        for length, d in ((17, 32), (50, 16), (5, 7)):
            assert_close(get_positional_embeddings(length, d),
                         tv.models.get_positional_embeddings(length, d))
        table = get_positional_embeddings(50, 32)
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.imshow(table.T.numpy(), aspect="auto", cmap="RdBu")
        ax.set(xlabel="position", ylabel="dimension",
               title="sinusoidal positional embedding (agrees with tinyvision's)")
        plt.show()
        """,
    ),
    question(
        "1e.E7",
        "The ViT, trained on MNIST",
        """
        Put the pieces together (patch embedding, class token, positional embedding,
        blocks, a last LayerNorm and a linear head on the class token) and train the ViT
        on MNIST.

        The course's ViT: $d = 32$, patches of 7 (16 patches + the class token = 17
        tokens), 2 blocks of 4 heads, MLP ratio 4; Adam at $10^{-3}$, batches of 128,
        10 epochs.
        """,
    ),
    piece(
        "vit",
        """
        class ViT(nn.Module):
            def __init__(self, embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4, mlp_ratio=4.0,
                         num_classes=10, in_chans=1, img_size=28):
                super().__init__()
                self.patch_embed = PatchEmbed(in_chans, patch_size, embed_dim)
                self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
                num_tokens = (img_size // patch_size) ** 2 + 1
                # fixed, not learnt: a buffer, saved with the weights
                table = get_positional_embeddings(num_tokens, embed_dim)[None]
                self.register_buffer("pos_embed", table)
                self.blocks = nn.Sequential(
                    *[Block(embed_dim, num_heads, mlp_ratio) for _ in range(nb_blocks)])
                self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
                self.head = nn.Linear(embed_dim, num_classes)

            def forward(self, x):
                tokens = self.patch_embed(x)
                cls = self.cls_token.expand(len(tokens), -1, -1)
                tokens = torch.cat([cls, tokens], dim=1) + self.pos_embed
                return self.head(self.norm(self.blocks(tokens))[:, 0])
        """,
    ),
    check(
        "vit",
        """
        ours = tv.models.ViT(embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4,
                             attention="explicit")
        mine = ViT(embed_dim=32, nb_blocks=2, patch_size=7, num_heads=4)
        mine.load_state_dict(ours.state_dict())
        assert_close(mine(images), ours(images), rtol=1e-4, atol=1e-5)
        count = sum(p.numel() for p in mine.parameters())
        print(f"ViT agrees with tinyvision's: {count:,} parameters")
        """,
    ),
    code(
        """
        vit_run = tv.run("1e-vit-mnist", out=OUT, **RUN)  # a progress bar per epoch, in place
        print(f"test accuracy {vit_run.summary['final']['test_acc']:.2f}% after "
              f"{vit_run.summary['epochs_done']} epochs ({vit_run.summary['params']:,} parameters)")
        print("the course's report: 96.97% for its ViT on MNIST, 98.45% for a ConvNet")
        vit_run.plot()
        """
    ),
    md(
        """
        The notebook's own ViT, trained by hand for one epoch on the same images (Adam at
        $10^{-3}$, batches of 128, inputs standardized with the training set's statistics):
        """
    ),
    code(
        """
        train_x, train_y = vit_run.examples("train")
        test_x, test_y = vit_run.examples("test")
        mean, std = (train_x.float() / 255).mean(), (train_x.float() / 255).std()
        prepare = lambda images: (images.float() / 255 - mean) / std  # noqa: E731
        torch.manual_seed(0)
        by_hand = ViT()
        optimizer = torch.optim.Adam(by_hand.parameters(), lr=1e-3)
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), 128):
            batch = order[start:start + 128]
            loss = F.cross_entropy(by_hand(prepare(train_x[batch])), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        by_hand.eval()
        with torch.no_grad():
            guesses = torch.cat([by_hand(prepare(test_x[i:i + 500])).argmax(1)
                                 for i in range(0, len(test_x), 500)])
        right = int((guesses == test_y).sum())
        print(f"the notebook's ViT after one epoch: {100 * right / len(test_x):.2f}% test "
              f"accuracy; tinyvision's run after its first epoch: "
              f"{vit_run.metrics.query('epoch == 1')['test_acc'].iloc[0]:.2f}%")
        """
    ),
    md(
        """
        What the trained model attends to (`tinyvision attention RUN`): the patches, the
        class token's attention per layer and head, and the attention rollout.
        """
    ),
    code(
        """
        from tinyvision.labs.lab1e import draw_vit_pictures

        for picture in draw_vit_pictures(vit_run.path, 4):
            show(picture)
        """
    ),
    md(
        """
        The ViT against the course CNN and an MLP on the same data and budget, with the
        stronger small ViT of the preset `vit-mnist` (a convolutional stem, more blocks,
        AdamW):
        """
    ),
    code(
        """
        def report(study):
            table = study.table
            table["s/epoch"] = table["seconds"] / table["epochs_done"]
            display(table[["step", "params", "final_test_acc", "best_test_acc", "gap", "s/epoch"]])
            done = table.dropna(subset=["final_test_acc"])
            best = done.loc[done["final_test_acc"].idxmax()]
            print(f"best: {best['step']} ({best['final_test_acc']:.2f}%)")


        if QUICK:  # four runs through the code of the studies below
            print("quick mode: not run here; `tinyvision study 1e-vit-vs-cnn` runs it")
        else:
            report(tv.study("1e-vit-vs-cnn", out=OUT, quiet=True, **STUDY))
        """
    ),
    md("## Hyperparameter studies (MNIST)"),
    question(
        "1e.E8",
        "The embedding size",
        """
        How does the embedding size $d$ (`embed_dim`) change training and the result?

        *Expectation.* Parameters grow as $d^2$ and the cost per epoch with them; a small
        $d$ may need more epochs, a large one can be harder to train at the same learning
        rate.
        """,
    ),
    code(
        """
        embed = tv.study("1e-embed-dim", out=OUT, quiet=True, **STUDY)
        report(embed)
        print("the course's reports: 16 slightly slower to converge but close at the end; 128 "
              "lowest and slowest per epoch; gains up to 64")
        embed.plot()
        """
    ),
    question(
        "1e.E9",
        "The patch size",
        r"""
        How does the patch size $p$ change training and the result?

        *Derivation: tokens and cost.* An $H \times H$ image gives $N = (H/p)^2$ patches, plus
        the class token: 197, 50, 17, 5 and 2 tokens for $p$ = 2, 4, 7, 14, 28 on 28×28.
        Per block, the linear layers cost $N(4 + 2r) d^2$ multiply-adds (`qkv` $3d^2$,
        `proj` $d^2$, the MLP $2rd^2$ per token, $r$ the MLP ratio), and the attention
        products $QK^\top$ and $AV$ cost $2N^2 d$; the patch embedding $(H/p)^2 \cdot
        C p^2 \cdot d$ and the head $d \cdot$ classes. Small patches: many tokens, a cost
        quadratic in them, each token seeing a small piece; large patches: few tokens,
        each a large flattened piece mapped by one linear layer. Checked against PyTorch's
        own count of the matrix products:
        """,
    ),
    code(
        """
        from torch.utils.flop_counter import FlopCounterMode


        def vit_macs(p, d=32, blocks=2, r=4.0, size=28, chans=1, classes=10):
            n = (size // p) ** 2 + 1
            per_block = n * (4 + 2 * r) * d * d + 2 * n * n * d
            return int((size // p) ** 2 * chans * p * p * d + blocks * per_block + d * classes)


        rows = []
        for p in (2, 4, 7, 14, 28):
            model = tv.models.ViT(patch_size=p, attention="explicit").eval()
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(torch.zeros(1, 1, 28, 28))
            assert counter.get_total_flops() == 2 * vit_macs(p), p  # a multiply-add is 2 flops
            rows.append({"patch": p, "tokens": model.num_tokens, "multiply-adds": vit_macs(p),
                         "parameters": sum(t.numel() for t in model.parameters())})
        display(pd.DataFrame(rows))
        """
    ),
    code(
        """
        patches = tv.study("1e-patch-size", out=OUT, quiet=True, **STUDY)
        report(patches)
        assert patches.table["tokens"].tolist() == [row["tokens"] for row in rows]
        print("the course's reports: final accuracy similar; 2 learns hardest; 14 best in one "
              "report")
        patches.plot()
        """
    ),
    question(
        "1e.E10",
        "The number of blocks",
        """
        How does the depth (`nb_blocks`) change training and the result?
        """,
    ),
    code(
        """
        depth = tv.study("1e-blocks", out=OUT, quiet=True, **STUDY)
        report(depth)
        print("the course's reports: all high; 8 blocks with an unstable test loss; no "
              "significant gain")
        depth.plot()
        """
    ),
    question(
        "1e.E11",
        "The number of heads",
        """
        How does the number of heads change training and the result? (At a fixed $d$, more
        heads means smaller heads, the same number of weights.)
        """,
    ),
    code(
        """
        heads = tv.study("1e-heads", out=OUT, quiet=True, **STUDY)
        report(heads)
        print("the course's report: more heads, better train and test accuracy")
        heads.plot()
        """
    ),
    question(
        "1e.E12",
        "The MLP's hidden size",
        """
        How does the width of the block's MLP (`mlp_ratio` × $d$) change training and the
        result?
        """,
    ),
    code(
        """
        width = tv.study("1e-mlp-ratio", out=OUT, quiet=True, **STUDY)
        report(width)
        print("the course's report: no help and no overfitting; the accuracy ceiling limits "
              "conclusions")
        width.plot()
        """
    ),
    md("## timm: from scratch or pretrained"),
    question(
        "1e.E13",
        "A large ViT on MNIST: the size problem",
        """
        What goes wrong when timm's large model is used on MNIST, why, and do CNNs have
        the same problem?

        *Answer.* `vit_base_patch16_224` was built for (and pretrained on) 224×224 colour
        ImageNet images: its patch embedding expects 3 channels, and its positional
        embedding holds exactly 14 × 14 + 1 positions. A 1×28×28 digit fits neither: it
        must be resized to 224×224 and given 3 channels (as the course does; resizing
        blurs it and multiplies the cost), or the model rebuilt for 28×28 with one channel
        (timm's `img_size` and `in_chans`; the positional embedding is then resized,
        what tinyvision's timm presets do). A CNN meets the size problem only at its
        fully connected layers (1cd.Q4); its convolutions take any size.
        """,
    ),
    code(
        """
        import warnings

        warnings.filterwarnings("ignore", message="IProgress not found")  # timm imports tqdm
        import timm

        big = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
        millions = sum(p.numel() for p in big.parameters()) / 1e6
        print(f"vit_base_patch16_224: {millions:.1f}M parameters, "
              f"{big.patch_embed.num_patches} patches + the class token at "
              f"{'x'.join(map(str, big.patch_embed.img_size))}")
        for shape in ((1, 224, 224), (3, 28, 28)):
            try:
                with torch.no_grad():
                    big(torch.zeros(1, *shape))
            except (RuntimeError, AssertionError) as error:
                print(f"on {'x'.join(map(str, shape))}:", str(error).splitlines()[0][:150])
        del big
        """
    ),
    question(
        "1e.E14",
        "Transformers on small data",
        """
        What could make transformers work better on small data sets?

        *Answer.* Start from pretrained weights (transfer, 1e.E16); augment and regularize
        more (stochastic depth, label smoothing, mixup); give the model the locality a
        convolution has, which small data cannot teach: a convolutional stem instead of
        the patch projection (Xiao et al., 2021, tinyvision's `model.stem=conv`) or hybrid
        convolution-attention designs; or add a self-supervised task, such as predicting
        the relative position of pairs of output tokens (Liu et al., 2021, "Efficient
        Training of Visual Transformers with Small Datasets"). The `vit-fashion` preset
        combines several of these.
        """,
    ),
    question(
        "1e.E15",
        "The large ViT from scratch",
        """
        Train the large model from random weights on MNIST.

        tinyvision's preset `1e-timm-scratch` trains timm's `vit_small_patch16_224`
        rebuilt for 1×28×28 (`img_size=28`, `in_chans=1`), Adam at $10^{-4}$, on MNIST;
        the course's setup (`vit_base` on MNIST resized to 3×224×224) costs far more.
        """,
    ),
    code(
        """
        timm_budget = dict(RUN)
        if QUICK:
            timm_budget.update(data__train_subset=256)
        scratch = tv.run("1e-timm-scratch", out=OUT, quiet=True, **timm_budget)
        print(f"{scratch.summary['params']:,} parameters: test accuracy "
              f"{scratch.summary['final']['test_acc']:.2f}% after "
              f"{scratch.summary['epochs_done']} epochs, {scratch.summary['seconds']:.0f} s")
        print("the course's report (vit_base at 3x224x224 from scratch): about 20% test after 4 "
              "epochs (about 45 minutes), unstable")
        scratch.plot()
        """
    ),
    question(
        "1e.E16",
        "Fine-tuning the pretrained ViT",
        """
        Fine-tune the ImageNet-pretrained model on MNIST.

        *Not run here:* it needs the ImageNet weights, which timm downloads from the
        Hugging Face hub, and this notebook runs offline. The command is
        `tinyvision run 1e-timm-pretrained` where there is a network, or
        `tinyvision run 1e-timm-pretrained model.pretrained_file=PATH` with a weights file
        (safetensors). The course's report: much better than from scratch, still unstable
        and slow to learn (no number given).
        """,
    ),
    md("## Fashion-MNIST"),
    question(
        "1e.E17",
        "The same on Fashion-MNIST",
        """
        Repeat the study on Fashion-MNIST, where MNIST's accuracy ceiling hides less.

        The course ViT on Fashion-MNIST, beside its MNIST result (1e.E7). The studies
        repeat with one override each, e.g. `tinyvision study 1e-embed-dim
        data.name=fashion-mnist` (and `1e-patch-size`, `1e-blocks`, `1e-heads`,
        `1e-mlp-ratio`, and `tinyvision run 1e-timm-scratch data.name=fashion-mnist`);
        they are not run here, since each repeats a study above at the same cost.
        """,
    ),
    code(
        """
        fashion = tv.run("1e-vit-fashion", out=OUT, quiet=True, **FASHION)
        mnist_acc, fashion_acc = (r.summary["final"]["test_acc"] for r in (vit_run, fashion))
        print(f"the course ViT: MNIST {mnist_acc:.2f}%, Fashion-MNIST {fashion_acc:.2f}% "
              f"({mnist_acc - fashion_acc:+.2f} points)")
        print("the course's report: Fashion-MNIST's curves level off near 80% instead of near 100%")
        fashion.plot()
        """
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
