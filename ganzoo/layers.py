"""Building blocks that plugins may use in their models.

``Dropout`` is ``torch.nn.Dropout`` with a faster mask on CPU. PyTorch draws a CPU dropout mask with
``bernoulli_``, one random number per element, and in the dcgan discriminator those draws were a
large share of the training step (docs/benchmarks.md has the measurements). This layer takes 15
random bits per element from one int64 ``random_`` draw per four elements and keeps an element when
its bits are at least ``round(p * 32768)``: every element is kept independently with probability
``1 - p`` (``p`` rounded to a multiple of 1/32768) and scaled by ``1 / (1 - p)``, the distribution
of ``nn.Dropout``, drawn from the same default generator, so seeded runs stay reproducible. On
other devices it is ``nn.Dropout`` unless asked.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Dropout", "Flatten", "fast_dropout", "memory_format_of", "require_sides_divisible", "set_fast_dropout",
           "uses_batchnorm"]

_SPAN = 32768  # 15 bits per element


def _keep_mask(like: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``keep / (1 - p)`` shaped and typed like ``like``: each element kept independently with probability ``1 - p``.

    One int64 draw from ``random_`` is uniform on [0, 2**63): viewed as four int16 values, each
    holds 15 uniform bits after masking the sign bit, so one draw serves four elements.
    """
    n = like.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=like.device).random_(generator=generator)
    lanes = bits.view(torch.int16)[:n].bitwise_and_(_SPAN - 1)
    keep = lanes >= round(p * _SPAN)
    # bool -> float is slow on CPU, uint8 -> float is fast, and a bool tensor's bytes are 0 or 1
    mask = keep.view(torch.uint8).to(like.dtype).mul_(1.0 / (1.0 - p))
    # the mask takes the memory layout of x (e.g. channels-last), so the product is one dense pass
    dense = like.is_contiguous() or like.is_contiguous(memory_format=torch.channels_last)
    return mask.as_strided(like.shape, like.stride()) if dense else mask.view(like.shape)


def fast_dropout(x: torch.Tensor, p: float, training: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Dropout with the mask drawn as described in this module's docstring (any device)."""
    if not training or p == 0:
        return x
    if p >= 1:
        return x * 0
    return x * _keep_mask(x, p, generator)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask is drawn faster on CPU; same parameters, same distribution.

    ``fast`` is "auto" (the fast mask on CPU, PyTorch's elsewhere), True or False; the trainer sets
    it from ``train.fast_dropout``. The fast path never works in place (``inplace`` is ignored there).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__(p, inplace)
        self.fast: bool | str = "auto"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = x.device.type == "cpu" if self.fast == "auto" else self.fast
        if fast and self.training:
            return fast_dropout(x, self.p)
        return super().forward(x)


def set_fast_dropout(module: nn.Module, fast: bool | str) -> None:
    """Set ``fast`` on every ganzoo ``Dropout`` inside ``module``."""
    for m in module.modules():
        if isinstance(m, Dropout):
            m.fast = fast


class _FlattenKeepingLayout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, start_dim: int, end_dim: int) -> torch.Tensor:
        ctx.shape = x.shape
        return x.flatten(start_dim, end_dim)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last), None, None


class Flatten(nn.Flatten):
    """``nn.Flatten`` whose gradient keeps a channels-last input's memory layout.

    Flattening a channels-last activation copies it into the (C, H, W) order a linear layer expects,
    and ``nn.Flatten``'s gradient comes back in that order, so every layer below computes its
    backward pass with a gradient and saved activations in different layouts, several times slower
    on CPU. This layer hands the gradient back channels-last (one copy); otherwise it is nn.Flatten.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last) \
                and torch.is_grad_enabled() and x.requires_grad:
            return _FlattenKeepingLayout.apply(x, self.start_dim, self.end_dim)
        return super().forward(x)


def memory_format_of(module: nn.Module) -> torch.memory_format:
    """``torch.channels_last`` if ``module``'s first 4-D parameter is stored channels-last, else contiguous.

    The trainer converts models with ``Module.to(memory_format=torch.channels_last)`` when
    ``train.channels_last`` is on; a model that builds a 4-D activation itself (e.g. by reshaping
    a linear layer's output) converts it to this format so its convolutions see one layout.
    """
    for p in module.parameters():
        if p.dim() == 4:
            if p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous():
                return torch.channels_last
            return torch.contiguous_format
    return torch.contiguous_format


def uses_batchnorm(module: nn.Module) -> bool:
    """True when ``module`` normalises over the batch anywhere (any BatchNorm, SyncBatchNorm included)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def require_sides_divisible(model: str, image_shape: tuple[int, int, int], by: int = 4) -> None:
    """Raise the user's error for images a model's up- and down-sampling cannot handle."""
    from .errors import ConfigError

    _, height, width = image_shape
    if height % by or width % by:
        raise ConfigError(f"{model} needs image height and width divisible by {by}, got {height}x{width}")
