"""The Wasserstein loss with a per-sample gradient penalty (Gulrajani et al. 2017, Algorithm 1):
wgan's critic loss (``plugins/wgan``) plus the ``gp`` regularizer's penalty (``plugins/regularizers``)."""

from __future__ import annotations

from typing import Any

import torch

from ganzoo.interfaces import Discriminator
from ganzoo.layers import uses_batchnorm
from ganzoo_plugins.regularizers.terms import gradient_penalty
from ganzoo_plugins.wgan.loss import Wasserstein


class WassersteinGP(Wasserstein):
    def __init__(self, penalty_weight: float = 10.0) -> None:
        self.penalty_weight = penalty_weight

    def check(self, gan: Any) -> str | None:
        if uses_batchnorm(gan.discriminator):
            return "the critic uses BatchNorm, which couples samples and breaks the per-sample gradient penalty"
        return super().check(gan)

    def penalty(self, discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                y: torch.Tensor | None = None) -> torch.Tensor:
        # one epsilon and one gradient norm per sample (not one norm over the batch)
        return gradient_penalty(discriminator, real, fake, y, self.penalty_weight)
