"""Projection discriminators and class-conditional generators.

- ``projgan`` (Miyato and Koyama, *cGANs with Projection Discriminator*, 2018): D's logit is
  psi(phi(x)) + <embed(y), phi(x)> (eq. 3), the inner product of a class embedding with D's
  features; G normalises with class-conditional BatchNorm, a gain and a bias per class
  (de Vries et al. 2017), as the paper's generator does.
- ``biggan`` (Brock, Donahue and Simonyan, *Large Scale GAN Training for High Fidelity Natural
  Image Synthesis*, 2019), small: G's blocks are residual, their BatchNorms' gains and biases are
  linear in [shared class embedding, a chunk of z] (section 3, "shared embedding" and
  "hierarchical latent spaces"), the first chunk of z feeds the input layer; D is residual with
  the projection head. Spectral normalisation in G and D (section 3, as in SAGAN).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import GAN, Discriminator, Generator
from ganzoo.layers import require_sides_divisible


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine part; gain and bias come from a conditioning vector
    (``linear``: BigGAN's from [embedding, z chunk]) or a per-class table (projgan's)."""

    def __init__(self, channels: int, *, classes: int | None = None, conditioning: int | None = None) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.centred = not classes  # BigGAN's gain is 1 + linear(condition); a table starts at 1 itself
        if classes:
            self.gain, self.bias = nn.Embedding(classes, channels), nn.Embedding(classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
        else:
            self.gain, self.bias = sn(nn.Linear(conditioning, channels)), sn(nn.Linear(conditioning, channels))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gain, bias = self.gain(condition), self.bias(condition)
        if self.centred:
            gain = 1 + gain
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


def _check(name: str, image_shape: tuple[int, int, int], num_classes: int | None) -> None:
    require_sides_divisible(name, image_shape)
    if not num_classes:
        raise ConfigError(f"{name} is class-conditional and needs a dataset with class labels")


class ProjectionDiscriminator(Discriminator):
    """phi: convolutions (residual when ``residual``) to features, summed over positions; the logit
    is psi(h) + <embed(y), h>."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, width: int, *, residual: bool) -> None:
        super().__init__(image_shape, num_classes)
        channels = image_shape[0]
        w = width
        if residual:
            self.phi = nn.Sequential(DownBlock(channels, w, first=True), DownBlock(w, 2 * w), DownBlock(2 * w, 4 * w, down=False))
        else:
            self.phi = nn.Sequential(
                sn(nn.Conv2d(channels, w, 3, 1, 1)), nn.LeakyReLU(0.1, inplace=True),
                sn(nn.Conv2d(w, 2 * w, 4, 2, 1)), nn.LeakyReLU(0.1, inplace=True),
                sn(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)), nn.LeakyReLU(0.1, inplace=True))
        self.psi = sn(nn.Linear(4 * w, 1))
        self.embed = sn(nn.Embedding(num_classes, 4 * w))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("this discriminator is conditional: pass class labels y")
        h = F.relu(self.phi(x)).sum((2, 3))  # sum pooling, as the paper's
        return self.psi(h).squeeze(1) + (self.embed(y) * h).sum(1)


class DownBlock(nn.Module):
    """BigGAN's D block: (ReLU) conv3 ReLU conv3 (avg-pool), plus a 1x1 (pooled) shortcut."""

    def __init__(self, cin: int, cout: int, *, first: bool = False, down: bool = True) -> None:
        super().__init__()
        self.first, self.down = first, down
        self.conv1, self.conv2 = sn(nn.Conv2d(cin, cout, 3, 1, 1)), sn(nn.Conv2d(cout, cout, 3, 1, 1))
        self.skip = sn(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        skip = self.skip(x)
        if self.down:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + skip


class ProjectionGenerator(Generator):
    """z -> 4w x H/4 x W/4 -> (cBN ReLU transposed conv) x 2 -> BN ReLU conv3 tanh."""

    def __init__(self, options: Any, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(options.latent_dim, image_shape, num_classes)
        channels, height, width = image_shape
        w = options.width
        self.base = (height // 4, width // 4)
        self.project = nn.Linear(options.latent_dim, 4 * w * self.base[0] * self.base[1])
        self.bn1, self.up1 = ConditionalBatchNorm(4 * w, classes=num_classes), nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1)
        self.bn2, self.up2 = ConditionalBatchNorm(2 * w, classes=num_classes), nn.ConvTranspose2d(2 * w, w, 4, 2, 1)
        self.out = nn.Sequential(nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.Conv2d(w, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("this generator is conditional: pass class labels y")
        x = self.project(z).reshape(z.shape[0], -1, *self.base)
        x = self.up1(F.relu(self.bn1(x, y)))
        x = self.up2(F.relu(self.bn2(x, y)))
        return self.out(x)


class UpBlock(nn.Module):
    """BigGAN's G block: cBN ReLU upsample conv3 cBN ReLU conv3, plus an upsampled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, conditioning: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(cin, conditioning=conditioning), ConditionalBatchNorm(cout, conditioning=conditioning)
        self.conv1, self.conv2 = sn(nn.Conv2d(cin, cout, 3, 1, 1)), sn(nn.Conv2d(cout, cout, 3, 1, 1))
        self.skip = sn(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), condition)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class BigGANGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(options.latent_dim, image_shape, num_classes)
        channels, height, width = image_shape
        w, chunk = options.width, options.latent_dim // 3
        self.base, self.chunk = (height // 4, width // 4), chunk
        self.embed = nn.Embedding(num_classes, options.embedding)  # shared by every block
        self.project = sn(nn.Linear(chunk, 4 * w * self.base[0] * self.base[1]))
        self.blocks = nn.ModuleList([UpBlock(4 * w, 2 * w, options.embedding + chunk),
                                     UpBlock(2 * w, w, options.embedding + chunk)])
        self.out = nn.Sequential(nn.BatchNorm2d(w), nn.ReLU(inplace=True), sn(nn.Conv2d(w, channels, 3, 1, 1)), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("this generator is conditional: pass class labels y")
        chunks = z.split(self.chunk, dim=1)  # hierarchical latents: one chunk per depth
        x = self.project(chunks[0]).reshape(z.shape[0], -1, *self.base)
        e = self.embed(y)
        for block, part in zip(self.blocks, chunks[1:]):
            x = block(x, torch.cat([e, part], 1))
        return self.out(x)


def build_projgan(options: Any, image_shape: tuple[int, int, int], num_classes: int | None) -> GAN:
    _check("projgan", image_shape, num_classes)
    return GAN(ProjectionGenerator(options, image_shape, num_classes),  # type: ignore[arg-type]
               ProjectionDiscriminator(image_shape, num_classes, options.width, residual=False),  # type: ignore[arg-type]
               cuda_graphs=True)


def build_biggan(options: Any, image_shape: tuple[int, int, int], num_classes: int | None) -> GAN:
    _check("biggan", image_shape, num_classes)
    return GAN(BigGANGenerator(options, image_shape, num_classes),  # type: ignore[arg-type]
               ProjectionDiscriminator(image_shape, num_classes, options.width, residual=True),  # type: ignore[arg-type]
               cuda_graphs=True)
