"""wgan-gp: Wasserstein GAN with gradient penalty (Gulrajani et al., 2017).

Registers the model ``wgan-gp`` (a DCGAN-shaped critic without BatchNorm or dropout, since the
penalty is taken per sample) and the loss ``wgan-gp`` (the critic's Wasserstein estimate plus
lambda * (||grad D(x_hat)|| - 1)^2 on random interpolates, one norm per sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl
from ganzoo.config import option
from ganzoo_plugins.dcgan import DCGANOptions


@dataclass(frozen=True)
class WGANGPOptions(DCGANOptions):
    d_batchnorm: bool = option(False, help="must stay off: the gradient penalty is per sample")
    dropout: float = option(0.0, min=0, max=0.95, help="dropout rate in the critic (0 = off)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_batchnorm:
            raise ValueError("wgan-gp's critic cannot use BatchNorm: the gradient penalty is per sample")


@dataclass(frozen=True)
class GradientPenaltyOptions:
    penalty_weight: float = option(10.0, min=0, help="lambda of the gradient penalty")


def build(options: WGANGPOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from ganzoo_plugins.dcgan.model import build_dcgan

    return build_dcgan(options, image_shape=image_shape, num_classes=num_classes, name="wgan-gp")


def build_loss(options: GradientPenaltyOptions) -> Any:
    from .loss import WassersteinGP

    return WassersteinGP(options.penalty_weight)


@hookimpl
def register_models(register: Any) -> None:
    register("wgan-gp", build, options=WGANGPOptions,
             description="DCGAN-shaped critic without BatchNorm for the Wasserstein loss (Gulrajani et al. 2017)")


@hookimpl
def register_losses(register: Any) -> None:
    register("wgan-gp", build_loss, options=GradientPenaltyOptions,
             description="Wasserstein critic loss + per-sample gradient penalty on interpolates")
