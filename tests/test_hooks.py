"""The run hooks' registry: the package's table, and other packages' entry points."""

from __future__ import annotations

import pytest

from tinyvision.builtin_hooks import HOOKS
from tinyvision.experiment import hooks
from tinyvision.experiment.parts import Hook


@pytest.fixture
def fresh_registry():
    hooks.registered.cache_clear()
    yield
    hooks.registered.cache_clear()


def _dist(root, name: str, entries: str) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[tinyvision.hooks]\n{entries}\n")


def test_the_table_names_hook_classes(fresh_registry):
    classes = [hooks.load(target) for target in HOOKS.values()]
    assert all(isinstance(c, type) and issubclass(c, Hook) for c in classes)
    assert len({c.name for c in classes}) == len(classes), "each hook its own name"
    assert set(classes) <= set(hooks.registered())


def test_other_packages_add_hooks_and_our_own_entry_points_are_ignored(
    tmp_path, monkeypatch, fresh_registry
):
    (tmp_path / "tv_plugin_example.py").write_text(
        "from tinyvision.experiment.parts import Hook\n\nclass Extra(Hook):\n    name = 'extra'\n"
    )
    _dist(tmp_path, "tv-plugin-example", "extra = tv_plugin_example:Extra")
    # an older install of this package, whose modules have since moved: not loaded
    _dist(tmp_path, "tinyvision", "confusion = tinyvision.runs.confusion:ConfusionMatrix")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = hooks.registered()
    assert [h.name for h in found if h.name == "extra"] == ["extra"]
    assert {hooks.load(t) for t in HOOKS.values()} <= set(found)
    assert len(found) == len(HOOKS) + 1
