"""What a records folder holds for a question: its studies, sweeps and runs, read back.

The records are read as the report reads them (`tinyvision.report.collect`: plain files,
bounded, whatever is damaged left out with its reason), without their pictures. Every
number shown comes from a record (sweep.csv, summary.json), never from this file.
"""

from __future__ import annotations

import math
import shlex
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from tinyvision.experiment.folder import METRICS
from tinyvision.presets import all_presets
from tinyvision.records_read import RecordError, read_csv_rows
from tinyvision.report.collect import Collector, Figure, Group, Records, Run
from tinyvision.syllabus.table import Answer, Question, Reference

# The commands given a run folder: the models they take, and the pictures they leave there
# (which answer the question).
COMMAND_MODELS = {"tinyvision fcconv": ("cnn",), "tinyvision attention": ("vit",)}
COMMAND_PICTURES = {
    "tinyvision fcconv": ("fc_as_conv.png",),
    "tinyvision attention": ("attention_maps.png", "positional_embedding.png", "patch_grid.png"),
}
MAX_RUNS = 5  # runs of one preset shown; the newest, by folder name (which holds the time)
MAX_SETTINGS = 12


@dataclass
class Found:
    """One record that answers a question: a run, a sweep or a study, and what it says."""

    answer: Answer
    record: Run | Group
    data: str  # as tinyvision names the dataset
    epochs: list[int]  # the epochs its runs completed (one per run)
    model: str
    results: list[tuple[str, str]] = field(default_factory=list)  # (what, value)

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def key(self) -> str:
        """How the report names the section of this record (its heading's link target)."""
        return f"{'group' if isinstance(self.record, Group) else 'run'}:{self.record.path}"

    @property
    def summary(self) -> str:
        return "; ".join(f"{what} {value}" if what else value for what, value in self.results)


class _RecordsOnly(Collector):
    """The report's walk over the records, without reading any picture."""

    def pictures(self, folder: Path, names: list[str]) -> list[Figure]:
        return []


def read_records(out: Path) -> Records:
    """Runs and groups under `out`; none when it is not a folder (nothing ran yet)."""
    collector = _RecordsOnly()
    if out.is_dir() and not out.is_symlink():
        collector.walk(out, depth=0)
    return collector.records


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def _epochs(values) -> list[int]:
    return [int(v) for v in (_number(x) for x in values) if v is not None and v >= 0]


def _setting_results(
    group: Group, column: str, only: list[str] | None = None
) -> list[tuple[str, str]]:
    """Per setting of a group (its `column`; `only` these, if given), the final test
    accuracy over its seeds."""
    by_setting: dict[str, list[float]] = {}
    tokens: dict[str, str] = {}  # a ViT's tokens per image, where the runs recorded them
    for row in group.rows:
        if only and str(row.get(column, "")) not in only:
            continue
        value = _number(row.get("final_test_acc"))
        if row.get("status") == "completed" and value is not None:
            setting = str(row.get(column, ""))
            by_setting.setdefault(setting, []).append(value)
            count = _number(row.get("tokens"))
            if count is not None:
                tokens[setting] = f"{count:.0f}"
    label = column.split(".")[-1]
    results = []
    for setting, values in list(by_setting.items())[:MAX_SETTINGS]:
        shown = _pct(statistics.fmean(values))
        if len(values) > 1:
            shown += f" ± {statistics.stdev(values):.2f} ({len(values)} seeds)"
        if setting in tokens:
            shown += f", {tokens[setting]} tokens"
        results.append((f"{setting}:" if label == "step" else f"{label}={setting}:", shown))
    return results or [("", "no completed run yet")]


def _group_found(answer: Answer, group: Group, column: str) -> Found:
    only = answer.steps if column == "step" else None
    first = group.runs[0] if group.runs else None
    return Found(
        answer,
        group,
        first.config["data"]["name"] if first else "",
        _epochs(r.get("epochs_done") for r in group.rows),
        first.model if first else "",
        _setting_results(group, column, only),
    )


def _run_found(answer: Answer, run: Run) -> Found:
    s = run.summary
    final = s.get("final") or {}
    results = [("final test accuracy", _pct(_number(final.get("test_acc"))))]
    best = _number(s.get("best_test_acc"))
    if best is not None:
        results.append(("best", f"{_pct(best)} at epoch {s.get('best_epoch')}"))
    svm = s.get("svm")  # the SVMs a run fitted beside its network (1ab-svm)
    for fit in (svm if isinstance(svm, list) else [])[:MAX_SETTINGS]:
        if isinstance(fit, dict):
            name = f"SVM {fit.get('kernel')} C={fit.get('C')}:"
            results.append((name, f"test {_pct(_number(fit.get('test_acc')))}"))
    before = _before_training(run.path, s.get("classes"))
    if before:
        results.append(("before training (epoch 0)", before))
    status = str(s.get("status") or "?")
    if status != "completed":
        results.append(("status", status))
    return Found(
        answer,
        run,
        run.config["data"]["name"],
        _epochs([s.get("epochs_done")]),
        run.model,
        results,
    )


