"""Differentiable augmentations applied to real and fake images before D (``train.augmentations``):
``diffaugment`` (Zhao et al. 2020) and ``ada``, the same operations with a probability tuned from
D's outputs on reals (the adaptive rule of Karras et al. 2020). Registration only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl, option

_POLICY = "comma-separated operations: color, translation, cutout"


@dataclass(frozen=True)
class DiffAugmentOptions:
    policy: str = option("color,translation,cutout", help=_POLICY)

    def __post_init__(self) -> None:
        from .ops import parse_policy

        parse_policy(self.policy)


@dataclass(frozen=True)
class AdaptiveOptions:
    policy: str = option("color,translation,cutout", help=_POLICY)
    target: float = option(0.6, min=0, max=1, help="the r_t = E[sign(D(x))] the probability is tuned towards")
    interval: int = option(4, min=1, help="D updates between adjustments of p")
    speed_kimg: float = option(100.0, min=0, min_exclusive=True,
                               help="thousands of real images over which p can move from 0 to 1 (the paper: 500)")

    def __post_init__(self) -> None:
        from .ops import parse_policy

        parse_policy(self.policy)


def _diffaugment(options: DiffAugmentOptions) -> Any:
    from .ops import DiffAugment

    return DiffAugment(options.policy)


def _adaptive(options: AdaptiveOptions) -> Any:
    from .ops import AdaptiveAugment

    return AdaptiveAugment(options.policy, target=options.target, interval=options.interval,
                           speed_images=options.speed_kimg * 1000)


@hookimpl
def register_augmentations(register: Any) -> None:
    register("diffaugment", _diffaugment, options=DiffAugmentOptions,
             description="colour, translation and cutout on real and fake alike, every step (Zhao et al. 2020)")
    register("ada", _adaptive, options=AdaptiveOptions,
             description="the same operations with a probability p tuned from sign(D(x)) (Karras et al. 2020)")
