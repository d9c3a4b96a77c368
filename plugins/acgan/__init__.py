"""acgan: the auxiliary-classifier GAN of Odena, Olah and Shlens (2017) on the DCGAN builder.

G is conditioned on the class; D has a second head that predicts the class of real and fake
images. Its GAN adds ``aux_weight`` x the class losses to both players' objectives (model.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import option
from ganzoo_plugins.dcgan import DCGANOptions, variant


@dataclass(frozen=True)
class ACGANOptions(DCGANOptions):
    aux_weight: float = option(1.0, min=0, help="weight of the class losses (the paper's L_C) in both objectives")


def _with_class_losses(gan: Any, options: ACGANOptions) -> Any:
    from .model import AuxiliaryClassifierGAN

    return AuxiliaryClassifierGAN(gan.generator, gan.discriminator, aux_weight=options.aux_weight,
                                  channels_last=gan.channels_last, cuda_graphs=gan.cuda_graphs)


register_models = variant(
    "acgan", aux_classifier=True, options=ACGANOptions, wrap=_with_class_losses,
    folder=Path(__file__).parent,
    description="auxiliary-classifier GAN: D also predicts the class (Odena et al. 2017)",
)
