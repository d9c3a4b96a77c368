"""The Wasserstein loss with a per-sample gradient penalty."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.interfaces import Discriminator, Loss
from ganzoo_plugins.regularizers.terms import gradient_penalty


class WassersteinGP(Loss):
    def __init__(self, penalty_weight: float = 10.0) -> None:
        self.penalty_weight = penalty_weight

    def check(self, gan: Any) -> str | None:
        D = gan.discriminator
        if any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in D.modules()):
            return "the critic uses BatchNorm, which couples samples and breaks the per-sample gradient penalty"
        if any(isinstance(m, nn.Sigmoid) for m in D.modules()):
            return "the critic ends in a sigmoid; a Wasserstein critic must output an unbounded score"
        return None

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def penalty(self, discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                y: torch.Tensor | None = None) -> torch.Tensor:
        # the `gp` regularizer's penalty: one epsilon and one gradient norm per sample
        return gradient_penalty(discriminator, real, fake, y, self.penalty_weight)
