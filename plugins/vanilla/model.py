"""Multilayer-perceptron generator and discriminator."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ganzoo.interfaces import GAN, Discriminator, Generator
from ganzoo.layers import Dropout


class MLPGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options.latent_dim, image_shape)
        layers: list[nn.Module] = []
        width = options.latent_dim
        for i, size in enumerate(options.g_hidden):
            # no BatchNorm on the first layer, as in most reference implementations
            bn = options.g_batchnorm and i > 0
            layers += [nn.Linear(width, size, bias=not bn), *([nn.BatchNorm1d(size)] if bn else []),
                       nn.LeakyReLU(options.leaky_slope, inplace=True)]
            width = size
        layers += [nn.Linear(width, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(Discriminator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(image_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for size in options.d_hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(options.leaky_slope, inplace=True),
                       *([Dropout(options.dropout)] if options.dropout > 0 else [])]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_vanilla(options: Any, *, image_shape: tuple[int, int, int]) -> GAN:
    return GAN(MLPGenerator(options, image_shape), MLPDiscriminator(options, image_shape), cuda_graphs=True)
