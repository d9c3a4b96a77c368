"""A run's parts, put together from its config: data in memory, the GAN, its loss and optimizers,
the speed settings, data parallelism and the generator's EMA. Every check that can fail on a
user's input happens here, before any file is written."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from .config import Config
from .data import DatasetSplit, load_images
from .device import SpeedSettings, resolve_device
from .distributed import DistInfo, gather_all
from .errors import ConfigError
from .graphs import GraphedStep
from .graphs import refusal as graph_refusal
from .graphs import resolve as resolve_cuda_graphs
from .interfaces import GAN, Loss
from .layers import set_fast_dropout, uses_batchnorm
from .malloc import retain_freed_memory
from .registry import create_augmentation, create_loss, create_model, create_optimizer, create_regularizer
from .step import StepModules


@dataclass
class Assembly:
    device: torch.device
    data: DatasetSplit  # on the device
    gan: GAN
    loss: Loss
    speed: SpeedSettings
    step: StepModules
    batch_size: int  # the global batch (the dataset may be smaller than train.batch_size)
    graphed: GraphedStep | None = None  # the step replayed from CUDA graphs (train.cuda_graphs)

    @property
    def ema(self) -> torch.nn.Module | None:
        return self.step.ema


def refusal(gan: GAN, loss_name: str, loss: Loss) -> str | None:
    """Why ``loss`` cannot train ``gan``, asked of both sides, or None."""
    if gan.trains_with is not None and loss_name not in gan.trains_with:
        return (f"its discriminator's output is read only by {', '.join(repr(n) for n in gan.trains_with)} "
                f"(--loss {gan.trains_with[0]})")
    return loss.check(gan)


def training_device(config: Config, dist: DistInfo) -> torch.device:
    device = resolve_device(config.train.device)
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
    return device


def assemble(config: Config, dist: DistInfo | None = None) -> Assembly:
    dist = dist or DistInfo()
    t = config.train
    device = training_device(config, dist)
    if t.batch_size % dist.world_size:
        raise ConfigError(f"train.batch_size {t.batch_size} is the global batch and must divide evenly "
                          f"over {dist.world_size} processes")
    torch.manual_seed(t.seed)
    data = load_images(config.data.name, config.data.root, train=True, download=config.data.download,
                       limit=config.data.limit, options=config.data.options)
    gan = create_model(config.model.name, config.model.options, image_shape=data.image_shape,
                       num_classes=data.num_classes).to(device)
    loss = create_loss(config.loss.name, config.loss.options)
    reason = refusal(gan, config.loss.name, loss)
    if reason:
        raise ConfigError(f"loss {config.loss.name!r} cannot train model {config.model.name!r}: {reason}")
    regularizers = [(c.name, create_regularizer(c.name, c.options)) for c in config.regularizers]
    augmentations = [(c.name, create_augmentation(c.name, c.options)) for c in config.augmentations]
    for kind, name, part in [*(("regularizer", n, r) for n, r in regularizers),
                             *(("augmentation", n, a) for n, a in augmentations)]:
        reason = part.check(gan)
        if reason:
            raise ConfigError(f"{kind} {name!r} cannot be used with model {config.model.name!r}: {reason}")
    share = min(t.batch_size, len(data.images)) // dist.world_size
    if share < 2 and uses_batchnorm(gan):
        raise ConfigError(f"{config.model.name!r} uses BatchNorm, which needs at least 2 images per batch and process; "
                          f"this run has {share} (train.batch_size, data.limit, --nproc)")
    if gan.generator.num_classes and data.labels is None:
        raise ConfigError(f"model {config.model.name!r} is class-conditional, but dataset "
                          f"{config.data.name!r} has no labels")

    speed = SpeedSettings.resolve(t, device, channels_last_ok=gan.channels_last)
    graphs, why = resolve_cuda_graphs(
        t.cuda_graphs, device=device, precision=speed.precision, compile=speed.compile, distributed=dist.enabled,
        why_not=graph_refusal(gan, loss, regularizers, augmentations, model=config.model.name, loss_name=config.loss.name))
    speed = dataclasses.replace(speed, cuda_graphs=graphs, reasons={**speed.reasons, **({"cuda_graphs": why} if why else {})})
    if speed.reuse_memory and not retain_freed_memory():
        speed = dataclasses.replace(speed, reuse_memory=False)  # not glibc: nothing to tune
    set_fast_dropout(gan, speed.fast_dropout)
    if speed.channels_last:
        gan.to(memory_format=torch.channels_last)
    G, D = gan.generator, gan.discriminator
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        # D runs twice (reals, fakes) before one backward; DDP's broadcast of its buffers before the
        # second call writes, in place, the BatchNorm statistics the first call saved for backward
        # (PyTorch 2.11 then refuses the backward). In training D's BatchNorm uses batch statistics,
        # so its running ones need no sync; rank 0's are saved.
        G, D = DDP(G, device_ids=ids), DDP(D, device_ids=ids, broadcast_buffers=False)
        torch.manual_seed(t.seed + 7919 * dist.rank)  # each rank its own dropout masks
    # D_frozen serves G's update: D's weights take no gradient there, so it needs no DDP sync
    D_frozen: torch.nn.Module = gan.discriminator
    if speed.compile:
        G, D, D_frozen = (torch.compile(m) for m in (G, D, D_frozen))
    scalers = (torch.amp.GradScaler("cuda"), torch.amp.GradScaler("cuda")) if speed.precision == "fp16" else None
    ema = copy.deepcopy(gan.generator).requires_grad_(False) if t.ema_decay > 0 else None
    step = StepModules(
        gan=gan, G=G, D=D, D_frozen=D_frozen, loss=loss,
        opt_g=create_optimizer(config.g_optimizer.name, gan.generator.parameters(), config.g_optimizer.options),
        opt_d=create_optimizer(config.d_optimizer.name, gan.discriminator.parameters(), config.d_optimizer.options),
        device_type=device.type, dtype=speed.dtype, scalers=scalers, channels_last=speed.channels_last,
        ema=ema, ema_decay=t.ema_decay, ema_warmup=t.ema_warmup, regularizers=regularizers, augmentations=augmentations,
        gather=gather_all if dist.enabled else None,
    )
    on_device = DatasetSplit(data.images.to(device), data.labels.to(device) if data.labels is not None else None,
                             data.class_names)
    return Assembly(device, on_device, gan, loss, speed, step, min(t.batch_size, len(data.images)),
                    GraphedStep(step) if speed.cuda_graphs else None)


def stateful_parts(assembly: Assembly) -> dict[str, Any]:
    """The loss, regularizers and augmentations by checkpoint prefix: state outside any module."""
    step = assembly.step
    return {"loss": step.loss, **{f"regularizer.{n}": r for n, r in step.regularizers},
            **{f"augmentation.{n}": a for n, a in step.augmentations}}
