"""Building blocks that plugins may use in their models.

``Dropout`` is ``torch.nn.Dropout`` with a faster mask on CPU. PyTorch draws a CPU dropout mask with
``bernoulli_``, one random number per element at about 7 ns each here: the dropout layers of the
dcgan discriminator took a quarter of the training step. This layer takes 15 random bits per
element from one int64 ``random_`` draw per four elements and keeps an element when its bits are at
least ``round(p * 32768)``: every element is kept independently with probability ``1 - p`` (``p``
rounded to a multiple of 1/32768) and scaled by ``1 / (1 - p)``, the distribution of
``nn.Dropout``, drawn from the same default generator, so seeded runs stay reproducible. Forward
plus backward is 3.5-5x faster than ``nn.Dropout`` on this CPU (docs/benchmarks.md). On other devices
it is ``nn.Dropout`` unless asked.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Dropout", "fast_dropout", "set_fast_dropout"]

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
