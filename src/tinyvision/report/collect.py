"""Find what a report covers: runs, sweeps and studies, grouped by practical.

The records may be someone else's (a shared `runs/` folder, edited by hand), so every
file is read through `tinyvision.records_read`: plain files only, bounded sizes,
pictures checked to be real PNG or GIF files inside their folder. Folders reached
through symbolic links are not entered and the walk is bounded in depth. Whatever
cannot be used is left out and listed in `Records.skipped`, one line with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyvision.errors import UserError
from tinyvision.experiment.folder import CONFIG, SUMMARY
from tinyvision.records_read import RecordError, read_csv_rows, read_json_object, read_picture

PRACTICALS = {
    "1-ab": "Practical 1-ab: neural networks from scratch",
    "1-cd": "Practical 1-cd: convolutional networks",
    "1-e": "Practical 1-e: vision transformers",
    "other": "Other runs",
}
SWEEP, SWEEP_CSV, SEARCH_CSV, TOUR = "sweep.json", "sweep.csv", "search.csv", "tour.json"
FIGURE_SUFFIXES = (".png", ".gif")
GROUP_FIGURES = ("comparison.png", "lr.png", "history.png", "parameters.png")
SWEEP_COLUMNS = (
    "seed",
    "status",
    "epochs_done",
    "final_test_acc",
    "best_test_acc",
    "gap",
    "params",
    "seconds",
)
MAX_DEPTH = 8  # records roots hold runs two or three folders down; a tree is not searched
PICTURE_BUDGET = 200 * 1024 * 1024  # all embedded pictures together: the report stays openable


@dataclass(frozen=True)
class Figure:
    """A picture already read and checked: what the report embeds is what was checked."""

    path: Path
    data: bytes
    mime: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Run:
    path: Path
    config: dict[str, Any]  # checked: data.name and model.name are text
    summary: dict[str, Any]  # checked: an object; `final` is an object or null
    figures: list[Figure] = field(default_factory=list)  # curves.png first

    @property
    def preset(self) -> str:
        return self.config.get("preset") or ""

    @property
    def model(self) -> str:
        return self.config["model"]["name"]


@dataclass
class Group:
    """A sweep or a study: its folder, its spec and its runs."""

    path: Path
    spec: dict[str, Any]
    rows: list[dict[str, str]]  # sweep.csv, with every column of SWEEP_COLUMNS; [] if unusable
    runs: list[Run] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    @property
    def is_search(self) -> bool:
        return self.spec.get("kind") == "search"

    @property
    def name(self) -> str:
        kind = "search" if self.is_search else "sweep"
        return str(self.spec.get("study") or f"{kind} of {self.spec.get('preset', '?')}")


@dataclass
class Records:
    runs: list[Run] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    tour: dict[str, Any] | None = None
    skipped: list[str] = field(default_factory=list)  # "<folder or file>: <why>", one each


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


def group_practical(group: Group) -> str:
    name = str(group.spec.get("study") or group.spec.get("preset") or "")
    return practical_of(name, group.runs[0].model if group.runs else "")


def _present(path: Path) -> bool:
    """There is something by that name, even a broken link (then reading it says why)."""
    return os.path.lexists(path)


def check_run(path: Path, config: dict[str, Any], summary: dict[str, Any]) -> None:
    """The fields the report relies on; the rest is shown as whatever text it holds."""
    for section in ("data", "model"):
        part = config.get(section)
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise RecordError(f"{path / CONFIG}: {section}.name is missing or not text")
    if not isinstance(config.get("preset") or "", str):
        raise RecordError(f"{path / CONFIG}: preset is not text")
    overrides = config.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise RecordError(f"{path / CONFIG}: overrides is not a list of KEY=VALUE texts")
    if not isinstance(summary.get("final") or {}, dict):
        raise RecordError(f"{path / SUMMARY}: final is not an object")


def _check_tour(path: Path, tour: dict[str, Any]) -> None:
    parts, missing = tour.get("parts"), tour.get("missing", {})
    if not (
        isinstance(tour.get("summary"), str)
        and isinstance(parts, dict)
        and all(isinstance(p, dict) for p in parts.values())
        and isinstance(missing, dict)
    ):
        raise RecordError(f"{path}: not a tour record (summary, parts and missing)")


class Collector:
    """One walk over the given folders, keeping what is usable and why the rest is not."""

    def __init__(self) -> None:
        self.records = Records()
        self.picture_bytes = 0

    def skip(self, line: str) -> None:
        self.records.skipped.append(line)

    def walk(self, path: Path, depth: int) -> None:
        if _present(path / SWEEP):
            self.add_group(path)
        elif _present(path / SUMMARY) or _present(path / CONFIG):
            run = self.load_run(path, with_curves=True)
            if run:
                self.records.runs.append(run)
        elif depth >= MAX_DEPTH:
            self.skip(f"{path}: more than {MAX_DEPTH} folders down; not searched")
        else:
            for sub in self.subfolders(path):
                self.walk(sub, depth + 1)

    def subfolders(self, path: Path) -> list[Path]:
        """Real sub-folders; a link to a folder elsewhere is noted, never followed."""
        try:
            entries = sorted(path.iterdir())
        except OSError as e:
            self.skip(f"{path}: cannot be listed ({e.strerror})")
            return []
        folders = []
        for entry in entries:
            if entry.is_symlink():
                if entry.is_dir():
                    self.skip(f"{entry}: a symbolic link to a folder; not followed")
            elif entry.is_dir():
                folders.append(entry)
        return folders

    def load_run(self, path: Path, with_curves: bool) -> Run | None:
        if not _present(path / SUMMARY):
            self.skip(f"{path}: no {SUMMARY} (a run still going, or one stopped before its end)")
            return None
        try:
            summary = read_json_object(path / SUMMARY)
            config = read_json_object(path / CONFIG)
            check_run(path, config, summary)
        except RecordError as e:
            self.skip(f"{e}; the run is left out")
            return None
        names = [n for n in self.picture_names(path) if with_curves or n != "curves.png"]
        return Run(path, config, summary, self.pictures(path, names))

    def picture_names(self, path: Path) -> list[str]:
        """curves.png first, then every other picture the run left (boundaries, maps...)."""
        try:
            names = sorted(p.name for p in path.iterdir() if p.suffix in FIGURE_SUFFIXES)
        except OSError:
            return []
        return sorted(names, key=lambda n: n != "curves.png")

    def pictures(self, folder: Path, names: list[str]) -> list[Figure]:
        figures = []
        for name in names:
            try:
                data, mime = read_picture(folder / name, folder)
            except RecordError as e:
                self.skip(f"{e}; the picture is left out")
                continue
            if self.picture_bytes + len(data) > PICTURE_BUDGET:
                self.skip(
                    f"{folder / name}: left out, the report already holds "
                    f"{PICTURE_BUDGET // 2**20} MB of pictures"
                )
                continue
            self.picture_bytes += len(data)
            figures.append(Figure(folder / name, data, mime))
        return figures

    def add_group(self, path: Path) -> None:
        try:
            spec = read_json_object(path / SWEEP)
        except RecordError as e:
            self.skip(f"{e}; the sweep is left out")
            return
        rows: list[dict[str, str]] = []
        table = path / (SEARCH_CSV if spec.get("kind") == "search" else SWEEP_CSV)
        if _present(table):
            try:
                rows = read_csv_rows(table, SWEEP_COLUMNS)
            except RecordError as e:
                self.skip(f"{e}; the sweep's table is left out")
        runs = [self.load_run(sub, with_curves=False) for sub in self.subfolders(path)]
        figures = self.pictures(path, [n for n in GROUP_FIGURES if _present(path / n)])
        group = Group(path, spec, rows, [r for r in runs if r], figures)
        self.records.groups.append(group)

    def read_tour(self, root: Path) -> None:
        if not _present(root / TOUR):
            return
        try:
            tour = read_json_object(root / TOUR)
            _check_tour(root / TOUR, tour)
        except RecordError as e:
            self.skip(f"{e}; the tour's notes are left out")
            return
        self.records.tour = tour


def collect(paths: list[Path]) -> Records:
    """Runs and groups under the given folders (a run, a sweep, a study or a records root)."""
    collector = Collector()
    for path in paths:
        if not path.is_dir():
            raise UserError(f"{path}: no such folder (give run, sweep or study folders, or --out)")
        collector.walk(path, depth=0)
        collector.read_tour(path)
    return collector.records
