"""Generate images from a run directory or checkpoint, using only what the checkpoint records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint, load_module_state, split_prefix
from .config import Config, resolve_config
from .errors import CheckpointError, ConfigError, GanzooError
from .interfaces import Generator, sample_images
from .registry import create_model
from .rundir import find_checkpoint


def checkpoint_config(meta: dict[str, Any], path: Path) -> Config:
    """The validated config a checkpoint was written with (configs of older ganzoo versions migrated)."""
    try:
        raw, _ = meta["config"], meta["image_shape"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: metadata lacks the model config; cannot rebuild the generator") from None
    try:
        return resolve_config(raw)
    except GanzooError as exc:
        raise CheckpointError(f"{path}: its config no longer resolves here ({exc})") from None


def load_generator(path: str | Path, *, device: str | torch.device = "cpu",
                   use_ema: bool = True) -> tuple[Generator, dict[str, Any]]:
    """Rebuild the generator of a run (or checkpoint file) from checkpoint metadata and weights."""
    ckpt = find_checkpoint(path)
    tensors, meta = load_checkpoint(ckpt)
    config = checkpoint_config(meta, ckpt)
    gan = create_model(config.model.name, config.model.options, image_shape=tuple(meta["image_shape"]),
                       num_classes=meta.get("num_classes"))
    generator = gan.generator
    ema = split_prefix(tensors, "generator_ema") if use_ema else {}
    # the EMA weights, when the run kept them, are what sampling should use
    load_module_state(generator, ema or split_prefix(tensors, "generator"), "generator", ckpt)
    meta["sampled_from"] = "generator_ema" if ema else "generator"
    return generator.to(device).eval(), meta


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux's MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(generator: Generator, n: int, image_shape: Sequence[int]) -> None:
    """Refuse an ``n`` whose noise and images would not fit in memory, before anything is drawn:
    past the free memory Linux does not fail the allocation, it kills the process later."""
    latent = generator.sample_latent(1, generator=torch.Generator().manual_seed(0), device="cpu").numel()
    need = n * 4 * (latent + 3 * math.prod(image_shape))  # noise, float images, and their uint8 copy and file
    need += 8 * n if generator.num_classes else 0  # the labels
    free = available_memory()
    if free is not None and need > 0.8 * free:
        raise ConfigError(f"{n:,} samples need about {need / 1e9:,.1f} GB in memory, and {free / 1e9:,.1f} GB are "
                          "free: ask for fewer, or draw them in parts with different --seed values")


def generate(generator: Generator, n: int, *, seed: int = 0, labels: torch.Tensor | None = None,
             batch_size: int = 500) -> torch.Tensor:
    """``n`` float images in [-1, 1] on the CPU; the same seed gives the same images on any device."""
    rng = torch.Generator().manual_seed(seed)
    return sample_images(generator, n, y=labels, generator=rng, batch_size=batch_size, device="cpu").float()
