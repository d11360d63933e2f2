"""A run folder and everything written into it (the contract: docs/run-folder.md).

While a run trains it holds an exclusive lock on its folder's `.lock` file, which
records who holds it (pid, host, start time). The lock goes away with the process,
however it dies (`kill -9`, power loss), so "status running and nobody holds the lock"
is a dead run: `runs ls` shows it as `dead` and `resume` continues it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tinyvision import __version__, io
from tinyvision.errors import UserError
from tinyvision.experiment import index
from tinyvision.records_read import RecordError, printable, read_json_object

CONFIG, METRICS, SUMMARY = "config.json", "metrics.csv", "summary.json"
WEIGHTS, CHECKPOINT, CURVES = "model.safetensors", "checkpoint.pt", "curves.png"
LAYERS, LOCK = "layers.txt", ".lock"
# The statuses a run can have, and what each means: tinyvision.experiment.status.
NORMALIZATION = "normalization.safetensors"
START = "start.json"  # written with the config: what a resume needs if nothing else was
START_KEYS = ("precision", "time_budget", "amp")
# Every file a run writes into its folder (`resume` checks them all before writing any).
RECORDS = (
    CONFIG,
    START,
    METRICS,
    SUMMARY,
    WEIGHTS,
    CHECKPOINT,
    CURVES,
    LAYERS,
    LOCK,
    NORMALIZATION,
)
# Columns of metrics.csv, in order. Accuracies in percent, like Prec@1. Here, not with the
# training loop: reading and checking records must not cost a torch import (several seconds).
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "train_acc5",
    "test_loss",
    "test_acc",
    "test_acc5",
    "lr",
    "epoch_seconds",
    "images_per_second",
)


def slug(text: str, fallback: str = "run") -> str:
    """A name that is safe as one path component: no separators, no `..`, no odd bytes."""
    cleaned = re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("._")[:80]
    return cleaned or fallback


def new_run_dir(out: Path, preset: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return out / f"{slug(preset)}-{stamp}-{secrets.token_hex(2)}"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "tinyvision": __version__}
    for name in ("torch", "torchvision", "timm", "numpy", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    commit = _git_commit()
    if commit:
        versions["tinyvision_commit"] = commit
    return versions


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass
class RunFolder:
    path: Path
    root: Path  # the records root holding index.sqlite (the --out folder)
    history: list[dict] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # params, device, provenance, ...

    @property
    def run_id(self) -> str:
        return self.path.relative_to(self.root).as_posix()

    def make(self) -> None:
        """Create the (new) folder, inside the records root."""
        root = self.root.resolve()
        if root not in self.path.resolve().parents:
            raise UserError(f"{self.path}: a run folder must be inside --out ({self.root})")
        try:
            self.path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise UserError(f"{self.path}: already exists; `tinyvision resume` it") from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock while training; refuse if another process holds it."""
        fd = open_lock(self.path / LOCK)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(self.path)
                raise UserError(
                    f"{self.path}: the run is still going ({holder}); wait for it, or stop it first"
                ) from None
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            with contextlib.suppress(OSError):  # a full disk must not stop a resume
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(holder).encode())
            yield
        finally:
            os.close(fd)  # releases the lock

    def write_config(self, config: dict) -> None:
        io.write_json(self.path / CONFIG, config)

    def write_start(self, info: dict) -> None:
        """start.json: how the run was set up (its precision, a time budget's sizing),
        kept before training so a run killed before its first checkpoint resumes as it
        began."""
        io.write_json(self.path / START, {k: info[k] for k in START_KEYS if info.get(k)})

    def start(self) -> dict | None:
        from tinyvision.records_read import RecordError, read_json_object

        try:
            return read_json_object(self.path / START)
        except RecordError:
            return None

    def write_layers(self, layers: str) -> None:
        io.write_text(self.path / LAYERS, layers + "\n")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def remove_temporary_files(self) -> None:
        """Temporary files a crash left in the middle of an atomic write."""
        for tmp in self.path.glob(".*.tmp"):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)

    def config(self) -> dict:
        return read_json_object(self.path / CONFIG)  # a damaged file: RecordError, one line

    def write_metrics(self) -> None:
        io.write_csv(self.path / METRICS, METRIC_COLUMNS, self.history)

    def summary(self, status: str, seconds: float) -> dict[str, Any]:
        from tinyvision.records_read import trained_rows

        trained = trained_rows(self.history)  # epoch 0 (before training) is not an epoch run
        best = max(
            (r for r in trained if math.isfinite(r["test_acc"])),
            key=lambda r: r["test_acc"],
            default=None,
        )
        computed = {
            "status": status,
            "epochs_done": len(trained),
            "final": {k: _finite(v) for k, v in trained[-1].items()} if trained else None,
            "best_test_acc": best["test_acc"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "seconds": round(seconds, 3),
            "versions": library_versions(),
        }
        return {**self.info, **computed}  # what was measured wins over anything added

    def finish(self, status: str, seconds: float, config: dict) -> dict[str, Any]:
        """summary.json, curves.png and the index row, whatever the status."""
        summary = self.summary(status, seconds)
        try:
            io.write_json(self.path / SUMMARY, summary)
            if self.history:
                from tinyvision.figures import plot_curves

                plot_curves(self.history, self.path / CURVES, title=self.run_id)
        finally:  # a full disk may refuse the files; the index (SQLite) still learns the status
            self.index(status, config, summary)
        return summary

    def index(self, status: str, config: dict, summary: dict | None = None) -> None:
        summary = summary or {}
        final = summary.get("final") or {}
        index.upsert(
            self.root,
            {
                "run_id": self.run_id,
                "path": str(self.path.resolve()),
                "preset": config.get("preset"),
                "status": status,
                "dataset": config["data"]["name"],
                "model": config["model"]["name"],
                "epochs": config["train"]["epochs"],
                "epochs_done": summary.get("epochs_done", 0),
                "best_test_acc": summary.get("best_test_acc"),
                "best_epoch": summary.get("best_epoch"),
                "final_test_acc": final.get("test_acc"),
                "final_train_acc": final.get("train_acc"),
                "params": self.info.get("params"),
                "seconds": summary.get("seconds"),
                "device": self.info.get("device"),
                "seed": config["train"]["seed"],
                "sweep": self.info.get("sweep"),
                "created": self.info.get("created"),
                "config": config,
            },
        )


def open_lock(path: Path) -> int:
    """A lock file's descriptor; a link or a special file there is one line, not followed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as e:
        if os.path.islink(path):
            raise UserError(
                f"{path}: a symbolic link where the lock file belongs (links are never "
                "followed); remove it and run again"
            ) from None
        raise UserError(f"{path}: cannot open the lock file ({e.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path}: not a plain file where the lock file belongs; remove it")
    return fd


def check_records(run_path: Path) -> None:
    """Every record the run folder holds is a plain file, or absent: a link (to anywhere)
    is refused, never followed, and so are folders, pipes and devices in a record's place."""
    for name in RECORDS:
        path = run_path / name
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        except OSError as e:
            raise UserError(f"{path}: cannot be examined ({e.strerror})") from None
        if stat.S_ISLNK(mode):
            raise UserError(
                f"{path}: a symbolic link; records must be plain files (links are never "
                "followed): put the file itself there, or remove the link"
            )
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a plain file"
            raise UserError(f"{path}: {kind} where a record belongs; remove it or restore the file")


def _read_holder(path: Path) -> str:
    try:
        holder = read_json_object(path / LOCK)
        return f"pid {int(holder['pid'])} on {printable(holder['host'])[:64]}"
    except (RecordError, ValueError, KeyError, TypeError):
        return "another process holds its lock"


def is_alive(path: Path) -> bool:
    """Whether a process holds the run's lock right now (a `running` run that is not: dead)."""
    try:
        fd = os.open(path / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_summary(path: Path) -> dict[str, Any] | None:
    """summary.json as a dict, or None when missing or unreadable (a link, a folder, ...:
    read through `records_read`, never followed)."""
    from tinyvision.records_read import RecordError, read_json_object

    try:
        return read_json_object(path / SUMMARY)
    except RecordError:
        return None


def check_resumable(run_path: Path) -> dict[str, Any]:
    """The run's summary when `resume` can continue it; else one line saying why not.
    Whether it is still going is for its lock to say, when resume takes it."""
    if not run_path.is_dir() or run_path.is_symlink():
        raise UserError(f"{run_path}: no such run folder")
    check_records(run_path)  # before anything is read, and long before anything is written
    summary = read_summary(run_path) or {}
    status = summary.get("status")
    if status == "completed":
        raise UserError(f"{run_path}: the run already completed; nothing to resume")
    if status == "diverged":
        raise UserError(
            f"{run_path}: the run diverged at epoch {summary.get('epochs_done')} (its loss is "
            "not finite) and would diverge again: start a new run with a lower optim.lr"
        )
    return summary
