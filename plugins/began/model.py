"""BEGAN's networks and loss (Berthelot, Schumm and Metz, *BEGAN: Boundary Equilibrium Generative
Adversarial Networks*, 2017), section 3; the architecture of section 3.5 (Figure 1) at 28x28/32x32.

L(v) = |v - D(v)|, the mean absolute error of D's reconstruction (eta = 1). With the diversity
ratio gamma and gain lambda_k (eq. 4 of section 3.4):

    L_D = L(x) - k_t L(G(z))        L_G = L(G(z))
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)

and the convergence measure M = L(x) + |gamma L(x) - L(G(z))| (section 3.4.1), logged with k_t
and with L(x) and L(G(z)) (``l_real``, ``l_fake``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo.interfaces import GAN, Discriminator, Generator, Loss
from ganzoo.layers import require_sides_divisible


def _conv_elu(cin: int, cout: int, stride: int = 1, norm: bool = False) -> list[nn.Module]:
    """A 3x3 convolution and an ELU, with ``norm`` a BatchNorm between them."""
    return [nn.Conv2d(cin, cout, 3, stride, 1), *([nn.BatchNorm2d(cout)] if norm else []), nn.ELU(inplace=True)]


def _convs(cin: int, cout: int, norm: bool = False) -> list[nn.Module]:
    """Two of :func:`_conv_elu`, the paper's block at one scale."""
    return [*_conv_elu(cin, cout, norm=norm), *_conv_elu(cout, cout, norm=norm)]


