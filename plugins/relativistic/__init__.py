"""Relativistic losses (Jolicoeur-Martineau, *The relativistic discriminator: a key element missing
from standard GAN*, 2018): D estimates how much more real a real image is than a fake one, and G's
loss therefore needs D's logits on real images too (``Loss.generator_sees_real``)."""

from __future__ import annotations

from typing import Any

from ganzoo import hookimpl, lazy


@hookimpl
def register_losses(register: Any) -> None:
    register("rsgan", lazy("ganzoo_plugins.relativistic.objectives:RelativisticStandard", options=False),
             description="relativistic standard GAN: sigmoid(C(x_r) - C(x_f)) on pairs (Jolicoeur-Martineau 2018)")
    register("ragan", lazy("ganzoo_plugins.relativistic.objectives:RelativisticAverage", options=False),
             description="relativistic average GAN: each side against the other's mean logit (Jolicoeur-Martineau 2018)")
