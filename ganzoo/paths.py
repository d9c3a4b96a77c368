"""Where ganzoo keeps things it was not told where to keep: its cache and the dataset folder."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GANZOO_CACHE_DIR"
DATA_DIR_ENV = "GANZOO_DATA_DIR"


def cache_dir() -> Path:
    """``$GANZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganzoo`` (``~/.cache/ganzoo``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganzoo"


def default_data_root() -> Path:
    """``$GANZOO_DATA_DIR``, else ``datasets/`` in the cache folder (``~/.cache/ganzoo/datasets``)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return cache_dir() / "datasets"
