"""DCGAN (Radford et al., 2015) as the source documents describe it for 28x28 images.

Registration only: torch is imported when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl
from ganzoo.config import option


@dataclass(frozen=True)
class DCGANOptions:
    latent_dim: int = option(100, min=1, help="length of the noise vector z")
    width: int = option(64, min=1, help="channels of D's first conv; G's layers use 4x, 2x, 1x this")
    kernel_size: int = option(5, min=3, help="odd kernel size of every (transposed) convolution")
    g_batchnorm: bool = option(True, help="BatchNorm after each hidden layer of G")
    d_batchnorm: bool = option(False, help="BatchNorm after D's second convolution")
    dropout: float = option(0.3, min=0, max=0.95, help="dropout rate after each conv of D (0 = off)")
    leaky_slope: float = option(0.2, min=0, max=1, help="negative slope of every LeakyReLU")
    spectral_norm: bool = option(False, help="spectral normalisation on D's layers (Miyato et al. 2018)")
    conditional: bool = option(False, help="feed the class label to G and D (Mirza & Osindero 2014)")
    aux_classifier: bool = option(False, help="D also predicts the class; G is conditional (Odena et al. 2017)")

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")


def build(options: DCGANOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from .model import build_dcgan

    return build_dcgan(options, image_shape=image_shape, num_classes=num_classes)


@hookimpl
def register_models(register: Any) -> None:
    register(
        "dcgan", build, options=DCGANOptions,
        description="dense+reshape, transposed convs up (G); strided convs, one logit (D)",
    )
