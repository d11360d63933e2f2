"""The architecture, checked: no import runs up the layers, the engine names no practical.

Layers, bottom to top (a module may import its own layer and the ones below):
  errors, io, records_read, figures, config, presets  ->  data, models  ->  train  ->  runs
  (and group_progress)  ->  labs, report, studies  ->  tour (and tour_progress)  ->
  commands, cli, the package itself.
Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "tinyvision"
LAYERS = [
    {"errors", "io", "records_read", "figures", "config", "presets"},
    {"data", "models"},
    {"train"},
    {"runs", "group_progress"},
    {"labs", "report", "studies"},
    {"tour", "tour_progress"},
    {"commands", "cli", "api", "__init__", "__main__"},
]
ENGINE = ("data", "models", "train", "runs", "group_progress")
PRACTICAL_WORDS = ("1-ab", "1ab", "1-cd", "1cd", "1-e ", "1e-", "lab1", "svm", "circles", "fcconv")
# as patterns: `1e-` names a practical (1e-vit) but is also how 0.001 is written (1e-3)
PRACTICAL_PATTERNS = [re.escape(w) if w != "1e-" else r"1e-[a-z]" for w in PRACTICAL_WORDS]


def layer_of(name: str) -> int:
    """The layer of `tinyvision.<top>...` (or of a file's top-level package)."""
    top = name.split(".")[0]
    for level, members in enumerate(LAYERS):
        if top in members:
            return level
    raise AssertionError(f"tinyvision.{top} is in no layer: add it to LAYERS in {__file__}")


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found.append((".".join(parts), path))
    return found


def imports(path: Path) -> list[tuple[int, str]]:
    """Every `tinyvision.X` a file imports, anywhere in it (functions included)."""
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tinyvision":
                names += [(node.lineno, alias.name) for alias in node.names]
            elif node.module.startswith("tinyvision."):
                names.append((node.lineno, node.module.removeprefix("tinyvision.")))
        elif isinstance(node, ast.Import):
            names += [
                (node.lineno, a.name.removeprefix("tinyvision."))
                for a in node.names
                if a.name.startswith("tinyvision.")
            ]
    return [(line, name) for line, name in names if name != "__version__"]


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_no_import_runs_up_the_layers(module, path):
    mine = layer_of(module)
    for line, name in imports(path):
        assert layer_of(name) <= mine, (
            f"{path.relative_to(SRC)}:{line} imports tinyvision.{name}, a higher layer"
        )


def test_the_engine_names_no_practical():
    for module, path in modules():
        if module.split(".")[0] not in ("runs", "train"):
            continue
        code = path.read_text().lower()
        for word in PRACTICAL_PATTERNS:
            found = re.search(word, code)
            assert not found, f"{path.relative_to(SRC)} mentions the practical '{found[0]}'"


def test_the_checker_sees_a_violation(tmp_path):
    """The test above can fail: a lazy import of report/ from runs/ is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tinyvision.report.html import write_report\n")
    assert [layer_of(n) for _, n in imports(bad)] == [layer_of("report")]
    assert layer_of("report") > layer_of("runs.runner")


def test_presets_are_one_table():
    from tinyvision import presets

    assert not (SRC / "presets").exists()
    assert len(presets.PRESETS) == len(presets.all_presets())
    assert all(isinstance(p.overrides, dict) for p in presets.PRESETS)
