"""The Python API: the one way into the engine, returning objects instead of paths.

    import tinyvision as tv

    run = tv.run("mlp-fashion", train__epochs=1)      # optim__lr=0.01 is optim.lr=0.01
    run.metrics                                       # a pandas DataFrame, one row an epoch
    run.plot()                                        # the curves (inline in Jupyter)
    run.predict(["shoe.png"])                         # top-5 classes with probabilities
    tv.load("runs/mlp-fashion-...").model             # the trained nn.Module, eval mode
    tv.sweep("mlp-fashion", ["optim.lr=0.01,0.1"], seeds=2).table
    tv.runs("runs")                                   # the index as a DataFrame

The command line is a thin layer over these functions (`tinyvision.commands`), so runs,
sweeps and studies write the same folders and index rows either way. Bad input raises
`tinyvision.errors.UserError` with the CLI's one-line message. Everything read back
from a folder is treated as untrusted: the HTML views escape every value.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Any

from tinyvision.errors import UserError
from tinyvision.experiment.folder import CONFIG, METRICS, SUMMARY
from tinyvision.experiment.status import EXIT_CODES, exit_code  # noqa: F401  (the CLI's)
from tinyvision.groups.points import Options
from tinyvision.groups.sweep import SPEC
from tinyvision.records_read import read_csv_rows, read_json_object

Overrides = Mapping[str, Any] | Sequence[str] | None


def overrides_list(overrides: Overrides = None, **keywords: Any) -> list[str]:
    """`KEY=VALUE` strings from a list of them, a dict, or keywords with `__` for dots."""
    if isinstance(overrides, str):
        raise UserError(
            f"overrides: pass a list of 'key=value' strings, not the string {overrides!r}"
        )
    if isinstance(overrides, Mapping):
        items = [f"{k}={_text(v)}" for k, v in overrides.items()]
    else:
        items = [str(o) for o in overrides or ()]
    return items + [f"{k.replace('__', '.')}={_text(v)}" for k, v in keywords.items()]


def _text(value: Any) -> str:
    """A Python value as the command line writes it (True -> true, None -> none)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    return str(value)


def run(
    preset: str,
    overrides: Overrides = None,
    *,
    out: str | Path = "runs",
    device: str = "auto",
    quiet: bool = False,
    data_dir: str | Path | None = None,
    **keywords: Any,
) -> Run:
    """Train `preset` with the overrides into a new run folder under `out`. `preset` may
    also be a recipe file such as a search's best.json (its preset and overrides).
    `data_dir`: where the datasets are (default $TINYVISION_DATA, then the cache)."""
    from tinyvision.presets import build_config

    words = overrides_list(overrides, **keywords)
    if preset.endswith(".json"):  # a search's best.json: its preset and overrides
        from tinyvision.groups.search import read_recipe

        preset, recipe = read_recipe(Path(preset))
        words = [*recipe, *words]
    cfg = build_config(preset, words)  # a typo is reported before torch loads (seconds)
    from tinyvision.experiment.runner import run as run_experiment

    path, _ = run_experiment(cfg, Path(out), device, quiet, data_dir=data_dir)
    return Run(path)


def resume(
    path: str | Path,
    *,
    device: str = "auto",
    quiet: bool = False,
    data_dir: str | Path | None = None,
) -> Run:
    """Continue an interrupted run from its last completed epoch."""
    from tinyvision.experiment.folder import check_resumable

    check_resumable(Path(path))  # a wrong folder is reported before torch loads
    from tinyvision.experiment.runner import resume as resume_run

    folder, _ = resume_run(Path(path), device, quiet, data_dir=data_dir)
    return Run(folder)


def _options(arguments: dict[str, Any]) -> Options:
    """How a sweep, study or search runs its points, from the API function's own arguments
    (its `locals()`, those named like Options' fields): the one place Options are built."""
    names = {f.name for f in fields(Options)}
    given = {name: value for name, value in arguments.items() if name in names}
    given["out"] = Path(given["out"])
    if given.get("data_dir") is not None:
        given["data_dir"] = Path(given["data_dir"])
    return Options(**given)


