"""DiffAugment's operations (Zhao, Liu, Lin, Zhu and Han, *Differentiable Augmentation for
Data-Efficient GAN Training*, 2020, their reference code's three policies) on images in [-1, 1],
each differentiable in the images, and the adaptive probability of ADA (Karras et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganzoo.errors import ConfigError
from ganzoo.interfaces import Augmentation


def _uniform(n: int, like: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=like.device, dtype=like.dtype) * (high - low) + low


def brightness(x: torch.Tensor) -> torch.Tensor:
    return x + _uniform(x.shape[0], x, -0.5, 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _uniform(x.shape[0], x, 0.0, 2.0) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x.shape[0], x, 0.5, 1.5) + mean


def translate(x: torch.Tensor, ratio: float = 0.125, fill: float = 0.0) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its side in each direction, filling with ``fill``."""
    n, c, h, w = x.shape
    dy, dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if not (dy or dx):
        return x
    padded = F.pad(x, (dx, dx, dy, dy), value=fill)
    oy = torch.randint(0, 2 * dy + 1, (n,), device=x.device)
    ox = torch.randint(0, 2 * dx + 1, (n,), device=x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the side, centred at a random place of each image (cut at the
    borders), as the reference code's cutout does."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - sh % 2), (n, 1, 1), device=x.device) - sh // 2
    left = torch.randint(0, w + (1 - sw % 2), (n, 1, 1), device=x.device) - sw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    cut = (ys >= top) & (ys < top + sh) & (xs >= left) & (xs < left + sw)
    return x * (~cut)[:, None].to(x.dtype)


def random_hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror each image left to right with probability 1/2."""
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(3), x)


POLICIES: dict[str, list[Callable[[torch.Tensor], torch.Tensor]]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translate],
    "cutout": [cutout],
}


def parse_policy(policy: str) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown or not names:
        raise ConfigError(f"unknown augmentation policy {', '.join(unknown) or repr(policy)}; "
                          f"known: {', '.join(POLICIES)}")
    return [op for name in names for op in POLICIES[name]]


class DiffAugment(Augmentation):
    """Every operation of the policy on every image, every time D sees one."""

    cuda_graphs = True

    def __init__(self, policy: str) -> None:
        self.ops = parse_policy(policy)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            images = op(images)
        return images.contiguous(memory_format=torch.channels_last) if _channels_last(images) else images


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


class AdaptiveAugment(Augmentation):
    """Each operation applied to each image with probability p. Every ``interval`` updates of D,
    r_t = E[sign(D(x_real))] over them; p moves by sign(r_t - target) * images / speed_images, so
    p rises while D is overconfident on the reals (overfitting) and falls when it is not
    (Karras et al. 2020, section 3)."""

    def __init__(self, policy: str, *, target: float, interval: int, speed_images: float) -> None:
        self.ops = parse_policy(policy)
        self.target, self.interval, self.speed_images = target, interval, speed_images
        self.p = torch.zeros(())
        self.signs = torch.zeros(())  # sum of sign(D(x)) since the last adjustment
        self.seen = torch.zeros(())  # reals in that sum

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        p = self.p.to(images.device)
        for op in self.ops:
            apply = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < p
            images = torch.where(apply, op(images), images)
        return images

    def observe(self, real_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        # all in tensors, so that no step waits for the device to answer whether to adjust
        self.p, self.signs, self.seen = (t.to(real_logits.device) for t in (self.p, self.signs, self.seen))
        self.signs = self.signs + torch.sign(real_logits).sum()
        self.seen = self.seen + real_logits.numel()
        due = self.seen >= self.interval * real_logits.numel()
        r_t = self.signs / self.seen
        moved = (self.p + torch.sign(r_t - self.target) * self.seen / self.speed_images).clamp(0.0, 1.0)
        self.p = torch.where(due, moved, self.p)
        self.signs = torch.where(due, torch.zeros_like(self.signs), self.signs)
        self.seen = torch.where(due, torch.zeros_like(self.seen), self.seen)
        return {"ada_p": self.p}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"p": self.p, "signs": self.signs, "seen": self.seen}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            self.p, self.signs, self.seen = state["p"], state["signs"], state["seen"]
