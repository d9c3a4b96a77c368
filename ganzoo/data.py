"""Datasets: files in torchvision's layout, decoded once into one uint8 tensor in memory.

This module is also a default plugin: it registers ``fashion_mnist`` and ``mnist``. Torch is only
imported when data is loaded, so ``ganzoo list`` stays fast.
"""

from __future__ import annotations

import gzip
import os
import pickle
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


KMNIST = IdxDataset("KMNIST", "KMNIST", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/")
FASHION_MNIST = IdxDataset("FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist")
MNIST = IdxDataset("MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/")

FASHION_MNIST_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)


# --- CIFAR-10 (the "python version" batches) -----------------------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10 batch files, which hold only dicts, lists, bytes and numpy arrays.
    Anything else (a crafted file) is refused instead of executed."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_cifar_batch(path: Path) -> tuple[Any, list[int]]:
    import numpy as np

    try:
        with open(path, "rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = list(batch[b"labels"])
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != data.shape[0]:
        raise DatasetError(f"{path} holds data of shape {data.shape} with {len(labels)} labels; expected [N, 3072]")
    return data, labels


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10(root: str | Path, *, train: bool = True, download: bool = True) -> tuple[Any, Any]:
    import numpy as np
    import torch

    folder = Path(root).expanduser() / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    if not all((folder / n).is_file() for n in names) and download:
        try:
            import torchvision.datasets as tvd

            tvd.CIFAR10(str(Path(root).expanduser()), train=train, download=True)
        except Exception as exc:
            raise DatasetError(
                f"could not download CIFAR-10 into {folder} ({type(exc).__name__}). Fetch "
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it so that "
                f"{folder}/data_batch_1 exists, or point --data-dir at a folder holding cifar-10-batches-py/."
            ) from None
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 files not found in {folder} (expected {', '.join(missing)}). Unpack "
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz there, point --data-dir at the folder "
            "that holds cifar-10-batches-py/, or allow downloading."
        )
    parts = [_load_cifar_batch(folder / n) for n in names]
    data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
    labels = [label for _, ls in parts for label in ls]
    return torch.from_numpy(data), torch.tensor(labels, dtype=torch.int64)


# --- any image folder ---------------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_folder(root: str | Path, *, train: bool = True, download: bool = True, argument: str = "",
                image_size: int | None = None, channels: int | None = None) -> tuple[Any, Any]:
    """``folder:PATH``: every image under PATH, resized (shorter side) and centre-cropped to
    ``image_size`` (default 32). Sub-folders of PATH become classes, as in torchvision's ImageFolder.
    ``channels`` 1 or 3; default 3 if any image has colour, else 1."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    folder = Path(argument).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} does not exist (dataset 'folder:{argument}')")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"image folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    size = image_size or 32
    classes = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    pictures = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
                pictures.append(img.copy())
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None
    if channels is None:
        channels = 3 if any(p.mode not in ("1", "L", "LA", "I", "I;16", "F") for p in pictures) else 1
    mode = "RGB" if channels == 3 else "L"
    arrays = []
    for picture in pictures:
        picture = picture.convert(mode)
        scale = size / min(picture.size)
        w, h = max(size, round(picture.width * scale)), max(size, round(picture.height * scale))
        picture = picture.resize((w, h), Image.BICUBIC)
        left, top = (w - size) // 2, (h - size) // 2
        picture = picture.crop((left, top, left + size, top + size))
        array = np.asarray(picture, dtype=np.uint8)
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    images = torch.from_numpy(np.stack(arrays))
    labels = None
    if classes and all(len(p.relative_to(folder).parts) > 1 for p in files):
        index = {c: i for i, c in enumerate(classes)}
        labels = torch.tensor([index[p.relative_to(folder).parts[0]] for p in files], dtype=torch.int64)
    return images, labels


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
    register(
        "kmnist", KMNIST.load, image_shape=(1, 28, 28), num_classes=10,
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        description="Kuzushiji-MNIST: 70,000 28x28 cursive Japanese characters in 10 classes",
    )
    register(
        "cifar10", load_cifar10, image_shape=(3, 32, 32), num_classes=10, class_names=CIFAR10_CLASSES,
        description="60,000 32x32 colour images in 10 classes",
    )
    register(
        "folder", load_folder, image_shape=(3, 32, 32), parametric=True,
        description="folder:PATH - any image folder, resized and centre-cropped (data.image_size, data.channels)",
    )


# --- in memory ----------------------------------------------------------------------------------

def load_images(name: str, root: str | Path | None = None, *, train: bool = True, download: bool = True,
                limit: int | None = None, image_size: int | None = None,
                channels: int | None = None) -> tuple[Any, Any]:
    """Load a registered dataset as ``(uint8 images [N, C, H, W], int64 labels [N] or None)``."""
    import torch

    from .registry import get_dataset_spec

    spec = get_dataset_spec(name)
    base = Path(root) if root else default_data_root()
    if spec.parametric:
        images, labels = spec.load(base, train=train, download=download, argument=name.partition(":")[2],
                                   image_size=image_size, channels=channels)
    else:
        images, labels = spec.load(base, train=train, download=download)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise DatasetError(
            f"dataset {name!r} (plugin {spec.plugin!r}) returned {getattr(images, 'dtype', type(images).__name__)} "
            f"of shape {tuple(getattr(images, 'shape', ()))}; expected uint8 [N, C, H, W]"
        )
    if not spec.parametric and tuple(images.shape[1:]) != spec.image_shape:
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
