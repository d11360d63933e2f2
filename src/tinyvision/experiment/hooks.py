"""Run hooks: what a run does besides training, chosen from its config and data.

The runner knows no practical. Anything a practical adds to a run (a picture drawn after
every epoch, another method compared at the end, ...) is a `Hook` subclass living with
its practical in `tinyvision.labs`; a hook every run of a kind gets, whatever the
practical (the confusion matrix of any classifier, `tinyvision.inference.confusion`),
lives with the code that uses trained models. Both are lines of the package's table,
`tinyvision.builtin_hooks.HOOKS`, loaded by name when a run starts, so every process
that runs experiments (the command line, sweep workers, a notebook) finds the same hooks
without the engine importing a practical.

To add one: subclass `Hook` (`tinyvision.experiment.parts`), say when it `applies`, and
add a line to `HOOKS`. Another package adds its own through the entry-point group
`tinyvision.hooks` (`[project.entry-points."tinyvision.hooks"]` in its pyproject.toml).
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from tinyvision.builtin_hooks import HOOKS
from tinyvision.config import Config
from tinyvision.experiment.parts import Hook

if TYPE_CHECKING:
    from tinyvision.data.datasets import Dataset

GROUP = "tinyvision.hooks"


def load(target: str) -> type[Hook]:
    """`module:Class` imported."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _is_ours(entry: EntryPoint) -> bool:
    """This package's own entry points (an older install's) are the table's business."""
    dist = getattr(entry, "dist", None)
    return dist is not None and dist.name.lower() == "tinyvision"


@cache
def registered() -> tuple[type[Hook], ...]:
    """The package's own hooks and those other installed packages declare, in name order
    (one of ours keeps its name)."""
    plugins = {ep.name: ep for ep in entry_points(group=GROUP) if not _is_ours(ep)}
    targets = {**{name: ep.value for name, ep in plugins.items()}, **HOOKS}
    return tuple(load(targets[name]) for name in sorted(targets))


def hooks_for(cfg: Config, data: Dataset) -> list[type[Hook]]:
    """The hook classes that apply to this config and data."""
    return [hook for hook in registered() if hook.applies(cfg, data)]
