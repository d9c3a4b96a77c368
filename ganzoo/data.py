"""Datasets: files in torchvision's layout, decoded once into one uint8 tensor in memory.

This module is also a default plugin: it registers ``fashion_mnist`` and ``mnist``. Torch is only
imported when data is loaded, so ``ganzoo list`` stays fast.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DatasetError
from .hookspecs import hookimpl

DATA_DIR_ENV = "GANZOO_DATA_DIR"


def default_data_root() -> Path:
    """``$GANZOO_DATA_DIR``, else ``$XDG_CACHE_HOME/ganzoo/datasets`` (``~/.cache/ganzoo/datasets``)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ganzoo" / "datasets"


# --- IDX files (the MNIST family) -----------------------------------------------------------------

_IDX_UBYTE = 0x08


def read_idx(path: Path) -> Any:
    """Read an IDX file of unsigned bytes (optionally gzipped) into a uint8 tensor."""
    import torch

    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path} is truncated (incomplete IDX header)")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 1
    for d in dims:
        expected *= d
    if len(raw) - header < expected:
        shape = "x".join(map(str, dims))
        raise DatasetError(
            f"{path} is truncated: its header promises {shape} values ({expected} bytes) "
            f"but it holds {len(raw) - header}; delete it and download again"
        )
    data = torch.frombuffer(bytearray(raw[header: header + expected]), dtype=torch.uint8)
    return data.reshape(dims)


@dataclass(frozen=True)
class IdxDataset:
    """A dataset of the MNIST family stored as IDX files under ``ROOT/<folder>/raw/``."""

    folder: str
    torchvision_class: str
    mirror: str

    files = {
        True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }

    def _find(self, raw: Path, stem: str) -> Path | None:
        for candidate in (raw / stem, raw / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        return None

    def load(self, root: str | Path, *, train: bool = True, download: bool = True) -> tuple[Any, Any]:
        root = Path(root).expanduser()
        raw = root / self.folder / "raw"
        stems = self.files[train]
        paths = [self._find(raw, s) for s in stems]
        if None in paths and download:
            self._download(root)
            paths = [self._find(raw, s) for s in stems]
        if None in paths:
            missing = ", ".join(f"{s}[.gz]" for s, p in zip(stems, paths) if p is None)
            raise DatasetError(
                f"{self.folder} files not found in {raw} (expected {missing}). "
                f"Download them from {self.mirror} into that folder, point --data-dir (or "
                f"${DATA_DIR_ENV}) at the folder that holds {self.folder}/, or allow downloading."
            )
        images, labels = (read_idx(p) for p in paths)  # type: ignore[arg-type]
        if images.ndim != 3:
            raise DatasetError(f"{paths[0]} holds {images.ndim}-d data, expected images [N, H, W]")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DatasetError(
                f"{paths[1]} holds {labels.shape[0] if labels.ndim else 0} labels for "
                f"{images.shape[0]} images in {paths[0]}"
            )
        return images.unsqueeze(1), labels.long()

    def _download(self, root: Path) -> None:
        try:
            import torchvision.datasets as tvd

            for train in (True, False):
                getattr(tvd, self.torchvision_class)(str(root), train=train, download=True)
        except Exception as exc:  # no network, a proxy, a full disk: say where the files must go
            raise DatasetError(
                f"could not download {self.folder} into {root / self.folder / 'raw'} ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no details'}). Fetch "
                f"{', '.join(f'{s}.gz' for pair in self.files.values() for s in pair)} from {self.mirror} "
                f"into that folder, or point --data-dir at a folder that already holds {self.folder}/raw/."
            ) from None


FASHION_MNIST = IdxDataset("FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist")
MNIST = IdxDataset("MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/")

FASHION_MNIST_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)


@hookimpl
def register_datasets(register: Any) -> None:
    register(
        "fashion_mnist", FASHION_MNIST.load, image_shape=(1, 28, 28), num_classes=10,
        class_names=FASHION_MNIST_CLASSES,
        description="Zalando's 70,000 28x28 grayscale garments in 10 classes",
    )
    register(
        "mnist", MNIST.load, image_shape=(1, 28, 28), num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        description="LeCun's 70,000 28x28 grayscale handwritten digits",
    )


# --- in memory ----------------------------------------------------------------------------------

def load_images(name: str, root: str | Path | None = None, *, train: bool = True, download: bool = True,
                limit: int | None = None) -> tuple[Any, Any]:
    """Load a registered dataset as ``(uint8 images [N, C, H, W], int64 labels [N] or None)``."""
    import torch

    from .registry import get_dataset_spec

    spec = get_dataset_spec(name)
    images, labels = spec.load(Path(root) if root else default_data_root(), train=train, download=download)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise DatasetError(
            f"dataset {name!r} (plugin {spec.plugin!r}) returned {getattr(images, 'dtype', type(images).__name__)} "
            f"of shape {tuple(getattr(images, 'shape', ()))}; expected uint8 [N, C, H, W]"
        )
    if tuple(images.shape[1:]) != spec.image_shape:
        raise DatasetError(
            f"dataset {name!r} holds images of shape {tuple(images.shape[1:])}, "
            f"but registered {spec.image_shape}"
        )
    if images.shape[0] == 0:
        raise DatasetError(f"dataset {name!r} holds no images")
    if limit is not None:
        images = images[:limit]
        labels = labels[:limit] if labels is not None else None
    return images.contiguous(), labels


def to_unit_range(images: Any) -> Any:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Any) -> Any:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to("cpu").byte()
