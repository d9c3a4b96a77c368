"""The classic adversarial objectives of Goodfellow et al. (2014)."""

from __future__ import annotations

from typing import Any

from ganzoo import hookimpl


def _minimax(options: Any) -> Any:
    from .objectives import MinimaxLoss

    return MinimaxLoss()


def _nonsaturating(options: Any) -> Any:
    from .objectives import NonSaturatingLoss

    return NonSaturatingLoss()


@hookimpl
def register_losses(register: Any) -> None:
    register("minimax", _minimax,
             description="the original saturating objective: G minimises log(1 - D(G(z)))")
    register("nonsaturating", _nonsaturating,
             description="binary cross-entropy; G maximises log D(G(z)) (the usual choice)")
