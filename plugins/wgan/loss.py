"""The Wasserstein critic loss (Arjovsky, Chintala and Bottou, 2017), and its weight-clipped form
(their Algorithm 1). ``plugins/wgan_gp`` builds its gradient-penalty form on the same base."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.interfaces import Discriminator, Loss


class Wasserstein(Loss):
    """The critic maximises E[f(x)] - E[f(G(z))]; as losses to minimise: the critic
    E[f(G(z))] - E[f(x)] (Algorithm 1, line 5), G -E[f(G(z))] (line 10)."""

    cuda_graphs = True  # the clipped form clamps the critic's weights in place

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def check(self, gan: Any) -> str | None:
        if any(isinstance(m, nn.Sigmoid) for m in gan.discriminator.modules()):
            return "the critic ends in a sigmoid; a Wasserstein critic must output an unbounded score"
        return None


class WassersteinClipped(Wasserstein):
    def __init__(self, clip: float = 0.01) -> None:
        self.clip = clip

    @torch.no_grad()
    def after_discriminator_update(self, discriminator: Discriminator, real_logits: torch.Tensor,
                                   fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        for param in discriminator.parameters():  # line 7: w <- clip(w, -c, c)
            param.clamp_(-self.clip, self.clip)
        # the critic's estimate of the Wasserstein distance, which the paper plots
        return {"wasserstein": real_logits.mean() - fake_logits.mean()}
