"""Hostile files and absurd sizes meet the command line: one line, exit 2, nothing run.

A crafted pickle's payload would create a marker file; each test first proves the
payload works on a plain unpickling (the reference), then that tinyvision never runs it.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tinyvision.cli import main
from tinyvision.config import DataConfig, ModelConfig
from tinyvision.data.datasets import load_dataset
from tinyvision.data.formats import write_idx
from tinyvision.errors import UserError
from tinyvision.models import _factory, create_model

from conftest import write_cifar_dataset, write_idx_dataset

SRC = Path(__file__).resolve().parents[1] / "src"  # this checkout's code, whatever the cwd


def _cli(*args: str, cwd: Path, env: dict | None = None):
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "tinyvision", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        timeout=300,
    )


def _main(capsys, *args: str) -> SimpleNamespace:
    """The command in this process (cwd: the test's folder): no interpreter start-up."""
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


def _one_line_error(result, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Runs go to ./runs: the test's own folder."""
    monkeypatch.chdir(tmp_path)


def _no_runs(cwd: Path) -> bool:
    return not (cwd / "runs").exists() or not any((cwd / "runs").glob("*-*"))


class _Payload:
    """Unpickling this calls `func(*args)`: the classic pickle attack."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path) -> list[_Payload]:
    return [
        _Payload(os.system, f"touch {marker}"),
        _Payload(open, str(marker), "w"),
        _Payload(eval, f"open({str(marker)!r}, 'w')"),
    ]


@pytest.mark.parametrize("attack", range(3))
def test_payloads_work_on_plain_pickle(tmp_path, attack):
    """The reference for the tests below: these bytes do run code on `pickle.loads`."""
    marker = tmp_path / "MARKER"
    pickle.loads(pickle.dumps({b"data": _payloads(marker)[attack]}, protocol=2))
    assert marker.exists()


# --- 1. CIFAR-10 batches -------------------------------------------------------------


@pytest.fixture
def evil_cifar(tmp_path, request) -> tuple[Path, Path]:
    """A CIFAR-10 folder under $TINYVISION_DATA whose data_batch_1 is a crafted pickle."""
    root = write_cifar_dataset(tmp_path / "data", per_batch=20)
    marker = tmp_path / "MARKER"
    batch = root / "cifar10" / "cifar-10-batches-py" / "data_batch_1"
    evil = {b"data": _payloads(marker)[request.param], b"labels": [0] * 20}
    batch.write_bytes(pickle.dumps(evil, protocol=2))
    return batch, marker


@pytest.mark.parametrize("evil_cifar", range(3), indirect=True)
def test_data_check_never_runs_a_crafted_cifar_batch(evil_cifar, tmp_path, monkeypatch, capsys):
    batch, marker = evil_cifar
    monkeypatch.setenv("TINYVISION_DATA", str(tmp_path / "data"))
    _one_line_error(_main(capsys, "data", "check", "cifar10"), f"{batch}: refused to unpickle")
    assert not marker.exists()


@pytest.mark.parametrize("evil_cifar", [0], indirect=True)
def test_run_never_runs_a_crafted_cifar_batch(evil_cifar, tmp_path):
    batch, marker = evil_cifar
    result = _cli(
        "run",
        "1cd-baseline",
        "train.epochs=1",
        "data.train_subset=50",
        cwd=tmp_path,
        env={"TINYVISION_DATA": str(tmp_path / "data")},
    )
    _one_line_error(result, f"{batch}: refused to unpickle posix.system")
    assert not marker.exists() and _no_runs(tmp_path)


def test_real_cifar_layout_still_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYVISION_DATA", str(write_cifar_dataset(tmp_path, per_batch=20)))
    data = load_dataset(DataConfig(name="cifar10"))
    assert data.train_x.shape == (100, 3, 32, 32) and data.test_x.shape == (20, 3, 32, 32)


# --- 2. IDX headers --------------------------------------------------------------------


def test_idx_header_that_overflows_is_one_line(tmp_path, monkeypatch, capsys):
    root = write_idx_dataset(tmp_path / "data", n_train=50, n_test=20)
    images = root / "mnist" / "train-images-idx3-ubyte.gz"
    images.write_bytes(bytes([0, 0, 8, 4]) + b"\xff\xff\xff\xff" * 4 + b"\0" * 64)
    monkeypatch.setenv("TINYVISION_DATA", str(root))
    result = _main(capsys, "run", "mlp-fashion", "data.name=mnist", "train.epochs=1")
    _one_line_error(result, f"{images}: truncated: header says (4294967295, 4294967295")
    assert _no_runs(tmp_path)


# --- 3. Splits that do not belong together, or hold nothing ---------------------------


def test_train_and_test_of_different_sizes_are_refused(tmp_path, monkeypatch, capsys):
    root = write_idx_dataset(tmp_path / "data", n_train=50, n_test=20)
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((20, 32, 32), np.uint8))
    monkeypatch.setenv("TINYVISION_DATA", str(root))
    with pytest.raises(UserError, match="train examples are 1x28x28 .* test examples are 1x32x32"):
        load_dataset(DataConfig(name="mnist"))
    result = _main(capsys, "run", "mlp-fashion", "data.name=mnist", "train.epochs=1")
    _one_line_error(result, "the two splits are not the same dataset")
    assert _no_runs(tmp_path)


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_an_empty_split_is_refused(tmp_path, monkeypatch, capsys, split):
    root = write_idx_dataset(tmp_path / "data", n_train=50, n_test=20)
    write_idx(root / "mnist" / f"{split}-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    write_idx(root / "mnist" / f"{split}-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    monkeypatch.setenv("TINYVISION_DATA", str(root))
    name = "train" if split == "train" else "test"
    with pytest.raises(UserError, match=f"mnist: the {name} split in .*mnist has no examples"):
        load_dataset(DataConfig(name="mnist", train_subset=10))
    result = _main(capsys, "run", "mlp-fashion", "data.name=mnist", "train.epochs=1")
    _one_line_error(result, f"the {name} split")
    assert _no_runs(tmp_path)


def test_an_empty_test_split_alone_is_refused(tmp_path, monkeypatch):
    root = write_idx_dataset(tmp_path / "data", n_train=50, n_test=0, splits=("test",))
    monkeypatch.setenv("TINYVISION_DATA", str(root))
    with pytest.raises(UserError, match="leaves no training examples of 0"):
        load_dataset(DataConfig(name="mnist", test_only=True, holdout=5))


# --- 4. Models: a probe that changes nothing, sizes that do not fit ------------------


def test_probe_draws_no_randomness_and_leaves_batchnorm_alone():
    cfg = ModelConfig(name="mlp", dropout=0.5, hidden=16)
    torch.manual_seed(0)
    _factory(cfg, (1, 28, 28), 10)
    reference = torch.get_rng_state()
    torch.manual_seed(0)
    model = create_model(cfg, (1, 28, 28), 10)
    assert torch.equal(torch.get_rng_state(), reference)  # the probe drew nothing
    assert model.training

    # The CNN sizes lazy layers (random init) on the probe: dropout must not add draws.
    states = {}
    for dropout in (0.0, 0.5):
        torch.manual_seed(0)
        cnn = create_model(
            ModelConfig(name="cnn", dropout=dropout, batchnorm=True), (3, 32, 32), 10
        )
        states[dropout] = torch.get_rng_state()
    assert torch.equal(states[0.0], states[0.5])
    norms = [m for m in cnn.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.training for m in cnn.modules())
    for m in norms:
        assert int(m.num_batches_tracked) == 0
        assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
        assert torch.equal(m.running_var, torch.ones_like(m.running_var))


def test_probe_restores_each_modules_own_mode(monkeypatch):
    from tinyvision import models

    built = {}

    def factory(cfg, shape, classes):
        built["model"] = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(784, classes)
        )
        built["model"][1].eval()  # a frozen part stays frozen
        return built["model"]

    monkeypatch.setattr(models, "_factory", factory)
    create_model(ModelConfig(name="mlp"), (1, 28, 28), 10)
    assert [m.training for m in built["model"].modules()] == [True, True, False, True]


@pytest.mark.parametrize("hidden", ["1000000000000", "100000000000000000000"])
def test_model_too_big_for_memory_is_one_line(idx_root, tmp_path, capsys, hidden):
    result = _main(
        capsys, "run", "mlp-fashion", "data.name=mnist", f"model.hidden={hidden}", "train.epochs=1"
    )
    _one_line_error(result, f"model.hidden={hidden}: the model does not fit in memory")
    assert _no_runs(tmp_path)


# --- 5. timm: pretrained weights without a network --------------------------------------


TIMM_TINY = [
    "data.name=mnist",
    "model.name=timm:test_vit",
    "model.timm_input=resize",
    "data.train_subset=20",
    "data.test_subset=10",
    "train.epochs=1",
]


def test_pretrained_offline_fails_fast_in_one_line(idx_root, tmp_path):
    start = time.monotonic()
    result = _cli("run", "1e-timm-pretrained", *TIMM_TINY, cwd=tmp_path)
    assert time.monotonic() - start < 20
    _one_line_error(
        result,
        "cannot load pretrained weights for test_vit",
        "TINYVISION_OFFLINE=1",
        "model.pretrained_file=PATH",
    )
    assert _no_runs(tmp_path)


def test_pretrained_unreachable_hub_fails_fast_in_one_line(monkeypatch):
    from tinyvision.models import timm_adapter

    monkeypatch.delenv("TINYVISION_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(timm_adapter, "_cached_weights", lambda source: None)
    start = time.monotonic()
    with pytest.raises(UserError, match="hub.invalid cannot be reached .*pretrained_file=PATH"):
        create_model(
            ModelConfig(name="timm:test_vit", pretrained=True, timm_input="resize"), (1, 28, 28), 10
        )
    assert time.monotonic() - start < 10


def test_reachable_gives_up_within_its_timeout(monkeypatch):
    """A server that answers is reachable; one that accepts and stays silent (what many
    sandboxes do) or a name that does not resolve is not, and the answer comes in time."""
    from tinyvision.models.timm_adapter import _reachable

    for var in ("http_proxy", "https_proxy", "all_proxy"):  # straight to the test servers
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)

    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    http = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        assert not _reachable(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.5)
        assert not _reachable("https://hub.invalid/", timeout=0.5)
        assert time.monotonic() - start < 2
        assert _reachable(f"http://127.0.0.1:{http.server_address[1]}/", timeout=2)
    finally:
        http.shutdown()
        silent.close()


def test_pretrained_weights_from_the_cache_need_no_network(tmp_path):
    """Weights an earlier download left in the Hugging Face cache are used offline."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    reference = timm.create_model("test_vit")
    snapshot = Path(os.environ["HF_HOME"]) / "hub" / "models--timm--test_vit.r160_in1k"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("0" * 40)
    (snapshot / "snapshots" / ("0" * 40)).mkdir(parents=True)
    save_file(reference.state_dict(), snapshot / "snapshots" / ("0" * 40) / "model.safetensors")
    code = (
        "import torch; from tinyvision.models import create_model; "
        "from tinyvision.config import ModelConfig; "
        "m = create_model(ModelConfig(name='timm:test_vit', pretrained=True, "
        "timm_input='resize'), (1, 28, 28), 10); "
        "torch.save(m.model.blocks[0].attn.qkv.weight, 'w.pt')"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=120)
    loaded = torch.load(tmp_path / "w.pt", weights_only=True)
    assert torch.equal(loaded, reference.blocks[0].attn.qkv.weight)


def test_timm_retries_without_img_size_once_only(monkeypatch):
    import timm

    calls = []

    def create(name, **kwargs):
        calls.append(sorted(kwargs))
        raise TypeError("some other bad argument")

    monkeypatch.setattr(timm, "create_model", create)
    with pytest.raises(TypeError, match="some other bad argument"):
        create_model(ModelConfig(name="timm:resnet18"), (1, 28, 28), 10)
    assert calls == [["img_size", "in_chans", "num_classes"], ["in_chans", "num_classes"]]
    calls.clear()
    with pytest.raises(TypeError):
        create_model(ModelConfig(name="timm:resnet18", timm_input="resize"), (1, 28, 28), 10)
    assert calls == [["num_classes"]]


def test_timm_convnet_still_built_without_img_size():
    model = create_model(ModelConfig(name="timm:test_resnet"), (1, 28, 28), 10)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# --- 6. Other deserialised files: pretrained_file, checkpoints ------------------------


def _evil_torch_file(path: Path, marker: Path) -> Path:
    torch.save({"model": _Payload(os.system, f"touch {marker}")}, path)
    return path


def test_evil_torch_file_works_on_plain_torch_load(tmp_path):
    """The reference: `torch.load(weights_only=False)` runs the payload."""
    marker = tmp_path / "MARKER"
    torch.load(_evil_torch_file(tmp_path / "evil.pth", marker), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_pretrained_file_never_runs_a_pickle(idx_root, tmp_path, capsys, legacy):
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pth"
    if legacy:  # a bare pickle, as torch's pre-1.6 format and plain pickle.dump write
        evil.write_bytes(pickle.dumps({"model": _Payload(os.system, f"touch {marker}")}))
    else:
        _evil_torch_file(evil, marker)
    result = _main(capsys, "run", "1e-timm-pretrained", *TIMM_TINY, f"model.pretrained_file={evil}")
    _one_line_error(result, f"model.pretrained_file={evil}: refused")
    assert not marker.exists() and _no_runs(tmp_path)


def test_pretrained_file_that_is_not_weights(idx_root, tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\0\0\0\0\0\0\0{not json at all")
    result = _main(capsys, "run", "1e-timm-pretrained", *TIMM_TINY, f"model.pretrained_file={junk}")
    _one_line_error(result, f"model.pretrained_file={junk}: not a weights file")


@pytest.fixture
def evil_checkpoint(idx_root, tmp_path, capsys) -> tuple[Path, Path]:
    """An interrupted run whose checkpoint.pt was replaced by a crafted pickle."""
    done = _main(capsys, "run", "mlp-fashion", "data.name=mnist", "train.epochs=1", "--quiet")
    assert done.returncode == 0, done.stderr
    run = Path(tmp_path / done.stdout.strip().splitlines()[-1].removeprefix("run: "))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    marker = tmp_path / "MARKER"
    _evil_torch_file(run / "checkpoint.pt", marker)
    return run, marker


def test_resume_never_runs_a_crafted_checkpoint(evil_checkpoint, capsys):
    run, marker = evil_checkpoint
    result = _main(capsys, "resume", str(run))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{run / 'checkpoint.pt'}: not a readable tinyvision checkpoint" in result.stderr
    assert not marker.exists()


def test_resume_crafted_checkpoint_is_one_line(evil_checkpoint, capsys):
    run, _ = evil_checkpoint
    _one_line_error(_main(capsys, "resume", str(run)), "checkpoint.pt")


def test_pretrained_file_weights_not_kept_in_the_model_config(tmp_path):
    import timm
    from safetensors.torch import save_file

    save_file(timm.create_model("test_vit").state_dict(), tmp_path / "w.safetensors")
    cfg = ModelConfig(
        name="timm:test_vit", pretrained_file=str(tmp_path / "w.safetensors"), timm_input="resize"
    )
    model = create_model(cfg, (1, 28, 28), 10).model
    assert "state_dict" not in model.pretrained_cfg and "state_dict" not in model.default_cfg
