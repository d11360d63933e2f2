"""The architecture, checked: no import runs up the layers, the engine names no practical.

Layers, bottom to top (a module may import its own layer and the ones below):
  errors, io, records_read, figures, config, presets, builtin_hooks  ->  data, models  ->  train
  ->  experiment  ->  groups, inference  ->  labs, report, studies, syllabus, check
  ->  tour, tour_budget, tour_progress  ->  commands, cli, the package itself.
Imports inside functions count too: a lazy import is still a dependency, and so is one made
only for type hints (`if TYPE_CHECKING:`). No two modules import each other, however far
round: a cycle means a type lives in the wrong file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "tinyvision"
LAYERS = [
    {"errors", "io", "records_read", "figures", "config", "presets", "builtin_hooks", "openmp"},
    {"data", "models"},
    {"train"},
    {"experiment"},
    {"groups", "inference"},
    {"labs", "report", "studies", "syllabus", "check"},
    {"tour", "tour_budget", "tour_progress"},
    {"commands", "cli", "api", "__init__", "__main__"},
]
ENGINE = ("data", "models", "train", "experiment", "groups", "inference")
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


def module_name(parts: tuple[str, ...]) -> str:
    """`experiment.hooks` for experiment/hooks.py, `experiment` for experiment/__init__.py."""
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def dependencies(path: Path) -> set[str]:
    """The package's modules a file imports, anywhere in it: `from tinyvision.a import b`
    depends on the module a.b when there is one, else on the package a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tinyvision" or node.module.startswith("tinyvision."):
                base = node.module.removeprefix("tinyvision").removeprefix(".")
                for alias in node.names:
                    inner = f"{base}.{alias.name}".strip(".")
                    found.add(inner if is_module(inner) else base)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("tinyvision.")
                for a in node.names
                if a.name.startswith("tinyvision.")
            }
    return {name for name in found if name}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for _, path in modules():
        name = module_name(path.relative_to(SRC).with_suffix("").parts)
        graph[name] = dependencies(path) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the path being explored, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_sees_a_cycle(tmp_path):
    """A cycle made only of type-hint imports is still found, and so is a long one."""
    hint = tmp_path / "hint.py"
    hint.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from tinyvision.experiment.runner import run\n"
    )
    assert dependencies(hint) == {"experiment.runner"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert "experiment.prepare" in import_graph()["experiment.runner"]


def engine_imports(path: Path) -> set[str]:
    return {name for name in dependencies(path) if name.split(".")[0] in ENGINE}


def test_the_command_line_reaches_the_engine_only_through_the_api():
    """cli.py parses, commands.py prints what api.py returns: neither imports the engine,
    nor anything else the API does not stand in front of."""
    assert dependencies(SRC / "cli.py") <= {"commands", "errors"}
    assert dependencies(SRC / "commands.py") <= {"api", "errors", "records_read"}
    assert engine_imports(SRC / "commands.py") == set()


def test_the_api_check_sees_an_engine_import(tmp_path):
    sneaky = tmp_path / "commands.py"
    sneaky.write_text("def f():\n    from tinyvision.groups import sweep\n")
    assert engine_imports(sneaky) == {"groups.sweep"}


@pytest.mark.parametrize("module,path", modules(), ids=[m for m, _ in modules()])
def test_no_import_runs_up_the_layers(module, path):
    mine = layer_of(module)
    for line, name in imports(path):
        assert layer_of(name) <= mine, (
            f"{path.relative_to(SRC)}:{line} imports tinyvision.{name}, a higher layer"
        )


def test_the_engine_names_no_practical():
    for module, path in modules():
        if module.split(".")[0] not in ("experiment", "groups", "inference", "train"):
            continue
        code = path.read_text().lower()
        for word in PRACTICAL_PATTERNS:
            found = re.search(word, code)
            assert not found, f"{path.relative_to(SRC)} mentions the practical '{found[0]}'"


def test_the_checker_sees_a_violation(tmp_path):
    """The test above can fail: a lazy import of report/ from experiment/ is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tinyvision.report.html import write_report\n")
    assert [layer_of(n) for _, n in imports(bad)] == [layer_of("report")]
    assert layer_of("report") > layer_of("experiment.runner")


def test_presets_are_one_table():
    from tinyvision import presets

    assert not (SRC / "presets").exists()
    assert len(presets.PRESETS) == len(presets.all_presets())
    assert all(isinstance(p.overrides, dict) for p in presets.PRESETS)
