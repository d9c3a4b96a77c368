"""A small StyleGAN2 (Karras et al., *Analyzing and Improving the Image Quality of StyleGAN*, 2020).

- Mapping network f: z -> w, pixel-normalised z through ``mapping_layers`` fully connected layers
  with a 100x smaller learning rate (StyleGAN, section 2 and Appendix C).
- Synthesis: a learned constant at H/4 x W/4, then 3x3 **modulated convolutions**: each layer's
  weights are scaled by a style s = A(w) per input channel and **demodulated**,
  w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps) (section 2.2, eqs. 1-3), computed as one grouped
  convolution over the batch. Per-layer **noise**, scaled per channel from 0, and the skip
  architecture of Figure 7: an RGB output at each resolution, upsampled and summed.
- **Style mixing** (StyleGAN, section 3.1): in training, with probability ``mixing``, the layers
  after a random crossover take the style of a second latent, so that no style depends on its
  neighbours.
- **Equalised learning rate** (Karras et al. 2018): weights drawn from N(0, 1), scaled at run time
  by He's constant.
- D: from-RGB, residual blocks that halve the resolution (Figure 7b), the minibatch standard
  deviation (StyleGAN2's stddev layer, group 4), a 3x3 convolution and two dense layers.

Left out at this size: path length regularisation, the blur filters of up/down-sampling
(bilinear resampling instead), and the truncation trick.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import ConfigError
from ganzoo.interfaces import GAN, Discriminator, Generator
from ganzoo.layers import require_sides_divisible


class EqualLinear(nn.Module):
    def __init__(self, cin: int, cout: int, *, bias: float = 0.0, lr: float = 1.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr)
        self.bias = nn.Parameter(torch.full((cout,), float(bias)))
        self.scale, self.lr, self.activate = lr / math.sqrt(cin), lr, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr)
        return F.leaky_relu(out, 0.2) * math.sqrt(2) if self.activate else out


class EqualConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, *, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.padding = 1 / math.sqrt(cin * kernel * kernel), kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class ModulatedConv(nn.Module):
    """A 3x3 convolution whose weights the style modulates and demodulates, per sample."""

    def __init__(self, cin: int, cout: int, style: int, *, kernel: int = 3, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel, kernel))
        self.affine = EqualLinear(style, cin, bias=1.0)  # A: styles start at 1
        self.scale, self.padding, self.demodulate = 1 / math.sqrt(cin * kernel * kernel), kernel // 2, demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, cin, h, width = x.shape
        s = self.affine(w)  # [N, cin]
        weight = self.scale * self.weight * s[:, None, :, None, None]  # eq. (1): w' = s_i w_ijk
        if self.demodulate:  # eq. (3): w'' = w' / sqrt(sum_{i,k} w'^2 + eps)
            weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        cout = weight.shape[1]
        out = F.conv2d(x.reshape(1, n * cin, h, width), weight.reshape(n * cout, cin, *weight.shape[3:]),
                       padding=self.padding, groups=n)
        return out.reshape(n, cout, h, width)


class StyledLayer(nn.Module):
    """Modulated convolution, noise (B, scaled per channel, from 0), bias, leaky ReLU.

    Training draws fresh noise per image; eval mode uses one fixed noise map (the official code's
    ``noise_mode='const'``), so that a seed gives the same images every time.
    """

    def __init__(self, cin: int, cout: int, style: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, style)
        self.noise_strength = nn.Parameter(torch.zeros(cout))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("fixed_noise", torch.randn(1, 1, *size))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.fixed_noise.to(x.dtype)
        x = x + self.noise_strength[None, :, None, None] * noise + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, cin: int, channels: int, style: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, channels, style, kernel=1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


def _pixel_norm(z: torch.Tensor) -> torch.Tensor:
    return z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)


class StyleGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options.latent_dim, image_shape)
        channels, height, width = image_shape
        d, c = options.latent_dim, options.width
        self.mixing = options.mixing
        self.mapping = nn.Sequential(*[EqualLinear(d, d, lr=0.01, activate=True) for _ in range(options.mapping_layers)])
        self.const = nn.Parameter(torch.randn(1, c, height // 4, width // 4))
        widths = [c, c, c // 2]  # at H/4, H/2, H
        sizes = [(height // 4, width // 4), (height // 2, width // 2), (height, width)]
        self.layers = nn.ModuleList([StyledLayer(c, c, d, sizes[0])])
        self.to_rgb = nn.ModuleList([ToRGB(c, channels, d)])
        for cin, cout, size in zip(widths[:-1], widths[1:], sizes[1:]):  # each higher resolution: two styled layers
            self.layers.extend([StyledLayer(cin, cout, d, size), StyledLayer(cout, cout, d, size)])
            self.to_rgb.append(ToRGB(cout, channels, d))
        self.num_styles = len(self.layers) + 1

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """w per layer, [N, layers, d]; in training, with probability ``mixing``, the layers from a
        random crossover on take the w of a second latent.

        Both choices are drawn on z's device and applied with ``torch.where``, as the official code
        does, so nothing is decided on the host and a training step can be replayed from a CUDA
        graph; the second latent is mapped whether or not it is used (a tenth of a mapping more).
        """
        w = self.mapping(_pixel_norm(z))[:, None].expand(-1, self.num_styles, -1)
        if self.training and self.mixing > 0:
            w2 = self.mapping(_pixel_norm(torch.randn_like(z)))
            cut = torch.randint(1, self.num_styles, (), device=z.device)
            cut = torch.where(torch.rand((), device=z.device) < self.mixing, cut, self.num_styles)
            later = torch.arange(self.num_styles, device=z.device) >= cut  # all False: no mixing
            w = torch.where(later[None, :, None], w2[:, None], w)
        return w

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        w = self.styles(z)
        x = self.const.expand(z.shape[0], -1, -1, -1)
        x = self.layers[0](x, w[:, 0])
        rgb = self.to_rgb[0](x, w[:, 1])
        for i, to_rgb in enumerate(self.to_rgb[1:]):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.layers[1 + 2 * i](x, w[:, 1 + 2 * i])
            x = self.layers[2 + 2 * i](x, w[:, 2 + 2 * i])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, w[:, 3 + 2 * i])
        return torch.tanh(rgb)


class ResidualDown(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = EqualConv2d(cin, cin, 3), EqualConv2d(cin, cout, 3)
        self.skip = EqualConv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2) * math.sqrt(2)
        h = F.avg_pool2d(F.leaky_relu(self.conv2(h), 0.2) * math.sqrt(2), 2)
        return (h + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class StyleDiscriminator(Discriminator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(image_shape)
        channels, height, width = image_shape
        c = options.width
        self.from_rgb = EqualConv2d(channels, c // 2, 1)
        self.blocks = nn.Sequential(ResidualDown(c // 2, c), ResidualDown(c, c))  # H -> H/4
        self.conv = EqualConv2d(c + 1, c, 3)
        self.dense = EqualLinear(c * (height // 4) * (width // 4), c, activate=True)
        self.out = EqualLinear(c, 1)

    @staticmethod
    def stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
        """One feature map: the standard deviation over groups of the batch (StyleGAN2's layer)."""
        n, c, h, w = x.shape
        g = next(k for k in range(min(group, n), 0, -1) if n % k == 0)  # the largest group size <= 4 dividing N
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # [N/g]
        return torch.cat([x, y.repeat(g)[:, None, None, None].expand(n, 1, h, w)], 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2) * math.sqrt(2))
        h = F.leaky_relu(self.conv(self.stddev(h)), 0.2) * math.sqrt(2)
        return self.out(self.dense(h.flatten(1))).squeeze(1)


def build_stylegan2(options: Any, image_shape: tuple[int, int, int]) -> GAN:
    require_sides_divisible("stylegan2", image_shape)
    if options.width % 2:
        raise ConfigError(f"stylegan2's width must be even, got {options.width}")
    return GAN(StyleGenerator(options, image_shape), StyleDiscriminator(options, image_shape))
