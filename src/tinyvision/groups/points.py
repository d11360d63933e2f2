"""What a group of runs is made of: its points, how it is run, and where.

A sweep, a study and a search are lists of `Point`s (one run each) run with the same
`Options`, by an `Executor`: worker processes here (`tinyvision.groups.executors.local`)
or Ray tasks (`tinyvision.groups.executors.ray`). The executors know these types, not the
sweep: each is handed the function that runs one point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tinyvision.config import parse_assignment
from tinyvision.errors import UserError
from tinyvision.presets import build_config

TIME_BUDGET = "train.time_budget"


def unsized(overrides: list[str], shared: list[str] | None = None) -> list[str]:
    """A group's run: a preset's time budget off unless the overrides give one. Sized one
    by one, a group's runs would differ in length by their own speed and the load."""
    asked = {parse_assignment(o)[0] for o in [*(shared or []), *overrides]}
    return overrides if TIME_BUDGET in asked else [f"{TIME_BUDGET}=0", *overrides]


@dataclass
class Point:
    preset: str
    values: dict[str, str]  # what distinguishes this point: the columns of sweep.csv
    overrides: list[str]  # its config overrides, the seed excluded
    seed: int
    shared: list[str] = field(default_factory=list)  # a study's, for steps they apply to
    run_dir: Path = field(default_factory=Path)
    hooks: list = field(default_factory=list)  # added to its run: a search trial's pruner
    trial: int | None = None  # a search's trial number

    @property
    def label(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.values.items()) or "all"

    def config(self):
        overrides = unsized([*self.overrides, f"train.seed={self.seed}"], self.shared)
        return build_config(self.preset, overrides, self.shared)


@dataclass
class Options:
    """How a group of runs is run: the same for sweeps, studies and searches."""

    seeds: int = 1
    jobs: int = 1
    out: Path = Path("runs")
    device: str = "auto"
    quiet: bool = False
    executor: str = "local"  # `local`: processes here; `ray`: tasks on a Ray cluster
    cpus_per_run: int | None = None  # ray: CPUs a run asks for (default: cores / jobs)
    gpus_per_run: float = 0.0  # ray: a fraction shares one GPU between runs
    address: str | None = None  # ray: the cluster to join (default RAY_ADDRESS, or local)
    data_dir: Path | None = None  # the datasets (default $TINYVISION_DATA, then the cache)

    def __post_init__(self) -> None:
        self.out = Path(self.out)

    def check(self) -> None:
        if self.seeds < 1 or self.jobs < 1:
            raise UserError("--seeds and --jobs must be at least 1")
        if self.executor not in ("local", "ray"):
            raise UserError(f"--executor {self.executor}: choose local or ray")
        ray_only = {
            "--cpus-per-run": self.cpus_per_run is not None,
            "--gpus-per-run": self.gpus_per_run != 0,
            "--address": self.address is not None,
        }
        if self.executor == "local" and any(ray_only.values()):
            flags = ", ".join(flag for flag, given in ray_only.items() if given)
            raise UserError(f"{flags}: only with --executor ray")
        if self.cpus_per_run is not None and self.cpus_per_run < 1:
            raise UserError("--cpus-per-run must be at least 1")
        if not 0 <= self.gpus_per_run <= 64:
            raise UserError("--gpus-per-run must be between 0 and the GPUs of a node")


# `sweep.run_point(point, out, device, group)`, its data folder bound: one point run in
# this process; returns its summary
PointRunner = Callable[[Point, Path, str, str], dict]


class Executor(Protocol):
    """Runs `todo` (each with `run_point`), reporting each point's summary as it ends."""

    def __call__(
        self,
        run_point: PointRunner,
        todo: list[Point],
        options: Options,
        group: str,
        report: Callable[[Point, dict], None],
    ) -> None: ...
