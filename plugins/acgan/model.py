"""The ACGAN objective (Odena et al. 2017, section 3): besides the source loss L_S, both players
maximise the log-likelihood of the correct class, L_C = E[log P(C = c | X_real)] + E[log P(C = c | X_fake)].

D maximises L_S + L_C and G maximises L_C - L_S; with losses to minimise, D adds the class
cross-entropy on real and fake images and G adds it on its fakes, each times ``aux_weight``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo.interfaces import GAN, Batch, Discriminator, DiscriminatorOutput, Generator


class AuxiliaryClassifierGAN(GAN):
    def __init__(self, generator: Generator, discriminator: Discriminator, *, aux_weight: float,
                 channels_last: bool = False, cuda_graphs: bool = False) -> None:
        super().__init__(generator, discriminator, channels_last=channels_last, cuda_graphs=cuda_graphs)
        self.aux_weight = aux_weight

    def discriminator_terms(self, real: DiscriminatorOutput, fake: DiscriminatorOutput,
                            batch: Batch) -> dict[str, torch.Tensor]:
        y = batch.y
        return {"class": self.aux_weight * (F.cross_entropy(real.extras["classes"], y)
                                            + F.cross_entropy(fake.extras["classes"], y))}

    def generator_terms(self, fake: DiscriminatorOutput, batch: Batch) -> dict[str, torch.Tensor]:
        return {"class": self.aux_weight * F.cross_entropy(fake.extras["classes"], batch.y)}
