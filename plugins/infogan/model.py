"""InfoGAN's networks and objective, after the paper's MNIST architecture (Appendix C.1), for
any image whose sides are divisible by 4.

The latent is ``[z (noise_dim) | one-hot c1 (categories) | c2.. (continuous, U[-1, 1])]``.
L_I = E[log Q(c1 | x)] + E[log Q(c_cont | x)] is the variational lower bound of I(c; G(z, c))
(section 5): the categorical part a cross-entropy, the continuous part a Gaussian log-likelihood
with the mean and log-variance Q predicts. Q is D's body plus a small head; ganzoo trains it with
D's optimiser on fakes from which G is detached (``discriminator_terms``), and G through Q with D
frozen (``generator_terms``): both minimise -lambda L_I, as the paper's objective asks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.interfaces import GAN, Batch, Discriminator, DiscriminatorOutput, Generator
from ganzoo.layers import Flatten, memory_format_of, require_sides_divisible


class InfoGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        self.noise_dim, self.categories, self.continuous = options.noise_dim, options.categories, options.continuous
        super().__init__(self.noise_dim + self.categories + self.continuous, image_shape)
        channels, height, width = image_shape
        self.base = (height // 4, width // 4)
        self.fc = nn.Sequential(
            nn.Linear(self.latent_dim, options.hidden), nn.BatchNorm1d(options.hidden), nn.ReLU(inplace=True),
            nn.Linear(options.hidden, 128 * self.base[0] * self.base[1]),
            nn.BatchNorm1d(128 * self.base[0] * self.base[1]), nn.ReLU(inplace=True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(64, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.fc(z).reshape(z.shape[0], 128, *self.base)
        return self.up(x.contiguous(memory_format=memory_format_of(self.up)))

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
        noise = torch.randn(n, self.noise_dim, generator=generator)
        parts = [noise]
        if self.categories:
            category = torch.randint(0, self.categories, (n,), generator=generator)
            parts.append(F.one_hot(category, self.categories).float())
        if self.continuous:
            parts.append(torch.rand(n, self.continuous, generator=generator) * 2 - 1)
        return torch.cat(parts, 1).to(device if device is not None else self._device())

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(noise, category index or None, continuous codes or None) of latents."""
        k = self.noise_dim
        category = z[:, k:k + self.categories].argmax(1) if self.categories else None
        continuous = z[:, k + self.categories:] if self.continuous else None
        return z[:, :k], category, continuous

    def latent_codes(self) -> list[str]:
        return ([f"category (1 of {self.categories})"] if self.categories else []) + \
            [f"continuous {i + 1} (from -2 to 2)" for i in range(self.continuous)]

    def traversal(self, code: int, steps: int = 8, *, generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
        """One row per noise draw (categorical: a column per category), or one row per category
        (continuous: the code from -2 to 2 across the row, beyond the [-1, 1] it trained on)."""
        codes = self.latent_codes()
        if not 0 <= code < len(codes):
            raise ValueError(f"code {code} does not exist; this generator has {len(codes)}: {', '.join(codes)}")
        if self.categories and code == 0:
            rows, cols = steps, self.categories
            base = self.sample_latent(rows, generator=generator, device="cpu").repeat_interleave(cols, 0)
            base[:, self.noise_dim:self.noise_dim + cols] = torch.eye(cols).repeat(rows, 1)
            return base, cols
        index = self.noise_dim + self.categories + code - (1 if self.categories else 0)
        rows = self.categories or steps
        base = self.sample_latent(1, generator=generator, device="cpu").repeat(rows * steps, 1)
        if self.categories:
            base[:, self.noise_dim:self.noise_dim + self.categories] = \
                torch.eye(self.categories).repeat_interleave(steps, 0)
        else:
            base[:, :self.noise_dim] = torch.randn(rows, self.noise_dim, generator=generator).repeat_interleave(steps, 0)
        base[:, index] = torch.linspace(-2, 2, steps).repeat(rows)
        return base, steps


class InfoDiscriminator(Discriminator):
    """D: conv 64 - conv 128 - FC hidden, LeakyReLU 0.1 (the paper's); Q: FC 128 on the same body."""

    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(image_shape)
        channels, height, width = image_shape
        w = options.width
        self.body = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.1, inplace=True), Flatten(),
            nn.Linear(2 * w * (height // 4) * (width // 4), options.hidden), nn.BatchNorm1d(options.hidden),
            nn.LeakyReLU(0.1, inplace=True))
        self.head = nn.Linear(options.hidden, 1)
        self.categories, self.continuous = options.categories, options.continuous
        self.q = nn.Sequential(nn.Linear(options.hidden, 128), nn.BatchNorm1d(128), nn.LeakyReLU(0.1, inplace=True),
                               nn.Linear(128, self.categories + 2 * self.continuous))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiscriminatorOutput:
        h = self.body(x)
        q = self.q(h)
        extras = {}
        if self.categories:
            extras["category"] = q[:, :self.categories]
        if self.continuous:
            extras["mean"], extras["log_var"] = q[:, self.categories:].chunk(2, dim=1)
        return DiscriminatorOutput(self.head(h).squeeze(1), extras)


class InfoGAN(GAN):
    def __init__(self, generator: InfoGenerator, discriminator: InfoDiscriminator, *, info_weight: float,
                 continuous_weight: float) -> None:
        super().__init__(generator, discriminator, channels_last=True)
        self.info_weight, self.continuous_weight = info_weight, continuous_weight

    def information_loss(self, q: DiscriminatorOutput, z: torch.Tensor) -> torch.Tensor:
        """-lambda L_I: the cross-entropy of the category and the Gaussian negative log-likelihood
        of the continuous codes, under Q's guesses."""
        _, category, continuous = self.generator.split(z)  # type: ignore[attr-defined]
        loss = z.new_zeros(())
        if category is not None:
            loss = loss + self.info_weight * F.cross_entropy(q.extras["category"], category)
        if continuous is not None:
            log_var = q.extras["log_var"].clamp(-8.0, 8.0)
            nll = 0.5 * (log_var + (continuous - q.extras["mean"]) ** 2 / log_var.exp() + math.log(2 * math.pi))
            loss = loss + self.continuous_weight * nll.sum(1).mean()
        return loss

    def discriminator_terms(self, real: DiscriminatorOutput, fake: DiscriminatorOutput,
                            batch: Batch) -> dict[str, torch.Tensor]:
        return {"info": self.information_loss(fake, batch.z)}  # trains Q (and D's body); G is detached

    def generator_terms(self, fake: DiscriminatorOutput, batch: Batch) -> dict[str, torch.Tensor]:
        return {"info": self.information_loss(fake, batch.z)}  # trains G through the frozen Q


def build_infogan(options: Any, image_shape: tuple[int, int, int]) -> GAN:
    require_sides_divisible("infogan", image_shape)
    return InfoGAN(InfoGenerator(options, image_shape), InfoDiscriminator(options, image_shape),
                   info_weight=options.info_weight, continuous_weight=options.continuous_weight)
