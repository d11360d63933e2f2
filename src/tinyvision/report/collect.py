"""Find what a report covers: runs, sweeps and studies, grouped by practical."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyvision.errors import UserError
from tinyvision.io import read_csv
from tinyvision.runs.folder import CONFIG, read_summary

PRACTICALS = {
    "1-ab": "Practical 1-ab: neural networks from scratch",
    "1-cd": "Practical 1-cd: convolutional networks",
    "1-e": "Practical 1-e: vision transformers",
    "other": "Other runs",
}
FIGURE_SUFFIXES = (".png", ".gif")


@dataclass
class Run:
    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]

    @property
    def figures(self) -> list[Path]:
        """curves.png first, then every other picture the run left (boundaries, maps...)."""
        pictures = sorted(p for p in self.path.iterdir() if p.suffix in FIGURE_SUFFIXES)
        return sorted(pictures, key=lambda p: p.name != "curves.png")


@dataclass
class Group:
    """A sweep or a study: its folder, its spec and its runs."""

    path: Path
    spec: dict[str, Any]
    rows: list[dict[str, str]]
    runs: list[Run] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.get("study") or f"sweep of {self.spec.get('preset', '?')}"


def practical_of(preset: str, model: str) -> str:
    for prefix, key in (("1ab", "1-ab"), ("1cd", "1-cd"), ("1e", "1-e")):
        if preset.startswith(prefix):
            return key
    if model.startswith(("vit", "timm:")):
        return "1-e"
    if model in ("cnn", "lenet"):
        return "1-cd"
    if model == "mlp":
        return "1-ab"
    return "other"


def load_run(path: Path) -> Run | None:
    summary = read_summary(path)
    try:
        config = json.loads((path / CONFIG).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return Run(path, config, summary) if summary else None


def load_group(path: Path) -> Group:
    spec = json.loads((path / "sweep.json").read_text())
    rows = read_csv(path / "sweep.csv") if (path / "sweep.csv").is_file() else []
    runs = [r for r in (load_run(p) for p in sorted(path.iterdir()) if p.is_dir()) if r]
    return Group(path, spec, rows, runs)


def collect(paths: list[Path]) -> tuple[list[Run], list[Group]]:
    """Runs and groups under the given folders (a run, a sweep, a study or a records root)."""
    runs: list[Run] = []
    groups: list[Group] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"{path}: no such folder (give run, sweep or study folders, or --out)")
        if (path / "sweep.json").is_file():
            groups.append(load_group(path))
        elif (path / "summary.json").is_file():
            run = load_run(path)
            if run:
                runs.append(run)
        else:
            sub_runs, sub_groups = collect(sorted(p for p in path.iterdir() if p.is_dir()))
            runs += sub_runs
            groups += sub_groups
    return runs, groups


def group_practical(group: Group) -> str:
    name = group.spec.get("study") or group.spec.get("preset", "")
    if group.runs:
        model = group.runs[0].config["model"]["name"]
        return practical_of(name, model)
    return practical_of(name, "")
