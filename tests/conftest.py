from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest

# Installed third-party plugins must not leak into ganzoo's own test run.
os.environ["GANZOO_DISABLE_PLUGIN_AUTOLOAD"] = "1"
os.environ.pop("GANZOO_PLUGINS", None)


def write_idx(path: Path, data: bytes, dims: tuple[int, ...], *, compress: bool = False) -> Path:
    """Write an IDX file of unsigned bytes, as the MNIST family ships them."""
    payload = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def make_mnist_like(root: Path, folder: str = "FashionMNIST", n: int = 96, size: int = 28, *,
                    compress: bool = False, train: bool = True) -> Path:
    """A tiny dataset in torchvision's layout: class k is a bright bar at row 2k+4 on noise."""
    import random

    rng = random.Random(0)
    images = bytearray()
    labels = bytearray()
    for i in range(n):
        label = i % 10
        img = bytearray(rng.randrange(0, 40) for _ in range(size * size))
        row = 2 * label + 4
        for col in range(4, size - 4):
            img[row * size + col] = 255
            img[(row + 1) * size + col] = 230
        images += img
        labels.append(label)
    raw = root / folder / "raw"
    prefix = "train" if train else "t10k"
    write_idx(raw / f"{prefix}-images-idx3-ubyte", bytes(images), (n, size, size), compress=compress)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", bytes(labels), (n,), compress=compress)
    return root


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A dataset root holding a 96-image FashionMNIST and MNIST in torchvision's layout."""
    root = tmp_path / "datasets"
    make_mnist_like(root, "FashionMNIST")
    make_mnist_like(root, "MNIST", compress=True)
    return root


@pytest.fixture(autouse=True)
def cpu_unless_marked_cuda(request, monkeypatch):
    """The suite means the CPU unless a test is marked ``cuda``: on a machine with a GPU, `auto`
    would otherwise pick it (and bf16, channels-last, nondeterministic kernels) for every run.
    CUDA tests skip, with the reason, where there is no GPU."""
    import torch

    if request.node.get_closest_marker("cuda"):
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")
        return
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # for the subprocesses a test starts
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test sees a registry loaded from scratch, and leaves none behind."""
    from ganzoo.registry import reset_registry

    reset_registry()
    yield
    reset_registry()


def make_trainer(run: Path, data: Path, model: str, *, width: int = 8, batch_size: int = 24, **train):
    """A Trainer for ``model`` on a tiny dataset root, fp32 unless asked, without plugin events."""
    from ganzoo.config import resolve_config
    from ganzoo.rundir import RunDir
    from ganzoo.trainer import Trainer

    raw = {"model": {"name": model, "width": width}, "data": {"name": "fashion_mnist", "root": str(data), "download": False},
           "train": {"batch_size": batch_size, "max_steps": 2, "precision": "fp32", **train}}
    if model == "wgan-gp":
        raw["loss"] = {"name": "wgan-gp"}
    return Trainer(resolve_config(raw), RunDir(run), plugin_events=False)
