"""Adversarial objectives on discriminator logits: minimax, non-saturating, least squares, hinge."""

from __future__ import annotations

from typing import Any

from ganzoo import hookimpl


def _minimax(options: Any) -> Any:
    from .objectives import MinimaxLoss

    return MinimaxLoss()


def _nonsaturating(options: Any) -> Any:
    from .objectives import NonSaturatingLoss

    return NonSaturatingLoss()


def _least_squares(options: Any) -> Any:
    from .objectives import LeastSquaresLoss

    return LeastSquaresLoss()


def _hinge(options: Any) -> Any:
    from .objectives import HingeLoss

    return HingeLoss()


@hookimpl
def register_losses(register: Any) -> None:
    register("minimax", _minimax,
             description="the original saturating objective: G minimises log(1 - D(G(z)))")
    register("nonsaturating", _nonsaturating,
             description="binary cross-entropy; G maximises log D(G(z)) (the usual choice)")
    register("lsgan", _least_squares, description="least squares on D's output (Mao et al. 2017)")
    register("hinge", _hinge, description="hinge loss for D, -D(G(z)) for G (Lim & Ye 2017; Miyato et al. 2018)")