class Decoder(nn.Module):
    """h -> n x H/4 x W/4 -> two nearest-neighbour upsamplings, two 3x3 convolutions per scale.

    With ``skip`` (section 3.5.1, the paper's optional skip connections), the first tensor H0 is
    upsampled to each later scale and concatenated to that scale's input, so the blocks after the
    first read 2n channels: a short path from h to every resolution."""

    def __init__(self, inputs: int, n: int, image_shape: tuple[int, int, int], skip: bool = False,
                 norm: bool = False) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.base = (height // 4, width // 4)
        self.n, self.skip = n, skip
        self.fc = nn.Linear(inputs, n * self.base[0] * self.base[1])
        wide = 2 * n if skip else n
        # one Sequential either way, so the parameters keep the names runs without skip were saved with
        first, second, third = _convs(n, n, norm), _convs(wide, n, norm), _convs(wide, n, norm)
        self.net = nn.Sequential(*first, nn.Upsample(scale_factor=2, mode="nearest"),
                                 *second, nn.Upsample(scale_factor=2, mode="nearest"),
                                 *third, nn.Conv2d(n, channels, 3, 1, 1))
        self.scales = (len(first) + 1, len(first) + len(second) + 2)  # where each upsampling ends

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h0 = self.fc(h).reshape(h.shape[0], self.n, *self.base)
        if not self.skip:
            return self.net(h0)
        first, second = self.scales
        x = self.net[0:first](h0)  # first scale's convolutions, upsampling
        x = self.net[first:second](torch.cat([x, nn.functional.interpolate(h0, scale_factor=2, mode="nearest")], 1))
        return self.net[second:](torch.cat([x, nn.functional.interpolate(h0, scale_factor=4, mode="nearest")], 1))


class _InwardClip(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(-1.0, 1.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        # a descent step moves x by -grad: beyond 1 keep only grad > 0 (down), below -1 only grad < 0 (up)
        outward = ((x > 1.0) & (grad < 0)) | ((x < -1.0) & (grad > 0))
        return grad.masked_fill(outward, 0.0)


def inward_clip(x: torch.Tensor) -> torch.Tensor:
    """x clipped to [-1, 1] going forward; going back, the identity's gradient, except that a value
    already beyond the range gets none that would push it further out.

    The paper's G ends in the decoder's last convolution, with no nonlinearity. Two ways of keeping
    that output in [-1, 1] failed on Fashion-MNIST, both measured. A tanh saturates: early on D
    reconstructs dark images best, G drives its pixels to -1, and once the pre-activations are far
    below zero (median -7.2 after 558 steps of batch 16) tanh's gradient is below 1e-4 for 80% of
    them and exactly 0 for 11%, so G stays black for good. A plain straight-through clip (identity
    gradient everywhere) lets them drift without bound instead: where D reconstructs a black pixel a
    little below -1, the gradient keeps asking for darker, the clipped image never changes, and
    after ten CPU minutes the pre-clip values reached +-1e9 and the samples went to flat white.
    Passing only the inward part keeps every pixel's way back open (unlike tanh) and removes the
    direct outward push that made the straight-through clip run away (shared weights and Adam's
    momentum can still move a value outward; the measured runs stayed bounded).
    """
    return _InwardClip.apply(x)


class BEGANGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(options.latent_dim, image_shape)
        self.decoder = Decoder(options.latent_dim, options.filters, image_shape, options.skip, options.g_batchnorm)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return inward_clip(self.decoder(z))

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
        z = torch.rand(n, self.latent_dim, generator=generator) * 2 - 1  # uniform on [-1, 1], as in the paper
        return z.to(device if device is not None else self._device())


class AutoencoderDiscriminator(Discriminator):
    """Encoder (3x3 convolutions, stride-2 subsampling, filters n, 2n, 3n; FC to h) and a decoder
    like G's. Its output per image is L(v): not a logit, a reconstruction error (lower: more real)."""

    reconstructs = True

    def __init__(self, options: Any, image_shape: tuple[int, int, int]) -> None:
        super().__init__(image_shape)
        channels, height, width = image_shape
        n, norm = options.filters, options.d_batchnorm
        self.encoder = nn.Sequential(  # no norm on the layer that reads the image; stride 2 subsamples
            *_conv_elu(channels, n), *_convs(n, n, norm),
            *_conv_elu(n, 2 * n, 2, norm), *_convs(2 * n, 2 * n, norm),
            *_conv_elu(2 * n, 3 * n, 2, norm), *_convs(3 * n, 3 * n, norm), nn.Flatten(),
            nn.Linear(3 * n * (height // 4) * (width // 4), options.hidden))
        self.decoder = Decoder(options.hidden, n, image_shape, options.skip, norm)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return (x - self.reconstruct(x)).abs().flatten(1).mean(1)


class BEGANLoss(Loss):
    def __init__(self, gamma: float, k_rate: float) -> None:
        self.gamma, self.k_rate = gamma, k_rate
        self.k = torch.zeros(())  # k_0 = 0

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        self.k = self.k.to(real_logits.device)
        return real_logits.mean() - self.k * fake_logits.mean()

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean()

    @torch.no_grad()
    def after_discriminator_update(self, discriminator: Discriminator, real_logits: torch.Tensor,
                                   fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        real, fake = real_logits.mean(), fake_logits.mean()
        balance = self.gamma * real - fake
        self.k = (self.k.to(real.device) + self.k_rate * balance).clamp(0.0, 1.0)
        # L(x) and L(G(z)) themselves: the trainer's d_real / d_fake are sigmoids of D's output,
        # which mean nothing for an autoencoder's reconstruction error
        return {"k": self.k, "convergence": real + balance.abs(), "l_real": real, "l_fake": fake}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"k": self.k}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "k" in state:
            self.k = state["k"]

    def check(self, gan: Any) -> str | None:
        if not getattr(gan.discriminator, "reconstructs", False):
            return "BEGAN's loss is written on an autoencoder's reconstruction errors; train the began model"
        return None


def he_init(module: nn.Module) -> None:
    """He-normal weights (He et al. 2015) and zero biases for every layer: the gain of a ReLU where
    an ELU follows, 1 where none does (the dense layers into and out of h, the output convolutions).

    BEGAN's networks are deep (seven convolutions in G, nine in D's encoder) with no normalisation
    in the paper (the options ``g_batchnorm`` and ``d_batchnorm`` add it; a BatchNorm between a layer
    and its ELU does not change the gain chosen here),
    and PyTorch's default initialisation (weight variance 1 / (3 fan_in)) loses most of the signal
    on the way: measured at n = 16, G's outputs start with a standard deviation of 0.008 (a flat
    grey image) and the encoder's h of 0.025 from inputs of 0.58. He's keeps both of unit order (0.75, 1.13)."""
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        layers = list(seq)
        for i, layer in enumerate(layers):
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                after = [m for m in layers[i + 1:i + 3] if not isinstance(m, nn.BatchNorm2d)]
                elu_next = bool(after) and isinstance(after[0], nn.ELU)
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu" if elu_next else "linear")
                nn.init.zeros_(layer.bias)
    for decoder in [m for m in module.modules() if isinstance(m, Decoder)]:
        nn.init.kaiming_normal_(decoder.fc.weight, nonlinearity="linear")
        nn.init.zeros_(decoder.fc.bias)


class BEGAN(GAN):
    trains_with = ("began",)  # its D's output is a reconstruction error, which only BEGAN's loss reads


def build_began(options: Any, image_shape: tuple[int, int, int]) -> GAN:
    require_sides_divisible("began", image_shape)
    gan = BEGAN(BEGANGenerator(options, image_shape), AutoencoderDiscriminator(options, image_shape))
    if options.init == "he":
        he_init(gan)
    return gan
