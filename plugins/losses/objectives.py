"""Minimax and non-saturating losses on logits.

With ``D(x) = sigmoid(l)``: ``-log D(x) = softplus(-l)`` and ``-log(1 - D(x)) = softplus(l)``, which
stay finite where the log of a saturated sigmoid would not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo.interfaces import Loss


class _BinaryDiscriminatorLoss(Loss):
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
