"""stylegan2: a StyleGAN2-style generator and its residual discriminator (Karras, Laine, Aittala,
Hellsten, Lehtinen and Aila, 2020), sized for 28x28 / 32x32 images: a mapping network, modulated
and demodulated convolutions, per-layer noise, style mixing, equalised learning rates, trained
with the logistic loss and lazy R1. Registration only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, option, recipes_in


@dataclass(frozen=True)
class StyleGAN2Options:
    latent_dim: int = option(128, min=1, help="length of z and of the style w")
    mapping_layers: int = option(4, min=1, help="fully connected layers of the mapping network (the paper: 8)")
    width: int = option(64, min=4, help="channels of the synthesis network at its lowest resolution")
    mixing: float = option(0.9, min=0, max=1, help="probability of style mixing in a training batch (the paper: 0.9)")


def build(options: StyleGAN2Options, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from .model import build_stylegan2

    return build_stylegan2(options, image_shape)


@hookimpl
def register_models(register: Any) -> None:
    register("stylegan2", build, options=StyleGAN2Options, recipes=recipes_in(Path(__file__).parent / "recipes"),
             description="mapping network, modulated/demodulated convs, noise, style mixing (Karras et al. 2020)")
