"""Faults: signals, dead processes, a full disk, divergence, damaged records.

Each case asserts what the user sees (exit code, one line, no traceback) and what is
left on disk (statuses, folders, temporary files), and that the run can go on.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tinyvision import io
from tinyvision.cli import main
from tinyvision.config import Config
from tinyvision.errors import UserError
from tinyvision.experiment import index, runner
from tinyvision.experiment.folder import RunFolder, is_alive, read_summary
from tinyvision.presets import build_config

DIGITS = ["data.name=digits", "model.hidden=32"]


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tinyvision", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tinyvision", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _one_line(result, code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _wait_for_epochs(out: Path, count: int, timeout: float = 120) -> Path:
    """The run folder under `out` once its metrics.csv has `count` rows."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for metrics in out.glob("*/metrics.csv"):
            if len(metrics.read_text().splitlines()) > count:
                return metrics.parent
        time.sleep(0.05)
    raise AssertionError(f"no run under {out} reached {count} epochs")


def _run_tiny(out: Path, *extra: str) -> Path:
    result = _cli(
        "run", "mlp-fashion", *DIGITS, "train.epochs=2", *extra, "--out", str(out), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))


# --- signals and dead processes ---------------------------------------------------------


def test_sigterm_ends_like_ctrl_c_and_resume_finishes(tmp_path):
    process = _start("run", "mlp-fashion", *DIGITS, "train.epochs=60", "--out", str(tmp_path))
    run = _wait_for_epochs(tmp_path, 2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = read_summary(run)
    assert summary["status"] == "interrupted"
    done = summary["epochs_done"]
    assert not is_alive(run)
    resumed = _cli("resume", str(run), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    summary = read_summary(run)
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == done
    assert len((run / "metrics.csv").read_text().splitlines()) == 62  # header, epoch 0, 60 epochs


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_while_an_epoch_is_recorded_waits_for_its_checkpoint(
    tmp_path, monkeypatch, signum
):
    """The race CI once hit: the signal lands just after the checkpoint of epoch 2 was
    renamed into place. The records must then all say 2 epochs, not the summary 1 and
    the checkpoint 2 (resume would start from 2 while the summary promised 1)."""
    real = runner.save_torch

    def save_then_signal(state, path):
        real(state, path)
        if state["epoch"] == 2:
            signal.raise_signal(signum)

    monkeypatch.setattr(runner, "save_torch", save_then_signal)
    args = ["run", "mlp-fashion", *DIGITS, "train.epochs=4", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 130
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = read_summary(run)
    assert summary["status"] == "interrupted" and summary["epochs_done"] == 2
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert len((run / "metrics.csv").read_text().splitlines()) == 4  # header, epochs 0-2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    monkeypatch.undo()
    assert main(["resume", str(run), "--quiet"]) == 0
    summary = read_summary(run)
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == 2


@pytest.mark.parametrize("step", ["write_config", "write_layers", "save_normalization"])
def test_ctrl_c_before_the_run_is_recorded_leaves_no_folder(tmp_path, monkeypatch, step):
    """A sweep's worker once got its Ctrl-C while writing a new run's config: the folder
    stayed, with no summary.json, a run that `runs ls` never listed."""
    owner = runner if step == "save_normalization" else RunFolder

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(owner, step, interrupted)
    args = ["run", "mlp-fashion", *DIGITS, "train.epochs=1", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 130
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []
    assert index.rows(tmp_path) == []


def test_kill_9_leaves_a_dead_run_that_resume_continues(tmp_path):
    process = _start("run", "mlp-fashion", *DIGITS, "train.epochs=60", "--out", str(tmp_path))
    run = _wait_for_epochs(tmp_path, 2)
    assert is_alive(run)
    (run / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")  # a crash mid-write
    process.kill()
    process.wait(timeout=30)
    (row,) = index.rows(tmp_path)
    assert row["status"] == "running" and not is_alive(run)
    listing = _cli("runs", "ls", "--out", str(tmp_path))
    assert "dead" in listing.stdout, listing.stdout
    resumed = _cli("resume", str(run), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert read_summary(run)["status"] == "completed"
    assert not list(run.glob(".*.tmp"))
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(61))  # no row twice


def test_resume_refuses_a_run_that_is_still_going(tmp_path):
    run = _run_tiny(tmp_path, "train.epochs=3")
    summary = json.loads((run / "summary.json").read_text())
    summary["status"] = "interrupted"
    (run / "summary.json").write_text(json.dumps(summary))
    with RunFolder(run, tmp_path).lock():  # this process stands in for a live run
        assert is_alive(run)
        _one_line(_cli("resume", str(run)), 2, "still going", f"pid {os.getpid()}")


# --- a full disk --------------------------------------------------------------------------


def _disk_fills_after(monkeypatch, checkpoints: int) -> dict:
    """Every atomic write fails as a full disk does once `checkpoints` checkpoints are
    written, until the returned switch's "full" is set to False (space freed)."""
    real = io.atomic_write
    disk = {"checkpoints": 0, "full": True}

    def full(path, write):
        if disk["full"] and disk["checkpoints"] >= checkpoints:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, write)
        disk["checkpoints"] += Path(path).name == "checkpoint.pt"

    monkeypatch.setattr(io, "atomic_write", full)
    return disk


def test_full_disk_before_the_first_write_leaves_no_folder(tmp_path, monkeypatch, capsys):
    _disk_fills_after(monkeypatch, 0)
    code = main(["run", "mlp-fashion", *DIGITS, "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "no space left" in err and len(err.strip().splitlines()) == 1
    assert not [p for p in (tmp_path / "r").glob("*") if p.is_dir()]


def test_full_disk_mid_run_is_one_line_and_resumable(tmp_path, monkeypatch, capsys):
    disk = _disk_fills_after(monkeypatch, 2)  # full in the third epoch
    out = tmp_path / "r"
    code = main(["run", "mlp-fashion", *DIGITS, "train.epochs=5", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "no space left" in err and "tinyvision resume" in err
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    (row,) = index.rows(out)
    assert row["status"] == "interrupted"  # the index is SQLite: its write went through
    disk["full"] = False  # space was freed
    assert main(["resume", str(run), "--quiet"]) == 0
    summary = read_summary(run)
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == 2
    assert len((run / "metrics.csv").read_text().splitlines()) == 7  # header, epochs 0-5


# --- divergence -----------------------------------------------------------------------------


def test_diverged_run_exits_3_and_is_not_resumable(tmp_path):
    result = _cli(
        "run",
        "mlp-fashion",
        *DIGITS,
        "optim.lr=1e12",
        "data.normalize=none",
        "train.epochs=3",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert result.returncode == 3, result.stderr
    assert "diverged" in result.stderr and "Traceback" not in result.stderr
    run = Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))
    assert read_summary(run)["status"] == "diverged"
    assert "Infinity" not in (run / "summary.json").read_text()
    assert "NaN" not in (run / "summary.json").read_text()
    _one_line(_cli("resume", str(run)), 2, "diverged", "lower optim.lr")


# --- damaged records ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return _run_tiny(tmp_path_factory.mktemp("runs"))


def _interrupted_copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "records" / run.name
    shutil.copytree(run, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["status"] = "interrupted"
    (copy / "summary.json").write_text(json.dumps(summary))
    return copy


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda c: c["train"].__setitem__("epochs", "10"), "train.epochs: expected an integer"),
        (lambda c: c["optim"].__setitem__("lr", None), "optim.lr: a value is required"),
        (lambda c: c["train"].__setitem__("epochs", 12.5), "train.epochs: expected an integer"),
        (lambda c: c.__setitem__("model", ["mlp"]), "'model' must be an object"),
        (lambda c: c["model"].__setitem__("explicit_attention", True), "unknown config key"),
        (lambda c: c.__setitem__("extra", 1), "unknown key 'extra'"),
        (lambda c: c["train"].__setitem__("seed", 2**70), "train.seed must be in"),
        (lambda c: c["data"].__setitem__("mean", [1.0, "x"]), "data.mean: expected a list"),
    ],
    ids=["str-int", "null-lr", "float-int", "list-section", "old-key", "extra", "seed", "mean"],
)
def test_bad_config_json_is_one_line(finished_run, tmp_path, damage, fragment, capsys):
    run = _interrupted_copy(finished_run, tmp_path)
    config = json.loads((run / "config.json").read_text())
    damage(config)
    (run / "config.json").write_text(json.dumps(config))
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config.json" in err and fragment in err, err


def test_config_json_that_is_not_an_object(finished_run, tmp_path, capsys):
    run = _interrupted_copy(finished_run, tmp_path)
    (run / "config.json").write_text("[]")
    assert main(["resume", str(run)]) == 2
    assert "config.json: expected a JSON object" in capsys.readouterr().err


def test_infinity_is_refused_like_nan():
    with pytest.raises(UserError, match="finite"):
        build_config("mlp-fashion", ["optim.lr=inf"])
    with pytest.raises(UserError, match="finite"):
        build_config("mlp-fashion", ["optim.lr=nan"])
    with pytest.raises(UserError, match="finite"):
        Config.from_dict({"optim": {"lr": float("inf")}})


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        ("foreign", "does not match the run's config.json"),
        ("garbage", "not a readable tinyvision checkpoint"),
        ("shapes", "does not match the run's config.json"),
    ],
)
def test_bad_checkpoint_is_one_line_of_ours(finished_run, tmp_path, edit, fragment, capsys):
    run = _interrupted_copy(finished_run, tmp_path)
    checkpoint = run / "checkpoint.pt"
    if edit == "foreign":
        torch.save({"weights": torch.zeros(3)}, checkpoint)
    elif edit == "garbage":
        checkpoint.write_bytes(os.urandom(2000))
    else:  # config.json edited after the run: the saved weights no longer fit
        config = json.loads((run / "config.json").read_text())
        config["model"]["hidden"] = 7
        (run / "config.json").write_text(json.dumps(config))
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "checkpoint.pt" in err and fragment in err and "weights_only" not in err


# --- values and combinations refused before anything is written ---------------------------


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["data.mixup=0.2", "model.variant=manual"], "data.mixup mixes labels"),
        (["data.cutmix=1"], "data.cutmix mixes images"),
        (["train.seed=18446744073709551617"], "train.seed must be in"),
        (["train.label_smoothing=0.1", "model.variant=manual"], "computes its own loss"),
    ],
)
def test_combinations_that_cannot_train_leave_nothing(tmp_path, overrides, fragment, capsys):
    assert main(["run", "1ab-circles-optim", *overrides, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "r").exists()


def test_model_keys_the_model_does_not_read_are_refused(tmp_path, capsys):
    assert main(["run", "cnn-fashion", "model.embed_dim=64", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "model.embed_dim does nothing for model.name=cnn" in err and "model.batchnorm" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "a/b", "[/]"])
def test_preset_names_stay_under_out(tmp_path, name, capsys):
    out = tmp_path / "deep" / "r"
    args = ["run", "1ab-circles-optim", f"preset={name}", "train.epochs=1", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    run = Path(last.removeprefix("run: ")).resolve()
    assert run.parent == out.resolve()
    outside = [p for p in tmp_path.rglob("*") if p.is_dir() and out not in [p, *p.parents]]
    assert outside == [tmp_path / "deep"]


def test_options_and_overrides_in_any_order(tmp_path):
    result = _cli(
        "run", "mlp-fashion", "--quiet", *DIGITS, "--out", str(tmp_path), "train.epochs=1"
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(next(tmp_path.glob("*/config.json")).read_text())
    assert config["train"]["epochs"] == 1 and config["model"]["hidden"] == 32
    _one_line(_cli("run", "mlp-fashion", "--quiet", "stray"), 2, "unrecognized arguments")


def test_run_with_a_garbage_index_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "index.sqlite").write_bytes(os.urandom(3000))
    assert main(["run", "1ab-circles-optim", "train.epochs=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a usable run index" in err, err
    assert [p.name for p in out.iterdir()] == ["index.sqlite"]


def test_truncated_weights_are_one_line(tmp_path, capsys):
    from tinyvision.inference.trained import load_trained

    assert main(["run", "1ab-circles-optim", "train.epochs=1", "--out", str(tmp_path)]) == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("run: "))
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-40])
    with pytest.raises(UserError, match="model.safetensors: not a readable weights file"):
        load_trained(run, "mlp", "test")
