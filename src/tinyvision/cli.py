"""The `tinyvision` command line. Thin: parse, call the library, print.

torch is imported only by the commands that train, so `--help` and `list` are instant.
Exit codes: 0 success, 2 bad input (one line on stderr), 3 a run diverged, 130
interrupted (Ctrl-C or SIGTERM), 1 a bug.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from pathlib import Path

from tinyvision import __version__
from tinyvision.errors import UserError

EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, like every other bad input."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _common(p: argparse.ArgumentParser, out: bool = True) -> None:
    if out:
        p.add_argument("--out", default="runs", help="records root (default ./runs)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--quiet", action="store_true", help="print only the result lines")
    p.add_argument("--data-dir", help=f"dataset folder (default ${'TINYVISION_DATA'})")


def _executor(p: argparse.ArgumentParser, seeds: bool = True) -> None:
    """How the runs of a sweep, study or search are spread: here, or on a Ray cluster."""
    if seeds:
        p.add_argument("--seeds", type=int, default=1, help="repeats with seeds 0..N-1 added")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (local processes)")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--cpus-per-run", type=int, help="ray: CPUs per run (default cores/jobs)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="ray: 0.25 = 4 runs a GPU")
    p.add_argument("--address", help="ray: the cluster to join (default $RAY_ADDRESS or local)")


def build_parser() -> Parser:
    parser = Parser(prog="tinyvision", description="The basics of deep learning for vision.")
    parser.add_argument("--version", action="version", version=f"tinyvision {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    sub.add_parser("list", help="the presets, one line each")
    sub.add_parser("keys", help="every config key with its default")

    p = sub.add_parser("run", help="train one preset; prints `run: <folder>` last")
    p.add_argument("preset", help="a preset's name, or a recipe file such as a search's best.json")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    _common(p)

    p = sub.add_parser("sweep", help="the cartesian grid of KEY=V1,V2 over a preset")
    p.add_argument("preset")
    p.add_argument("grid", nargs="+", metavar="KEY=V1,V2[,...]")
    _executor(p)
    _common(p)

    p = sub.add_parser("study", help="a named study: several runs, one table and figure")
    p.add_argument("name", help="1cd-ablation, 1cd-lr, ... (`tinyvision study list`)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="applied to every step")
    _executor(p)
    _common(p)

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

    p = sub.add_parser("summary", help="a model's layer table: shapes, weights, receptive fields")
    p.add_argument("model", help="cnn, lenet, mlp, vit, timm:<name>")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="model.* settings")
    p.add_argument("--input", default=None, help="CxHxW (default: 3x32x32 for cnn, else 1x28x28)")
    p.add_argument("--classes", type=int, default=10)

    p = sub.add_parser("fcconv", help="a trained course CNN with fc4/fc5 as convolutions")
    p.add_argument("run_folder", type=Path, help="a run of model.name=cnn")
    p.add_argument("--size", type=int, default=64, help="side of the larger test image")

    p = sub.add_parser("attention", help="a trained ViT's attention maps and embeddings")
    p.add_argument("run_folder", type=Path, help="a run of model.name=vit")
    p.add_argument("--images", type=int, default=4)

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
    p.add_argument("--data-dir", help=f"dataset folder (default ${'TINYVISION_DATA'})")

    p = sub.add_parser("report", help="one HTML report (and its Markdown twin) of runs and studies")
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="RUN_OR_SWEEP",
        help="run, sweep or study folders (default: everything under --out)",
    )
    p.add_argument("--out", default="runs", help="records root; the report is written there")

    p = sub.add_parser("tour", help="every practical end to end, then the report (make demo)")
    p.add_argument("--quick", action="store_true", help="about 3 minutes instead of 10")
    _common(p)

    p = sub.add_parser("resume", help="continue an interrupted run from its last epoch")
    p.add_argument("run_folder", type=Path)
    _common(p, out=False)

    runs = sub.add_parser("runs", help="the records").add_subparsers(
        dest="runs_command", required=True, parser_class=Parser
    )
    p = runs.add_parser("ls", help="every run under --out, from the index")
    p.add_argument("--out", default="runs")
    p = runs.add_parser("show", help="one run's summary and metrics")
    p.add_argument("run", type=Path)

    data = sub.add_parser("data", help="datasets").add_subparsers(
        dest="data_command", required=True, parser_class=Parser
    )
    p = data.add_parser("list", help="which datasets and splits are available where")
    p.add_argument("--data-dir")
    p = data.add_parser("check", help="read and validate every file of a dataset")
    p.add_argument("name", nargs="?")
    p.add_argument("--data-dir")
    p = data.add_parser("fetch", help="download a dataset into the cache")
    p.add_argument("name")
    p.add_argument("--data-dir")
    return parser


# Commands whose free KEY=VALUE words may come anywhere, options before or after them.
FREE_WORDS = {
    "run": "overrides",
    "sweep": "grid",
    "study": "overrides",
    "search": "space",
    "summary": "overrides",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    """argparse, but `run PRESET --quiet KEY=VALUE` works: words after options are kept."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    words = FREE_WORDS.get(args.command)
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
        return dispatch(args)
    except UserError as e:
        print(f"tinyvision: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"tinyvision: {interrupted_hint(argv)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def dispatch(args: argparse.Namespace) -> int:
    from tinyvision import commands

    if getattr(args, "data_dir", None):
        os.environ["TINYVISION_DATA"] = args.data_dir  # sweep workers inherit it
    handler = {
        "list": commands.list_presets,
        "keys": commands.list_keys,
        "run": commands.run,
        "sweep": commands.sweep,
        "study": commands.study,
        "search": commands.search,
        "summary": commands.summary,
        "fcconv": commands.fcconv,
        "attention": commands.attention,
        "predict": commands.predict,
        "report": commands.report,
        "tour": commands.tour,
        "resume": commands.resume,
        "runs": commands.runs,
        "data": commands.data,
    }[args.command]
    return handler(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
