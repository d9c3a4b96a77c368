"""The version of ganzoo, on a floor of its own so every module may read it."""

__version__ = "0.2.0"
