"""infogan: InfoGAN (Chen, Duan, Houthooft, Schulman, Sutskever and Abbeel, 2016).

Part of G's input is a set of latent codes (one categorical, a few continuous); a head Q that
shares D's body guesses the codes back from G's images, and the mutual information between codes
and images (its variational lower bound L_I) is maximised by G and Q, so the codes come to mean
something (on Fashion-MNIST: the category often becomes the kind of garment). Registration only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, option, recipes_in


@dataclass(frozen=True)
class InfoGANOptions:
    noise_dim: int = option(62, min=1, help="incompressible noise z (the paper: 62 for MNIST)")
    categories: int = option(10, min=0, help="values of the categorical code c1 (0 = none)")
    continuous: int = option(2, min=0, help="continuous codes, each uniform on [-1, 1]")
    info_weight: float = option(1.0, min=0, help="lambda of L_I for the categorical code")
    continuous_weight: float = option(0.1, min=0, help="lambda of L_I for the continuous codes")
    width: int = option(64, min=1, help="channels of D's first convolution (the paper: 64)")
    hidden: int = option(1024, min=1, help="units of the fully connected layers (the paper: 1024)")

    def __post_init__(self) -> None:
        if self.categories == 1:
            raise ValueError("a categorical code needs at least 2 categories (or 0 for none)")
        if not self.categories and not self.continuous:
            raise ValueError("InfoGAN needs at least one latent code (categories or continuous)")


def build(options: InfoGANOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from .model import build_infogan

    return build_infogan(options, image_shape)


@hookimpl
def register_models(register: Any) -> None:
    register("infogan", build, options=InfoGANOptions, recipes=recipes_in(Path(__file__).parent / "recipes"),
             description="latent codes that G keeps and Q reads back: mutual information (Chen et al. 2016)")
