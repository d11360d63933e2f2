"""Hyperparameter search: Optuna's TPE sampler over KEY=SPACE, each trial a normal run.

    tinyvision search mlp-fashion optim.lr=log:1e-3:0.3 model.hidden=choice:64,128,256 \\
        --trials 20 --prune

Optuna proposes a point of the space; it runs like a sweep point (the same run folder,
index row and executors: here, `--jobs` processes, or Ray tasks); Optuna is told the
run's final test accuracy. With `--prune`, every epoch's test accuracy is reported to a
pruner (median, or successive halving) that stops a trial falling behind the others:
its run ends with status `pruned`, and `tinyvision resume` would continue it like any run.

The study is kept in the search folder (Optuna's journal file), so a search started
again finds its trials: finished ones are kept, those an interruption left running are
resumed from their checkpoints, and new ones are asked for until there are `--trials`.
Ray workers on other machines report into the same journal through the shared `--out`.

The course's datasets have a train and a test split only, so a search selects on test
accuracy, as the course's own comparisons do: the best trial's number is optimistic by
however much the search fitted the test split (re-run its best.json with other seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyvision import io
from tinyvision.config import parse_assignment, split_values
from tinyvision.errors import UserError
from tinyvision.presets import build_config
from tinyvision.runs.folder import read_summary
from tinyvision.runs.hooks import Hook
from tinyvision.runs.sweep import (
    SPEC,
    Options,
    Point,
    execute_points,
    folder_for,
    metrics_rows,
    unsized,
)

if TYPE_CHECKING:
    from tinyvision.runs.runner import Experiment

INSTALL = "pip install 'tinyvision[search]'"
JOURNAL, RESULTS, BEST = "optuna.journal", "search.csv", "best.json"
STUDY = "search"  # the study's name inside its journal: one study per search folder
KINDS = ("log", "float", "int", "choice")
PRUNERS = ("median", "halving")
BEST_CURVES = 5  # trials shown in comparison.png


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise UserError(
            f"tinyvision search needs Optuna, which is not installed: {INSTALL}"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # we print one line per trial
    return optuna


@dataclass(frozen=True)
class Space:
    """Where one config key's values are drawn from: `log:LOW:HIGH`, `float:LOW:HIGH`,
    `int:LOW:HIGH` or `choice:A,B,C`."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, key: str, text: str) -> Space:
        kind, _, rest = text.partition(":")
        if kind == "choice":
            choices = tuple(v.strip() for v in split_values(rest))
            if len(choices) < 2 or not all(choices):
                raise UserError(
                    f"{key}={text}: a choice needs two values or more, e.g. choice:32,64"
                )
            return cls(key, kind, choices=choices)
        bounds = rest.split(":")
        example = {"log": "log:1e-4:1e-1", "float": "float:0:0.5", "int": "int:1:8"}[kind]
        try:
            low, high = (int(b) if kind == "int" else float(b) for b in bounds)
        except ValueError:
            raise UserError(f"{key}={text}: expected {kind}:LOW:HIGH, e.g. {example}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise UserError(f"{key}={text}: LOW must be a number below HIGH")
        if kind == "log" and low <= 0:
            raise UserError(f"{key}={text}: a log space needs LOW > 0")
        return cls(key, kind, low, high)

    def suggest(self, trial) -> str:
        """Ask the trial for a value; returned as the text of a KEY=VALUE override."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return str(trial.suggest_int(self.key, int(self.low), int(self.high)))
        return repr(trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log"))

    def extremes(self) -> list[str]:
        """Values that show, before any trial, whether the key takes this space."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return [str(int(self.low)), str(int(self.high))]
        return [repr(self.low), repr(self.high)]


def parse_space(words: list[str]) -> tuple[list[Space], list[str]]:
    """KEY=KIND:... words are spaces; plain KEY=VALUE words apply to every trial."""
    spaces, fixed = [], []
    for word in words:
        key, text = parse_assignment(word)
        if text.partition(":")[0] in KINDS:
            if any(s.key == key for s in spaces):
                raise UserError(f"{key} appears twice in the search")
            spaces.append(Space.parse(key, text))
        else:
            fixed.append(word)
    if not spaces:
        raise UserError(
            "nothing to search: give at least one KEY=SPACE, e.g. optim.lr=log:1e-4:1e-1 "
            "(spaces: log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH, choice:A,B,C)"
        )
    return spaces, fixed


def check_space(preset: str, spaces: list[Space], fixed: list[str]) -> None:
    """Every key and bound must make a valid config: one line now, not a failed trial."""
    build_config(preset, fixed)
    for space in spaces:
        for value in space.extremes():
            build_config(preset, [*fixed, f"{space.key}={value}"])


class TrialPruning(Hook):
    """Reports each epoch's test accuracy to the trial; ends the run when it is pruned.

    Runs in whatever process trains the trial (a local worker, a Ray task on another
    machine), reading and writing the study's journal in the search folder.
    """

    name = "pruning"

    def __init__(self, exp: Experiment, journal: str, trial_id: int, prune: str) -> None:
        super().__init__(exp)
        optuna = import_optuna()
        # The pruner is not kept in the journal: each process that judges a trial makes it.
        storage, pruner = _storage(optuna, Path(journal)), _pruner(optuna, prune)
        study = optuna.load_study(study_name=STUDY, storage=storage, pruner=pruner)
        # Trial(study, id) is how Optuna's own integrations rebuild a trial in another
        # process; the id (not the number) is what it takes, hence `_trial_id` below.
        self.trial = optuna.trial.Trial(study, trial_id)

    def verdict(self, exp: Experiment, row: dict) -> str | None:
        self.trial.report(float(row["test_acc"]), int(row["epoch"]))
        if int(row["epoch"]) >= exp.cfg.train.epochs:  # all its epochs ran: it is complete
            return None
        return "pruned" if self.trial.should_prune() else None


def trial_dir(folder: Path, number: int) -> Path:
    """A trial's run folder: trial-000, trial-001, ..."""
    return folder / f"trial-{number:03d}"


def _storage(optuna, journal: Path):
    backend = optuna.storages.journal.JournalFileBackend(str(journal))
    return optuna.storages.JournalStorage(backend)


def _pruner(optuna, prune: str | None):
    if prune is None:
        return optuna.pruners.NopPruner()
    if prune == "median":  # below the median of earlier trials at the same epoch
        # (never at epoch 1: one epoch says little about where a run ends)
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    # successive halving: at epochs 1, 3, 9, ... keep the best third
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


def run_search(
    preset: str,
    words: list[str],
    trials: int,
    options: Options | None = None,
    prune: str | None = None,
    seed: int = 0,
    **fields,
) -> Path:
    """Run (or continue) the search until it holds `trials` trials; returns its folder."""
    options = options or Options(**fields)
    options.check()
    if trials < 1:
        raise UserError("--trials must be at least 1")
    if prune is not None and prune not in PRUNERS:
        raise UserError(f"--prune {prune}: choose {' or '.join(PRUNERS)}")
    optuna = import_optuna()
    spaces, fixed = parse_space(words)
    check_space(preset, spaces, fixed)
    spec = {
        "kind": "search",
        "preset": preset,
        "space": {s.key: word.partition("=")[2] for s, word in _space_words(spaces, words)},
        "fixed": fixed,
        "prune": prune,
        "sampler_seed": seed,
    }
    keys = "-".join(s.key.split(".")[-1] for s in spaces)
    folder = folder_for(options.out, "search", f"{preset}-{keys}", spec)
    folder.mkdir(parents=True, exist_ok=True)
    io.write_json(folder / SPEC, spec)
    study = open_study(optuna, folder, seed, prune)
    Search(optuna, study, preset, spaces, fixed, folder, options, prune).run(trials)
    return folder


def open_study(optuna, folder: Path, seed: int, prune: str | None):
    """The search's study, from its journal (created on the first run).

    The journal is a file in a folder the user hands us: a link is refused (it could
    point anywhere), and a journal Optuna cannot read is one line, not a traceback."""
    journal = folder / JOURNAL
    if journal.is_symlink() or (journal.exists() and not journal.is_file()):
        raise UserError(
            f"{journal}: not a plain file (a link?); remove it to start the search over"
        )
    try:
        study = optuna.create_study(
            study_name=STUDY,
            storage=_storage(optuna, journal),
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=_pruner(optuna, prune),
            direction="maximize",
            load_if_exists=True,
        )
        study.get_trials(deepcopy=False)  # reads the whole journal now
    except Exception as e:  # damaged or foreign: Optuna raises many kinds
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(
            f"{journal}: not a readable Optuna journal ({reason}); move it away to start the "
            "search over (its trials' run folders stay)"
        ) from None
    return study


def _space_words(spaces: list[Space], words: list[str]):
    by_key = {parse_assignment(w)[0]: w for w in words}
    return [(s, by_key[s.key]) for s in spaces]


class Search:
    """The driver: asks for trials, has them run, tells Optuna how they ended."""

    def __init__(self, optuna, study, preset, spaces, fixed, folder, options, prune) -> None:
        self.optuna, self.study, self.preset = optuna, study, preset
        self.spaces, self.fixed, self.folder = spaces, fixed, folder
        self.options, self.prune = options, prune
        self.group = folder.relative_to(options.out).as_posix()
        self.ended = 0
        quiet = options.quiet
        self.say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))

    def run(self, wanted: int) -> None:
        state = self.optuna.trial.TrialState
        try:
            # What an interruption left running is resumed first, from its checkpoint.
            left = [t for t in self.study.get_trials(deepcopy=False) if t.state == state.RUNNING]
            left = [t for t in left if not self._already_ended(t)]
            have = len(self.study.get_trials(deepcopy=False))
            self.say(
                f"{wanted} trials ({have} in the study, {len(left)} to resume) in {self.folder}"
            )
            while left:
                batch, left = left[: self.options.jobs], left[self.options.jobs :]
                self._run([self._point(t.number, t._trial_id, t.user_attrs) for t in batch])
            while (have := len(self.study.get_trials(deepcopy=False))) < wanted:
                batch = [self._ask() for _ in range(min(self.options.jobs, wanted - have))]
                self._run(batch)
        finally:
            write_results(
                self.optuna, self.study, self.folder, self.preset, self.fixed, self.spaces
            )

    def _ask(self) -> Point:
        trial = self.study.ask()
        overrides = [f"{s.key}={s.suggest(trial)}" for s in self.spaces]
        trial.set_user_attr("overrides", overrides)
        return self._point(trial.number, trial._trial_id, {"overrides": overrides})

    def _point(self, number: int, trial_id: int, attrs: dict[str, Any]) -> Point:
        overrides = list(attrs["overrides"])
        values = dict(parse_assignment(o) for o in overrides)
        hooks = []
        if self.prune:
            journal = str((self.folder / JOURNAL).resolve())
            hooks = [partial(TrialPruning, journal=journal, trial_id=trial_id, prune=self.prune)]
        point = Point(self.preset, values, [*self.fixed, *overrides], 0, hooks=hooks, trial=number)
        point.run_dir = trial_dir(self.folder, number)
        return point

    def _already_ended(self, trial) -> bool:
        """A trial whose run ended but whose end was never told (the driver died then)."""
        summary = read_summary(trial_dir(self.folder, trial.number)) or {}
        if summary.get("status") in ("completed", "diverged", "pruned"):
            self._tell(trial.number, summary)
            return True
        return False

    def _run(self, batch: list[Point]) -> None:
        from tinyvision.group_progress import GroupProgress

        names = {f"trial {p.trial} ({p.label})": p.run_dir for p in batch}
        self.progress = GroupProgress(names, self.options.quiet)
        with self.progress:
            execute_points(batch, self.options, self.group, self._ended)

    def _ended(self, point: Point, summary: dict) -> None:
        self._tell(point.trial, summary)
        self.ended += 1
        final = (summary.get("final") or {}).get("test_acc")
        test = "n/a" if final is None else f"{final:.2f}%"
        best = self._best_value()
        self.progress.ended(
            f"trial {point.trial} ({point.label})",
            f"  trial {point.trial} [{self.ended}] {point.label}: {summary.get('status')} "
            f"after {summary.get('epochs_done')} epochs, test {test} "
            f"(best so far {'n/a' if best is None else f'{best:.2f}%'})",
            str(summary.get("status")),
        )

    def _best_value(self) -> float | None:
        """The best completed trial's value (a pruned trial's last value is not a result)."""
        complete = (self.optuna.trial.TrialState.COMPLETE,)
        values = [t.value for t in self.study.get_trials(deepcopy=False, states=complete)]
        return max((v for v in values if v is not None), default=None)

    def _tell(self, number: int, summary: dict) -> None:
        state = self.optuna.trial.TrialState
        status = summary.get("status")
        final = (summary.get("final") or {}).get("test_acc")
        if status == "pruned":
            self.study.tell(number, state=state.PRUNED, skip_if_finished=True)
        elif status in ("completed", "diverged") and _finite(final):
            self.study.tell(number, float(final), skip_if_finished=True)
        elif status in ("completed", "diverged", "failed"):
            self.study.tell(number, state=state.FAIL, skip_if_finished=True)
        # interrupted: left running, resumed when the search is started again


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


