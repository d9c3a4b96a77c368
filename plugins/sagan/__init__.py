"""sagan: the Self-Attention GAN of Zhang, Goodfellow, Metaxas and Odena (2019), sized for 28x28 /
32x32: a self-attention block at the middle resolution of G and of D, spectral normalisation in
both, the hinge loss and the two time-scale update rule. Registration only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, option, recipes_in


@dataclass(frozen=True)
class SAGANOptions:
    latent_dim: int = option(128, min=1, help="length of z (the paper: 128)")
    width: int = option(32, min=8, help="channels of D's first convolution; G's layers use 4x, 2x, 1x this")


def build(options: SAGANOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from .model import build_sagan

    return build_sagan(options, image_shape)


@hookimpl
def register_models(register: Any) -> None:
    register("sagan", build, options=SAGANOptions, recipes=recipes_in(Path(__file__).parent / "recipes"),
             description="self-attention at the middle resolution of G and D, spectral norm in both (Zhang et al. 2019)")
