"""acgan: the auxiliary-classifier GAN of Odena, Olah and Shlens (2017) on the DCGAN builder.

G is conditioned on the class; D has a second head that predicts the class of real and fake
images. The trainer adds the classification losses (weight ``train.aux_weight``) to both players.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl
from ganzoo.config import option
from ganzoo_plugins.dcgan import DCGANOptions


@dataclass(frozen=True)
class ACGANOptions(DCGANOptions):
    aux_classifier: bool = option(True, help="D also predicts the class; G is conditional (Odena et al. 2017)")


def build(options: ACGANOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from ganzoo_plugins.dcgan.model import build_dcgan

    return build_dcgan(options, image_shape=image_shape, num_classes=num_classes, name="acgan")


@hookimpl
def register_models(register: Any) -> None:
    register("acgan", build, options=ACGANOptions,
             description="auxiliary-classifier GAN: D also predicts the class (Odena et al. 2017)")
