"""DCGAN generator and discriminator for any image size divisible by 4 (28x28, 32x32, ...).

One builder serves every DCGAN-shaped variant in the zoo; what makes a variant (class conditioning
for cgan, a class head for acgan, spectral normalisation for sngan, a BatchNorm-free critic for
wgan-gp) is a switch the variant fixes, not a copy of the networks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ganzoo.errors import ConfigError
from ganzoo.interfaces import GAN, Discriminator, DiscriminatorOutput, Generator
from ganzoo.layers import Dropout, Flatten, memory_format_of, require_sides_divisible


def _init_dcgan(module: nn.Module) -> None:
    # Radford et al.: all weights from N(0, 0.02); BatchNorm scale around 1
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        # a spectrally normalised layer (sngan) keeps PyTorch's default init (std 1/sqrt(3 fan_in),
        # near the SNGAN authors' LeCun init): its `weight` is W/sigma computed on every read, so
        # an in-place init would only fill a temporary, and the scale of W is normalised away
        if not parametrize.is_parametrized(module, "weight"):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 1.0)


class DCGANGenerator(Generator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int], num_classes: int | None = None) -> None:
        super().__init__(options.latent_dim, image_shape, num_classes)
        channels, height, width = image_shape
        self.base = (height // 4, width // 4)
        w, k, bn, slope = options.width, options.kernel_size, options.g_batchnorm, options.leaky_slope
        # conditional: z is multiplied by a learned class embedding (so the label cannot replace the noise)
        self.embed = nn.Embedding(num_classes, options.latent_dim) if num_classes else None
        self.project = nn.Linear(options.latent_dim, 4 * w * self.base[0] * self.base[1], bias=not bn)

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            conv = nn.ConvTranspose2d(cin, cout, k, stride, padding=k // 2, output_padding=stride - 1, bias=not bn)
            return [conv, *([nn.BatchNorm2d(cout)] if bn else []), nn.LeakyReLU(slope, inplace=True)]

        self.stem = nn.Sequential(*([nn.BatchNorm2d(4 * w)] if bn else []), nn.LeakyReLU(slope, inplace=True))
        self.body = nn.Sequential(
            *block(4 * w, 2 * w, 1),  # base -> base
            *block(2 * w, w, 2),  # -> 2x
            nn.ConvTranspose2d(w, channels, k, 2, padding=k // 2, output_padding=1),  # -> 4x
            nn.Tanh(),
        )
        self.apply(_init_dcgan)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("this generator is conditional: pass class labels y")
            z = z * self.embed(y).to(z.dtype)
        x = self.project(z).view(z.shape[0], -1, *self.base).contiguous(memory_format=memory_format_of(self.body))
        return self.body(self.stem(x))


class DCGANDiscriminator(Discriminator):
    def __init__(self, options: Any, image_shape: tuple[int, int, int], num_classes: int | None = None, *,
                 label_input: bool = False, class_head: bool = False, spectral_norm: bool = False,
                 batchnorm: bool = False) -> None:
        super().__init__(image_shape, num_classes)
        channels, height, width = image_shape
        w, k, slope, p = options.width, options.kernel_size, options.leaky_slope, options.dropout
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        # label_input (cgan): the label enters as one extra input channel, a learned map per class
        self.label_map = nn.Embedding(num_classes, height * width) if label_input and num_classes else None

        def drop() -> list[nn.Module]:
            return [Dropout(p)] if p > 0 else []

        self.features = nn.Sequential(
            sn(nn.Conv2d(channels + (1 if self.label_map is not None else 0), w, k, 2, padding=k // 2)),
            nn.LeakyReLU(slope, inplace=True), *drop(),
            sn(nn.Conv2d(w, 2 * w, k, 2, padding=k // 2, bias=not batchnorm)),
            *([nn.BatchNorm2d(2 * w)] if batchnorm else []),
            nn.LeakyReLU(slope, inplace=True), *drop(),
            Flatten(),
        )
        # stride-2 convs with 'same' padding give ceil(size / 2) twice
        flat = 2 * w * math.ceil(math.ceil(height / 2) / 2) * math.ceil(math.ceil(width / 2) / 2)
        self.head = sn(nn.Linear(flat, 1))
        # class_head (acgan): a second head predicts the class of every image, real or fake
        self.classifier = nn.Linear(flat, num_classes) if class_head and num_classes else None
        self.apply(_init_dcgan)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor | DiscriminatorOutput:
        if self.label_map is not None:
            if y is None:
                raise ValueError("this discriminator is conditional: pass class labels y")
            x = torch.cat([x, self.label_map(y).view(-1, 1, *x.shape[2:]).to(x.dtype)], dim=1)
            x = x.contiguous(memory_format=memory_format_of(self.features))
        h = self.features(x)
        logits = self.head(h).squeeze(1)
        if self.classifier is not None:
            return DiscriminatorOutput(logits, {"classes": self.classifier(h)})
        return logits


def build_dcgan(options: Any, *, image_shape: tuple[int, int, int], num_classes: int | None = None,
                name: str = "dcgan", conditional: bool = False, aux_classifier: bool = False,
                spectral_norm: bool = False, d_batchnorm: bool | None = None) -> GAN:
    """The DCGAN pair. ``conditional``: labels go to G and D; ``aux_classifier``: labels go to G and
    D gets a class head; ``d_batchnorm`` None takes ``options.d_batchnorm``."""
    require_sides_divisible(name, image_shape)
    labelled = conditional or aux_classifier
    if labelled and not num_classes:
        raise ConfigError(f"{name} is class-conditional and needs a dataset with class labels")
    classes = num_classes if labelled else None
    batchnorm = options.d_batchnorm if d_batchnorm is None else d_batchnorm
    return GAN(
        DCGANGenerator(options, image_shape, classes),
        DCGANDiscriminator(options, image_shape, classes, label_input=conditional, class_head=aux_classifier,
                           spectral_norm=spectral_norm, batchnorm=batchnorm),
        channels_last=True,
        cuda_graphs=True,
    )
