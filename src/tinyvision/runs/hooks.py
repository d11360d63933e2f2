"""Run hooks: what a run does besides training, chosen from its config and data.

The runner knows no practical. Anything a practical adds to a run (a picture drawn after
every epoch, another method compared at the end, ...) is a `Hook` subclass living with
its practical in `tinyvision.labs`, and reaches the runner through the package's entry
points (group `tinyvision.hooks` in pyproject.toml), so every process that runs
experiments (the command line, sweep workers, a notebook) finds the same hooks without
the engine importing a practical.

A hook that every run of a kind gets, whatever the practical (the confusion matrix of
any classifier, `tinyvision.runs.confusion`), lives in the engine and registers the same way.

To add one: subclass `Hook` next to its practical, say when it `applies`, and add a line
to `[project.entry-points."tinyvision.hooks"]` (then `pip install -e .` once).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyvision.config import Config

if TYPE_CHECKING:
    from tinyvision.data.datasets import Dataset
    from tinyvision.runs.runner import Experiment

GROUP = "tinyvision.hooks"


class Hook:
    """A run's extra: called at the start, after every epoch and at the end.

    `state` / `load` carry what the hook accumulates (e.g. one frame per epoch) through
    the checkpoint, so a resumed run ends with the same files as an uninterrupted one.
    """

    name = "hook"

    @classmethod
    def applies(cls, cfg: Config, data: Dataset) -> bool:
        """Whether this run gets the hook; may raise UserError before the folder exists."""
        return False

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp

    def on_start(self, exp: Experiment, folder: Path) -> None:
        """Before the first epoch (also when a run resumes)."""

    def on_epoch_end(self, exp: Experiment, folder: Path, row: dict) -> None:
        """After each epoch's metrics row is recorded, before the checkpoint is written."""

    def verdict(self, exp: Experiment, row: dict) -> str | None:
        """After the epoch's checkpoint: a status to end the run with now (a search's
        pruner says `pruned`), or None to go on."""
        return None

    def on_finish(self, exp: Experiment, folder: Path, status: str) -> dict[str, Any]:
        """At the end, whatever the status; returns what summary.json keeps under
        `hooks.<name>` (never beside the measured keys, which it cannot overwrite)."""
        return {}

    def state(self) -> dict[str, Any]:
        """Tensors and plain values to keep in the checkpoint (keys prefixed by name)."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """Restore what `state` saved, from a checkpoint."""


@cache
def registered() -> tuple[type[Hook], ...]:
    """Every hook class declared by an installed package, in name order."""
    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)
    return tuple(ep.load() for ep in found)


def hooks_for(cfg: Config, data: Dataset) -> list[type[Hook]]:
    """The hook classes that apply to this config and data."""
    return [hook for hook in registered() if hook.applies(cfg, data)]
