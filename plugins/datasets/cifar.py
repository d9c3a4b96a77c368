"""CIFAR-10 in its "python version" batches (``ROOT/cifar-10-batches-py/``)."""

from __future__ import annotations

import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ganzoo.errors import DatasetError

ARCHIVE = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


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


def _load_batch(path: Path) -> tuple[Any, list[int]]:
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


def _download(root: Path, folder: Path) -> None:
    """Into a temporary folder first, so a failed download leaves nothing behind."""
    with tempfile.TemporaryDirectory(prefix="ganzoo-download-") as tmp:
        try:
            import torchvision.datasets as tvd

            tvd.CIFAR10(tmp, train=True, download=True)
        except Exception as exc:
            raise DatasetError(
                f"could not download CIFAR-10 into {folder} ({type(exc).__name__}). Fetch {ARCHIVE} and unpack "
                f"it so that {folder}/data_batch_1 exists, or point --data-dir at a folder holding cifar-10-batches-py/."
            ) from None
        try:
            root.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(tmp) / folder.name), folder)
        except OSError as exc:
            raise DatasetError(f"downloaded CIFAR-10 but cannot write it to {folder}: {exc.strerror or exc}") from None


def load_cifar10(root: str | Path, *, train: bool = True, download: bool = True) -> tuple[Any, Any]:
    import numpy as np
    import torch

    root = Path(root).expanduser()
    folder = root / "cifar-10-batches-py"
    if root.name == folder.name and not folder.is_dir():
        raise DatasetError(f"--data-dir {root} looks like the cifar-10-batches-py folder itself; point --data-dir "
                           f"at the folder that holds cifar-10-batches-py/ (here: {root.parent})")
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    if not folder.is_dir() and download:
        _download(root, folder)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 files not found in {folder} (expected {', '.join(missing)}). Unpack {ARCHIVE} there, "
            "point --data-dir at the folder that holds cifar-10-batches-py/, or allow downloading."
        )
    parts = [_load_batch(folder / n) for n in names]
    data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
    labels = [label for _, ls in parts for label in ls]
    return torch.from_numpy(data), torch.tensor(labels, dtype=torch.int64)
