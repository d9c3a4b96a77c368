"""The original fully connected GAN (Goodfellow et al., 2014). Torch is imported on build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, option, recipes_in


@dataclass(frozen=True)
class VanillaOptions:
    latent_dim: int = option(100, min=1, help="length of the noise vector z")
    g_hidden: tuple[int, ...] = option((256, 512, 1024), help="hidden layer sizes of G")
    d_hidden: tuple[int, ...] = option((512, 256), help="hidden layer sizes of D")
    g_batchnorm: bool = option(True, help="BatchNorm after each hidden layer of G")
    dropout: float = option(0.3, min=0, max=0.95, help="dropout rate after each hidden layer of D")
    leaky_slope: float = option(0.2, min=0, max=1, help="negative slope of every LeakyReLU")

    def __post_init__(self) -> None:
        for key in ("g_hidden", "d_hidden"):
            sizes = getattr(self, key)
            if not sizes or any(s < 1 for s in sizes):
                raise ValueError(f"{key} must list at least one positive layer size, got {list(sizes)}")


def build(options: VanillaOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from .model import build_vanilla

    return build_vanilla(options, image_shape=image_shape)


@hookimpl
def register_models(register: Any) -> None:
    register("vanilla", build, options=VanillaOptions, recipes=recipes_in(Path(__file__).parent / "recipes"),
             description="fully connected G and D with LeakyReLU (Goodfellow et al. 2014)")
