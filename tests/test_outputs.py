"""Outputs the course's questions read: the layer table's counts, epoch 0, PCA whitening,
the augmentation preview, the SVM's C panels, fcconv's picture, sweep.csv's losses."""

from __future__ import annotations

import pytest
import torch

from tinyvision.config import ModelConfig
from tinyvision.errors import UserError
from tinyvision.models import create_model
from tinyvision.models.summary import ATTENTION_KIND, format_table, summarize


def _course_vit():
    return create_model(ModelConfig(name="vit"), (1, 28, 28), 10)


def test_a_vit_counts_its_linear_layers_per_token_and_attention_products():
    """The course ViT (embed 32, patch 7, 2 blocks, 4 heads, MLP ratio 4) on 28x28: 16
    patches + the class token = N = 17 tokens of d = 32. Worked out by hand:
    patch embedding 16 positions x 32 filters x 7x7 = 25,088; per block qkv 17 x 32 x 96
    = 52,224, Q·Kᵀ and A·V 2 x 17² x 32 = 18,496, proj 17 x 32 x 32 = 17,408, fc1 and
    fc2 17 x 32 x 128 = 69,632 each (block: 227,392); the head on the class token 320."""
    rows = {r.name: r for r in summarize(_course_vit(), (1, 28, 28))}
    assert rows["blocks.0.mlp.fc1"].macs == 17 * 4096 == 69_632
    assert rows["blocks.0.attn.qkv"].macs == 52_224
    assert rows["blocks.0.attn.scores"].kind == ATTENTION_KIND
    assert rows["blocks.0.attn.scores"].macs == 2 * 17 * 17 * 32 == 18_496
    assert rows["blocks.0.attn.proj"].macs == 17_408
    assert rows["patch_embed.proj"].macs == 25_088
    assert rows["head"].macs == 320
    block = 52_224 + 18_496 + 17_408 + 2 * 69_632
    assert sum(r.macs for r in rows.values()) == 25_088 + 2 * block + 320 == 480_192
    names = list(rows)  # the products sit between the projections that feed and read them
    assert names.index("blocks.1.attn.qkv") + 1 == names.index("blocks.1.attn.scores")
    assert names.index("blocks.1.attn.scores") + 1 == names.index("blocks.1.attn.proj")


def test_single_head_attention_counts_the_same_products():
    from tinyvision.models.vit import SelfAttention

    rows = {r.name: r for r in summarize(SelfAttention(8), (5, 8))}
    assert rows["scores"].macs == 2 * 5 * 5 * 8
    assert rows["q"].macs == 5 * 64


def test_the_course_cnn_shares_and_fully_connected_equivalents():
    """1-cd Q10: fc4 holds 1,025,000 of 1,191,170 parameters (86.0%); Q1: a fully
    connected layer from conv1's 3x32x32 input to its 32x32x32 output needs
    3,072 x 32,768 weights + 32,768 biases."""
    model = create_model(ModelConfig(name="cnn"), (3, 32, 32), 10)
    rows = {r.name: r for r in summarize(model, (3, 32, 32))}
    assert rows["fc4"].params == 1_025_000
    assert rows["features.conv1"].fc_equivalent == 3072 * 32768 + 32768 == 100_696_064
    assert rows["features.conv3"].fc_equivalent == 4096 * 4096 + 4096
    assert rows["fc4"].fc_equivalent is None
    table = format_table(list(rows.values()), (3, 32, 32))
    fc4_line = next(line for line in table.splitlines() if line.startswith("fc4 "))
    assert " 86.0% " in fc4_line and "parameters: 1,191,170" in table
    assert "100,696,064" in table


