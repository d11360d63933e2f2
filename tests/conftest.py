"""Shared fixtures: CPU only, no network, a private cache, tiny real-format data files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyvision.data import sources
from tinyvision.data.formats import write_cifar_batch, write_idx

# Under pytest-xdist (`make test` runs a worker per core) each worker's torch gets its
# share of the cores: two workers of two threads on two cores spin against each other.
# Set before torch is imported; the runs' subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, share)))

REAL_DATA = Path(os.environ.get("TINYVISION_DATA") or Path(__file__).parents[2] / "shared" / "data")


def interrupt_at_epoch(monkeypatch, at: int):
    """Ctrl-C as epoch `at` (1-based) starts; returns the real `epoch` to put back."""
    from tinyvision.train import loop

    real_epoch, calls = loop.epoch, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(loop, "epoch", flaky)
    return real_epoch


def run_cut_at_epoch(monkeypatch, cfg, out: Path, at: int) -> Path:
    """`cfg` run into `out` and stopped by Ctrl-C as epoch `at` starts: its run folder."""
    from tinyvision.experiment.runner import run

    real_epoch = interrupt_at_epoch(monkeypatch, at)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out, "cpu", quiet=True)
    # Only the epoch goes back: undo() would also drop the isolation fixture's private
    # cache, and with it the cached precision choice the earlier runs shared.
    monkeypatch.setattr("tinyvision.train.loop.epoch", real_epoch)
    (cut,) = (p for p in out.iterdir() if p.is_dir())
    return cut


def measured_epochs(monkeypatch, epoch_s: float, before_s: float) -> None:
    """Every epoch (train and test pass) is measured at `epoch_s` seconds in metrics.csv,
    the evaluation before training at `before_s`: what a time budget plans again from
    after the first epoch. The epochs run as usual."""
    from tinyvision.experiment import runner
    from tinyvision.train import loop

    real_epoch, real_initial = loop.epoch, runner.initial_row

    def epoch(*args, **kwargs):
        return {**real_epoch(*args, **kwargs), "epoch_seconds": epoch_s}

    def initial_row(*args, **kwargs):
        return {**real_initial(*args, **kwargs), "epoch_seconds": before_s}

    monkeypatch.setattr(loop, "epoch", epoch)
    monkeypatch.setattr(runner, "initial_row", initial_row)


def one_line_error(code: int, err: str, *fragments: str) -> str:
    """Bad input's answer: exit 2 and one line naming each fragment, never a traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m tinyvision ARGS` in a fresh process, on this checkout's source."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "tinyvision", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """One real run (1ab-circles-optim, one epoch), recorded once per test file."""
    from tinyvision.experiment.runner import run
    from tinyvision.presets import build_config

    out = tmp_path_factory.mktemp("recorded")
    run(build_config("1ab-circles-optim", ["train.epochs=1"]), out, "cpu", quiet=True)
    return out


def copy_records(recorded: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A fresh copy of `recorded` as tmp_path/runs, and its run folder."""
    root = tmp_path / "runs"
    shutil.copytree(recorded, root)
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return root, run_dir


def real_split(name: str, split: str) -> bool:
    prefix = "train" if split == "train" else "t10k"
    return (REAL_DATA / name / f"{prefix}-images-idx3-ubyte.gz").is_file()


