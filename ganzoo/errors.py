"""Typed errors. The library raises them; only the CLI turns them into one-line messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# the exit statuses of the CLI (and of `ganzoo train` as `ganzoo bench` runs it): 130 is the shell's
# for a process stopped by Ctrl-C
EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def close_matches(name: str, known: Iterable[str], *, cutoff: float = 0.6, margin: float = 0.1) -> list[str]:
    """Names similar to ``name``: at most three, each nearly as close as the best one."""
    scored = sorted(((difflib.SequenceMatcher(None, name, k).ratio(), k) for k in known), reverse=True)
    if not scored or scored[0][0] < cutoff:
        return []
    best = scored[0][0]
    return [k for score, k in scored[:3] if score >= max(cutoff, best - margin)]


class GanzooError(Exception):
    """Base class for every error a user can cause and fix."""


class GanzooWarning(UserWarning):
    """Something went wrong that costs no work (a picture not written, a cache not kept); the CLI
    prints it as one ``warning:`` line."""


class UnknownNameError(GanzooError, KeyError):
    """A model, loss, dataset, optimizer or config key that does not exist."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        self.suggestions = close_matches(name, self.known)
        message = f"unknown {kind} {name!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        elif hint or self.known:
            message += "."
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
