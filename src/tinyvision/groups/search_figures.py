"""A search's figures: the optimisation history and what each parameter did.

Drawn from search.csv's rows (what the search folder records), not from Optuna's
objects, so they show exactly what the table says.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.ticker import NullLocator

from tinyvision.figures import plt, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARKERS = {"complete": ("o", "C0"), "pruned": ("x", "C3"), "fail": ("s", "0.5")}


def _accuracy(row: dict) -> float | None:
    """A trial's accuracy: its value, or for a pruned one the last epoch it reached."""
    for key in ("value", "final_test_acc"):
        value = row.get(key)
        if isinstance(value, (int, float)) and np.isfinite(value):
            return float(value)
    return None


def plot_history(rows: Sequence[dict], path: Path | None, title: str = "") -> Figure:
    """Each trial's test accuracy in the order they ran, and the best so far."""
    fig, ax = plt.subplots(figsize=(7, 4))
    best, best_line = float("-inf"), []
    for state, (marker, colour) in MARKERS.items():
        points = [(r["trial"], _accuracy(r)) for r in rows if r["state"] == state]
        points = [(t, a) for t, a in points if a is not None]
        if points:
            trials, accs = zip(*points)
            ax.plot(trials, accs, marker, color=colour, ls="", label=state)
    for r in sorted(rows, key=lambda r: r["trial"]):
        if r["state"] == "complete" and _accuracy(r) is not None:
            best = max(best, _accuracy(r))
        best_line.append(best if best > float("-inf") else np.nan)
    ax.step(sorted(r["trial"] for r in rows), best_line, where="post", color="k", label="best")
    ax.set(xlabel="trial", ylabel="test accuracy (%)", title=title or "optimisation history")
    ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def _few_log_ticks(ax, values: Sequence[float], count: int = 4) -> None:
    """At most `count` labelled ticks, evenly spaced on the log axis over the values tried,
    to two significant digits. Matplotlib's own labels every minor tick of a range under
    a decade, and "3x10^-2" and "4x10^-2" run into each other."""
    values = [v for v in values if v > 0 and np.isfinite(v)]
    if not values:
        return
    low, high = min(values), max(values)
    ticks = sorted({float(f"{t:.2g}") for t in np.geomspace(low, high, count if high > low else 1)})
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.tick_params(axis="x", labelrotation=30)


def plot_parameters(
    rows: Sequence[dict],
    keys: Sequence[str],
    log_keys: set[str],
    importances: dict[str, float],
    path: Path | None,
) -> Figure:
    """One panel per parameter (accuracy against its value), then their importances."""
    panels = len(keys) + (1 if importances else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for state, (marker, colour) in MARKERS.items():
            points = [(r[key], _accuracy(r)) for r in rows if r["state"] == state]
            points = [(v, a) for v, a in points if v is not None and a is not None]
            if points:
                values, accs = zip(*points)
                ax.plot(values, accs, marker, color=colour, ls="", label=state)
        if key in log_keys:  # a log space is sampled evenly on a log axis
            ax.set_xscale("log")
            _few_log_ticks(ax, [r[key] for r in rows if isinstance(r.get(key), (int, float))])
        ax.set(xlabel=key, ylabel="test accuracy (%)")
    axes[0][0].legend(fontsize="small")
    if importances:
        ax = axes[0][-1]
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        ax.set(xlabel="importance (fANOVA)", title="what explains the accuracy")
    fig.tight_layout()
    save_figure(fig, path)
    return fig
