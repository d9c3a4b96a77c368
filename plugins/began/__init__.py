"""began: the Boundary Equilibrium GAN of Berthelot, Schumm and Metz (2017).

D is an autoencoder and its "logit" is how badly it reconstructs an image; the loss balances
the two players with a proportional controller k_t whose state is checkpointed. Registers the
model ``began`` and the loss ``began``, which only train each other. Registration only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ganzoo import hookimpl, option, recipes_in


@dataclass(frozen=True)
class BEGANOptions:
    latent_dim: int = option(64, min=1, help="length of z, uniform on [-1, 1] (the paper: 64)")
    hidden: int = option(64, min=1, help="h: the autoencoder's embedding (the paper: 64)")
    filters: int = option(32, min=1, help="n: filters of the first layers, growing by n per scale (the paper: 64)")
    init: Literal["he", "torch"] = option("he", help="he: He-normal weights, zero biases; torch: PyTorch's "
                                                     "defaults (which shrink the signal through the deep stacks)")
    skip: bool = option(False, help="section 3.5.1's skip connections: the decoders' first tensor, upsampled, "
                                    "joins every later scale (G's and D's decoder)")
    g_batchnorm: bool = option(False, was="batchnorm",
                               help="BatchNorm before every ELU of G (not in the paper; D's is d_batchnorm)")
    d_batchnorm: bool = option(False, help="BatchNorm before every ELU of D's autoencoder but the first (not in "
                                           "the paper): D then sees each batch's statistics, reals and fakes apart")


@dataclass(frozen=True)
class BEGANLossOptions:
    gamma: float = option(0.5, min=0, max=1, min_exclusive=True,
                          help="the diversity ratio E[L(G(z))] / E[L(x)] the controller keeps (0.5 in the paper)")
    k_rate: float = option(0.001, min=0, help="lambda_k: the proportional gain of k_t (0.001 in the paper)")


def build(options: BEGANOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from .model import build_began

    return build_began(options, image_shape)


def build_loss(options: BEGANLossOptions) -> Any:
    from .model import BEGANLoss

    return BEGANLoss(options.gamma, options.k_rate)


@hookimpl
def register_models(register: Any) -> None:
    register("began", build, options=BEGANOptions, recipes=recipes_in(Path(__file__).parent / "recipes"),
             description="an autoencoder D and an equilibrium controller k_t (Berthelot et al. 2017)")


@hookimpl
def register_losses(register: Any) -> None:
    register("began", build_loss, options=BEGANLossOptions,
             description="L(x) - k_t L(G(z)) for D, L(G(z)) for G, k_t keeping gamma = L(G(z)) / L(x)")
