"""The contracts every variant implements: Generator, Discriminator, Loss, and the GAN pair.

Images are float tensors of shape ``[N, C, H, W]`` scaled to [-1, 1]. A discriminator returns one
logit per image (shape ``[N]``); ``torch.sigmoid`` of it is the probability the image is real. A
discriminator with more heads (a class head, InfoGAN's Q head) returns a
:class:`DiscriminatorOutput` holding the logits and its extra outputs, and its :class:`GAN` turns
those into extra loss terms; the trainer adds the terms without knowing what they mean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["GAN", "Augmentation", "Batch", "Discriminator", "DiscriminatorOutput", "Generator", "Loss",
           "Regularizer", "Stateful", "evaluating", "logits_of", "sample_images"]


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (BatchNorm uses its running statistics, dropout is off) and no gradients, for the
    block; the module's previous mode comes back afterwards, also on an exception."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)


class Generator(nn.Module):
    """Maps noise ``z`` of shape ``[N, latent_dim]`` (and optional labels ``y``) to images in [-1, 1]."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], num_classes: int | None = None) -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
        """Noise for ``n`` images, drawn on the CPU so that a seed gives the same noise on any device.

        Standard normal by default; a generator whose latent holds other parts (InfoGAN's codes)
        overrides this.
        """
        z = torch.randn(n, self.latent_dim, generator=generator)
        return z.to(device if device is not None else self._device())

    def latent_codes(self) -> list[str]:
        """Names of the interpretable parts of the latent (InfoGAN's codes); none by default."""
        return []

    def traversal(self, code: int, steps: int = 8, *, generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
        """Latents that vary code ``code`` along each row of a grid: ``(z, images per row)``.
        Generators with :meth:`latent_codes` implement it; ``ganzoo sample --code`` draws it."""
        raise ValueError(f"{type(self).__name__} has no latent codes to traverse")

    def sample(self, n: int | None = None, *, z: torch.Tensor | None = None, y: torch.Tensor | None = None,
               generator: torch.Generator | None = None, batch_size: int | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """Images in [-1, 1] from ``n`` fresh noise vectors (or the given ``z``), in eval mode, without
        gradients. ``batch_size`` bounds the memory used at once; the result is on ``device``
        (default: where the generator is)."""
        return sample_images(self, n, z=z, y=y, generator=generator, batch_size=batch_size, device=device)

    def _device(self) -> torch.device:
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device("cpu")


def sample_images(module: nn.Module, n: int | None = None, *, z: torch.Tensor | None = None,
                  y: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  batch_size: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """:meth:`Generator.sample` for any module with ``sample_latent(n, generator=, device=)`` and
    ``forward(z, y)``: the one path by which ganzoo draws images from a generator."""
    if (n is None) == (z is None):
        raise ValueError("give either n or z")
    if z is None:  # all the noise first, so the batch size cannot change which images come out
        z = module.sample_latent(int(n), generator=generator, device="cpu")  # type: ignore[arg-type]
    total, step = len(z), batch_size or max(len(z), 1)
    here = next((p.device for p in module.parameters()), torch.device("cpu"))
    out = []
    with evaluating(module):
        for start in range(0, total, step):
            labels = y[start:start + step].to(here) if y is not None else None
            images = module(z[start:start + step].to(here), labels)
            out.append(images.to(device) if device is not None else images)
    if not out:
        raise ValueError("nothing to sample: n is 0")
    return torch.cat(out)


@dataclass
class DiscriminatorOutput:
    """What a discriminator with extra heads returns: the real/fake ``logits`` ``[N]`` and its other
    outputs by name (``{"classes": [N, K]}``), which only its own :class:`GAN` interprets."""

    logits: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def float(self) -> DiscriminatorOutput:
        """fp32 copies, as losses are computed in fp32 under autocast."""
        return DiscriminatorOutput(self.logits.float(), {k: v.float() for k, v in self.extras.items()})


def as_output(output: torch.Tensor | DiscriminatorOutput) -> DiscriminatorOutput:
    """A discriminator's return value as a :class:`DiscriminatorOutput`."""
    if isinstance(output, DiscriminatorOutput):
        return output
    if isinstance(output, torch.Tensor):
        return DiscriminatorOutput(output)
    if isinstance(output, tuple):
        raise TypeError(
            "a discriminator returned a tuple; since ganzoo 0.2 extra heads are returned as "
            "ganzoo.interfaces.DiscriminatorOutput(logits, {'classes': ...}) and turned into losses by "
            "GAN.discriminator_terms / GAN.generator_terms (see CHANGELOG.md)"
        )
    raise TypeError(f"a discriminator must return a tensor of logits, got {type(output).__name__}")


def logits_of(output: torch.Tensor | DiscriminatorOutput) -> torch.Tensor:
    """The real/fake logits of a discriminator's output, whichever form it takes."""
    return as_output(output).logits


class Discriminator(nn.Module):
    """Maps images ``[N, C, H, W]`` (and optional labels ``y``) to one real/fake logit each, shape ``[N]``,
    or to a :class:`DiscriminatorOutput` when it has more heads."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int | None = None) -> None:
        super().__init__()
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


@dataclass
class Batch:
    """One training step's tensors: real images, the fakes made from ``z``, and the labels (or None)."""

    real: torch.Tensor
    fake: torch.Tensor
    z: torch.Tensor
    y: torch.Tensor | None


class GAN(nn.Module):
    """A generator and a discriminator built together by a model plugin.

    ``channels_last=True`` says both networks run correctly in channels-last memory: they never
    ``view`` a 4-D activation (use ``reshape``, or ``ganzoo.layers.Flatten``, which also keeps the
    gradient's layout) and convert any 4-D tensor they build themselves with
    ``ganzoo.layers.memory_format_of``. ``train.channels_last = auto`` turns it on only for such pairs.

    A variant whose objective has more than the adversarial loss (ACGAN's class losses, InfoGAN's
    mutual information) overrides :meth:`discriminator_terms` and :meth:`generator_terms`. One whose
    discriminator's output only some losses understand (BEGAN's reconstruction error) names them in
    ``trains_with``; ``None`` means any loss whose own check accepts the model.

    ``cuda_graphs=True`` says a training step of the pair can be captured in a CUDA graph and
    replayed (``train.cuda_graphs``): the networks never read a value back to the host
    (``.item()``, ``if tensor:``), build or draw no tensor without a device, make no shape depend on
    the data, decide nothing from Python state or Python's random, and change no Python attribute
    per call (state lives in buffers updated in place). The conformance suite checks what a CPU can
    of that for every model that says so, and captures and replays a step on a machine with a GPU.
    """

    trains_with: tuple[str, ...] | None = None

    def __init__(self, generator: Generator, discriminator: Discriminator, *, channels_last: bool = False,
                 cuda_graphs: bool = False) -> None:
        super().__init__()
        if not isinstance(generator, Generator):
            raise TypeError(f"generator must be a ganzoo.interfaces.Generator, got {type(generator).__name__}")
        if not isinstance(discriminator, Discriminator):
            raise TypeError(f"discriminator must be a ganzoo.interfaces.Discriminator, got {type(discriminator).__name__}")
        self.generator = generator
        self.discriminator = discriminator
        self.channels_last = bool(channels_last)
        self.cuda_graphs = bool(cuda_graphs)

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.generator.image_shape

    def discriminator_terms(self, real: DiscriminatorOutput, fake: DiscriminatorOutput,
                            batch: Batch) -> dict[str, torch.Tensor]:
        """Extra scalar terms for D's loss, by name (logged as ``d_<name>``); ``fake`` was computed
        on detached fakes. Return weighted terms: they are added as they are."""
        return {}

    def generator_terms(self, fake: DiscriminatorOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """Extra scalar terms for G's loss, by name (logged as ``g_<name>``); ``fake`` is D's output on
        the fakes with gradients flowing into G."""
        return {}


class Stateful:
    """State that is not a module's parameters or buffers but must survive a checkpoint (BEGAN's
    k_t, an adaptive augmentation probability, a running mean): tensors by name."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Called on resume with what :meth:`state_dict` returned (empty if the run had none yet)."""


class Loss(Stateful):
    """An adversarial objective, written on discriminator logits.

    The trainer calls :meth:`discriminator_loss` with logits of a real and a fake batch,
    adds :meth:`penalty` if it returns a tensor, and calls :meth:`generator_loss` with logits of a
    fake batch. Each returns a scalar to minimise. :meth:`check` is asked once, before training,
    whether the loss can train a model at all.

    A loss whose generator side also needs D's logits on real images (the relativistic losses) sets
    ``generator_sees_real = True``; ``generator_loss`` then receives ``real_logits`` too.

    ``cuda_graphs = True`` says its methods can be captured in a CUDA graph (see ``GAN``): no value
    read back to the host, and any state kept in tensors updated in place, never by rebinding an
    attribute (a replayed graph runs the capture's tensors, not the attribute's new one).
    """

    generator_sees_real: bool = False
    cuda_graphs: bool = False

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def penalty(self, discriminator: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                y: torch.Tensor | None = None) -> torch.Tensor | None:
        """An extra discriminator term (e.g. a gradient penalty); ``None`` when there is none."""
        return None

    def after_discriminator_update(self, discriminator: Discriminator, real_logits: torch.Tensor,
                                   fake_logits: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Called after every update of D with that update's logits (detached): WGAN clips D's
        weights here, BEGAN moves its k_t. Tensors returned are logged by name."""
        return None

    def check(self, gan: GAN) -> str | None:
        """Why this loss cannot train ``gan`` (e.g. a gradient penalty with a BatchNorm critic), or None."""
        return None


class Regularizer(Stateful):
    """A term added to D's loss (R1, a gradient penalty, consistency regularisation, LeCam, ...),
    composable with any loss and model that :meth:`check` accepts.

    ``every = k`` applies it on every k-th step only, times k (StyleGAN2's lazy regularisation).
    ``cuda_graphs = True``: as for ``Loss``.
    """

    every: int = 1
    cuda_graphs: bool = False

    def discriminator_term(self, discriminator: Discriminator, batch: Batch, real_out: DiscriminatorOutput,
                           fake_out: DiscriminatorOutput) -> torch.Tensor:  # pragma: no cover
        """The term for this step; ``batch`` holds the images D saw (after any augmentation) and
        ``real_out`` / ``fake_out`` what it said of them (fp32, with gradients)."""
        raise NotImplementedError

    def check(self, gan: GAN) -> str | None:
        """Why this regularizer cannot be used with ``gan``, or None."""
        return None


class Augmentation(Stateful):
    """A differentiable transform applied to real and fake images alike before D sees them, in
    D's updates and G's (DiffAugment), so that D cannot overfit the few real images it has.
    ``cuda_graphs = True``: as for ``Loss``."""

    cuda_graphs: bool = False

    def __call__(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def observe(self, real_logits: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Called after every update of D with its logits on the (augmented) reals: an adaptive
        augmentation tunes its strength here (ADA). Tensors returned are logged by name."""
        return None

    def check(self, gan: GAN) -> str | None:
        """Why this augmentation cannot be used with ``gan`` (or its images), or None."""
        return None