RESULT_COLUMNS = (
    "trial",
    "state",
    "value",
    "seed",
    "status",
    "epochs_done",
    "final_test_acc",
    "best_test_acc",
    "final_train_acc",
    "gap",
    "params",
    "seconds",
    "run",
)


def write_results(
    optuna, study, folder: Path, preset: str, fixed: list[str], spaces: list[Space]
) -> list[dict]:
    """search.csv (one row per trial), best.json, and the search's figures."""
    from tinyvision.runs.search_figures import plot_history, plot_parameters

    trials = study.get_trials(deepcopy=False)
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    rows = []
    for t in trials:
        run = trial_dir(folder, t.number)
        s = read_summary(run) or {"status": "not run"}
        final = s.get("final") if isinstance(s.get("final"), dict) else {}
        train, test = final.get("train_acc"), final.get("test_acc")
        rows.append(
            {
                **{k: t.params.get(k) for k in keys},
                "trial": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "seed": 0,
                "status": s.get("status"),
                "epochs_done": s.get("epochs_done"),
                "final_test_acc": test,
                "best_test_acc": s.get("best_test_acc"),
                "final_train_acc": train,
                "gap": round(train - test, 4) if _finite(train) and _finite(test) else None,
                "params": s.get("params"),
                "seconds": s.get("seconds"),
                "run": run.name if run.is_dir() else "",
            }
        )
    io.write_csv(folder / RESULTS, [*keys, *RESULT_COLUMNS], rows)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return rows
    best = max(done, key=lambda t: t.value)
    io.write_json(
        folder / BEST,
        {
            "preset": preset,
            "overrides": unsized([*fixed, *best.user_attrs.get("overrides", []), "train.seed=0"]),
            "trial": best.number,
            "final_test_acc": best.value,
            "run": trial_dir(folder, best.number).name,
        },
    )
    plot_history(rows, folder / "history.png", title=folder.name)
    # Importances compare parameters: with one, there is nothing to compare.
    importances = _importances(optuna, study) if len(done) >= 3 and len(keys) > 1 else {}
    log_keys = {s.key for s in spaces if s.kind == "log"}
    plot_parameters(rows, keys, log_keys, importances, folder / "parameters.png")
    _plot_best_curves(folder, sorted(done, key=lambda t: -t.value)[:BEST_CURVES])
    return rows


