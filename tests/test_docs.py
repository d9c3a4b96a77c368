"""Docs that must stay in step with the code."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from ganzoo import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "ganzoo_spec"))
ARCHITECTURE = (DOCS / "architecture.md").read_text()
MODULES = {p.name for p in (ROOT / "ganzoo").glob("*.py")}
PLUGINS = {p.parent.name for p in (ROOT / "plugins").glob("*/__init__.py")}


def test_there_are_hooks():
    assert {"register_models", "register_losses", "register_datasets", "register_optimizers", "on_log"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_the_plugin_guide(hook):
    text = (DOCS / "plugins.md").read_text()
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### `{hook}({params})`" in text, f"docs/plugins.md needs a section for {hook}({params})"


def test_readme_commands_are_the_ci_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    test_command = readme[4]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_architecture_diagram_and_tables_name_exactly_what_exists():
    diagram = ARCHITECTURE.split("```")[1]
    assert set(re.findall(r"\b(\w+\.py)\b", diagram)) == MODULES - {"__main__.py"}
    assert set(re.findall(r"plugins/(\w+)", diagram)) == PLUGINS
    modules = ARCHITECTURE.split("## Modules")[1].split("\n## ")[0]
    assert set(re.findall(r"^\| `(\w+\.py)`", modules, flags=re.M)) == MODULES
    plugins = ARCHITECTURE.split("## Plugins")[1].split("\n## ")[0]
    assert set(re.findall(r"^\| `plugins/(\w+)`", plugins, flags=re.M)) == PLUGINS


def _imports(path: Path) -> set[str]:
    """The ganzoo modules a module imports, at any depth of its code, except for type checking."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and id(node) not in typing_only:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found


def test_every_import_points_down_a_floor():
    """The floors of docs/architecture.md hold, so there is no import circle."""
    table = ARCHITECTURE.split("## Floors")[1].split("\n## ")[0]
    floor = {m: int(n) for n, row in re.findall(r"^\| (\d+) \| (.*) \|$", table, flags=re.M)
             for m in re.findall(r"`(\w+)\.py`", row)}
    assert set(floor) == {m.removesuffix(".py") for m in MODULES} - {"__init__", "__main__"}
    for module in floor:
        for target in _imports(ROOT / "ganzoo" / f"{module}.py") - {module}:
            assert floor[target] < floor[module], f"{module}.py (floor {floor[module]}) imports {target}.py " \
                                                  f"(floor {floor[target]})"


def test_tests_named_in_the_docs_exist():
    named = set()
    for page in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        named |= set(re.findall(r"(test_\w+\.py)::(test_\w+)", page.read_text()))
    assert named
    for file, test in sorted(named):
        assert f"def {test}(" in (ROOT / "tests" / file).read_text(), f"{file}::{test}"
