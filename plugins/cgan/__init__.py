"""cgan: the conditional GAN of Mirza and Osindero (2014) on the DCGAN builder.

G receives z and a learned embedding of the class label; D receives the image plus a learned
per-class map as an extra channel. Sample one class with ``ganzoo sample RUN --class sneaker``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganzoo import hookimpl
from ganzoo.config import option
from ganzoo_plugins.dcgan import DCGANOptions


@dataclass(frozen=True)
class CGANOptions(DCGANOptions):
    conditional: bool = option(True, help="feed the class label to G and D (Mirza & Osindero 2014)")


def build(options: CGANOptions, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
    from ganzoo_plugins.dcgan.model import build_dcgan

    return build_dcgan(options, image_shape=image_shape, num_classes=num_classes, name="cgan")


@hookimpl
def register_models(register: Any) -> None:
    register("cgan", build, options=CGANOptions,
             description="conditional DCGAN: the class label is fed to G and D (Mirza & Osindero 2014)")
