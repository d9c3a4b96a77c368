"""Adversarial objectives on discriminator logits: minimax, non-saturating, least squares, hinge."""

from __future__ import annotations

from typing import Any

from ganzoo import hookimpl


def _build(class_name: str) -> Any:
    def build(options: Any) -> Any:
        from . import objectives

        return getattr(objectives, class_name)()

    return build


@hookimpl
def register_losses(register: Any) -> None:
    register("minimax", _build("MinimaxLoss"),
             description="the original saturating objective: G minimises log(1 - D(G(z)))")
    register("nonsaturating", _build("NonSaturatingLoss"), default=True,
             description="binary cross-entropy; G maximises log D(G(z)) (the usual choice)")
    register("lsgan", _build("LeastSquaresLoss"), description="least squares on D's output (Mao et al. 2017)")
    register("hinge", _build("HingeLoss"), description="hinge loss for D, -D(G(z)) for G (Lim & Ye 2017; Miyato et al. 2018)")