def sweep(
    preset: str,
    grid: Overrides = None,
    *,
    seeds: int = 1,
    jobs: int = 1,
    out: str | Path = "runs",
    device: str = "auto",
    quiet: bool = False,
    executor: str = "local",
    cpus_per_run: int | None = None,
    gpus_per_run: float = 0.0,
    address: str | None = None,
    data_dir: str | Path | None = None,
    **keywords: Any,
) -> Sweep:
    """The grid of `key=v1,v2` values over `preset` (keywords: `optim__lr="0.01,0.1"`).

    `executor="ray"` runs the points as Ray tasks (`cpus_per_run`, `gpus_per_run`,
    `address` as the CLI's --cpus-per-run, --gpus-per-run, --address)."""
    options = _options(locals())  # first: the arguments, nothing else yet
    from tinyvision.groups.sweep import run_sweep

    return Sweep(run_sweep(preset, overrides_list(grid, **keywords), options))


def study(
    name: str,
    overrides: Overrides = None,
    *,
    seeds: int = 1,
    jobs: int = 1,
    out: str | Path = "runs",
    device: str = "auto",
    quiet: bool = False,
    executor: str = "local",
    cpus_per_run: int | None = None,
    gpus_per_run: float = 0.0,
    address: str | None = None,
    data_dir: str | Path | None = None,
    **keywords: Any,
) -> Sweep:
    """One of the course's studies (`tinyvision study list`), overrides applied to each step."""
    options = _options(locals())  # first: the arguments, nothing else yet
    from tinyvision.studies import run_study

    return Sweep(run_study(name, overrides_list(overrides, **keywords), options))


def search(
    preset: str,
    space: Overrides = None,
    *,
    trials: int = 20,
    prune: str | None = None,
    sampler_seed: int = 0,
    jobs: int = 1,
    out: str | Path = "runs",
    device: str = "auto",
    quiet: bool = False,
    executor: str = "local",
    cpus_per_run: int | None = None,
    gpus_per_run: float = 0.0,
    address: str | None = None,
    data_dir: str | Path | None = None,
    **keywords: Any,
) -> Search:
    """Optuna's search over `key=log:LOW:HIGH` (float:, int:, choice:A,B) spaces of `preset`;
    `prune="median"` or `"halving"` stops trials that fall behind. Plain `key=value`
    entries apply to every trial. Started again, it continues the same search."""
    options = _options(locals())  # first: the arguments, nothing else yet
    from tinyvision.groups.search import run_search

    words = overrides_list(space, **keywords)
    return Search(run_search(preset, words, trials, options, prune, sampler_seed))


def course(which: str | None = None, *, out: str | Path = "runs"):
    """The course's questions: all of them or a practical's (`"1cd"`) as a DataFrame, or
    one question (`"1cd.Q16"`, `"1e.multihead"`) with the commands that answer it, the
    course's values with their setups and what the records under `out` answer."""
    from tinyvision.syllabus.view import show

    return show(which, Path(out))


def runs(out: str | Path = "runs"):
    """The index of the runs under `out` as a pandas DataFrame, newest first."""
    import pandas as pd

    from tinyvision.experiment import index

    root = Path(out)
    if not root.is_dir():  # a typo must not read as "no runs yet"
        raise UserError(f"{root}: no such folder (the --out the runs were written to)")
    return pd.DataFrame(index.rows(root))


