"""Docs that must stay in step with the code."""

from pathlib import Path

import pytest

from ganzoo import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"
HOOKS = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "ganzoo_spec"))


def test_there_are_hooks():
    assert {"register_models", "register_losses", "register_datasets", "on_log"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_the_plugin_guide(hook):
    import inspect

    text = (DOCS / "plugins.md").read_text()
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### `{hook}({params})`" in text, f"docs/plugins.md needs a section for {hook}({params})"


def test_readme_commands_are_the_ci_commands():
    root = DOCS.parent
    readme = (root / "README.md").read_text().splitlines()
    test_command = readme[4]
    assert "pytest" in test_command
    assert test_command in (root / ".ci" / "run").read_text()
