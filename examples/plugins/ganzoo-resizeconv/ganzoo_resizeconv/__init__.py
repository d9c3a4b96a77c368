"""A third-party ganzoo plugin: one model, one loss and a recipe.

- model ``resizeconv``: DCGAN whose generator upsamples by nearest-neighbour resizing followed by a
  convolution instead of transposed convolutions, which removes checkerboard artifacts
  (Odena, Dumoulin and Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016).
- loss ``smoothed``: the non-saturating loss with one-sided label smoothing (Salimans et al.,
  "Improved Techniques for Training GANs", 2016): D's target for real images is 1 - smoothing.

Only registration lives here; torch is imported when something is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl, option


@dataclass(frozen=True)
class ResizeConvOptions:
    latent_dim: int = option(100, min=1, help="length of the noise vector z")
    width: int = option(64, min=1, help="base channel count")
    dropout: float = option(0.3, min=0, max=0.95, help="dropout rate in D")


@dataclass(frozen=True)
class SmoothedOptions:
    smoothing: float = option(0.1, min=0, max=0.5, help="D's target for real images is 1 - smoothing")


def build_model(options: ResizeConvOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from .nets import build

    return build(options, image_shape)


def build_loss(options: SmoothedOptions) -> Any:
    from .nets import SmoothedLoss

    return SmoothedLoss(options.smoothing)


RECIPES = {
    "fashion_mnist": {
        "model": {"name": "resizeconv", "width": 64},
        "loss": {"name": "smoothed", "smoothing": 0.1},
        "train": {"epochs": 10, "batch_size": 128},
        "g_optimizer": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
        "d_optimizer": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    }
}


@hookimpl
def register_models(register: Any) -> None:
    register("resizeconv", build_model, options=ResizeConvOptions, recipes=RECIPES,
             description="DCGAN with resize-convolution upsampling (no checkerboard artifacts)")


@hookimpl
def register_losses(register: Any) -> None:
    register("smoothed", build_loss, options=SmoothedOptions,
             description="non-saturating loss with one-sided label smoothing")