def _importances(optuna, study) -> dict[str, float]:
    """fANOVA importances of the parameters (what explains the accuracy's spread)."""
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):  # too few distinct trials
        return {}


def _plot_best_curves(folder: Path, best: list) -> None:
    from tinyvision.figures import plot_comparison

    curves = {}
    for t in best:
        point = Point("", {}, [], 0, run_dir=trial_dir(folder, t.number))
        rows = metrics_rows(point)
        if rows:
            curves[f"trial {t.number} ({t.value:.2f}%)"] = [rows]
    if curves:
        plot_comparison(curves, folder / "comparison.png", title=f"best trials of {folder.name}")


def read_recipe(path: Path) -> tuple[str, list[str]]:
    """A search's best.json (or any {"preset": ..., "overrides": [...]} file) to run."""
    from tinyvision.records_read import RecordError, read_json_object

    try:
        recipe = read_json_object(path)
    except RecordError as e:
        raise UserError(str(e)) from None
    preset, overrides = recipe.get("preset"), recipe.get("overrides", [])
    if not isinstance(preset, str) or not (
        isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)
    ):
        raise UserError(
            f'{path}: not a recipe (expected "preset": text and "overrides": a list of '
            "KEY=VALUE texts, as a search's best.json holds)"
        )
    return preset, overrides
