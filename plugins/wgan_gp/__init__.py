"""wgan-gp: Wasserstein GAN with gradient penalty (Gulrajani et al., 2017).

Registers the model ``wgan-gp`` (a DCGAN-shaped critic without BatchNorm or dropout, since the
penalty is taken per sample) and the loss ``wgan-gp`` (the critic's Wasserstein estimate plus
lambda * (||grad D(x_hat)|| - 1)^2 on random interpolates, one norm per sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, option
from ganzoo_plugins.dcgan import dcgan_options, variant

# the critic has no BatchNorm: the penalty is taken per sample, and BatchNorm couples the samples
WGANGPOptions = dcgan_options("WGANGPOptions", without=("d_batchnorm",), dropout=0.0)


@dataclass(frozen=True)
class GradientPenaltyOptions:
    penalty_weight: float = option(10.0, min=0, help="lambda of the gradient penalty")


def build_loss(options: GradientPenaltyOptions) -> Any:
    from .loss import WassersteinGP

    return WassersteinGP(options.penalty_weight)


register_models = variant(
    "wgan-gp", d_batchnorm=False, options=WGANGPOptions, folder=Path(__file__).parent,
    description="DCGAN-shaped critic without BatchNorm for the Wasserstein loss (Gulrajani et al. 2017)",
)


@hookimpl
def register_losses(register: Any) -> None:
    register("wgan-gp", build_loss, options=GradientPenaltyOptions,
             description="Wasserstein critic loss + per-sample gradient penalty on interpolates")
