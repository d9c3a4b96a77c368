"""Generate images from a run directory or checkpoint, using only what the checkpoint records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint, load_module_state, split_prefix
from .config import Config, resolve_config
from .errors import CheckpointError, GanzooError
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


def generate(generator: Generator, n: int, *, seed: int = 0, labels: torch.Tensor | None = None,
             batch_size: int = 500) -> torch.Tensor:
    """``n`` float images in [-1, 1] on the CPU; the same seed gives the same images on any device."""
    rng = torch.Generator().manual_seed(seed)
    return sample_images(generator, n, y=labels, generator=rng, batch_size=batch_size, device="cpu").float()
