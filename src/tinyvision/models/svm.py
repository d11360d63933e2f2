"""Practical 1-ab, bonus: support vector machines on the same circles split.

scikit-learn's `SVC` with the linear, polynomial, RBF and sigmoid kernels and
`LinearSVC`, at C = 1 and over a range of C (the margin / training-error trade-off).
"""

from __future__ import annotations

import numpy as np

C_VALUES = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
KERNELS = ("linear", "poly", "rbf", "sigmoid", "LinearSVC")


def make_svm(kernel: str, C: float):
    # scikit-learn is imported here, not with the module: every run's hooks import the
    # practical that owns this one, and importing scikit-learn takes seconds.
    from sklearn.svm import SVC, LinearSVC

    if kernel == "LinearSVC":
        return LinearSVC(C=C, max_iter=20_000)
    return SVC(kernel=kernel, C=C, degree=3, gamma="scale")


def fit_score(kernel: str, C: float, train: tuple, test: tuple) -> tuple[dict, object]:
    model = make_svm(kernel, C).fit(*train)
    row = {
        "kernel": kernel,
        "C": C,
        "train_acc": 100 * model.score(*train),
        "test_acc": 100 * model.score(*test),
        # LinearSVC solves the primal: it keeps no support vectors
        "n_support": int(model.n_support_.sum()) if hasattr(model, "n_support_") else "",
    }
    return row, model


def decision_probability(model, points: np.ndarray) -> np.ndarray:
    """The decision function squashed to (0, 1), so that 0.5 is the boundary."""
    return 1 / (1 + np.exp(-model.decision_function(points)))
