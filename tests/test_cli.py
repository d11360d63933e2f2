"""The command line as a user meets it: exit codes, one-line errors, the last line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyvision.cli import main
from tinyvision.data.formats import write_idx

from conftest import write_idx_dataset


def _cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "tinyvision", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_does_not_import_torch():
    code = (
        "import sys; from tinyvision.cli import build_parser; build_parser(); "
        "from tinyvision.presets import all_presets; all_presets(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert _cli("--help").returncode == 0


def test_list_shows_presets():
    result = _cli("list")
    assert result.returncode == 0 and "cnn-fashion" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "nope"], "unknown preset 'nope'"),
        (["run", "mlp-fashion", "optim.lr=-1"], "optim.lr must be positive"),
        (["run", "mlp-fashion", "train.epochz=1"], "unknown config key"),
        (["run", "mlp-fashion", "--device", "tpu"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        (["sweep", "mlp-fashion", "optim.lr=0.1,,0.2"], "empty value"),
        (["resume", "/no/such/run"], "no such run folder"),
        (["runs", "show", "/no/such/run"], "not a run folder"),
        (["data", "check", "imagenet"], "unknown dataset"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, fragment, tmp_path):
    _one_line_error(_cli(*args, cwd=tmp_path), fragment)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*-*"))


def test_a_mistyped_command_is_answered_before_torch_loads(tmp_path):
    """Importing torch takes seconds; a typo's one line must not wait for it."""
    mistakes = [
        ["run", "nope"],
        ["run", "mlp-fashion", "train.epochz=1"],
        ["run", "mlp-fashion", "optim.lr=-1"],
        ["sweep", "mlp-fashion", "optim.lr=0.1,,0.2"],
        ["study", "nope"],
        ["resume", "/no/such/run"],
        ["runs", "show", "/no/such/run"],
        ["data", "check", "imagenet"],
    ]
    code = (
        "import sys; from tinyvision.cli import main\n"
        f"for args in {mistakes!r}:\n"
        "    assert main(args) == 2, args\n"
        "    assert 'torch' not in sys.modules, f'{args} imported torch'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("tinyvision: error:") == len(mistakes)


def test_model_that_does_not_fit_the_data(tmp_path):
    result = _cli("run", "cnn-fashion", "data.name=circles", cwd=tmp_path)
    _one_line_error(result, "model.name=cnn needs images")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "mismatch"])
def test_bad_data_files_are_one_line_and_leave_nothing(tmp_path, damage):
    root = write_idx_dataset(tmp_path / "data", n_train=50, n_test=20)
    images = root / "mnist" / "train-images-idx3-ubyte.gz"
    if damage == "truncate":
        images.write_bytes(images.read_bytes()[:-30])
    elif damage == "corrupt":
        images.write_bytes(b"\x1f\x8b" + os.urandom(500))
    else:
        write_idx(images, np.zeros((49, 28, 28), np.uint8))
    result = _cli("run", "mlp-fashion", "data.name=mnist", "--data-dir", str(root), cwd=tmp_path)
    _one_line_error(result, "train-images-idx3-ubyte.gz")
    assert not (tmp_path / "runs").exists()


def test_run_prints_run_folder_last(tmp_path):
    result = _cli(
        "run",
        "mlp-fashion",
        "data.name=digits",
        "train.epochs=1",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("run: ") and Path(last[5:]).is_dir()
    listing = _cli("runs", "ls", "--out", str(tmp_path / "r"))
    assert "mlp-fashion-" in listing.stdout and "completed" in listing.stdout
    shown = _cli("runs", "show", last[5:])
    assert shown.returncode == 0 and "test acc" in shown.stdout


def test_interrupted_run_exits_130(tmp_path, monkeypatch, capsys):
    from tinyvision.train import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "epoch", interrupted)
    code = main(["run", "mlp-fashion", "data.name=digits", "--out", str(tmp_path), "--quiet"])
    assert code == 130
    (summary,) = tmp_path.glob("*/summary.json")
    assert '"status": "interrupted"' in summary.read_text()


def test_data_commands(tmp_path):
    root = write_idx_dataset(tmp_path, n_train=40, n_test=20)
    listed = _cli("data", "list", "--data-dir", str(root))
    assert f"mnist          train  {root / 'mnist'}" in listed.stdout
    checked = _cli("data", "check", "mnist", "--data-dir", str(root))
    assert checked.returncode == 0 and "ok  40 images" in checked.stdout
    fetched = _cli("data", "fetch", "cifar10", env={"TINYVISION_OFFLINE": "1"})
    _one_line_error(fetched, "downloads are disabled")