needs_fashion = pytest.mark.skipif(
    not real_split("fashion-mnist", "train"),
    reason=f"real Fashion-MNIST not found under {REAL_DATA} (set TINYVISION_DATA)",
)
needs_mnist_test = pytest.mark.skipif(
    not real_split("mnist", "test"),
    reason=f"real MNIST test split not found under {REAL_DATA} (set TINYVISION_DATA)",
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """No downloads, a private cache, no OS-package datasets, real data only where asked for.

    The machine may have Debian's dataset-fashion-mnist installed (`make demo` installs it);
    tests must not find it, or the "missing data" paths would pass or fail by machine.
    """
    monkeypatch.setattr(sources, "SYSTEM_DIRS", ())
    monkeypatch.setenv("TINYVISION_OFFLINE", "1")
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    # Pretrained weights a user downloaded earlier must not turn "no network" tests green.
    monkeypatch.setenv("HF_HOME", str(cache / "huggingface"))
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch"))
    monkeypatch.delenv("TINYVISION_DATA", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "own_probe_cache: the test times the precision probe in a cache of its own"
    )
    config.addinivalue_line(
        "markers", "thread_probe: the test times train.threads=0's probe (not pinned)"
    )


@pytest.fixture(autouse=True)
def _threads_not_timed(request, monkeypatch):
    """train.threads=0 keeps all of torch's threads here, untimed: two runs of a test then
    train on the same count whatever the load (the probe is tested in test_threads.py)."""
    if request.node.get_closest_marker("thread_probe"):
        return
    from tinyvision.train import threads

    monkeypatch.setattr(threads, "time_counts", lambda *a, **k: {n: float(n) for n in a[5]})


@pytest.fixture(scope="session")
def _probe_timings(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("precision")


@pytest.fixture(autouse=True)
def _shared_probe_timings(request, monkeypatch, _probe_timings):
    """The precision probe's timings, shared by the session's runs.

    Each test has its own cache, so every run with `train.amp=auto` would time its model
    again: seconds a test on a CPU that only emulates bf16. What the probe picks does not
    change what these tests check; the probe and its cache are tested in test_precision.py,
    which keeps a cache of its own (`pytest.mark.own_probe_cache`).
    """
    if request.node.get_closest_marker("own_probe_cache"):
        return
    from tinyvision.train import precision

    own = precision.cache_path
    monkeypatch.setattr(precision, "cache_path", lambda key: _probe_timings / own(key).name)


@pytest.fixture
def real_data(monkeypatch) -> Path:
    monkeypatch.setenv("TINYVISION_DATA", str(REAL_DATA))
    return REAL_DATA


def whitening_after_steps(model, layer, optimizer, batch: int = 32, steps: int = 3):
    """Train `model` a few steps on smooth random images (neighbouring pixels strongly
    correlated) with random labels; returns the first batch and `layer`'s weight after
    the first step, when the whitening was fitted."""
    import torch
    import torch.nn.functional as F

    images = [F.avg_pool2d(torch.randn(batch, 1, 28, 28), 3, 1, 1) for _ in range(steps)]
    for i, x in enumerate(images):
        loss = F.cross_entropy(model(x), torch.randint(0, 10, (batch,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i == 0:
            fitted = layer.weight.clone()
    return images[0], fitted


def learnable_images(n: int, size: int = 28, channels: int = 1, seed: int = 0):
    """Images whose class is a bright square's position: a tiny CNN learns it in an epoch."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 40, (n, channels, size, size), dtype=np.uint8)
    cell = size // 4
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 4)
        images[i, :, r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = 220
    return images, labels


def write_idx_dataset(
    root: Path, name: str = "mnist", n_train: int = 600, n_test: int = 200, splits=("train", "test")
) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        if (split if split == "train" else "test") not in splits:
            continue
        images, labels = learnable_images(n, seed=seed)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images[:, 0])
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return root


def write_cifar_dataset(root: Path, per_batch: int = 100) -> Path:
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        images, labels = learnable_images(per_batch, size=32, channels=3, seed=i)
        write_cifar_batch(folder / f"data_batch_{i}", images, labels)
    images, labels = learnable_images(per_batch, size=32, channels=3, seed=9)
    write_cifar_batch(folder / "test_batch", images, labels)
    return root


@pytest.fixture
def idx_root(tmp_path, monkeypatch) -> Path:
    root = write_idx_dataset(tmp_path / "data")
    monkeypatch.setenv("TINYVISION_DATA", str(root))
    return root


@pytest.fixture(scope="session")
def ray_cluster():
    """One Ray cluster for the whole test session (starting one costs ~20 s): a head that
    runs no task and two worker nodes of one CPU each, all on this machine, so the Ray
    tests place runs on more than one node and one of them can lose a node. Under
    pytest-xdist the tests that use it share one worker (`xdist_group("ray")`)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[dev]')")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # someone else's instance: not ours to reshape or stop
        pytest.skip("a Ray instance is already running in this process")
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    yield ray, cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="session")
def ray_instance(ray_cluster):
    """The session's Ray, joined to `ray_cluster`."""
    return ray_cluster[0]
