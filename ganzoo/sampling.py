"""Generate images from a run directory or checkpoint, using only what the checkpoint records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint, load_module_state, split_prefix
from .errors import CheckpointError
from .interfaces import Generator
from .registry import create_model
from .rundir import find_checkpoint


def load_generator(path: str | Path, *, device: str | torch.device = "cpu",
                   use_ema: bool = True) -> tuple[Generator, dict[str, Any]]:
    """Rebuild the generator of a run (or checkpoint file) from checkpoint metadata and weights."""
    ckpt = find_checkpoint(path)
    tensors, meta = load_checkpoint(ckpt)
    try:
        model = meta["config"]["model"]
        image_shape = tuple(meta["image_shape"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{ckpt}: metadata lacks the model config; cannot rebuild the generator") from None
    options = {k: v for k, v in model.items() if k != "name"}
    gan = create_model(model["name"], image_shape=image_shape, num_classes=meta.get("num_classes"), **options)
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
    device = next(generator.parameters()).device
    out = []
    was_training = generator.training
    generator.eval()  # BatchNorm uses its running statistics, and they stay untouched
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                z = generator.sample_latent(count, generator=rng, device=device)
                y = labels[start:start + count].to(device) if labels is not None else None
                out.append(generator(z, y).float().cpu())
    finally:
        generator.train(was_training)
    return torch.cat(out)
