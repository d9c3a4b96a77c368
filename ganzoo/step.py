"""One adversarial training step: a function of tensors and modules, nothing else.

The discriminator learns from a real and a fake batch; then, every ``d_steps``-th step, the
generator learns from the same fake batch (one generator forward per step) while D's weights take
no gradient. Losses are computed in fp32 even under autocast. Everything it returns is a detached
tensor, so the caller decides when to read values back to the host.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch

from .interfaces import GAN, Augmentation, Batch, DiscriminatorOutput, Loss, Regularizer, as_output


@dataclass
class StepModules:
    """What a step needs. ``G``, ``D`` and ``D_frozen`` are the networks as called (possibly wrapped
    for data parallelism or compiled); ``gan`` holds the plain modules."""

    gan: GAN
    G: torch.nn.Module
    D: torch.nn.Module
    D_frozen: torch.nn.Module
    loss: Loss
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    device_type: str
    dtype: torch.dtype | None = None  # autocast dtype; None: no autocast
    scalers: tuple[Any, Any] | None = None  # fp16 loss scalers for D and G
    channels_last: bool = False
    ema: torch.nn.Module | None = None
    ema_decay: float = 0.0
    ema_warmup: bool = True  # decay min(ema_decay, (1 + t) / (10 + t)) at step t: see ema_decay_at
    regularizers: list[tuple[str, Regularizer]] = field(default_factory=list)  # (name, regularizer)
    augmentations: list[tuple[str, Augmentation]] = field(default_factory=list)
    # under data parallelism: every rank's logits, so that stateful hooks see the same on each rank
    gather: Callable[[torch.Tensor], torch.Tensor] | None = None
    # replayed from CUDA graphs (ganzoo.graphs): the EMA's decay is read from this tensor, and
    # autocast keeps no cache of cast weights (a capture must not hold on to them)
    ema_decay_tensor: torch.Tensor | None = None
    autocast_cache: bool = True

    def autocast(self) -> AbstractContextManager[Any]:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None,
                              cache_enabled=self.autocast_cache)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        for _, augmentation in self.augmentations:
            images = augmentation(images)
        return images


def _update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: Any) -> None:
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def _add_terms(loss: torch.Tensor, terms: dict[str, torch.Tensor], prefix: str,
               out: dict[str, torch.Tensor]) -> torch.Tensor:
    for name, value in terms.items():
        loss = loss + value
        out[f"{prefix}_{name}"] = value.detach()
    return loss


def discriminator_update(m: StepModules, real: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor,
                         step: int = 0, *, keep_graph: bool = True
                         ) -> tuple[dict[str, torch.Tensor], torch.Tensor, DiscriminatorOutput]:
    """Update D once; return its metrics, the fake batch and D's output on the reals.

    ``step`` (counted from 0) decides which lazy regularizers apply; ``keep_graph`` keeps G's graph
    in the fakes for a G update to follow (without it, on D-only steps, G runs without gradients).
    """
    with m.autocast(), torch.set_grad_enabled(keep_graph):
        fake = m.G(z, y)  # conditional G: fakes take the labels of the real batch
    with m.autocast():
        seen = Batch(m.augment(real), m.augment(fake.detach()), z, y)  # what D sees
        real_out = as_output(m.D(seen.real, y)).float()
        fake_out = as_output(m.D(seen.fake, y)).float()
    out: dict[str, torch.Tensor] = {}
    d_loss = m.loss.discriminator_loss(real_out.logits, fake_out.logits)
    d_loss = _add_terms(d_loss, m.gan.discriminator_terms(real_out, fake_out, Batch(real, fake.detach(), z, y)), "d", out)
    penalty = m.loss.penalty(m.gan.discriminator, seen.real, seen.fake.float(), y)
    if penalty is not None:
        d_loss = d_loss + penalty
    due = {name: reg.every * reg.discriminator_term(m.gan.discriminator, seen, real_out, fake_out)
           for name, reg in m.regularizers if step % reg.every == 0}
    d_loss = _add_terms(d_loss, due, "d", out)
    _update(d_loss, m.opt_d, m.scalers[0] if m.scalers else None)
    real_logits, fake_logits = real_out.logits.detach(), fake_out.logits.detach()
    out.update(d_loss=d_loss.detach(), d_real=torch.sigmoid(real_logits).mean(), d_fake=torch.sigmoid(fake_logits).mean())
    if m.gather is not None:
        real_logits, fake_logits = m.gather(real_logits), m.gather(fake_logits)
    out.update(m.loss.after_discriminator_update(m.gan.discriminator, real_logits, fake_logits) or {})
    for _, augmentation in m.augmentations:
        out.update(augmentation.observe(real_logits) or {})
    return out, fake, real_out


def generator_update(m: StepModules, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None,
                     z: torch.Tensor, *, g_step: int) -> dict[str, torch.Tensor]:
    """Update G once from ``fake`` (still attached to G's graph); D's weights take no gradient.

    ``g_step`` counts G's earlier updates (from 0); the EMA's warm-up follows it.
    """
    m.gan.discriminator.requires_grad_(False)
    out: dict[str, torch.Tensor] = {}
    try:
        with m.autocast():
            fake_out = as_output(m.D_frozen(m.augment(fake), y)).float()
            if m.loss.generator_sees_real:  # relativistic losses: D's logits on reals, as D is now
                with torch.no_grad():
                    real_logits = as_output(m.D_frozen(m.augment(real), y)).logits.float()
        if m.loss.generator_sees_real:
            g_loss = m.loss.generator_loss(fake_out.logits, real_logits)
        else:
            g_loss = m.loss.generator_loss(fake_out.logits)
        g_loss = _add_terms(g_loss, m.gan.generator_terms(fake_out, Batch(real, fake, z, y)), "g", out)
        _update(g_loss, m.opt_g, m.scalers[1] if m.scalers else None)
    finally:
        m.gan.discriminator.requires_grad_(True)
    if m.ema is not None:
        decay = m.ema_decay_tensor
        update_ema(m.ema, m.gan.generator,
                   ema_decay_at(g_step, m.ema_decay, warmup=m.ema_warmup) if decay is None else decay)
    out["g_loss"] = g_loss.detach()
    return out


def train_step(m: StepModules, real: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor, *,
               update_g: bool = True, step: int = 0, g_step: int | None = None) -> dict[str, torch.Tensor]:
    """One D update and, when ``update_g``, one G update; the metrics of both.

    ``step`` counts earlier D updates (lazy regularizers follow it), ``g_step`` earlier G updates
    (the EMA's warm-up follows it; default ``step``, right when every step updates G).
    """
    if m.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    out, fake, _ = discriminator_update(m, real, y, z, step, keep_graph=update_g)
    if update_g:
        out.update(generator_update(m, real, fake, y, z, g_step=step if g_step is None else g_step))
    return out


def ema_decay_at(step: int, decay: float, *, warmup: bool = True) -> float:
    """The EMA's decay at ``step`` (counted from 0): ``min(decay, (1 + step) / (10 + step))`` with the
    warm-up, else ``decay``.

    Without a warm-up an EMA started from G's random initial weights keeps ``decay ** t`` of them
    after t updates: 0.999 ** 1000 = 37%, so a short run samples from a blur of noise and training.
    The warm-up (TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` rule; timm's
    ``ModelEmaV3(use_warmup=True)`` and StyleGAN2's ``ema_rampup`` do the same job) averages over
    about the last tenth of the updates so far until that exceeds the window ``decay`` asks for
    (for 0.999, from step 8,990 on).
    """
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float | torch.Tensor) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for weights; buffers (BatchNorm statistics) are copied.

    ``decay`` may be a 0-d tensor on the weights' device, which a captured CUDA graph reads when
    replayed (a float would be frozen into the graph at its capture).
    """
    averaged, current = list(ema.parameters()), list(model.parameters())
    if isinstance(decay, torch.Tensor):
        torch._foreach_mul_(averaged, decay)
        torch._foreach_add_(averaged, torch._foreach_mul(current, 1.0 - decay))
    else:
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)
