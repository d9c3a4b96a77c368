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
    """Bytes of memory free for a new allocation: Linux's MemAvailable, or less where a container's
    or a batch job's memory limit (cgroup v1 or v2) leaves less; None where unknown."""
    known = [free for free in (_meminfo_available(), cgroup_free()) if free is not None]
    return min(known) if known else None


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        with open(meminfo, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def cgroup_free(root: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> int | None:
    """What the tightest memory limit of this process's cgroup and its parents leaves free (limit
    minus usage, the reclaimable inactive file cache counted as free, as `docker stats` does);
    None without a limit. cgroup v2 (``memory.max``) and v1 (``memory.limit_in_bytes``)."""
    try:
        lines = own.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    layouts = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            layouts.append((root, path, "memory.max", "memory.current", "inactive_file"))
        elif "memory" in controllers.split(","):
            layouts.append((root / "memory", path, "memory.limit_in_bytes", "memory.usage_in_bytes",
                            "total_inactive_file"))
    frees = []
    for base, path, limit_file, usage_file, inactive_key in layouts:
        folder = base / path.strip("/")
        if not folder.is_dir():  # a container sees its own cgroup as the root
            folder = base
        while True:
            free = _cgroup_level_free(folder, limit_file, usage_file, inactive_key)
            if free is not None:
                frees.append(free)
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return max(min(frees), 0) if frees else None


def _cgroup_level_free(folder: Path, limit_file: str, usage_file: str, inactive_key: str) -> int | None:
    try:
        limit_text = (folder / limit_file).read_text().strip()
        if limit_text == "max" or int(limit_text) >= _NO_LIMIT:
            return None
        usage = int((folder / usage_file).read_text().strip())
    except (OSError, ValueError):
        return None
    inactive = 0
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == inactive_key:
                inactive = int(value)
    except (OSError, ValueError):
        pass
    return int(limit_text) - usage + inactive


def check_fits(generator: Generator, n: int, image_shape: Sequence[int]) -> None:
    """Refuse an ``n`` whose noise and images would not fit in memory, before anything is drawn:
    past the free memory Linux does not fail the allocation, it kills the process later."""
    latent = generator.sample_latent(1, generator=torch.Generator().manual_seed(0), device="cpu").numel()
    need = n * 4 * (latent + 3 * math.prod(image_shape))  # noise, float images, and their uint8 copy and file
    need += 8 * n if generator.num_classes else 0  # the labels
    free = available_memory()
    if free is not None and need > 0.8 * free:
        gigabytes = f"{need / 1e9:,.1f}" if need < 10**18 else f"{need // 10**9:,}"  # a float would overflow
        raise ConfigError(f"{n:,} samples need about {gigabytes} GB in memory, and {free / 1e9:,.1f} GB are "
                          "free: ask for fewer, or draw them in parts with different --seed values")


def generate(generator: Generator, n: int, *, seed: int = 0, labels: torch.Tensor | None = None,
             batch_size: int = 500) -> torch.Tensor:
    """``n`` float images in [-1, 1] on the CPU; the same seed gives the same images on any device."""
    rng = torch.Generator().manual_seed(seed)
    return sample_images(generator, n, y=labels, generator=rng, batch_size=batch_size, device="cpu").float()
