"""Regularizers of the discriminator, composable with any model and loss (``train.regularizers``).

``r1`` and ``r2`` (Mescheder et al. 2018), ``gp`` (the gradient penalty of WGAN-GP, Gulrajani et
al. 2017), ``dragan`` (Kodali et al. 2017), ``bcr`` (balanced consistency regularisation, Zhao et
al. 2021) and ``lecam`` (Tseng et al. 2021). Registration only; torch is imported on build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl, lazy, option

_EVERY = "apply every N steps only, weighted by N (lazy regularisation, Karras et al. 2020)"


@dataclass(frozen=True)
class GradientNormOptions:
    gamma: float = option(10.0, min=0, help="the paper's gamma: the term is gamma / 2 * E[||grad D||^2]")
    every: int = option(1, min=1, help=_EVERY)


@dataclass(frozen=True)
class PenaltyOptions:
    weight: float = option(10.0, min=0, help="lambda")
    target: float = option(1.0, min=0, help="the gradient norm the penalty pulls towards")
    every: int = option(1, min=1, help=_EVERY)


@dataclass(frozen=True)
class DraganOptions:
    weight: float = option(10.0, min=0, help="lambda")
    spread: float = option(0.5, min=0, min_exclusive=True, help="perturbations reach spread x std(x) from the data")
    every: int = option(1, min=1, help=_EVERY)


@dataclass(frozen=True)
class ConsistencyOptions:
    real_weight: float = option(10.0, min=0, help="lambda_real of bCR")
    fake_weight: float = option(10.0, min=0, help="lambda_fake of bCR (0 = plain CR on reals only)")
    shift: float = option(0.125, min=0, max=0.5, help="translation, as a share of the image side")


@dataclass(frozen=True)
class LeCamOptions:
    weight: float = option(0.3, min=0, help="lambda of the LeCam term")
    decay: float = option(0.99, min=0, max=1, help="decay of the moving averages of D's outputs")


@hookimpl
def register_regularizers(register: Any) -> None:
    register("r1", lazy("ganzoo_plugins.regularizers.terms:R1"), options=GradientNormOptions,
             description="gamma/2 ||grad D(x)||^2 on real images (Mescheder et al. 2018)")
    register("r2", lazy("ganzoo_plugins.regularizers.terms:R2"), options=GradientNormOptions,
             description="gamma/2 ||grad D(G(z))||^2 on fakes (Mescheder et al. 2018)")
    register("gp", lazy("ganzoo_plugins.regularizers.terms:GradientPenalty"), options=PenaltyOptions,
             description="lambda (||grad D(x_hat)|| - 1)^2 on interpolates, per sample (Gulrajani et al. 2017)")
    register("dragan", lazy("ganzoo_plugins.regularizers.terms:Dragan"), options=DraganOptions,
             description="the gradient penalty around perturbed real images (Kodali et al. 2017)")
    register("bcr", lazy("ganzoo_plugins.regularizers.terms:BalancedConsistency"), options=ConsistencyOptions,
             description="D's output must not change under flips and shifts, for real and fake (Zhao et al. 2021)")
    register("lecam", lazy("ganzoo_plugins.regularizers.terms:LeCam"), options=LeCamOptions,
             description="pulls D's outputs towards moving averages of the other side's (Tseng et al. 2021)")