def load(path: str | Path) -> Run | Sweep:
    """A run folder as a `Run`, a sweep or study folder as a `Sweep`."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        raise UserError(f"{path}: no such run or sweep folder (`tinyvision runs ls` lists runs)")
    if (path / SPEC).is_file():
        return Search(path) if (path / SEARCH_TABLE).is_file() else Sweep(path)
    if (path / CONFIG).is_file():
        return Run(path)
    raise UserError(f"{path}: neither a run folder (config.json) nor a sweep folder (sweep.json)")


def _image_batch(images: Any, shape: tuple[int, ...], read_image) -> Any:
    """What `Run.predict` was given, as a uint8 (N, C, H, W) batch; else one line."""
    import numpy as np
    import torch
    from PIL import Image

    from tinyvision.data.image_files import picture_tensor

    expected = f"uint8 of shape (N, {', '.join(map(str, shape))})"
    if isinstance(images, (str, Path, Image.Image, np.ndarray, torch.Tensor)):
        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
    if isinstance(images, (list, tuple)):
        if not images:
            raise UserError("no image given: pass file paths, PIL images or uint8 arrays")
        items = []
        for i, item in enumerate(images):
            if isinstance(item, (str, Path)):
                items.append(read_image(Path(item), shape[0], shape[1:]))
            elif isinstance(item, Image.Image):
                items.append(picture_tensor(item, shape[0], shape[1:]))
            elif isinstance(item, (np.ndarray, torch.Tensor)):
                one = torch.as_tensor(np.asarray(item) if isinstance(item, np.ndarray) else item)
                items.append(one[None] if one.dim() == 2 and shape[0] == 1 else one)
            else:
                raise UserError(
                    f"images[{i}]: a {type(item).__name__}; pass file paths (str or Path), "
                    f"PIL images or uint8 arrays of shape ({', '.join(map(str, shape))})"
                )
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) > 1 or any(t.dtype != torch.uint8 for t in items):
            raise UserError(f"images: expected {expected}; got mixed shapes or types")
        batch = torch.stack(items)
    else:
        try:
            batch = torch.as_tensor(images)
        except (TypeError, ValueError, RuntimeError):
            raise UserError(
                f"images: a {type(images).__name__}; pass file paths, PIL images or {expected}"
            ) from None
    if batch.dim() == 3 and shape[0] == 1:
        batch = batch[:, None]
    if batch.dtype != torch.uint8 or tuple(batch.shape[1:]) != tuple(shape):
        raise UserError(
            f"images: expected {expected}, got {batch.dtype} {tuple(batch.shape)}; or pass "
            "PNG/JPEG file paths or PIL images"
        )
    return batch


class ImageGuesses(list):
    """One image's (class name, probability) pairs, the most probable first, with what
    `Run.predict` found about the picture: `inverted`, `note`, `warning`."""

    inverted: bool = False
    note: str = ""
    warning: str = ""


class Run:
    """A run folder: its config, summary and metrics, its trained model and pictures."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / CONFIG).is_file():
            raise UserError(f"{self.path}: not a run folder (no {CONFIG})")

    @property
    def config(self) -> dict[str, Any]:
        return read_json_object(self.path / CONFIG)

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json; a run that never finished an epoch has none yet ({})."""
        if not (self.path / SUMMARY).is_file():
            return {}
        return read_json_object(self.path / SUMMARY)

    @property
    def metrics(self):
        """metrics.csv as a DataFrame of numbers, one row per completed epoch, after a row
        for epoch 0 (the weights before training, evaluated on both splits)."""
        import pandas as pd

        if not (self.path / METRICS).is_file():
            return pd.DataFrame()
        rows = read_csv_rows(self.path / METRICS, ("epoch", "test_acc"))
        return pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce")

    @cached_property
    def _trained(self):
        from tinyvision.inference.trained import load_trained

        return load_trained(self.path, None, "Run.model")

    @property
    def model(self):
        """The trained model (the run's final weights), in eval mode, on the CPU."""
        return self._trained.model

    @property
    def classes(self) -> list[str]:
        """The class names of the run's data set, in label order."""
        return list(self._trained.data.classes)

    def examples(self, split: str = "test", count: int | None = None):
        """The run's own data: (inputs, labels) of its `split` ("train" or "test"), the first
        `count` of them (all when None), as the run loaded them (subsets and hold-outs
        applied): images uint8 (N, C, H, W) before normalization, points float (N, D)."""
        if split not in ("train", "test"):
            raise UserError(f"split={split!r}: choose 'train' or 'test'")
        if count is not None and count < 1:
            raise UserError(f"count={count}: ask for at least 1 example")
        data = self._trained.data
        x, y = (data.train_x, data.train_y) if split == "train" else (data.test_x, data.test_y)
        return x[:count], y[:count]

    def plot(self):
        """The loss and accuracy curves, as a matplotlib Figure (shown inline in Jupyter)."""
        from tinyvision.figures import plot_curves

        return plot_curves(self.metrics.to_dict("records"), None, title=self.path.name)

    def predict(
        self, images: Any, top: int = 5, invert: bool = True
    ) -> list[list[tuple[str, float]]]:
        """The `top` most probable (class name, probability) pairs of each image.

        `images`: file paths (PNG or JPEG, any size or colour, converted as
        `tinyvision predict` does), PIL images (converted the same way), or uint8
        arrays/tensors shaped like the run's data: (N, C, H, W) or (N, H, W), or a list
        of single images (C, H, W) / (H, W). A picture whose background is the inverse of
        the run's images' (dark on white for MNIST's light on black) is inverted first
        unless `invert=False`; each image's list has `.inverted`, `.note` and `.warning`
        (a picture unlike any training image), and the notes and warnings are printed.
        """
        from tinyvision.data.image_files import read_image
        from tinyvision.inference.predict import (
            examine,
            image_shape,
            probabilities,
            top_classes,
        )

        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise UserError(f"top={top!r}: a whole number of classes, at least 1")
        shape = image_shape(self._trained)
        batch = _image_batch(images, shape, read_image)
        batch, looks = examine(self._trained, batch, invert, "invert=False keeps it")
        probs = probabilities(self._trained, batch)
        guesses = top_classes(probs, self._trained.data.classes, top)
        answers = []
        for i, (row, look) in enumerate(zip(guesses, looks)):
            answer = ImageGuesses((g.name, g.probability) for g in row)
            answer.inverted, answer.note, answer.warning = look.inverted, look.note, look.warning
            for kind, text in (("note", look.note), ("warning", look.warning)):
                if text:
                    print(f"image {i}: {kind}: {text}")
            answers.append(answer)
        return answers

    def _facts(self) -> dict[str, str]:
        s = self.summary
        return {
            "preset": str(self.config.get("preset", "")),
            "status": str(s.get("status", "running")),
            "final test": _pct((s.get("final") or {}).get("test_acc")),
            "best test": _pct(s.get("best_test_acc")),
            "epochs": str(s.get("epochs_done", 0)),
        }

    def __repr__(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self._facts().items())
        return f"Run({str(self.path)!r}: {facts})"

    def _repr_html_(self) -> str:
        return _html_table(f"Run {self.path.name}", [self._facts()])


class Sweep:
    """A sweep or study folder: one row a run in `.table`, the runs' curves in `.plot()`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / SPEC).is_file():
            raise UserError(f"{self.path}: not a sweep or study folder (no {SPEC})")

    @property
    def spec(self) -> dict[str, Any]:
        return read_json_object(self.path / SPEC)

    TABLE = "sweep.csv"

    @property
    def table(self):
        """sweep.csv (search.csv for a search) as a DataFrame (numbers as numbers)."""
        import pandas as pd

        rows = read_csv_rows(self.path / self.TABLE, ("seed", "status", "run"))
        frame = pd.DataFrame(rows)
        for column in frame.columns:
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().sum() == frame[column].ne("").sum():
                frame[column] = converted
        return frame

    @property
    def runs(self) -> list[Run]:
        return [Run(self.path / name) for name in self.table["run"] if (self.path / name).is_dir()]

    def plot(self):
        """Each run's test accuracy and loss curves overlaid, as a matplotlib Figure."""
        from tinyvision.figures import plot_comparison

        groups: dict[str, list[list[dict]]] = {}
        table = self.table
        keys = [c for c in table.columns if c not in ("seed", "run") and c in self._axes()]
        for _, row in table.iterrows():
            label = ", ".join(f"{k}={row[k]}" for k in keys) or "all"
            folder = self.path / str(row["run"])
            if (folder / METRICS).is_file():
                groups.setdefault(label, []).append(Run(folder).metrics.to_dict("records"))
        return plot_comparison(groups, None, title=self.path.name)

    def _axes(self) -> list[str]:
        spec = self.spec
        if spec.get("kind") == "sweep":
            return list(spec.get("axes") or {})
        return ["step"]

    def __repr__(self) -> str:
        table = self.table
        done = int(table["status"].eq("completed").sum())
        return f"Sweep({str(self.path)!r}: {len(table)} runs, {done} completed)"

    def _repr_html_(self) -> str:
        columns = [c for c in self.table.columns if c != "run"]
        rows = [{c: _cell(r[c]) for c in columns} for r in self.table.to_dict("records")]
        return _html_table(f"{type(self).__name__} {self.path.name}", rows)


SEARCH_TABLE = "search.csv"


class Search(Sweep):
    """A search folder: one row a trial in `.table`, the best trial's recipe in `.best`."""

    TABLE = SEARCH_TABLE

    @property
    def best(self) -> dict[str, Any]:
        """best.json: the preset and overrides of the best completed trial, and its accuracy."""
        return read_json_object(self.path / "best.json")

    def history(self):
        """Each trial's test accuracy in order, and the best so far, as a Figure."""
        from tinyvision.groups.search_figures import plot_history

        return plot_history(self.table.to_dict("records"), None, title=self.path.name)

    def _axes(self) -> list[str]:
        return ["trial"]

    def __repr__(self) -> str:
        table = self.table
        done = int(table["state"].eq("complete").sum())
        pruned = int(table["state"].eq("pruned").sum())
        return f"Search({str(self.path)!r}: {len(table)} trials, {done} complete, {pruned} pruned)"


def exercises(folder: str | Path = "exercises") -> list[Path]:
    """Copy the three exercise notebooks into `folder`; never over an existing file."""
    from tinyvision.check.handout import copy_exercises

    return copy_exercises(Path(folder))


def grade(
    notebooks: Sequence[str | Path],
    out: str | Path | None = "grades.csv",
    timeout: float = 120,
    jobs: int = 0,
) -> list:
    """Run each completed exercise notebook in a fresh kernel and every check on its pieces.

    This runs the students' code: do it where that is safe. Returns one `Row` per notebook
    ({check: (status, reason)}, a note); writes them to `out` (CSV) unless it is None.
    `timeout`: seconds a cell may run; `jobs`: notebooks at a time (0: one per core, up to 4).
    """
    from tinyvision.check.grade import check_out, write_grades
    from tinyvision.check.grade import grade as grade_notebooks

    if out is not None:
        check_out(Path(out))
    rows = grade_notebooks([Path(n) for n in notebooks], timeout, jobs)
    if out is not None:
        write_grades(rows, Path(out))
    return rows


def grade_summary(rows: list) -> tuple[list[str], dict[str, float]]:
    """The checks that `grade`'s rows were graded on, in the course's order, and the share
    of the notebooks that passed each."""
    from tinyvision.check.grade import columns, pass_rates

    return columns(rows), pass_rates(rows)


def _pct(value: Any) -> str:
    return f"{value:.2f}%" if isinstance(value, (int, float)) else "n/a"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _html_table(title: str, rows: list[dict[str, str]]) -> str:
    """A small table; every name and value escaped (run folders are untrusted)."""
    from tinyvision.report.html import html_table

    columns = list(rows[0]) if rows else []
    table = html_table(columns, [[r.get(c, "") for c in columns] for r in rows])
    return f"<div><strong>{html.escape(title)}</strong>{table}</div>"


# What the command line shows besides runs: presets, keys, models, pictures, data, records.


def presets() -> dict[str, str]:
    """Every preset's name and one-line description."""
    from tinyvision.presets import all_presets

    return {name: preset.description for name, preset in all_presets().items()}


def config_keys() -> list[tuple[str, Any]]:
    """Every config key (`section.name`) with its default value."""
    from dataclasses import fields

    from tinyvision.config import Config

    cfg = Config()
    keys = []
    for section in ("data", "model", "optim", "schedule", "train"):
        part = getattr(cfg, section)
        keys += [(f"{section}.{f.name}", getattr(part, f.name)) for f in fields(part)]
    return keys


def studies() -> dict[str, tuple[str, int]]:
    """Every study's name, description and number of steps."""
    from tinyvision.studies import STUDIES

    return {name: (s.description, len(s.steps)) for name, s in STUDIES.items()}


def model_summary(
    model: str, overrides: Sequence[str] = (), shape: tuple[int, ...] | None = None, classes=10
) -> str:
    """A model's layer table (`model.*` overrides); `shape` (C, H, W) defaults to 3x32x32
    for the course CNN, else 1x28x28."""
    from tinyvision.config import Config, apply_overrides, check_model_keys, parse_assignment
    from tinyvision.models import create_model
    from tinyvision.models.summary import format_table, summarize

    cfg = apply_overrides(Config(), [f"model.name={model}", *overrides])
    check_model_keys(cfg, [parse_assignment(a)[0] for a in overrides])
    cfg.validate()
    shape = shape or ((3, 32, 32) if model == "cnn" else (1, 28, 28))
    # The course CNN is defined for 32x32 images: its fc4 keeps that size, and another
    # input shows where it breaks. Other models are built for the input given.
    built_for = (shape[0], 32, 32) if model == "cnn" else shape
    built = create_model(cfg.model, built_for, classes)
    return format_table(summarize(built, shape), shape)


def bag_of_words_parameters(words: int = 1000, descriptor: int = 128, classes: int = 10):
    """1-cd Q12: the parameters of a bag-of-words + linear SVM classifier (`svm`: one SVM
    per class over the word histogram; `codebook`: the words' centres) and of the course
    CNN on 3x32x32 (`cnn`), for the same number of classes."""
    from tinyvision.config import ModelConfig
    from tinyvision.models import count_params, create_model
    from tinyvision.models.arithmetic import bag_of_words_svm

    for flag, value in (("--words", words), ("--descriptor", descriptor)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    if classes < 2:
        raise UserError(f"--classes {classes}: must be at least 2")
    counts = bag_of_words_svm(words, descriptor, classes)
    cnn = count_params(create_model(ModelConfig(name="cnn"), (3, 32, 32), classes))
    return {"svm": counts["svm"], "codebook": counts["codebook"], "cnn": cnn}


def fc_as_conv(run_folder: str | Path, size: int = 64):
    """A trained course CNN with fc4/fc5 as convolutions (`FcConv`): the picture, the
    largest difference from the fc outputs, the score map's shape on the mosaic of whole
    test images that fits in size x size, and that mosaic's side."""
    from tinyvision.labs.lab1cd import show_fc_as_conv

    return show_fc_as_conv(Path(run_folder), size)


def attention_maps(run_folder: str | Path, images: int = 4) -> list[Path]:
    """A trained ViT's attention maps and embeddings, drawn for `images` test images."""
    from tinyvision.labs.lab1e import draw_vit_pictures

    if images < 1:
        raise UserError("--images must be at least 1")
    return draw_vit_pictures(Path(run_folder), images)


def predict(
    run_folder: str | Path,
    images: Sequence[str | Path],
    top: int = 5,
    data_dir: str | Path | None = None,
    invert: bool = True,
):
    """The `top` classes of each image file, as `tinyvision.inference.predict.Prediction`s.
    `invert`: a picture whose background is the inverse of the run's images' is inverted
    first (and its Prediction says so)."""
    from tinyvision.inference.predict import predict as classify

    if top < 1:
        raise UserError(f"--top {top}: show at least 1 class")
    return classify(Path(run_folder), [Path(i) for i in images], top, data_dir, invert)


def report(paths: Sequence[str | Path] = (), out: str | Path = "runs") -> Path:
    """One HTML report (and its Markdown twin) of runs and studies, written under `out`."""
    from tinyvision.report.html import write_report

    return write_report([Path(p) for p in paths] or [Path(out)], Path(out))


def tour(
    out: str | Path = "runs",
    quick: bool = False,
    device: str = "auto",
    data_dir: str | Path | None = None,
    minutes: float = 10.0,
) -> Path:
    """Every practical end to end, then the report; returns the report's path. The full
    tour is timed first and cut down to fit `minutes` here (0: its fixed budgets)."""
    from tinyvision.tour import run_tour

    return run_tour(Path(out), quick, device, Path(data_dir) if data_dir else None, minutes)


def index_rows(out: str | Path = "runs") -> list[dict[str, Any]]:
    """The index of the runs under `out`, one dict a run (values as recorded)."""
    from tinyvision.experiment import index

    return index.rows(Path(out))


def is_running(path: str | Path) -> bool:
    """Whether a process holds the run's lock now (`running` in the index and not: dead)."""
    from tinyvision.experiment.folder import is_alive

    return is_alive(Path(path))


def run_records(
    path: str | Path, metric_columns: Sequence[str]
) -> tuple[dict, dict, list[dict[str, str]] | None]:
    """A run folder's summary, config and metrics rows (None without metrics.csv), each
    read and checked as untrusted input: a damaged file is one line."""
    import os

    path = Path(path)
    if not path.is_dir() or not os.path.lexists(path / SUMMARY):
        raise UserError(f"{path}: not a run folder (it has no {SUMMARY}; `runs ls` lists them)")
    summary = read_json_object(path / SUMMARY)
    config = read_json_object(path / CONFIG)
    metrics = None
    if os.path.lexists(path / METRICS):
        metrics = read_csv_rows(path / METRICS, tuple(metric_columns))
    return summary, config, metrics


BUILT_IN_DATA = {"circles": "generated", "digits": "embedded in scikit-learn"}


def data_splits(data_dir: str | Path | None = None) -> list[tuple[str, str, Path | None]]:
    """Every file dataset's splits, and the folder each was found in (None: missing)."""
    from tinyvision.data import sources

    found = []
    for name, spec in sources.FILE_DATASETS.items():
        for split in spec.splits:
            paths = sources.find_split(name, split, data_dir)
            found.append((name, split, paths[0].parent if paths else None))
    return found


def fetch_data(name: str, data_dir: str | Path | None = None) -> Path:
    """Download a dataset into the cache; returns its folder."""
    from tinyvision.data import sources

    if name not in sources.FILE_DATASETS:
        raise UserError(
            f"{name}: nothing to fetch; choose one of {', '.join(sources.FILE_DATASETS)}"
        )
    try:
        return sources.download(name)
    except UserError as e:
        raise UserError(f"{e}; or {sources.where_to_put(name, 'train', data_dir)}") from None


def check_data(
    name: str | None = None, data_dir: str | Path | None = None
) -> Iterator[tuple[str, str, tuple[int, tuple[int, ...], list[int]] | None]]:
    """Every file of a dataset (None: of all of them) read and validated, split by split as
    it goes: its number of images, image shape and count per class, or None if missing."""
    from tinyvision.data import sources

    names = [name] if name else list(sources.FILE_DATASETS)
    if name and name not in sources.FILE_DATASETS:
        raise UserError(
            f"unknown dataset '{name}'; choose one of {', '.join(sources.FILE_DATASETS)}"
        )
    import numpy as np  # the readers, only once there is something to read

    from tinyvision.data.datasets import read_split

    found_any = False
    for n in names:
        spec = sources.FILE_DATASETS[n]
        for split in spec.splits:
            paths = sources.find_split(n, split, data_dir)
            if paths is None:
                partial = sources.incomplete_split(n, split, data_dir)
                if partial:  # some files without the others: not "missing", and not usable
                    folder, missing = partial
                    raise UserError(
                        f"{n} {split} split in {folder} is incomplete: {', '.join(missing)} "
                        f"missing; put it there, or `tinyvision data fetch {n}`"
                    )
                yield n, split, None
                continue
            x, y = read_split(n, paths)  # raises UserError on any bad file
            shape = tuple(int(d) for d in x.shape[1:])
            if shape != spec.image_shape:
                raise UserError(
                    f"{n} {split} split in {paths[0].parent}: images of "
                    f"{'x'.join(map(str, shape))}, not {n}'s "
                    f"{'x'.join(map(str, spec.image_shape))}; replace them with the real files"
                )
            found_any = True  # each split the dataset's own shape: so the two agree
            counts = [int(c) for c in np.bincount(y, minlength=10)]
            yield n, split, (len(y), tuple(x.shape[1:]), counts)
    if name and not found_any:
        raise UserError(f"{name}: no split found; {sources.where_to_put(name, 'train', data_dir)}")