def test_the_course_cnn_keeps_fc4_for_32x32_and_breaks_there_on_64x64():
    """A fully connected layer fixes the input size: fc4 stays 1024 -> 1000 and a 64x64
    image (64 x 8 x 8 = 4096 features) breaks at fc4, in one line that points to fcconv."""
    model = create_model(ModelConfig(name="cnn"), (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 1_191_170
    with pytest.raises(UserError) as caught:
        summarize(model, (3, 64, 64))
    message = str(caught.value)
    assert "fc4" in message and "1,024" in message and "4,096" in message
    assert "fcconv" in message and "\n" not in message


def test_summary_cli_on_64x64_is_one_line_and_exit_2(capsys):
    from tinyvision.cli import main

    assert main(["summary", "cnn", "--input", "3x64x64"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "fc4" in err and "1,024" in err and "4,096" in err
    assert main(["summary", "cnn"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 1,191,170" in out and "86.0%" in out
    assert main(["summary", "cnn", "--input", "1x28x28"]) == 0  # MNIST: fc4 still 1024


def test_arithmetic_counts_bag_of_words_and_svm(capsys):
    """1-cd Q12: 1000 visual words of 128-D SIFT and 10 one-against-all linear SVMs:
    10 x (1000 + 1) = 10,010 for the SVMs, 1000 x 128 = 128,000 for the codebook."""
    from tinyvision.cli import main
    from tinyvision.models.arithmetic import bag_of_words_svm

    assert bag_of_words_svm(1000, 128, 10) == {"svm": 10_010, "codebook": 128_000}
    assert bag_of_words_svm(500, 64, 2) == {"svm": 2 * 501, "codebook": 500 * 64}
    assert main(["arithmetic"]) == 0
    out = capsys.readouterr().out
    assert "138,010" in out and "10,010" in out and "1,191,170" in out
    assert main(["arithmetic", "--words", "0"]) == 2


# --- PCA whitening beside ZCA (data.normalize=pca, 1-cd Q21) ----------------------------


def test_pca_whitening_by_hand():
    """Four points of 2 pixels, mean 0, covariance diag(0.5, 2): the first principal axis
    is (0, 1) with variance 2, the second (1, 0) with 0.5, so W = [[0, (0.5 + e)^-1/2],
    [(2 + e)^-1/2, 0]] and a test point (3, 1) becomes (1 / sqrt(2 + e), 3 / sqrt(0.5 + e))."""
    import math

    from tinyvision.config import DataConfig
    from tinyvision.data.preprocess import Normalizer, fit_normalization

    train = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]).view(4, 1, 1, 2)
    eps = 0.5
    stats = fit_normalization(DataConfig(normalize="pca", zca_epsilon=eps), train)
    expected = torch.tensor([[0.0, 1 / math.sqrt(0.5 + eps)], [1 / math.sqrt(2 + eps), 0.0]])
    assert torch.allclose(stats["pca"], expected, atol=1e-6)
    assert torch.allclose(stats["pca_mean"], torch.zeros(2), atol=1e-7)
    out = Normalizer(stats)(torch.tensor([3.0, 1.0]).view(1, 1, 1, 2)).view(2)
    assert torch.allclose(out, torch.tensor([1 / math.sqrt(2 + eps), 3 / math.sqrt(0.5 + eps)]))


def test_pca_whitening_matches_numpy_and_is_zca_before_its_rotation_back():
    """Against numpy's eigendecomposition (float64, the same sign and order convention):
    the matrix, the whitened train covariance S / (S + eps) (diagonal, decreasing), the
    train mean used on test data; and ZCA's matrix = PCA's followed by U^T."""
    import numpy as np

    from tinyvision.config import DataConfig
    from tinyvision.data.preprocess import Normalizer, fit_normalization

    g = torch.Generator().manual_seed(0)
    mixing = torch.rand(12, 12, generator=g) * 0.3 + torch.eye(12) * 0.5
    train = (torch.rand(400, 12, generator=g) @ mixing).view(400, 3, 2, 2)
    test = torch.rand(7, 3, 2, 2, generator=g)
    eps = 1e-3
    stats = fit_normalization(DataConfig(normalize="pca", zca_epsilon=eps), train)

    flat = train.view(400, 12).double().numpy()
    mean = flat.mean(0)
    s, u = np.linalg.eigh((flat - mean).T @ (flat - mean) / 400)
    s, u = s[::-1], u[:, ::-1]  # largest variance first
    u = u * np.sign(u[np.abs(u).argmax(0), range(12)])  # largest entry of each axis positive
    w = u / np.sqrt(s + eps)
    # the covariance is summed in float32 chunks: agreement to float32's precision
    assert np.allclose(stats["pca"].numpy(), w, rtol=1e-4, atol=1e-5)
    assert np.allclose(stats["pca_mean"].numpy(), mean, atol=1e-6)
    white = Normalizer(stats)(test).view(7, 12).double().numpy()
    assert np.allclose(white, (test.view(7, 12).double().numpy() - mean) @ w, rtol=1e-4, atol=1e-4)
    train_white = Normalizer(stats)(train).view(400, 12).double().numpy()
    assert np.allclose(np.cov(train_white.T, bias=True), np.diag(s / (s + eps)), atol=1e-4)

    zca = fit_normalization(DataConfig(normalize="zca", zca_epsilon=eps), train)["zca"]
    assert torch.allclose(stats["pca"] @ torch.from_numpy(u.T.copy()).float(), zca, atol=1e-4)


def test_a_pca_run_saves_and_reloads_its_matrix(tmp_path):
    from tinyvision.experiment.normalization import load_normalization
    from tinyvision.experiment.runner import run
    from tinyvision.presets import build_config

    cfg = build_config("mlp-fashion", ["data.name=digits", "train.epochs=1", "data.normalize=pca"])
    path, summary = run(cfg, tmp_path, "cpu", quiet=True)
    assert summary["status"] == "completed" and summary["final"]["test_acc"] > 50
    stats = load_normalization(path)
    assert stats["scheme"] == "pca" and stats["pca"].shape == (64, 64)


# --- fcconv's picture -----------------------------------------------------------------


def _inside(fig, texts) -> bool:
    """Every text drawn whole inside the figure (a clipped title is not)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the saved figure's canvas was let go
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    for text in texts:
        if not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1:
            return False
        if extent.y0 < box.y0 - 1 or extent.y1 > box.y1 + 1:
            return False
    return True


def test_fcconv_labels_the_mosaic_it_drew_and_has_a_class_legend(tmp_path, idx_root, capsys):
    """--size 64 on 28x28 images draws 2x2 whole images: a 56x56 mosaic, said so in the
    picture and on the terminal; the class map's colours have a legend of class names."""
    from tinyvision.cli import main
    from tinyvision.experiment.runner import run
    from tinyvision.labs import lab1cd
    from tinyvision.presets import build_config

    path, _ = run(
        build_config("cnn-fashion", ["data.name=mnist", "train.epochs=1"]), tmp_path, "cpu", True
    )
    drawn = []
    real_save = lab1cd.save_figure
    lab1cd.save_figure = lambda fig, p: (drawn.append(fig), real_save(fig, p))
    try:
        assert main(["fcconv", str(path), "--size", "64"]) == 0
    finally:
        lab1cd.save_figure = real_save
    out = capsys.readouterr().out
    assert "56x56 mosaic (--size 64: whole test images only): score map of shape (10, 4, 4)" in out
    (fig,) = drawn
    mosaic, class_map = fig.axes[:2]
    assert "56x56" in mosaic.get_title() and "2x2" in mosaic.get_title()
    assert "4x4 score map" in class_map.get_title()
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    from tinyvision.data.datasets import load_dataset

    classes = load_dataset(build_config("cnn-fashion", ["data.name=mnist"]).data).classes
    winners = {int(v) for v in class_map.get_images()[0].get_array().ravel()}
    assert labels == [str(classes[c]) for c in sorted(winners)]
    titles = [ax.title for ax in fig.axes] + [legend.get_title(), *legend.get_texts()]
    assert _inside(fig, titles)


# --- the SVM's boundary for each C (1-ab) -------------------------------------------------


def test_svm_boundary_for_each_c_with_its_accuracy_and_support_vectors(tmp_path, monkeypatch):
    """svm_c_boundaries.png: one panel per C of the RBF SVM, titled with the accuracies
    and the support-vector count scikit-learn gives for that C, the support vectors drawn."""
    import numpy as np
    from sklearn.svm import SVC

    from tinyvision.config import DataConfig
    from tinyvision.data.datasets import load_dataset
    from tinyvision.labs import lab1ab
    from tinyvision.models import svm

    data = load_dataset(DataConfig(name="circles"))
    drawn = {}
    real_save = lab1ab.save_figure
    monkeypatch.setattr(
        lab1ab,
        "save_figure",
        lambda fig, path: (drawn.update({path.name: fig}), real_save(fig, path)),
    )
    mlp = np.full(len(lab1ab.grid_points()), 0.5)
    lab1ab.run_svm_comparison(data, mlp, tmp_path)
    assert (tmp_path / "svm_c_boundaries.png").is_file()
    fig = drawn["svm_c_boundaries.png"]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == len(svm.C_VALUES)
    train = (data.train_x.numpy(), data.train_y.numpy())
    test = (data.test_x.numpy(), data.test_y.numpy())
    for ax, C in zip(panels, svm.C_VALUES):
        reference = SVC(kernel="rbf", C=C, gamma="scale").fit(*train)
        title = ax.get_title()
        assert title.startswith(f"rbf C={C:g}:"), title
        assert f"test {100 * reference.score(*test):.1f}%" in title
        assert f"train {100 * reference.score(*train):.1f}%" in title
        assert f"{int(reference.n_support_.sum())} support vectors" in title
        circled = [c for c in ax.collections if c.get_label() == "support vectors"]
        assert len(circled) == 1 and len(circled[0].get_offsets()) == reference.n_support_.sum()


# --- a search's table and parameters.png --------------------------------------------------


def _row(trial: int, lr: float, acc: float) -> dict:
    return {"trial": trial, "optim.lr": lr, "state": "complete", "value": acc}


def test_parameters_png_labels_a_narrow_log_range_without_overlap():
    """Learning rates 0.03-0.05 sit inside one decade: every minor tick was labelled and
    the labels ran into each other. Now at most four, apart, two significant digits."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from tinyvision.groups.search_figures import plot_parameters

    rows = [_row(i, lr, 80 + i) for i, lr in enumerate((0.031, 0.034, 0.0385, 0.042, 0.049))]
    fig = plot_parameters(rows, ["optim.lr"], {"optim.lr"}, {}, None)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    labels = [
        t for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)
        if t.get_text() and low <= t.get_position()[0] <= high
    ]  # fmt: skip
    assert 2 <= len(labels) <= 4
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), "tick labels overlap"
    assert all(len(t.get_text()) <= 6 for t in labels), [t.get_text() for t in labels]


def test_a_search_table_shows_short_values_and_one_status(tmp_path):
    from tinyvision.report.blocks import setting
    from tinyvision.report.collect import Group
    from tinyvision.report.html import group_blocks

    assert setting("0.031622776601683794") == "0.03162"
    assert setting("128") == "128" and setting("relu") == "relu" and setting("") == ""
    assert setting(0.001) == "0.001"
    row = {
        "optim.lr": "0.031622776601683794", "trial": "0", "state": "complete", "value": "80",
        "seed": "0", "status": "completed", "epochs_done": "3", "final_test_acc": "80",
        "best_test_acc": "81", "gap": "1", "params": "10", "seconds": "2",
    }  # fmt: skip
    group = Group(
        tmp_path, {"kind": "search", "preset": "p", "space": {"optim.lr": "log:0.01:0.1"}}, [row]
    )
    (table,) = [b for b in group_blocks(group) if b.kind == "table"]
    assert "state" not in table.header and table.header.count("status") == 1
    assert table.rows[0][:2] == ("0", "0.03162")
    assert table.rows[0][table.header.index("mult-adds/image")] == ""  # an older sweep.csv
    row["macs"] = "480192"
    (table,) = [b for b in group_blocks(group) if b.kind == "table"]
    assert table.rows[0][table.header.index("mult-adds/image")] == "480,192"


def test_the_lr_figure_shows_settings_that_share_a_schedule():
    """1e-vit-vs-cnn: vit, cnn and mlp train at a constant 1e-3 (their lines were drawn
    over one another and only the last showed); vit-tuned has its own schedule."""
    from tinyvision.figures import plot_lr

    def rows(lrs):
        return [{"epoch": 0, "lr": lrs[0]}] + [{"epoch": i + 1, "lr": v} for i, v in enumerate(lrs)]

    constant = rows([1e-3, 1e-3, 1e-3])
    fig = plot_lr(
        {"vit": constant, "vit-tuned": rows([1e-3, 5e-4, 1e-4]), "cnn": constant, "mlp": constant},
        None,
    )
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["vit, cnn, mlp", "vit-tuned"]
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]  # epoch 0 trains nothing
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["vit, cnn, mlp", "vit-tuned"]


# --- the report's Data section ------------------------------------------------------------


def test_a_failed_download_is_one_short_line_in_the_data_section(tmp_path, monkeypatch):
    from tinyvision import tour
    from tinyvision.data import sources
    from tinyvision.report.html import data_blocks

    dns = (
        "could not download train-images-idx3-ubyte.gz (https://a.example/: [Errno -3] "
        "Temporary failure in name resolution; https://b.example/: [Errno -3] Temporary "
        "failure in name resolution)"
    )

    def unreachable(name, quiet=False):
        raise sources.NotDownloaded(dns)

    test_file = tmp_path / "t10k-images-idx3-ubyte.gz"
    monkeypatch.setattr(
        sources,
        "find_split",
        lambda name, split, data_dir=None: [test_file] if split == "test" else None,
    )
    monkeypatch.setattr(sources, "download", unreachable)
    state, how = tour.availability("mnist")
    assert state == "test-only"
    assert how == f"only the test split was found ({tmp_path}); not downloaded (offline)"
    page = data_blocks([], {"parts": {}, "missing": {"mnist": how}})
    (line,) = [b for b in page if b.kind == "p"]
    assert "name resolution" not in "".join(map(str, line.parts))
    assert "not downloaded (offline)" in "".join(map(str, line.parts))
    # a real failure that is not the network's still says what it is
    monkeypatch.setattr(
        sources,
        "download",
        lambda name, quiet=False: (_ for _ in ()).throw(
            sources.UserError("x.gz: checksum mismatch (md5 0, expected 1); try again")
        ),
    )
    assert "checksum mismatch" in tour.availability("mnist")[1]


# --- augmentation preview and the train/test rotation mismatch (1-cd Q23, Q25) -----------


def test_every_augmenting_run_writes_a_preview_and_trains_as_without_it(tmp_path, monkeypatch):
    """augmentation.png: the first 16 training images before and after the training
    transform, drawn from a generator of its own: the run's numbers do not change."""
    from tinyvision.data import loader
    from tinyvision.experiment.runner import run
    from tinyvision.io import read_csv
    from tinyvision.presets import build_config

    augmented = ["data.name=digits", "train.epochs=2", "data.crop=6", "data.flip=true",
                 "data.rotate=20", "data.mixup=0.2", "model.dropout=0.2"]  # fmt: skip
    from tinyvision import figures

    drawn = []

    real_pairs = figures.plot_image_pairs
    monkeypatch.setattr(
        figures, "plot_image_pairs", lambda *a, **k: drawn.append(a) or real_pairs(*a, **k)
    )
    path, _ = run(build_config("cnn-fashion", augmented), tmp_path / "a", "cpu", quiet=True)
    assert (path / "augmentation.png").stat().st_size > 5_000
    ((before, after, *_),) = drawn
    assert before.shape == (16, 1, 8, 8) and after.shape == (16, 1, 6, 6)
    assert 0 <= before.min() and before.max() <= 1
    monkeypatch.setattr(loader, "augments", lambda cfg: False)
    monkeypatch.setattr("tinyvision.experiment.runner.augments", lambda cfg: False)
    quiet, _ = run(build_config("cnn-fashion", augmented), tmp_path / "b", "cpu", quiet=True)
    assert not (quiet / "augmentation.png").exists()

    def numbers(p):
        timing = ("epoch_seconds", "images_per_second")
        return [
            {k: v for k, v in r.items() if k not in timing} for r in read_csv(p / "metrics.csv")
        ]

    assert numbers(path) == numbers(quiet)
    plain, _ = run(
        build_config("mlp-fashion", ["data.name=digits", "train.epochs=1"]), tmp_path, "cpu", True
    )
    assert not (plain / "augmentation.png").exists(), "nothing augments: no preview"


def test_test_rotate_rotates_the_test_split_the_same_way_every_time(tmp_path):
    """data.test_rotate: the run's test split rotated (the same angles at every pass);
    training images, epoch 0's train columns and `predict` are not."""
    from tinyvision.config import DataConfig
    from tinyvision.data import augment
    from tinyvision.data.loader import FIXED_SPLIT_SEED, BatchTransform, DeviceLoader

    stats = {"scheme": "none"}
    images = torch.rand(6, 1, 8, 8)
    labels = torch.zeros(6, dtype=torch.long)
    cfg = DataConfig(test_rotate=45)
    test = DeviceLoader(
        images,
        labels,
        4,
        BatchTransform(cfg, stats, False, test_split=True),
        torch.device("cpu"),
        False,
    )
    first = torch.cat([x for x, _ in test])
    second = torch.cat([x for x, _ in test])
    assert torch.equal(first, second)
    g = torch.Generator().manual_seed(FIXED_SPLIT_SEED)
    expected = torch.cat(
        [augment.random_affine(images[:4], g, 45), augment.random_affine(images[4:], g, 45)]
    )
    assert torch.allclose(first, expected)
    assert not torch.allclose(first, images, atol=1e-3)
    as_predict = BatchTransform(cfg, stats, False)  # not the run's test split
    assert torch.equal(as_predict(images, torch.Generator()), images)


def test_the_rotation_study_trains_and_tests_with_and_without_rotation(tmp_path, monkeypatch):
    import csv

    from tinyvision.io import read_csv
    from tinyvision.studies import run_study

    from conftest import write_cifar_dataset

    monkeypatch.setenv("TINYVISION_DATA", str(write_cifar_dataset(tmp_path / "d", 40)))
    folder = run_study(
        "1cd-rotation", ["train.epochs=1", "train.batch_size=50"],
        out=tmp_path / "runs", device="cpu", quiet=True,
    )  # fmt: skip
    with open(folder / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == [
        "train 0, test 0", "train +-30, test 0", "train +-30, test +-30", "train 0, test +-30",
    ]  # fmt: skip
    assert all(r["status"] == "completed" for r in rows)
    configs = {r["step"]: read_csv_config(folder / r["run"]) for r in rows}
    assert configs["train 0, test +-30"]["data"]["test_rotate"] == 30
    assert configs["train +-30, test 0"]["data"]["rotate"] == 30
    assert configs["train +-30, test 0"]["data"]["test_rotate"] == 0
    # same seed, same training: the two "train 0" runs differ only in what they are tested on
    same = read_csv(folder / rows[0]["run"] / "metrics.csv")
    rotated = read_csv(folder / rows[3]["run"] / "metrics.csv")
    assert [r["train_loss"] for r in same] == [r["train_loss"] for r in rotated]
    assert [r["test_loss"] for r in same] != [r["test_loss"] for r in rotated]
    # sweep.csv: the final losses, as the runs' last metrics rows say
    for r in rows:
        last = read_csv(folder / r["run"] / "metrics.csv")[-1]
        assert float(r["final_train_loss"]) == pytest.approx(float(last["train_loss"]))
        assert float(r["final_test_loss"]) == pytest.approx(float(last["test_loss"]))
    table = (folder / "table.md").read_text()
    assert "mult-adds/image" in table and "| 23,152,400 |" in table  # the course CNN, 32x32


def read_csv_config(run):
    import json

    return json.loads((run / "config.json").read_text())


def test_epoch_0_leaves_the_training_as_it_was(tmp_path, monkeypatch):
    """The epoch-0 passes draw no random number: with them replaced by a row measured
    without any pass, epochs 1 on give the same numbers (dropout and shuffling included)."""
    from tinyvision.experiment import runner
    from tinyvision.io import read_csv
    from tinyvision.presets import build_config

    cfg = build_config("mlp-fashion", ["data.name=digits", "train.epochs=2", "model.dropout=0.3"])
    measured, _ = runner.run(cfg, tmp_path / "a", "cpu", quiet=True)
    columns = ("train_loss", "train_acc", "train_acc5", "test_loss", "test_acc", "test_acc5",
               "lr", "epoch_seconds", "images_per_second")  # fmt: skip

    def no_pass(learner, train_eval, test):
        return {"epoch": 0, **dict.fromkeys(columns, float("nan"))}

    monkeypatch.setattr(runner, "initial_row", no_pass)
    skipped, _ = runner.run(cfg, tmp_path / "b", "cpu", quiet=True)
    timing = ("epoch_seconds", "images_per_second")

    def trained(path):
        rows = read_csv(path / "metrics.csv")[1:]
        return [{k: v for k, v in r.items() if k not in timing} for r in rows]

    assert trained(measured) == trained(skipped) and len(trained(measured)) == 2


def test_a_run_prints_epoch_0_before_its_first_epoch(tmp_path, capsys):
    import math

    from tinyvision.experiment.runner import run
    from tinyvision.presets import build_config

    path, _ = run(build_config("mlp-fashion", ["data.name=digits", "train.epochs=1"]), tmp_path)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("epoch 0 (before training):"))
    loss = float(line.split("test loss ")[1].split(",")[0])
    assert abs(loss - math.log(10)) < 0.5


def test_the_time_budget_counts_the_epoch_0_pass(tmp_path, monkeypatch):
    """Epoch 0 passes once over both splits before training: the budget sizes the run with
    that pass taken out. On the 8x8 digits (1,437 training images, 360 test images, test
    batches of 1,000): 2 + 1 test batches. A budget that holds three epochs and 0.5 s
    more, but not the 0.75 s of that pass, gives two."""
    from tinyvision.experiment.runner import run
    from tinyvision.presets import build_config
    from tinyvision.train import budget

    from conftest import measured_epochs

    step_s, test_s = 0.5, 0.25

    def timer(batch) -> float:
        batch()
        return {"train_step": step_s, "test_batch": test_s}[batch.__name__]

    monkeypatch.setattr(budget, "wall_clock", timer)
    epoch_s = step_s * 23 + test_s  # 23 training batches of 64, one test batch
    measured_epochs(monkeypatch, epoch_s, 3 * test_s)  # as timed: planned again, still two
    seconds = 3 * epoch_s / (1 - budget.MARGIN) + 0.5
    overrides = ["data.name=digits", "data.crop=8", "data.pad=1", "train.batch_size=64",
                 "model.width=8", "train.epochs=6", f"train.time_budget={seconds}"]  # fmt: skip
    _, summary = run(build_config("fashion-fast", overrides), tmp_path, "cpu", quiet=True)
    assert summary["time_budget"]["epochs"] == summary["epochs_done"] == 2
    assert budget.epochs_within(seconds, epoch_s, 6) == 3  # without the pass: three
