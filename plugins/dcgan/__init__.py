"""DCGAN (Radford et al., 2015) as the source documents describe it for 28x28 images, and the
helper its family of variants (cgan, acgan, sngan, wgan-gp) registers through.

Registration only: torch is imported when a model is built.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo import hookimpl, option, recipes_in

# What makes each variant of the family what it is: fixed by the variant, never a user's option.
SWITCHES = ("conditional", "aux_classifier", "spectral_norm")


@dataclass(frozen=True)
class DCGANOptions:
    latent_dim: int = option(100, min=1, help="length of the noise vector z")
    width: int = option(64, min=1, help="channels of D's first conv; G's layers use 4x, 2x, 1x this")
    kernel_size: int = option(5, min=3, help="odd kernel size of every (transposed) convolution")
    g_batchnorm: bool = option(True, help="BatchNorm after each hidden layer of G")
    d_batchnorm: bool = option(False, help="BatchNorm after D's second convolution")
    dropout: float = option(0.3, min=0, max=0.95, help="dropout rate after each conv of D (0 = off)")
    leaky_slope: float = option(0.2, min=0, max=1, help="negative slope of every LeakyReLU")

    def __post_init__(self) -> None:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")


def dcgan_options(name: str, *, base: type = DCGANOptions, without: Iterable[str] = (), **defaults: Any) -> type:
    """``base`` as a new frozen options dataclass with other ``defaults`` and ``without`` some keys.

    A variant whose paper fixes a setting (wgan-gp's critic has no BatchNorm) leaves the key out
    instead of offering an option with one legal value.
    """
    hints = typing.get_type_hints(base)
    fields = []
    for f in dataclasses.fields(base):
        if f.name in without:
            continue
        default = defaults.pop(f.name, f.default)
        fields.append((f.name, hints[f.name], dataclasses.field(default=default, metadata=f.metadata)))
    if defaults:
        raise TypeError(f"{base.__name__} has no option {', '.join(defaults)}")
    namespace = {"__post_init__": base.__post_init__} if hasattr(base, "__post_init__") else {}
    return dataclasses.make_dataclass(name, fields, frozen=True, namespace=namespace)


def variant(name: str, *, description: str, options: type = DCGANOptions, folder: str | Path | None = None,
            wrap: Callable[[Any, Any], Any] | None = None, **switches: bool) -> Callable[..., None]:
    """A ``register_models`` hook for a DCGAN-family variant: the shared builder with its
    ``switches`` fixed, its ``options``, and the recipes in ``folder/recipes``. ``wrap(gan, options)``
    may return a GAN subclass that adds the variant's own loss terms.

    ``switches`` are :data:`SWITCHES` (off unless given) and any :class:`DCGANOptions` key that the
    variant's ``options`` leave out (wgan-gp fixes ``d_batchnorm=False``).
    """
    option_keys = {f.name for f in dataclasses.fields(DCGANOptions)} - {f.name for f in dataclasses.fields(options)}
    unknown = set(switches) - set(SWITCHES) - option_keys
    if unknown:
        raise TypeError(f"unknown DCGAN switch {', '.join(sorted(unknown))}; known: {', '.join(SWITCHES)}")
    fixed = {**dict.fromkeys(SWITCHES, False), **{k: bool(v) for k, v in switches.items()}}
    recipes = recipes_in(Path(folder) / "recipes") if folder and (Path(folder) / "recipes").is_dir() else None

    def build(opts: Any, *, image_shape: tuple[int, int, int], num_classes: int | None = None) -> Any:
        from ganzoo_plugins.dcgan.model import build_dcgan

        gan = build_dcgan(opts, image_shape=image_shape, num_classes=num_classes, name=name, **fixed)
        return wrap(gan, opts) if wrap is not None else gan

    @hookimpl
    def register_models(register: Any) -> None:
        register(name, build, options=options, description=description, recipes=recipes, fixed=fixed)

    return register_models


register_models = variant(
    "dcgan", folder=Path(__file__).parent,
    description="dense+reshape, transposed convs up (G); strided convs, one logit (D)",
)
