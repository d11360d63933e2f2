"""The package's own run hooks: one line each, the class's name and where it lives.

The engine knows no practical, so the table names each class by its module and is read
when a run starts (`tinyvision.experiment.hooks`), like an entry point, but without
needing the package reinstalled for a new line to count. Another package adds its hooks
through the `tinyvision.hooks` entry-point group instead.
"""

from __future__ import annotations

HOOKS = {
    "confusion": "tinyvision.inference.confusion:ConfusionMatrix",  # every classifier
    "decision-boundary": "tinyvision.labs.lab1ab:DecisionBoundary",
    "svm-comparison": "tinyvision.labs.lab1ab:SVMComparison",
}
