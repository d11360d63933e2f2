"""Run hooks: what a run does besides training, chosen from its config and data.

The runner knows no practical. Anything a practical adds to a run (a picture drawn after
every epoch, another method compared at the end, ...) is a `Hook` subclass living with
its practical in `tinyvision.labs`, and reaches the runner through the package's entry
points (group `tinyvision.hooks` in pyproject.toml), so every process that runs
experiments (the command line, sweep workers, a notebook) finds the same hooks without
the engine importing a practical.

A hook that every run of a kind gets, whatever the practical (the confusion matrix of
any classifier, `tinyvision.inference.confusion`), lives in the engine and registers the same way.

To add one: subclass `Hook` next to its practical, say when it `applies`, and add a line
to `[project.entry-points."tinyvision.hooks"]` (then `pip install -e .` once).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from tinyvision.config import Config
from tinyvision.experiment.parts import Hook

if TYPE_CHECKING:
    from tinyvision.data.datasets import Dataset

GROUP = "tinyvision.hooks"


@cache
def registered() -> tuple[type[Hook], ...]:
    """Every hook class declared by an installed package, in name order."""
    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)
    return tuple(ep.load() for ep in found)


def hooks_for(cfg: Config, data: Dataset) -> list[type[Hook]]:
    """The hook classes that apply to this config and data."""
    return [hook for hook in registered() if hook.applies(cfg, data)]
