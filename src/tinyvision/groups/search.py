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

import json
import math
import os
import re
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyvision import io
from tinyvision.config import parse_assignment, split_values
from tinyvision.errors import UserError, first_line
from tinyvision.experiment import index
from tinyvision.experiment.folder import CONFIG, read_summary
from tinyvision.experiment.hooks import Hook
from tinyvision.experiment.status import is_finished
from tinyvision.groups.points import Options, Point, unsized
from tinyvision.groups.sweep import SPEC, execute_points, folder_for, metrics_rows
from tinyvision.presets import build_config

if TYPE_CHECKING:
    from tinyvision.experiment.parts import Experiment

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
    machine), with the trial object `study.ask()` gave the driver, sent along with the
    point: it writes into the study's journal in the search folder.
    """

    name = "pruning"

    def __init__(self, exp: Experiment, trial) -> None:
        super().__init__(exp)
        self.trial = trial

    def verdict(self, exp: Experiment, row: dict) -> str | None:
        if math.isnan(row["test_acc"]):  # not evaluated (train.eval_every): nothing to judge
            return None
        self.trial.report(float(row["test_acc"]), int(row["epoch"]))
        if int(row["epoch"]) >= exp.cfg.train.epochs:  # all its epochs ran: it is complete
            return None
        return "pruned" if self.trial.should_prune() else None


def trial_dir(folder: Path, number: int) -> Path:
    """A trial's run folder: trial-000, trial-001, ... (trial-001-2, ... when that name is
    taken by a run of other values: see `Search._folder_for`)."""
    return folder / f"trial-{number:03d}"


RUN_NAME = re.compile(r"trial-\d{3,}(-\d+)?")


def expected_config(preset: str, fixed: list[str], overrides: list[str]) -> dict | None:
    """The config a trial of these overrides trains (None: they make no valid config)."""
    try:
        return Point(preset, {}, [*fixed, *overrides], 0).config().to_dict()
    except UserError:
        return None


def trained(run: Path, expected: dict | None) -> bool:
    """Whether the run folder trained exactly `expected`: its recorded config says so."""
    from tinyvision.records_read import RecordError, read_json_object

    if expected is None or run.is_symlink() or not run.is_dir():
        return False
    try:
        recorded = read_json_object(run / CONFIG)
    except RecordError:
        return False
    if expected.get("train", {}).get("time_budget"):  # the budget chose the epoch count
        recorded = {**recorded, "train": {**recorded.get("train", {}), "epochs": None}}
        expected = {**expected, "train": {**expected["train"], "epochs": None}}
    return recorded == expected


def trial_run(folder: Path, trial, preset: str, fixed: list[str]) -> Path | None:
    """The run folder that stands for `trial`: the one it recorded, if that folder trained
    exactly the trial's values. Every record that names a folder for a trial asks here."""
    attrs = trial.user_attrs
    name = attrs.get("run", trial_dir(folder, trial.number).name)
    overrides = attrs.get("overrides")
    if not (isinstance(name, str) and RUN_NAME.fullmatch(name)) or not isinstance(overrides, list):
        return None
    run = folder / name
    return run if trained(run, expected_config(preset, fixed, overrides)) else None


def check_sampler_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UserError(f"--sampler-seed {seed}: choose a whole number from 0 to {2**32 - 1}")
    return seed


