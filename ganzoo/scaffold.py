"""``ganzoo new-plugin``: write a plugin package that installs and passes its own test unmodified."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from string import Template

from .version import __version__
from .errors import GanzooError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# template file -> path inside the new package, both with $placeholders
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "$module/__init__.py",
    "nets.py.tmpl": "$module/nets.py",
    "recipes_fashion_mnist.toml.tmpl": "$module/recipes/fashion_mnist.toml",
    "test_plugin.py.tmpl": "tests/test_$module.py",
}


def new_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write ``ganzoo-NAME/`` under ``directory`` and return its path."""
    if not _NAME.fullmatch(name):
        raise GanzooError(
            f"plugin name {name!r} must start with a letter and use only lower-case letters, digits and '_'"
        )
    from .registry import get_registry, list_losses, list_models

    if name in list_models():
        raise GanzooError(f"a model named {name!r} is already registered; pick another name")
    loaded = get_registry().plugins.infos
    if name in loaded:  # the entry point's name: two plugins of one name cannot both load
        raise GanzooError(f"a plugin named {name!r} is already installed (from {loaded[name].distribution or 'ganzoo'}); "
                          "pick another name")
    if f"{name}-smoothed" in list_losses():
        raise GanzooError(f"a loss named '{name}-smoothed' (which the new plugin registers) already exists; "
                          "pick another name")
    values = {
        "name": name,
        "module": f"ganzoo_{name}",
        "distribution": f"ganzoo-{name.replace('_', '-')}",
        "classname": "".join(part.capitalize() for part in name.split("_")),
        "ganzoo_version": __version__,
    }
    target = Path(directory) / values["distribution"]
    if target.exists():
        raise GanzooError(f"{target} already exists; choose another --dir or remove it")
    templates = resources.files("ganzoo").joinpath("templates", "plugin")
    try:
        for template, relative in FILES.items():
            path = target / Template(relative).substitute(values)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(templates.joinpath(template).read_text()).substitute(values))
    except OSError as exc:
        raise GanzooError(f"cannot write the plugin to {target}: {exc.strerror or exc}") from None
    return target
