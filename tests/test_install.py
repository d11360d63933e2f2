"""`make demo` installs what the main job needs and no developer extra; `make test` adds them."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")
ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# timm imports torchvision: the one package of the dev extra the main job needs too
NEEDED_BY_THE_MAIN_JOB = {"torchvision"}


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _dry_run(target: str, tmp_path: Path) -> list[str]:
    """The commands `make TARGET` would run on a clean clone (a venv that does not exist)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed here")
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def _pip_installs(commands: list[str]) -> list[str]:
    return [c for c in commands if re.search(r"-m pip install", c)]


def test_make_demo_installs_the_package_without_extras(tmp_path):
    installs = _pip_installs(_dry_run("demo", tmp_path))
    assert installs, "make demo installs the package"
    assert all("[" not in c for c in installs), installs  # no extra at all
    assert any(c.rstrip().endswith("install -q -e .") for c in installs), installs


def test_make_test_adds_the_developer_extras(tmp_path):
    installs = _pip_installs(_dry_run("test", tmp_path))
    assert any("'.[dev]'" in c for c in installs), installs


def test_a_cpu_only_torch_index_is_used_before_the_package(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed here")
    index = "https://download.pytorch.org/whl/cpu"
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "demo", f"VENV={tmp_path}/v", f"TORCH_INDEX={index}"],
        capture_output=True,
        text=True,
        check=True,
    )
    installs = _pip_installs(done.stdout.splitlines())
    assert "torch torchvision --index-url " + index in installs[0]
    assert installs[1].rstrip().endswith("install -q -e .")


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution that installing `requirements` (no extras) pulls in, from the
    metadata of what this environment has installed."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [Requirement(r) for r in requires]
    return seen


def test_the_main_job_pulls_in_no_developer_extra():
    """What `pip install -e .` installs (the package's dependencies and theirs, as this
    environment's packages declare them) holds none of the developer tools: pytest,
    ruff, playwright, Ray, Optuna, TensorBoard, the notebook runners."""
    dev = _names(PYPROJECT["project"]["optional-dependencies"]["dev"])
    main = _closure(PYPROJECT["project"]["dependencies"])
    assert "torch" in main and "timm" in main  # the closure was really walked
    assert dev & main <= NEEDED_BY_THE_MAIN_JOB, sorted(dev & main)
    assert {"pytest", "ruff", "playwright", "ray", "optuna", "tensorboard"} <= dev
