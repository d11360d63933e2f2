"""The `1ab-svm` run: after the MLP trains, the SVMs on the same split, into its folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tinyvision.models import svm  # noqa: E402
from tinyvision.report.boundary import grid_points, plot_panels  # noqa: E402
from tinyvision.runs import files  # noqa: E402

TABLE_COLUMNS = ("kernel", "C", "train_acc", "test_acc", "n_support")


def run_svm_comparison(data, mlp_probability, folder: Path) -> dict:
    """svm.csv (C = 1), svm_c_sweep.csv and .png, svm_boundaries.png (with the MLP's)."""
    train = (data.train_x.numpy(), data.train_y.numpy())
    test = (data.test_x.numpy(), data.test_y.numpy())
    grid = grid_points()
    table, panels = [], []
    for kernel in svm.KERNELS:
        row, model = svm.fit_score(kernel, 1.0, train, test)
        table.append(row)
        support = getattr(model, "support_vectors_", None)
        panels.append({
            "prob": svm.decision_probability(model, grid), "support": support,
            "title": f"{kernel} (C=1): test {row['test_acc']:.1f}%",
        })  # fmt: skip
    panels.append({"prob": mlp_probability, "title": "MLP (1-ab, course defaults)"})
    sweep = [svm.fit_score(k, C, train, test)[0] for k in svm.KERNELS for C in svm.C_VALUES]
    files.write_csv(folder / "svm.csv", TABLE_COLUMNS, table)
    files.write_csv(folder / "svm_c_sweep.csv", TABLE_COLUMNS, sweep)
    plot_panels(panels, train, test, folder / "svm_boundaries.png")
    _plot_c_sweep(sweep, folder / "svm_c_sweep.png")
    return {"svm": table, "svm_c_sweep": sweep}


def _plot_c_sweep(rows: list[dict], path: Path) -> None:
    fig, (ax_acc, ax_sv) = plt.subplots(1, 2, figsize=(10, 4))
    for kernel in svm.KERNELS:
        mine = [r for r in rows if r["kernel"] == kernel]
        cs = [r["C"] for r in mine]
        ax_acc.plot(cs, [r["test_acc"] for r in mine], marker="o", label=f"{kernel} test")
        ax_acc.plot(cs, [r["train_acc"] for r in mine], ls=":", color=ax_acc.lines[-1].get_color())
        if mine[0]["n_support"] != "":
            ax_sv.plot(cs, [r["n_support"] for r in mine], marker="o", label=kernel)
    ax_acc.set(xscale="log", xlabel="C", ylabel="accuracy (%)",
               title="accuracy against C (dotted: train)")  # fmt: skip
    ax_sv.set(xscale="log", xlabel="C", ylabel="support vectors", title="support vectors")
    for ax in (ax_acc, ax_sv):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    files.save_figure(fig, path)
    plt.close(fig)
