"""sngan: spectral normalisation in D with the hinge loss (Miyato et al., 2018), DCGAN-shaped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl
from ganzoo.config import option
from ganzoo_plugins.dcgan import DCGANOptions


@dataclass(frozen=True)
class SNGANOptions(DCGANOptions):
    d_batchnorm: bool = option(False, help="BatchNorm after D's second convolution")
    dropout: float = option(0.0, min=0, max=0.95, help="dropout rate after each conv of D (0 = off)")
    spectral_norm: bool = option(True, help="spectral normalisation on D's layers (Miyato et al. 2018)")


def build(options: SNGANOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from ganzoo_plugins.dcgan.model import build_dcgan

    return build_dcgan(options, image_shape=image_shape, num_classes=num_classes, name="sngan")




@hookimpl
def register_models(register: Any) -> None:
    register("sngan", build, options=SNGANOptions,
             description="spectrally normalised D, trained with the hinge loss (Miyato et al. 2018)")
