"""Typed errors. The library raises them; only the CLI turns them into one-line messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanzooError(Exception):
    """Base class for every error a user can cause and fix."""


class UnknownNameError(GanzooError, KeyError):
    """A model, loss, dataset, optimizer or config key that does not exist."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        self.suggestions = difflib.get_close_matches(name, self.known, n=3, cutoff=0.6)
        message = f"unknown {kind} {name!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        if hint:
            message += f" {hint}"
        elif self.known:
            message += " Known: " + ", ".join(self.known) + "."
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return self.message


class ConfigError(GanzooError, ValueError):
    """A configuration value or file that cannot be used; the message names the key or file."""


class DatasetError(GanzooError):
    """Dataset files that are missing, unreadable or do not fit the model."""


class CheckpointError(GanzooError):
    """A checkpoint or run directory that cannot be read or does not match."""


class PluginError(GanzooError):
    """A plugin that broke the contract (duplicate name, wrong return type, ...)."""


class TrainingInterrupted(GanzooError):
    """Training stopped by a signal after saving a checkpoint."""


class TrainingDiverged(GanzooError):
    """A loss or weight became NaN or infinite."""
