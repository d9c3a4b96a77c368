"""Optimizers selectable per network, each with its options dataclass. Torch is imported on build."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .config import option
from .errors import UnknownNameError


@dataclass(frozen=True)
class AdamOptions:
    lr: float = option(2e-4, min=0, min_exclusive=True, help="learning rate")
    betas: tuple[float, float] = option((0.5, 0.999), help="(beta1, beta2); DCGAN uses beta1 = 0.5")
    eps: float = option(1e-8, min=0, min_exclusive=True)
    weight_decay: float = option(0.0, min=0)
    amsgrad: bool = option(False)

    def __post_init__(self) -> None:
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must each be in [0, 1), got {list(self.betas)}")


@dataclass(frozen=True)
class RMSpropOptions:
    lr: float = option(5e-5, min=0, min_exclusive=True, help="learning rate")
    alpha: float = option(0.99, min=0, max=1, help="smoothing constant")
    eps: float = option(1e-8, min=0, min_exclusive=True)
    weight_decay: float = option(0.0, min=0)
    momentum: float = option(0.0, min=0)
    centered: bool = option(False)


@dataclass(frozen=True)
class SGDOptions:
    lr: float = option(1e-2, min=0, min_exclusive=True, help="learning rate")
    momentum: float = option(0.0, min=0)
    dampening: float = option(0.0, min=0)
    weight_decay: float = option(0.0, min=0)
    nesterov: bool = option(False)

    def __post_init__(self) -> None:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")


def _torch_optimizer(class_name: str) -> Callable[[Iterable[Any], Any], Any]:
    def build(params: Iterable[Any], options: Any) -> Any:
        import torch

        return getattr(torch.optim, class_name)(params, **asdict(options))

    return build


OPTIMIZERS: dict[str, tuple[type, Callable[[Iterable[Any], Any], Any]]] = {
    "adam": (AdamOptions, _torch_optimizer("Adam")),
    "rmsprop": (RMSpropOptions, _torch_optimizer("RMSprop")),
    "sgd": (SGDOptions, _torch_optimizer("SGD")),
}


def get_optimizer(name: str) -> tuple[type, Callable[[Iterable[Any], Any], Any]]:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise UnknownNameError("optimizer", name, OPTIMIZERS) from None


def build_optimizer(name: str, params: Iterable[Any], options: Any) -> Any:
    return get_optimizer(name)[1](params, options)
