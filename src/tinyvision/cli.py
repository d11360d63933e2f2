"""The `tinyvision` command line: it parses; `tinyvision.commands` calls the API and prints.

torch is imported only by the commands that train, so `--help` and `list` are instant.
Exit codes: 0 success, 2 bad input (one line on stderr), 3 a run diverged, 130
interrupted (Ctrl-C or SIGTERM), 1 a bug.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from tinyvision import __version__, commands
from tinyvision.errors import EXIT_BAD_INPUT, UserError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, like every other bad input."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset folder (default $TINYVISION_DATA)")


def _common(p: argparse.ArgumentParser, out: bool = True) -> None:
    if out:
        p.add_argument("--out", default="runs", help="records root (default ./runs)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--quiet", action="store_true", help="print only the result lines")
    _data_dir(p)


def _executor(p: argparse.ArgumentParser, seeds: bool = True) -> None:
    """How the runs of a sweep, study or search are spread: here, or on a Ray cluster."""
    if seeds:
        p.add_argument("--seeds", type=int, default=1, help="repeats with seeds 0..N-1 added")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (local processes)")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--cpus-per-run", type=int, help="ray: CPUs per run (default cores/jobs)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="ray: 0.25 = 4 runs a GPU")
    p.add_argument("--address", help="ray: the cluster to join (default $RAY_ADDRESS or local)")


def _add_list(sub) -> None:
    sub.add_parser("list", help="the presets, one line each").set_defaults(
        func=commands.list_presets
    )


def _add_keys(sub) -> None:
    sub.add_parser("keys", help="every config key with its default").set_defaults(
        func=commands.list_keys
    )


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="train one preset; prints `run: <folder>` last")
    p.add_argument("preset", help="a preset's name, or a recipe file such as a search's best.json")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    _common(p)
    p.set_defaults(func=commands.run, free_words="overrides")


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="the cartesian grid of KEY=V1,V2 over a preset")
    p.add_argument("preset")
    p.add_argument("grid", nargs="+", metavar="KEY=V1,V2[,...]")
    _executor(p)
    _common(p)
    p.set_defaults(func=commands.sweep, free_words="grid")


def _add_study(sub) -> None:
    p = sub.add_parser("study", help="a named study: several runs, one table and figure")
    p.add_argument("name", help="1cd-ablation, 1cd-lr, ... (`tinyvision study list`)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="applied to every step")
    _executor(p)
    _common(p)
    p.set_defaults(func=commands.study, free_words="overrides")


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="hyperparameter search (Optuna TPE, optional pruning)")
    p.add_argument("preset")
    p.add_argument(
        "space",
        nargs="+",
        metavar="KEY=SPACE",
        help="log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH, choice:A,B,C (KEY=VALUE: fixed)",
    )
    p.add_argument("--trials", type=int, default=20, help="trials in the search (default 20)")
    p.add_argument(
        "--prune",
        nargs="?",
        const="median",
        choices=["median", "halving"],
        help="stop trials that fall behind (median, the default, or successive halving)",
    )
    p.add_argument("--sampler-seed", type=int, default=0, help="the TPE sampler's seed")
    _executor(p, seeds=False)
    _common(p)
    p.set_defaults(func=commands.search, free_words="space")


def _add_summary(sub) -> None:
    p = sub.add_parser("summary", help="a model's layer table: shapes, weights, receptive fields")
    p.add_argument("model", help="cnn, lenet, mlp, vit, timm:<name>")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="model.* settings")
    p.add_argument("--input", default=None, help="CxHxW (default: 3x32x32 for cnn, else 1x28x28)")
    p.add_argument("--classes", type=int, default=10)
    p.set_defaults(func=commands.summary, free_words="overrides")


def _add_arithmetic(sub) -> None:
    p = sub.add_parser("arithmetic", help="bag-of-words + SVM parameters against the course CNN")
    p.add_argument("--words", type=int, default=1000, help="visual words (default 1000)")
    p.add_argument("--descriptor", type=int, default=128, help="descriptor size (SIFT: 128)")
    p.add_argument("--classes", type=int, default=10)
    p.set_defaults(func=commands.arithmetic)


def _add_fcconv(sub) -> None:
    p = sub.add_parser("fcconv", help="a trained course CNN with fc4/fc5 as convolutions")
    p.add_argument("run_folder", type=Path, help="a run of model.name=cnn")
    p.add_argument("--size", type=int, default=64, help="side of the larger test image")
    p.set_defaults(func=commands.fcconv)


def _add_attention(sub) -> None:
    p = sub.add_parser("attention", help="a trained ViT's attention maps and embeddings")
    p.add_argument("run_folder", type=Path, help="a run of model.name=vit")
    p.add_argument("--images", type=int, default=4)
    p.set_defaults(func=commands.attention)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify image files with a trained run")
    p.add_argument("run_folder", type=Path, help="a completed run on an image dataset")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="PNG or JPEG files")
    p.add_argument("--top", type=int, default=5, help="classes shown per image (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON instead of lines")
    p.add_argument(
        "--no-invert",
        action="store_true",
        help="keep a picture whose background is the inverse of the run's images as it is",
    )
    _data_dir(p)
    p.set_defaults(func=commands.predict)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="one HTML report (and its Markdown twin) of runs and studies")
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="RUN_OR_SWEEP",
        help="run, sweep or study folders (default: everything under --out)",
    )
    p.add_argument("--out", default="runs", help="records root; the report is written there")
    p.set_defaults(func=commands.report)


def _add_course(sub) -> None:
    p = sub.add_parser("course", help="the course's questions, and what answers each")
    p.add_argument("which", nargs="?", help="1ab, 1cd or 1e (a practical), or a question: 1cd.Q16")
    p.add_argument("--out", default="runs", help="records root, read for answers (default ./runs)")
    p.set_defaults(func=commands.course)


def _add_tour(sub) -> None:
    p = sub.add_parser("tour", help="every practical end to end, then the report (make demo)")
    p.add_argument("--quick", action="store_true", help="a smoke test: about a minute")
    p.add_argument(
        "--minutes",
        type=float,
        default=10.0,
        help="fit the full tour to this many minutes here, timed first (default 10; "
        "0: the fixed budgets, however long they take)",
    )
    _common(p)
    p.set_defaults(func=commands.tour)


def _add_exercises(sub) -> None:
    p = sub.add_parser("exercises", help="copy the exercise notebooks into a folder")
    p.add_argument("folder", nargs="?", default="exercises", type=Path, metavar="DIR")
    p.set_defaults(func=commands.exercises)


def _add_grade(sub) -> None:
    p = sub.add_parser("grade", help="run completed exercise notebooks, grade every check")
    p.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")
    p.add_argument("--out", default="grades.csv", type=Path, help="default ./grades.csv")
    p.add_argument(
        "--timeout", type=float, default=120, help="seconds a cell may run (default 120)"
    )
    p.add_argument("--jobs", type=int, default=0, help="notebooks at a time (default: cores, <=4)")
    p.set_defaults(func=commands.grade)


def _add_resume(sub) -> None:
    p = sub.add_parser("resume", help="continue an interrupted run from its last epoch")
    p.add_argument("run_folder", type=Path)
    _common(p, out=False)
    p.set_defaults(func=commands.resume)


def _add_runs(sub) -> None:
    p = sub.add_parser("runs", help="the records")
    p.set_defaults(func=commands.runs)
    runs = p.add_subparsers(dest="runs_command", required=True, parser_class=Parser)
    runs.add_parser("ls", help="every run under --out, from the index").add_argument(
        "--out", default="runs"
    )
    runs.add_parser("show", help="one run's summary and metrics").add_argument("run", type=Path)


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="datasets")
    p.set_defaults(func=commands.data)
    data = p.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    _data_dir(data.add_parser("list", help="which datasets and splits are available where"))
    p = data.add_parser("check", help="read and validate every file of a dataset")
    p.add_argument("name", nargs="?")
    _data_dir(p)
    p = data.add_parser("fetch", help="download a dataset into the cache")
    p.add_argument("name")
    _data_dir(p)


# The subcommands, in the order `--help` lists them. A new one: a function above, a line here.
SUBCOMMANDS = (
    _add_list,
    _add_keys,
    _add_run,
    _add_sweep,
    _add_study,
    _add_search,
    _add_summary,
    _add_arithmetic,
    _add_fcconv,
    _add_attention,
    _add_predict,
    _add_report,
    _add_tour,
    _add_course,
    _add_exercises,
    _add_grade,
    _add_resume,
    _add_runs,
    _add_data,
)


def build_parser() -> Parser:
    parser = Parser(prog="tinyvision", description="The basics of deep learning for vision.")
    parser.add_argument("--version", action="version", version=f"tinyvision {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """argparse, but `run PRESET --quiet KEY=VALUE` works: the free KEY=VALUE words of a
    command (its `free_words` argument) may come before or after its options."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    words = getattr(args, "free_words", None)
    stray = [w for w in extra if not (words and "=" in w and not w.startswith("-"))]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if words and extra:
        setattr(args, words, [*getattr(args, words), *extra])
    return args


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler, `kill`) ends a run like Ctrl-C: recorded and resumable."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def interrupted_hint(argv: list[str] | None) -> str:
    """How to go on after Ctrl-C: a group (sweep, study, search) is continued by its own
    command, which skips the completed runs and resumes the interrupted ones."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), "")
    if command in ("sweep", "study", "search"):
        again = shlex.join(["tinyvision", *words])
        return (
            f"interrupted; rerun `{again}` to continue the {command} (its completed runs "
            "are kept, its interrupted ones resumed)"
        )
    return "interrupted; `tinyvision resume RUN` continues a run"


def main(argv: list[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        args = parse(argv)
        return args.func(args) or 0
    except UserError as e:
        print(f"tinyvision: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"tinyvision: {interrupted_hint(argv)}", file=sys.stderr)
        return commands.EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
