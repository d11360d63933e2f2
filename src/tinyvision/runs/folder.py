"""A run folder and everything written into it (DESIGN.md, "A run folder holds")."""

from __future__ import annotations

import json
import math
import platform
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tinyvision import __version__
from tinyvision.errors import UserError
from tinyvision.runs import files, index
from tinyvision.train.metrics import COLUMNS

CONFIG, METRICS, SUMMARY = "config.json", "metrics.csv", "summary.json"
WEIGHTS, CHECKPOINT, CURVES = "model.safetensors", "checkpoint.pt", "curves.png"


def new_run_dir(out: Path, preset: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return out / f"{preset or 'run'}-{stamp}-{secrets.token_hex(2)}"


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
            cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
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

    def create(self, config: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=False)
        files.write_json(self.path / CONFIG, config)

    def config(self) -> dict:
        try:
            return json.loads((self.path / CONFIG).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{self.path / CONFIG}: cannot read the run's config ({e})") from None

    def write_metrics(self) -> None:
        files.write_csv(self.path / METRICS, COLUMNS, self.history)

    def summary(self, status: str, seconds: float) -> dict[str, Any]:
        best = max(self.history, key=lambda r: r["test_acc"], default=None)
        return {
            "status": status,
            "epochs_done": len(self.history),
            "final": {k: _finite(v) for k, v in self.history[-1].items()} if self.history else None,
            "best_test_acc": best["test_acc"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "seconds": round(seconds, 3),
            "versions": library_versions(),
            **self.info,
        }

    def finish(self, status: str, seconds: float, config: dict) -> dict[str, Any]:
        """summary.json, curves.png and the index row, whatever the status."""
        summary = self.summary(status, seconds)
        files.write_json(self.path / SUMMARY, summary)
        if self.history:
            from tinyvision.report.curves import plot_curves

            plot_curves(self.history, self.path / CURVES, title=self.run_id)
        self.index(status, config, summary)
        return summary

    def index(self, status: str, config: dict, summary: dict | None = None) -> None:
        summary = summary or {}
        final = summary.get("final") or {}
        index.upsert(self.root, {
            "run_id": self.run_id, "path": str(self.path.resolve()),
            "preset": config.get("preset"), "status": status,
            "dataset": config["data"]["name"], "model": config["model"]["name"],
            "epochs": config["train"]["epochs"], "epochs_done": summary.get("epochs_done", 0),
            "best_test_acc": summary.get("best_test_acc"), "best_epoch": summary.get("best_epoch"),
            "final_test_acc": final.get("test_acc"), "final_train_acc": final.get("train_acc"),
            "params": self.info.get("params"), "seconds": summary.get("seconds"),
            "device": self.info.get("device"), "seed": config["train"]["seed"],
            "sweep": self.info.get("sweep"), "created": self.info.get("created"),
            "config": config,
        })  # fmt: skip


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / SUMMARY).read_text())
    except (OSError, json.JSONDecodeError):
        return None
