"""Minimax and non-saturating losses on logits.

With ``D(x) = sigmoid(l)``: ``-log D(x) = softplus(-l)`` and ``-log(1 - D(x)) = softplus(l)``, which
stay finite where the log of a saturated sigmoid would not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo.interfaces import Loss


class _BinaryDiscriminatorLoss(Loss):
    cuda_graphs = True

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # -[log D(x) + log(1 - D(G(z)))], each term averaged over its batch
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


class MinimaxLoss(_BinaryDiscriminatorLoss):
    """G minimises log(1 - D(G(z))): the value function itself; its gradient vanishes early on."""

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()


class NonSaturatingLoss(_BinaryDiscriminatorLoss):
    """G minimises -log D(G(z)) (binary cross-entropy against the 'real' label)."""

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


class LeastSquaresLoss(Loss):
    """LSGAN (Mao et al. 2017), the 0-1 coding: D pushes real to 1 and fake to 0, G pushes fake to 1."""

    cuda_graphs = True

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1.0) ** 2).mean() + 0.5 * (fake_logits ** 2).mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits - 1.0) ** 2).mean()


class HingeLoss(Loss):
    """The hinge loss of Lim & Ye (2017) and Miyato et al. (2018)."""

    cuda_graphs = True

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()
