"""The regularizers' terms. Each names the equation it implements."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.interfaces import Batch, Discriminator, DiscriminatorOutput, Regularizer, logits_of
from ganzoo.layers import uses_batchnorm
from ganzoo_plugins.augmentations.ops import random_hflip, translate


def input_gradients(discriminator: Discriminator, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """d(sum of D's logits)/dx for a batch, kept in the graph so that the penalty can be trained."""
    x = x.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(logits_of(discriminator(x, y)).sum(), x, create_graph=True)
    return grads.flatten(1)


def gradient_penalty(discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                     y: torch.Tensor | None, weight: float, target: float = 1.0) -> torch.Tensor:
    """Gulrajani et al. (2017), Algorithm 1: lambda * (||grad D(x_hat)||_2 - 1)^2 with
    x_hat = eps x + (1 - eps) x_tilde, one eps and one norm per sample."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    norms = input_gradients(discriminator, x_hat, y).norm(2, dim=1)
    return weight * ((norms - target) ** 2).mean()


def _batchnorm_reason(discriminator: nn.Module) -> str | None:
    if uses_batchnorm(discriminator):
        return "D uses BatchNorm, which couples the samples of a batch; a per-sample gradient penalty needs a D without it"
    return None


class R1(Regularizer):
    """Mescheder, Geiger and Nowozin (2018), eq. (9): R1 = gamma/2 E_{p_D}[||grad D(x)||^2]."""

    cuda_graphs = True

    def __init__(self, options: Any) -> None:
        self.gamma, self.every = options.gamma, options.every

    def _images(self, batch: Batch) -> torch.Tensor:
        return batch.real

    def discriminator_term(self, discriminator: Discriminator, batch: Batch, real_out: DiscriminatorOutput,
                           fake_out: DiscriminatorOutput) -> torch.Tensor:
        grads = input_gradients(discriminator, self._images(batch).float(), batch.y)
        return self.gamma / 2 * grads.square().sum(1).mean()


class R2(R1):
    """Mescheder et al. (2018), eq. (10): the same penalty on the generator's samples."""

    def _images(self, batch: Batch) -> torch.Tensor:
        return batch.fake


class GradientPenalty(Regularizer):
    """The penalty of WGAN-GP as a regularizer of any model (Gulrajani et al. 2017, eq. (3))."""

    cuda_graphs = True

    def __init__(self, options: Any) -> None:
        self.weight, self.target, self.every = options.weight, options.target, options.every

    def discriminator_term(self, discriminator: Discriminator, batch: Batch, real_out: DiscriminatorOutput,
                           fake_out: DiscriminatorOutput) -> torch.Tensor:
        return gradient_penalty(discriminator, batch.real.float(), batch.fake.float(), batch.y, self.weight, self.target)

    def check(self, gan: Any) -> str | None:
        return _batchnorm_reason(gan.discriminator)


class Dragan(Regularizer):
    """Kodali et al. (2017), eq. (2), as their reference code draws it: the penalty
    lambda (||grad D(x_hat)|| - 1)^2 at x_hat = x + alpha * delta, delta = spread * std(x) * U[0, 1)
    per pixel and alpha ~ U[0, 1) per sample: in a neighbourhood of the data, not between data and fakes."""

    cuda_graphs = True

    def __init__(self, options: Any) -> None:
        self.weight, self.spread, self.every = options.weight, options.spread, options.every

    def discriminator_term(self, discriminator: Discriminator, batch: Batch, real_out: DiscriminatorOutput,
                           fake_out: DiscriminatorOutput) -> torch.Tensor:
        real = batch.real.detach().float()
        delta = self.spread * real.std() * torch.rand_like(real)
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
        norms = input_gradients(discriminator, real + alpha * delta, batch.y).norm(2, dim=1)
        return self.weight * ((norms - 1.0) ** 2).mean()

    def check(self, gan: Any) -> str | None:
        return _batchnorm_reason(gan.discriminator)


def flip_and_shift(images: torch.Tensor, shift: float) -> torch.Tensor:
    """bCR's semantics-preserving T: a random horizontal flip and a random translation of up to
    ``shift`` x the side, per sample (DiffAugment's translation, filling with 0)."""
    return translate(random_hflip(images), shift)


class BalancedConsistency(Regularizer):
    """Zhao et al. (2021), section 3.1: lambda_real ||D(x) - D(T(x))||^2 + lambda_fake ||D(G(z)) - D(T(G(z)))||^2."""

    cuda_graphs = True

    def __init__(self, options: Any) -> None:
        self.real_weight, self.fake_weight, self.shift = options.real_weight, options.fake_weight, options.shift

    def discriminator_term(self, discriminator: Discriminator, batch: Batch, real_out: DiscriminatorOutput,
                           fake_out: DiscriminatorOutput) -> torch.Tensor:
        term = self.real_weight * (logits_of(discriminator(flip_and_shift(batch.real.float(), self.shift), batch.y))
                                   - real_out.logits).square().mean()
        if self.fake_weight:
            fake = batch.fake.detach().float()
            term = term + self.fake_weight * (logits_of(discriminator(flip_and_shift(fake, self.shift), batch.y))
                                              - fake_out.logits).square().mean()
        return term


class LeCam(Regularizer):
    """Tseng et al. (2021), eq. (3): R_LC = E_x[||D(x) - alpha_F||^2] + E_z[||D(G(z)) - alpha_R||^2],
    with alpha_R, alpha_F exponential moving averages of D's outputs on real and on fake images."""

    def __init__(self, options: Any) -> None:
        self.weight, self.decay = options.weight, options.decay
        self.ema_real: torch.Tensor | None = None
        self.ema_fake: torch.Tensor | None = None

    def discriminator_term(self, discriminator: Discriminator, batch: Batch, real_out: DiscriminatorOutput,
                           fake_out: DiscriminatorOutput) -> torch.Tensor:
        real, fake = real_out.logits, fake_out.logits
        with torch.no_grad():
            if self.ema_real is None:
                self.ema_real, self.ema_fake = real.mean(), fake.mean()
            else:
                self.ema_real = self.decay * self.ema_real + (1 - self.decay) * real.mean()
                self.ema_fake = self.decay * self.ema_fake + (1 - self.decay) * fake.mean()
        return self.weight * ((real - self.ema_fake).square().mean() + (fake - self.ema_real).square().mean())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.ema_real is None else {"ema_real": self.ema_real, "ema_fake": self.ema_fake}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            self.ema_real, self.ema_fake = state["ema_real"], state["ema_fake"]
