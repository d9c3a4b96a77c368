"""The networks and the loss, written against ganzoo's interfaces."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import GAN, Discriminator, Generator, Loss


class ResizeConvGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options.latent_dim, image_shape)
        channels, height, width = image_shape
        w = options.width
        self.base = (height // 4, width // 4)
        self.project = nn.Sequential(nn.Linear(options.latent_dim, 4 * w * self.base[0] * self.base[1], bias=False))
        self.body = nn.Sequential(
            nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(4 * w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(2 * w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, channels, 3, padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.project(z).view(z.shape[0], -1, *self.base))


class StridedDiscriminator(Discriminator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(image_shape)
        channels, height, width = image_shape
        w = options.width
        self.features = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(options.dropout),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(options.dropout),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * w * (height // 4) * (width // 4), 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


class SmoothedLoss(Loss):
    def __init__(self, smoothing: float) -> None:
        self.smoothing = smoothing

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        target = torch.full_like(real_logits, 1.0 - self.smoothing)
        real = F.binary_cross_entropy_with_logits(real_logits, target)
        return real + F.softplus(fake_logits).mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


def build(options: Any, image_shape: tuple[int, int, int]) -> GAN:
    if image_shape[1] % 4 or image_shape[2] % 4:
        raise ConfigError(f"resizeconv needs image sides divisible by 4, got {image_shape[1]}x{image_shape[2]}")
    return GAN(ResizeConvGenerator(options, image_shape), StridedDiscriminator(options, image_shape))
