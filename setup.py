"""Lists the packages: ganzoo's own, and one ``ganzoo_plugins.<folder>`` per folder under plugins/,
so that adding a built-in plugin needs no edit here (everything else is in pyproject.toml)."""

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent


def packages(top: str, folder: Path) -> list[str]:
    return [".".join((top, *p.parent.relative_to(folder).parts)) for p in sorted(folder.rglob("__init__.py"))]


setup(packages=packages("ganzoo", HERE / "ganzoo") + packages("ganzoo_plugins", HERE / "plugins"))
