"""Class-conditional GANs with a projection discriminator (Miyato and Koyama, 2018) and
class-conditional BatchNorm in G: ``projgan``, and ``biggan``, a small BigGAN (Brock, Donahue and
Simonyan, 2019) with a shared class embedding, hierarchical noise and residual blocks. Both need a
labelled dataset and sample by class (``ganzoo sample RUN --class NAME``). Registration only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, lazy, option, recipes_in


@dataclass(frozen=True)
class ProjectionOptions:
    latent_dim: int = option(128, min=1, help="length of z")
    width: int = option(32, min=4, help="channels of D's first layer; G's layers use 4x, 2x, 1x this")


@dataclass(frozen=True)
class BigGANOptions:
    latent_dim: int = option(120, min=3, help="length of z, split in three: one chunk to the input, one per block")
    width: int = option(32, min=4, help="base channel count (the paper's ch)")
    embedding: int = option(64, min=1, help="size of the class embedding G's blocks share (the paper: 128)")

    def __post_init__(self) -> None:
        if self.latent_dim % 3:
            raise ValueError(f"latent_dim must divide into 3 equal chunks, got {self.latent_dim}")


@hookimpl
def register_models(register: Any) -> None:
    recipes = Path(__file__).parent / "recipes"  # a folder of recipes per model
    register("projgan", lazy("ganzoo_plugins.biggan.model:build_projgan"), options=ProjectionOptions, recipes=recipes_in(recipes / "projgan"),
             description="projection D and class-conditional BatchNorm in G (Miyato & Koyama 2018)")
    register("biggan", lazy("ganzoo_plugins.biggan.model:build_biggan"), options=BigGANOptions, recipes=recipes_in(recipes / "biggan"),
             description="a small BigGAN: shared class embedding, hierarchical z, residual blocks (Brock et al. 2019)")