def _before_training(path: Path, classes) -> str:
    """The epoch-0 row of a run's metrics (its untrained weights on the test split): the
    error before training, 1-cd Q17, beside ln k for k classes ("" for a run without one)."""
    try:
        rows = read_csv_rows(path / METRICS, ("epoch", "test_loss", "test_acc"))
    except RecordError:
        return ""
    first = rows[0] if rows and rows[0].get("epoch") == "0" else None
    loss, acc = (_number(first.get(k)) for k in ("test_loss", "test_acc")) if first else (None,) * 2
    if loss is None or acc is None:
        return ""
    chance = ""
    if isinstance(classes, int) and not isinstance(classes, bool) and classes >= 2:
        chance = f" (ln {classes} = {math.log(classes):.4f})"
    return f"test loss {loss:.4f}{chance}, accuracy {_pct(acc)}"


def _loose(records: Records) -> list[Run]:
    grouped = {r.path for g in records.groups for r in g.runs}
    return [r for r in records.runs if r.path not in grouped]


def _command_found(answer: Answer, records: Records) -> list[Found]:
    """Runs a `fcconv`/`attention` command can be pointed at, and the pictures it left."""
    head = " ".join(answer.name.split()[:2])
    models = COMMAND_MODELS.get(head)
    if not models or "RUN_FOLDER" not in answer.name:
        return []
    found = []
    runs = [*_loose(records), *(r for g in records.groups for r in g.runs)]
    for run in sorted(runs, key=lambda r: r.path.name, reverse=True):
        if run.model not in models or run.summary.get("status") != "completed":
            continue
        drawn = [
            n
            for n in COMMAND_PICTURES[head]
            if (run.path / n).is_file() and not (run.path / n).is_symlink()
        ]
        results = [("run", answer.name.replace("RUN_FOLDER", shlex.quote(str(run.path))))]
        results += [("drawn", str(run.path / n)) for n in drawn]
        found.append(Found(answer, run, run.config["data"]["name"], [], run.model, results))
        if len(found) == MAX_RUNS:
            break
    return found


def _kin(preset: str, name: str) -> bool:
    """The same preset, or one of its siblings (the 1-ab MLP's variants): a sweep of the
    learning rate over `1ab-circles-optim` answers what one over `-manual` would."""
    presets = all_presets()
    if preset == name:
        return True
    if preset not in presets or name not in presets:
        return False
    parent = presets[name].parent
    return parent is not None and presets[preset].parent == parent


def found_for(question: Question, records: Records) -> list[Found]:
    """Every record under the folder that answers `question`, in the order of its answers."""
    found: list[Found] = []
    for answer in question.answers:
        if answer.kind == "study":
            found += [
                _group_found(answer, g, "step")
                for g in records.groups
                if g.spec.get("kind") == "study" and g.spec.get("study") == answer.name
            ]
        elif answer.kind == "sweep":
            for g in records.groups:
                axes = g.spec.get("axes")
                if (
                    g.spec.get("kind") == "sweep"
                    and _kin(str(g.spec.get("preset")), answer.name)
                    and isinstance(axes, dict)
                    and isinstance(axes.get(answer.swept), list)
                    and len(axes[answer.swept]) > 1
                ):
                    found.append(_group_found(answer, g, answer.swept))
        elif answer.kind == "preset":
            mine = [r for r in _loose(records) if r.preset == answer.name]
            mine.sort(key=lambda r: r.path.name, reverse=True)
            found += [_run_found(answer, r) for r in mine[:MAX_RUNS]]
        else:
            found += _command_found(answer, records)
    return found


def _dataset(name: str) -> str:
    return {"cifar10": "CIFAR-10", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(
        name, name
    )


def setup_differences(
    data: str | None, epochs: list[int], model: str | None, references: tuple[Reference, ...]
) -> list[str]:
    """How a record's data, budget (its longest run) or model differs from the setups of
    the course's values; a part the course gives no setup for, or None here, is not compared."""
    datas = sorted({r.data for r in references if r.data})
    course_epochs = sorted({r.epochs for r in references if r.epochs})
    models = sorted({r.model for r in references if r.model})
    differs = []
    if data and datas and data not in datas:
        differs.append(f"data {_dataset(data)}, not {' or '.join(_dataset(d) for d in datas)}")
    if epochs and course_epochs and max(epochs) < min(course_epochs):
        here, low, high = max(epochs), course_epochs[0], course_epochs[-1]
        course = f"{low}" + (f"-{high}" if high != low else "")
        differs.append(f"{here} epoch{'s' if here != 1 else ''}, not {course}")
    if model and models and model not in models:
        differs.append(f"model {model}, not {' or '.join(models)}")
    return differs


def setup_note(found: Found, references: tuple[Reference, ...]) -> str:
    """A sentence when the record's data, budget or model differs from the setups of the
    course's values; empty when nothing differs (or the course gives no setup)."""
    differs = setup_differences(found.data, found.epochs, found.model, references)
    if not differs:
        return ""
    return (
        f"This record differs from the course's setup ({'; '.join(differs)}): "
        "compare the trend, not the numbers."
    )
