"""The contracts every variant implements: Generator, Discriminator, Loss, and the GAN pair.

Images are float tensors of shape ``[N, C, H, W]`` scaled to [-1, 1]. A discriminator returns one
logit per image (shape ``[N]``); ``torch.sigmoid`` of it is the probability the image is real.
"""

from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """Maps noise ``z`` of shape ``[N, latent_dim]`` (and optional labels ``y``) to images in [-1, 1]."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], num_classes: int | None = None) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
        """Standard normal noise for ``n`` images (drawn on the CPU so a seed gives the same noise anywhere)."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return z.to(device if device is not None else self._device())

    @torch.no_grad()
    def sample(self, n: int, *, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1], in eval mode, without gradients."""
        was_training = self.training
        self.eval()
        try:
            return self(self.sample_latent(n, generator=generator), y)
        finally:
            self.train(was_training)

    def _device(self) -> torch.device:
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device("cpu")


class Discriminator(nn.Module):
    """Maps images ``[N, C, H, W]`` (and optional labels ``y``) to one real/fake logit each, shape ``[N]``.

    A discriminator with an auxiliary classifier (ACGAN) returns ``(logits [N], class_logits [N, K])``.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int | None = None) -> None:
        super().__init__()
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class GAN(nn.Module):
    """A generator and a discriminator built together by a model plugin.

    ``channels_last=True`` says both networks run correctly in channels-last memory: they never
    ``view`` a 4-D activation (use ``reshape``, or ``ganzoo.layers.Flatten``, which also keeps the
    gradient's layout) and convert any 4-D tensor they build themselves with
    ``ganzoo.layers.memory_format_of``. ``train.channels_last = auto`` turns it on only for such pairs.
    """

    def __init__(self, generator: Generator, discriminator: Discriminator, *, channels_last: bool = False) -> None:
        super().__init__()
        if not isinstance(generator, Generator):
            raise TypeError(f"generator must be a ganzoo.interfaces.Generator, got {type(generator).__name__}")
        if not isinstance(discriminator, Discriminator):
            raise TypeError(f"discriminator must be a ganzoo.interfaces.Discriminator, got {type(discriminator).__name__}")
        self.generator = generator
        self.discriminator = discriminator
        self.channels_last = bool(channels_last)

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.generator.image_shape


class Loss:
    """An adversarial objective, written on discriminator logits.

    The trainer calls :meth:`discriminator_loss` with logits of a real and a fake batch,
    adds :meth:`penalty` if it returns a tensor, and calls :meth:`generator_loss` with logits of a
    fake batch. Each returns a scalar to minimise.
    """

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def penalty(self, discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                y: torch.Tensor | None = None) -> torch.Tensor | None:
        """An extra discriminator term (e.g. a gradient penalty); ``None`` when there is none."""
        return None

    def check(self, gan: GAN) -> str | None:
        """Why this loss cannot train ``gan`` (e.g. a gradient penalty with a BatchNorm critic), or None."""
        return None
