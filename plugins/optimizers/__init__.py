"""The optimizers the source documents use: Adam, RMSprop and SGD, from ``torch.optim``.

``g_optimizer.name`` and ``d_optimizer.name`` choose one per network; each field of the options
dataclasses below is a key of that section. Registration only; torch is imported on build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ganzoo import hookimpl, option

_FUSED_HELP = "one fused kernel for the update of all parameters; auto: on for CPU and CUDA parameters"


@dataclass(frozen=True)
class AdamOptions:
    lr: float = option(2e-4, min=0, min_exclusive=True, help="learning rate")
    betas: tuple[float, float] = option((0.5, 0.999), help="(beta1, beta2); DCGAN uses beta1 = 0.5")
    eps: float = option(1e-8, min=0, min_exclusive=True)
    weight_decay: float = option(0.0, min=0)
    amsgrad: bool = option(False)
    fused: Literal["auto"] | bool = option("auto", help=_FUSED_HELP)

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
    fused: Literal["auto"] | bool = option("auto", help=_FUSED_HELP)

    def __post_init__(self) -> None:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")


def _torch_optimizer(class_name: str) -> Callable[..., Any]:
    def build(options: Any, *, params: list[Any]) -> Any:
        import torch

        kwargs = asdict(options)
        if kwargs.get("fused") == "auto":
            # PyTorch's fused Adam and SGD kernels (CPU and CUDA since 2.4) do the same update in one
            # pass over all parameters (docs/benchmarks.md has the measured gain)
            tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
            supported = all(t.device.type in ("cpu", "cuda") and t.is_floating_point() for t in tensors)
            kwargs["fused"] = True if tensors and supported else None  # None: PyTorch's own default
        return getattr(torch.optim, class_name)(params, **kwargs)

    return build


@hookimpl
def register_optimizers(register: Any) -> None:
    register("adam", _torch_optimizer("Adam"), options=AdamOptions, default=True,
             description="Adam (Kingma & Ba 2015); lr 2e-4 and beta1 0.5 as DCGAN trains")
    register("rmsprop", _torch_optimizer("RMSprop"), options=RMSpropOptions,
             description="RMSprop (Tieleman & Hinton 2012), as WGAN trains its critic")
    register("sgd", _torch_optimizer("SGD"), options=SGDOptions,
             description="stochastic gradient descent, with optional (Nesterov) momentum")
