"""Adversarial objectives on discriminator logits: minimax, non-saturating, least squares, hinge."""

from __future__ import annotations

from typing import Any

from ganzoo import hookimpl, lazy


_OBJECTIVES = "ganzoo_plugins.losses.objectives"


@hookimpl
def register_losses(register: Any) -> None:
    register("minimax", lazy(f"{_OBJECTIVES}:MinimaxLoss", options=False),
             description="the original saturating objective: G minimises log(1 - D(G(z)))")
    register("nonsaturating", lazy(f"{_OBJECTIVES}:NonSaturatingLoss", options=False), default=True,
             description="binary cross-entropy; G maximises log D(G(z)) (the usual choice)")
    register("lsgan", lazy(f"{_OBJECTIVES}:LeastSquaresLoss", options=False),
             description="least squares on D's output (Mao et al. 2017)")
    register("hinge", lazy(f"{_OBJECTIVES}:HingeLoss", options=False),
             description="hinge loss for D, -D(G(z)) for G (Lim & Ye 2017; Miyato et al. 2018)")