def sampler_seed(seed: int, number: int) -> int:
    """The sampler's seed for trial `number`: a search started again continues the
    sequence (a fresh sampler seeded as the first time would propose the same values)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


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
    check_sampler_seed(seed)  # before anything is made
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
    index.check_plain(options.out)  # a planted index link: one line, before any folder
    if options.executor == "ray":  # the cluster answers, and can hold a run: else no folder
        from tinyvision.groups.executors.ray import check_cluster

        check_cluster(options)
    folder.mkdir(parents=True, exist_ok=True)
    io.write_json(folder / SPEC, spec)
    study = open_study(optuna, folder, seed, prune, _warn)
    Search(optuna, study, preset, spaces, fixed, folder, options, prune, seed).run(trials)
    return folder


def mend_journal(optuna, journal: Path) -> bool:
    """Drop a torn final record (a crash while a record was appended); True if one was.

    The journal is a log of records, one a line, each written whole with its newline:
    bytes after the last newline are a record cut short, and go. A damaged line before
    the end is not something a crash leaves: one line, and the journal is left alone."""
    if not os.path.lexists(journal):
        return False
    lock = optuna.storages.journal.JournalFileSymlinkLock(str(journal))
    lock.acquire()  # Optuna's own lock: no writer is appending while we look
    try:
        fd = os.open(journal, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "r+b") as f:
            data = f.read()
            lines = data.split(b"\n")
            for number, line in enumerate(lines[:-1], start=1):
                try:
                    json.loads(line)
                except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
                    raise UserError(
                        f"{journal}: record {number} of {len(lines) - 1} is damaged (not "
                        "a torn last record a crash leaves); move the journal away to start "
                        "the search over (its trials' run folders stay)"
                    ) from None
            if not lines[-1]:
                return False
            f.truncate(len(data) - len(lines[-1]))
            os.fsync(f.fileno())
            return True
    finally:
        lock.release()


def open_study(optuna, folder: Path, seed: int, prune: str | None, say=print):
    """The search's study, from its journal (created on the first run).

    The journal is a file in a folder the user hands us: a link is refused (it could
    point anywhere), a torn last record dropped, and a journal Optuna cannot read is one
    line, not a traceback."""
    journal = folder / JOURNAL
    if journal.is_symlink() or (journal.exists() and not journal.is_file()):
        raise UserError(
            f"{journal}: not a plain file (a link?); remove it to start the search over"
        )
    if mend_journal(optuna, journal):
        say(f"{journal}: dropped its torn last record (cut short by a crash); resuming")
    try:
        study = optuna.create_study(
            study_name=STUDY,
            storage=_storage(optuna, journal.resolve()),  # the same file from any worker
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=_pruner(optuna, prune),
            direction="maximize",
            load_if_exists=True,
        )
        study.get_trials(deepcopy=False)  # reads the whole journal now
    except Exception as e:  # damaged or foreign: Optuna raises many kinds
        reason = first_line(e)
        raise UserError(
            f"{journal}: not a readable Optuna journal ({reason}); move it away to start the "
            "search over (its trials' run folders stay)"
        ) from None
    return study


def _warn(text: str) -> None:
    print(f"tinyvision: {text}", file=sys.stderr, flush=True)


def _space_words(spaces: list[Space], words: list[str]):
    by_key = {parse_assignment(w)[0]: w for w in words}
    return [(s, by_key[s.key]) for s in spaces]


class Search:
    """The driver: asks for trials, has them run, tells Optuna how they ended.

    Only Optuna's public API: `study.ask()` gives a trial object, its pruning hook gets
    that object, and `study.tell()` ends it. A trial an interruption left running (its
    driver is gone, and its trial object with it) is ended as failed and its values
    enqueued: the trial that takes them continues the same run folder from its checkpoint.
    """

    def __init__(self, optuna, study, preset, spaces, fixed, folder, options, prune, seed=0):
        self.optuna, self.study, self.preset = optuna, study, preset
        self.spaces, self.fixed, self.folder = spaces, fixed, folder
        self.options, self.prune, self.seed = options, prune, seed
        self.group = folder.relative_to(options.out).as_posix()
        self.ended = 0
        self.live: dict[int, Any] = {}  # trial number -> the trial object study.ask() gave
        quiet = options.quiet
        self.say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))

    def run(self, wanted: int) -> None:
        state = self.optuna.trial.TrialState
        try:
            trials = self.study.get_trials(deepcopy=False)
            left = [t for t in trials if t.state == state.RUNNING and not self._already_ended(t)]
            self.say(
                f"{wanted} trials ({self._counted()} in the study, {len(left)} to resume) "
                f"in {self.folder}"
            )
            for t in left:  # what an interruption left running is continued first
                self._continue(t)
            while True:
                waiting = len(self.study.get_trials(deepcopy=False, states=(state.WAITING,)))
                size = min(self.options.jobs, max(wanted - self._counted(), waiting))
                if size <= 0:
                    break
                self._run([self._ask() for _ in range(size)])
        finally:
            write_results(
                self.optuna, self.study, self.folder, self.preset, self.fixed, self.spaces
            )

    def _counted(self) -> int:
        """The study's trials, a continuation counting as the trial it continues."""
        trials = self.study.get_trials(deepcopy=False)
        return sum("continues" not in t.user_attrs for t in trials)

    def _continue(self, trial) -> None:
        """End a trial left running by a driver that is gone; enqueue its values again."""
        attrs = {"overrides": trial.user_attrs.get("overrides"), "continues": trial.number}
        run = trial_run(self.folder, trial, self.preset, self.fixed)
        if run is not None:
            attrs["run"] = run.name  # the folder its checkpoint is in
        self.study.tell(trial.number, state=self.optuna.trial.TrialState.FAIL)
        self.study.enqueue_trial(trial.params, user_attrs=attrs, skip_if_exists=False)

    def _ask(self) -> Point:
        trial = self.study.ask()
        # TPE draws each value when it is suggested, below: seeded by the trial's number,
        # which the journal gives once, so neither a search started again nor a second
        # driver on the same study draws the values of a trial it already has.
        self.study.sampler = self.optuna.samplers.TPESampler(
            seed=sampler_seed(self.seed, trial.number)
        )
        overrides = [f"{s.key}={s.suggest(trial)}" for s in self.spaces]
        run = self._folder_for(trial, overrides)
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("run", run.name)
        self.live[trial.number] = trial
        values = dict(parse_assignment(o) for o in overrides)
        hooks = [partial(TrialPruning, trial=trial)] if self.prune else []
        point = Point(
            self.preset, values, [*self.fixed, *overrides], 0, hooks=hooks, trial=trial.number
        )
        point.run_dir = run
        return point

    def _folder_for(self, trial, overrides: list[str]) -> Path:
        """The trial's run folder: one that trained exactly its values (a continued run),
        or a name no folder has. Never a folder that trained other values: after a restart
        with the journal gone, trial-002 may hold another study's trial 2."""
        expected = expected_config(self.preset, self.fixed, overrides)
        base = trial_dir(self.folder, trial.number)
        named = trial.user_attrs.get("run")
        candidates = [base, *(base.with_name(f"{base.name}-{k}") for k in range(2, 100))]
        if isinstance(named, str) and RUN_NAME.fullmatch(named):
            candidates.insert(0, self.folder / named)
        for run in candidates:
            if trained(run, expected):
                return run
            if not os.path.lexists(run):
                return run
            if run.is_dir() and not run.is_symlink() and not os.path.lexists(run / CONFIG):
                return run  # a start that died before its config: nothing trained there
        raise UserError(f"{base}: every folder name for trial {trial.number} is taken")

    def _already_ended(self, trial) -> bool:
        """A trial whose run ended but whose end was never told (the driver died then)."""
        run = trial_run(self.folder, trial, self.preset, self.fixed)
        summary = (read_summary(run) if run else None) or {}
        if is_finished(summary):  # failed or interrupted: resumed
            self._tell(trial.number, summary)
            return True
        return False

    def _run(self, batch: list[Point]) -> None:
        from tinyvision.groups.progress import GroupProgress

        names = {f"trial {p.trial} ({p.label})": p.run_dir for p in batch}
        self.progress = GroupProgress(names, self.options.quiet)
        with self.progress:
            execute_points(batch, self.options, self.group, self._ended)

    def _ended(self, point: Point, summary: dict) -> None:
        self._tell(self.live.pop(point.trial, point.trial), summary)
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

    def _tell(self, trial, summary: dict) -> None:
        """`trial`: the trial object, or the number of one a gone driver asked for."""
        state = self.optuna.trial.TrialState
        status = summary.get("status")
        final = (summary.get("final") or {}).get("test_acc")
        if status == "pruned":
            self.study.tell(trial, state=state.PRUNED, skip_if_finished=True)
        elif status == "completed" and _finite(final):
            self.study.tell(trial, float(final), skip_if_finished=True)
        elif status in ("completed", "diverged", "failed"):  # a diverged run is no result
            self.study.tell(trial, state=state.FAIL, skip_if_finished=True)
        # interrupted: left running, continued when the search is started again


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
    from tinyvision.groups.search_figures import plot_history, plot_parameters

    trials = study.get_trials(deepcopy=False)
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    continued = {t.user_attrs.get("continues"): t.number for t in trials}
    runs = {t.number: trial_run(folder, t, preset, fixed) for t in trials}
    rows = []
    for t in trials:
        run = runs[t.number] if t.number not in continued else None
        s = (read_summary(run) if run else None) or {"status": "not run"}
        if t.number in continued:  # its run goes on as that trial's, in the same folder
            s = {"status": f"continued as trial {continued[t.number]}"}
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
                "run": run.name if run else "",
            }
        )
    io.write_csv(folder / RESULTS, [*keys, *RESULT_COLUMNS], rows)
    # A result stands only with the run folder that trained its values, completed.
    done = [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and runs[t.number] is not None
        and (read_summary(runs[t.number]) or {}).get("status") == "completed"
    ]
    if not done:  # an earlier best.json may name a folder that no longer stands for it
        if (folder / BEST).is_file() and not (folder / BEST).is_symlink():
            (folder / BEST).unlink()
        return rows
    best = max(done, key=lambda t: t.value)
    io.write_json(
        folder / BEST,
        {
            "preset": preset,
            "overrides": unsized([*fixed, *best.user_attrs.get("overrides", []), "train.seed=0"]),
            "trial": best.number,
            "final_test_acc": best.value,
            "run": runs[best.number].name,
        },
    )
    plot_history(rows, folder / "history.png", title=folder.name)
    # Importances compare parameters: with one, there is nothing to compare.
    importances = _importances(optuna, study) if len(done) >= 3 and len(keys) > 1 else {}
    log_keys = {s.key for s in spaces if s.kind == "log"}
    plot_parameters(rows, keys, log_keys, importances, folder / "parameters.png")
    _plot_best_curves(runs, sorted(done, key=lambda t: -t.value)[:BEST_CURVES], folder)
    return rows


def _importances(optuna, study) -> dict[str, float]:
    """fANOVA importances of the parameters (what explains the accuracy's spread)."""
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):  # too few distinct trials
        return {}


def _plot_best_curves(runs: dict, best: list, folder: Path) -> None:
    from tinyvision.figures import plot_comparison

    curves = {}
    for t in best:
        point = Point("", {}, [], 0, run_dir=runs[t.number])
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
