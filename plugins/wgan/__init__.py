"""wgan: the Wasserstein GAN of Arjovsky, Chintala and Bottou (2017) with weight clipping.

Registers the model ``wgan`` (the DCGAN critic the paper trained, BatchNorm on, no dropout, no
sigmoid) and the loss ``wgan``: the critic maximises E[C(x)] - E[C(G(z))] and every one of its
weights is clipped to [-c, c] after each update (Algorithm 1, lines 5-7); G maximises E[C(G(z))].
The recipe is the paper's (RMSprop, five critic updates per G update, c = 0.01) at lr 2e-4
instead of 5e-5, so that G gets enough updates in a CPU budget (README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, option
from ganzoo_plugins.dcgan import dcgan_options, variant

WGANOptions = dcgan_options("WGANOptions", d_batchnorm=True, dropout=0.0)


@dataclass(frozen=True)
class ClippingOptions:
    clip: float = option(0.01, min=0, min_exclusive=True, help="c: the critic's weights stay in [-c, c]")


def build_loss(options: ClippingOptions) -> Any:
    from .loss import WassersteinClipped

    return WassersteinClipped(options.clip)


register_models = variant(
    "wgan", options=WGANOptions, folder=Path(__file__).parent,
    description="the DCGAN critic of WGAN, for the weight-clipped Wasserstein loss (Arjovsky et al. 2017)",
)


@hookimpl
def register_losses(register: Any) -> None:
    register("wgan", build_loss, options=ClippingOptions,
             description="Wasserstein critic loss, the critic's weights clipped to [-c, c] (Arjovsky et al. 2017)")
