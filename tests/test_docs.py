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


def test_the_tutorial_runs_top_to_bottom(tmp_path, monkeypatch, capsys):
    """docs/tutorial.md, block by block in one namespace, on a tiny dataset instead of Fashion-MNIST."""
    from conftest import make_mnist_like

    data = make_mnist_like(tmp_path / "data", n=96)
    make_mnist_like(data, n=48, train=False)
    monkeypatch.setenv("GANZOO_DATA_DIR", str(data))
    monkeypatch.setenv("GANZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "tutorial.md").read_text(), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/tutorial.md", "exec"), namespace)
    assert namespace["run"].summary["status"] == "completed" and namespace["mine"].summary["epochs"] == 2
    assert "basis" in namespace["ganzoo"].list_models()
    assert {"fid", "classes_covered"} <= set(namespace["ours"])
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["basis-fashion_mnist", "dcgan-fashion_mnist"]


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [link for link in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in link and not link.startswith("#")]


@pytest.mark.parametrize("page", sorted([*DOCS.glob("*.md"), ROOT / "README.md", ROOT / "CHANGELOG.md",
                                         *ROOT.glob("plugins/*/README.md"), ROOT / "zoo_configs" / "README.md"]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_that_exist(page):
    for link in _links(page):
        target = (page.parent / link.split("#")[0]).resolve()
        assert target.exists(), f"{page.relative_to(ROOT)} links to {link}, which does not exist"


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    """The pages of docs/ as a MkDocs site, with the API reference generated from docstrings."""
    import os
    import subprocess
    import sys

    pytest.importorskip("mkdocs", reason="the docs site needs the [test] extra: pip install -e '.[test]'")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "ganzoo.api.train" in api and "Train a GAN as" in api  # rendered from the docstring
    assert (tmp_path / "site" / "gans" / "index.html").is_file()
