"""The records' figures show the numbers they are given (checked on the drawn lines)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tinyvision.figures import plot_comparison, plot_curves, plot_lr


def _rows(train_acc, test_acc, lr=0.1):
    return [
        {
            "epoch": i + 1,
            "train_acc": a,
            "test_acc": b,
            "train_loss": 1 / (i + 1),
            "test_loss": 2 / (i + 1),
            "lr": lr * 0.5**i,
        }
        for i, (a, b) in enumerate(zip(train_acc, test_acc))
    ]


def test_curves_draw_train_and_test_per_epoch(tmp_path):
    rows = _rows([50, 70, 80], [45, 60, 65])
    fig = plot_curves(rows, tmp_path / "curves.png", title="run")
    acc, loss = fig.axes
    (train, test) = acc.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3] and list(train.get_ydata()) == [50, 70, 80]
    assert list(test.get_ydata()) == [45, 60, 65]
    assert np.allclose(loss.get_lines()[1].get_ydata(), [2, 1, 2 / 3])
    assert Image.open(tmp_path / "curves.png").format == "PNG"


def test_comparison_draws_the_mean_over_seeds_and_its_spread(tmp_path):
    groups = {
        "lr=0.1": [_rows([50, 60], [40, 50]), _rows([70, 80], [60, 70])],
        "lr=0.01": [_rows([10, 20, 30], [5, 10, 15])],
    }
    fig = plot_comparison(groups, tmp_path / "comparison.png")
    train_acc = fig.axes[0]
    lines = {line.get_label(): line for line in train_acc.get_lines()}
    assert list(lines["lr=0.1"].get_ydata()) == [60, 70]  # the mean of the two seeds
    assert list(lines["lr=0.01"].get_ydata()) == [10, 20, 30]
    (band,) = train_acc.collections  # one band: only lr=0.1 has several seeds
    ys = band.get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.min(), 50) and np.isclose(ys.max(), 80)  # mean +- std (10)


def test_lr_draws_the_rate_at_each_epoch(tmp_path):
    fig = plot_lr({"step": _rows([1, 2, 3], [1, 2, 3], lr=0.2)}, tmp_path / "lr.png")
    (line,) = fig.axes[0].get_lines()
    assert np.allclose(line.get_ydata(), [0.2, 0.1, 0.05])


def test_a_tight_figure_is_laid_out_once_when_saved(tmp_path, monkeypatch):
    """savefig would lay out a figure that tight_layout() already placed a second time;
    save_figure skips that, and the picture is the same bytes."""
    from matplotlib.figure import Figure

    from tinyvision.figures import plt, save_figure

    def figure():
        fig, (left, right) = plt.subplots(1, 2, figsize=(6, 3))
        left.plot([1, 2, 3], label="train")
        left.legend()
        right.set_title("loss")
        fig.suptitle("a run")
        fig.tight_layout()
        return fig

    expected = tmp_path / "plain.png"
    figure().savefig(expected, dpi=110)
    draws = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, r: (draws.append(1), original(self, r)))
    save_figure(figure(), tmp_path / "saved.png")
    assert len(draws) == 1
    assert (tmp_path / "saved.png").read_bytes() == expected.read_bytes()
