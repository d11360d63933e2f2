"""The two types a run is made of: the prepared `Experiment`, and the `Hook` that joins it.

They refer to each other (a hook is handed the experiment; the experiment holds its
hooks), so they live in one file: `prepare` builds the one, `tinyvision.experiment.hooks`
finds the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyvision.config import Config
from tinyvision.data.datasets import Dataset
from tinyvision.data.loader import DeviceLoader
from tinyvision.train import budget
from tinyvision.train.loop import Learner


@dataclass
class Experiment:
    """Everything a run needs, checked (`tinyvision.experiment.prepare`)."""

    cfg: Config
    data: Dataset
    learner: Learner
    train_loader: DeviceLoader
    test_loader: DeviceLoader
    info: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)  # the fitted normalization
    layers: str = ""  # the model's layer table, as `tinyvision summary` prints it
    hooks: list[Hook] = field(default_factory=list)
    sized: budget.EpochPlan | None = None  # how train.time_budget sized a new run
    asked: Config | None = None  # a sized run's config as given, before it was sized


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
