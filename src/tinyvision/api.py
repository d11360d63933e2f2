"""The Python API: the command line's engine, returning objects instead of paths.

    import tinyvision as tv

    run = tv.run("mlp-fashion", train__epochs=1)      # optim__lr=0.01 is optim.lr=0.01
    run.metrics                                       # a pandas DataFrame, one row an epoch
    run.plot()                                        # the curves (inline in Jupyter)
    run.predict(["shoe.png"])                         # top-5 classes with probabilities
    tv.load("runs/mlp-fashion-...").model             # the trained nn.Module, eval mode
    tv.sweep("mlp-fashion", ["optim.lr=0.01,0.1"], seeds=2).table
    tv.runs("runs")                                   # the index as a DataFrame
                                                      # (tinyvision.runs, a callable package)

Runs, sweeps and studies write the same folders and index rows as the CLI does. Bad
input raises `tinyvision.errors.UserError` with the CLI's one-line message. Everything
read back from a folder is treated as untrusted: the HTML views escape every value.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from tinyvision.errors import UserError
from tinyvision.records_read import read_csv_rows, read_json_object
from tinyvision.runs.folder import CONFIG, METRICS, SUMMARY
from tinyvision.runs.sweep import SPEC, Options

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
    **keywords: Any,
) -> Run:
    """Train `preset` with the overrides into a new run folder under `out`."""
    from tinyvision.presets import build_config
    from tinyvision.runs.runner import run as run_experiment

    cfg = build_config(preset, overrides_list(overrides, **keywords))
    path, _ = run_experiment(cfg, Path(out), device, quiet)
    return Run(path)


def resume(path: str | Path, *, device: str = "auto", quiet: bool = False) -> Run:
    """Continue an interrupted run from its last completed epoch."""
    from tinyvision.runs.runner import resume as resume_run

    folder, _ = resume_run(Path(path), device, quiet)
    return Run(folder)


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
    **keywords: Any,
) -> Sweep:
    """The grid of `key=v1,v2` values over `preset` (keywords: `optim__lr="0.01,0.1"`).

    `executor="ray"` runs the points as Ray tasks (`cpus_per_run`, `gpus_per_run`,
    `address` as the CLI's --cpus-per-run, --gpus-per-run, --address)."""
    from tinyvision.runs.sweep import run_sweep

    options = Options(
        seeds, jobs, Path(out), device, quiet, executor, cpus_per_run, gpus_per_run, address
    )
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
    **keywords: Any,
) -> Sweep:
    """One of the course's studies (`tinyvision study list`), overrides applied to each step."""
    from tinyvision.studies import run_study

    options = Options(
        seeds, jobs, Path(out), device, quiet, executor, cpus_per_run, gpus_per_run, address
    )
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
    **keywords: Any,
) -> Search:
    """Optuna's search over `key=log:LOW:HIGH` (float:, int:, choice:A,B) spaces of `preset`;
    `prune="median"` or `"halving"` stops trials that fall behind. Plain `key=value`
    entries apply to every trial. Started again, it continues the same search."""
    from tinyvision.runs.search import run_search

    options = Options(
        1, jobs, Path(out), device, quiet, executor, cpus_per_run, gpus_per_run, address
    )
    words = overrides_list(space, **keywords)
    return Search(run_search(preset, words, trials, options, prune, sampler_seed))


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
        """metrics.csv as a DataFrame of numbers, one row per completed epoch."""
        import pandas as pd

        if not (self.path / METRICS).is_file():
            return pd.DataFrame()
        rows = read_csv_rows(self.path / METRICS, ("epoch", "test_acc"))
        return pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce")

    @cached_property
    def _trained(self):
        from tinyvision.runs.trained import load_trained

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

    def predict(self, images: Any, top: int = 5) -> list[list[tuple[str, float]]]:
        """The `top` most probable (class name, probability) pairs of each image.

        `images`: file paths (PNG or JPEG, any size or colour, converted as
        `tinyvision predict` does), or uint8 arrays/tensors shaped like the run's data
        (N, C, H, W) or (N, H, W).
        """
        import torch

        from tinyvision.data.image_files import read_image
        from tinyvision.runs.predict import image_shape, probabilities, top_classes

        if top < 1:
            raise UserError(f"top={top}: ask for at least 1 class")
        shape = image_shape(self._trained)
        if isinstance(images, (str, Path)):
            images = [images]
        if isinstance(images, (list, tuple)) and all(isinstance(i, (str, Path)) for i in images):
            if not images:
                raise UserError("no image given: name at least one PNG or JPEG file")
            batch = torch.stack([read_image(Path(p), shape[0], shape[1:]) for p in images])
        else:
            batch = torch.as_tensor(images)
            if batch.dim() == 3 and shape[0] == 1:
                batch = batch[:, None]
            if batch.dtype != torch.uint8 or tuple(batch.shape[1:]) != tuple(shape):
                raise UserError(
                    f"images: expected uint8 of shape (N, {', '.join(map(str, shape))}), got "
                    f"{batch.dtype} {tuple(batch.shape)}; or pass PNG/JPEG file paths"
                )
        probs = probabilities(self._trained, batch)
        guesses = top_classes(probs, self._trained.data.classes, top)
        return [[(g.name, g.probability) for g in row] for row in guesses]

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
        from tinyvision.runs.search_figures import plot_history

        return plot_history(self.table.to_dict("records"), None, title=self.path.name)

    def _axes(self) -> list[str]:
        return ["trial"]

    def __repr__(self) -> str:
        table = self.table
        done = int(table["state"].eq("complete").sum())
        pruned = int(table["state"].eq("pruned").sum())
        return f"Search({str(self.path)!r}: {len(table)} trials, {done} complete, {pruned} pruned)"


def _pct(value: Any) -> str:
    return f"{value:.2f}%" if isinstance(value, (int, float)) else "n/a"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _html_table(title: str, rows: list[dict[str, str]]) -> str:
    """A small table; every name and value escaped (run folders are untrusted)."""
    e = html.escape
    columns = list(rows[0]) if rows else []
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<div><strong>{e(title)}</strong><table><tr>{head}</tr>{body}</table></div>"
