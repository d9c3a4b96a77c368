"""Recipes: the tuned configs a model's plugin registers, per dataset, under a name.

``register(name, build, recipes={"fashion_mnist": CONFIG, "fashion_mnist:fast": CONFIG})``: a key
is ``DATASET`` (the ``default`` recipe) or ``DATASET:RECIPE``; a config is a dict of sections or
the path of a TOML file. :func:`recipes_in` builds that mapping from a folder of
``DATASET.toml`` / ``DATASET.RECIPE.toml`` files, which is how ganzoo's own plugins keep theirs.
Files are read when a recipe is used, not when it is registered.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from .tomlfile import load_toml

DEFAULT = "default"
Source = Union[Mapping[str, Any], str, "os.PathLike[str]"]


def recipes_in(folder: str | os.PathLike[str]) -> dict[str, Source]:
    """``{"fashion_mnist": path, "fashion_mnist:fast": path}`` for ``fashion_mnist.toml`` and
    ``fashion_mnist.fast.toml`` in ``folder`` (pass ``Path(__file__).parent / "recipes"``)."""
    folder = Path(folder)
    out: dict[str, Source] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml") and entry.is_file():
            dataset, _, recipe = entry.name.removesuffix(".toml").partition(".")
            out[f"{dataset}:{recipe}" if recipe else dataset] = entry
    return out


def normalise_recipes(recipes: Mapping[str, Source] | None) -> dict[str, dict[str, Source]]:
    """``{"DATASET[:RECIPE]": source}`` -> ``{dataset: {recipe: source}}``; ValueError if malformed."""
    out: dict[str, dict[str, Source]] = {}
    for key, source in (recipes or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"recipes= keys are dataset names (optionally 'DATASET:RECIPE'), got {key!r}")
        if not isinstance(source, (Mapping, str, os.PathLike)):
            raise ValueError(f"recipe {key!r} must be a dict of config sections or a TOML file path, "
                             f"got {type(source).__name__}")
        dataset, _, recipe = key.partition(":")
        out.setdefault(dataset, {})[recipe or DEFAULT] = source
    return out


def load_recipe(source: Source) -> dict[str, dict[str, Any]]:
    """A fresh two-level dict of the recipe's config (callers may change it)."""
    data = source if isinstance(source, Mapping) else load_toml(source)
    return {section: dict(values) if isinstance(values, Mapping) else values for section, values in data.items()}


def describe_source(source: Source) -> str:
    if isinstance(source, Mapping):
        return ""
    path = Path(source)
    parts = path.parts
    # show the path from the plugin folder on: plugins/dcgan/recipes/fashion_mnist.toml
    for anchor in ("ganzoo_plugins", "plugins"):
        if anchor in parts:
            return "/".join(("plugins", *parts[parts.index(anchor) + 1:]))
    return str(path)


def find_recipe(spec: Any, dataset: str, recipe: str = DEFAULT) -> tuple[dict[str, Any], str] | None:
    """The recipe ``recipe`` a model spec registered for ``dataset``: ``(config dict, where it came from)``."""
    source = spec.recipes.get(dataset, {}).get(recipe)
    if source is None:
        return None
    label = f"plugin recipe {spec.name}/{dataset}" + ("" if recipe == DEFAULT else f"/{recipe}")
    where = describe_source(source)
    return load_recipe(source), label + (f" ({where})" if where else "")


def recipe_names(spec: Any, dataset: str | None = None) -> list[str]:
    """``["fashion_mnist", "fashion_mnist:fast", ...]`` for one model (or one dataset of it)."""
    return [d if r == DEFAULT else f"{d}:{r}" for d, named in sorted(spec.recipes.items())
            if dataset in (None, d) for r in sorted(named, key=lambda n: (n != DEFAULT, n))]
