"""``ganzoo doctor``: what ganzoo sees on this machine, for bug reports and first-run trouble."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .paths import DATA_DIR_ENV, default_data_root
from .rundir import check_writable

PACKAGES = ("ganzoo", "torch", "torchvision", "pluggy", "rich", "safetensors", "numpy", "pillow", "tensorboard")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _writable(folder: Path) -> str:
    try:
        check_writable(folder)
    except ConfigError as exc:
        return "no: " + str(exc).partition(": ")[2]
    return "yes" if folder.is_dir() else "yes (will be created)"


def _holds_files(folder: Path) -> bool:
    """True when ``folder`` holds at least one non-empty file, at any depth (an empty
    ``FashionMNIST/raw`` tree left by a failed download does not count)."""
    return any(p.is_file() and p.stat().st_size > 0 for p in folder.rglob("*"))


def report(runs_dir: str | Path = "runs") -> dict[str, Any]:
    import torch

    from .device import cpu_capability, cpu_has_bf16, cpu_model
    from .registry import SPEC_TYPES, get_registry

    registry = get_registry()
    data_root = default_data_root()
    device: dict[str, Any] = {
        "cuda": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "cpu": cpu_model(),
        "cpu_capability": cpu_capability(),
        "cpu_bf16": cpu_has_bf16(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "device": device,
        "plugins": {
            "loaded": sorted(registry.plugins.infos),
            "failed": [str(f) for f in registry.failures],
            **{spec.plural: registry.names(kind) for kind, spec in SPEC_TYPES.items()},
        },
        "data": {
            "root": str(data_root),
            "source": DATA_DIR_ENV if os.environ.get(DATA_DIR_ENV) else "default",
            "present": sorted(p.name for p in data_root.iterdir() if p.is_dir() and _holds_files(p))
            if data_root.is_dir() else [],
            "writable": _writable(data_root),
        },
        "runs": {"folder": str(Path(runs_dir).resolve()), "writable": _writable(Path(runs_dir).resolve())},
    }
