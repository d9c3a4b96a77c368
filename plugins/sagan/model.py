"""SAGAN's self-attention block (Zhang et al. 2019, section 3, eqs. (1)-(3)) in a small
DCGAN-shaped pair for images whose sides are divisible by 4, spectral normalisation on every
layer of G and D (section 4.1: "SN on both G and D").

Self-attention over the N = H x W positions of x (C channels), with C/8 channels for f and g and
C/2 for h (as the authors' code): s_ij = f(x_i)^T g(x_j), beta_{j,i} = softmax_i(s_ij),
o_j = v(sum_i beta_{j,i} h(x_i)), and y = gamma o + x with gamma learned from 0, so the network
starts as the convolutional one and learns how much to attend.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo.interfaces import GAN, Discriminator, Generator
from ganzoo.layers import require_sides_divisible


def sn_conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, *, transposed: bool = False) -> nn.Module:
    conv = (nn.ConvTranspose2d if transposed else nn.Conv2d)(cin, cout, kernel, stride, padding)
    return spectral_norm(conv)


class SelfAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f = sn_conv(channels, max(channels // 8, 1), 1)
        self.g = sn_conv(channels, max(channels // 8, 1), 1)
        self.h = sn_conv(channels, max(channels // 2, 1), 1)
        self.v = sn_conv(max(channels // 2, 1), channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, height, width = x.shape
        f = self.f(x).flatten(2)  # [N, C/8, HW]
        g = self.g(x).flatten(2)
        h = self.h(x).flatten(2)  # [N, C/2, HW]
        beta = torch.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)  # s_ij = f_i . g_j, softmax over i
        o = torch.bmm(h, beta).reshape(n, -1, height, width)  # o_j = sum_i beta_ji h_i
        return x + self.gamma * self.v(o)


class SAGANGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options.latent_dim, image_shape)
        channels, height, width = image_shape
        w = options.width
        self.base = (height // 4, width // 4)
        self.project = spectral_norm(nn.Linear(options.latent_dim, 4 * w * self.base[0] * self.base[1]))
        self.body = nn.Sequential(
            nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True),
            sn_conv(4 * w, 2 * w, 4, 2, 1, transposed=True), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            SelfAttention(2 * w),  # at H/2 x W/2
            sn_conv(2 * w, w, 4, 2, 1, transposed=True), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            sn_conv(w, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.project(z).reshape(z.shape[0], -1, *self.base))


class SAGANDiscriminator(Discriminator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(image_shape)
        channels, height, width = image_shape
        w = options.width
        self.body = nn.Sequential(
            sn_conv(channels, w, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
            sn_conv(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.1, inplace=True),
            SelfAttention(2 * w),  # at H/2 x W/2
            sn_conv(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.1, inplace=True), nn.Flatten())
        self.head = spectral_norm(nn.Linear(4 * w * (height // 4) * (width // 4), 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


def build_sagan(options: Any, image_shape: tuple[int, int, int]) -> GAN:
    require_sides_divisible("sagan", image_shape)
    return GAN(SAGANGenerator(options, image_shape), SAGANDiscriminator(options, image_shape), cuda_graphs=True)
