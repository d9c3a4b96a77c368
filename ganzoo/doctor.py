"""``ganzoo doctor``: what ganzoo sees on this machine, for bug reports and first-run trouble."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("ganzoo", "torch", "torchvision", "pluggy", "rich", "safetensors", "numpy", "pillow", "tensorboard")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _writable(folder: Path) -> str:
    probe = folder
    while not probe.exists():  # the folder would be created: check its nearest existing parent
        probe = probe.parent
    if not probe.is_dir():
        return f"no: {probe} is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"no: {exc.strerror or exc}"
    return "yes" if probe == folder else f"yes (will be created under {probe})"


def report(runs_dir: str | Path = "runs") -> dict[str, Any]:
    import torch

    from .data import default_data_root
    from .registry import get_registry

    registry = get_registry()
    data_root = default_data_root()
    device: dict[str, Any] = {
        "cuda": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
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
            "models": registry.names("model"),
            "losses": registry.names("loss"),
            "datasets": registry.names("dataset"),
        },
        "data": {
            "root": str(data_root),
            "source": "GANZOO_DATA_DIR" if os.environ.get("GANZOO_DATA_DIR") else "default",
            "present": sorted(p.name for p in data_root.iterdir() if p.is_dir()) if data_root.is_dir() else [],
            "writable": _writable(data_root),
        },
        "runs": {"folder": str(Path(runs_dir).resolve()), "writable": _writable(Path(runs_dir).resolve())},
    }
