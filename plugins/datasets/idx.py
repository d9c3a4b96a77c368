"""The MNIST family: IDX files of unsigned bytes under ``ROOT/<Folder>/raw/``, plain or gzipped.

ganzoo reads them itself rather than through torchvision's reader: that one reads only unpacked
files (the official downloads are ``.gz``), does not name a truncated file, and importing
torchvision adds about 1.5 s to every start (docs/benchmarks.md). torchvision still downloads.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganzoo.errors import DatasetError
from ganzoo.paths import DATA_DIR_ENV

_UNSIGNED_BYTE = 0x08


def read_idx(path: Path) -> Any:
    """Read an IDX file of unsigned bytes (optionally gzipped) into a uint8 tensor."""
    import torch

    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:  # zlib: a gzip damaged past its header
        raise DatasetError(f"cannot read {path}: {exc}; delete it and download again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UNSIGNED_BYTE:
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
        raise DatasetError(
            f"{path} is truncated: its header promises {'x'.join(map(str, dims))} values ({expected} bytes) "
            f"but it holds {len(raw) - header}; delete it and download again"
        )
    return torch.frombuffer(bytearray(raw[header: header + expected]), dtype=torch.uint8).reshape(dims)


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

    def _misplaced_root(self, root: Path) -> Path | None:
        """The folder --data-dir should have named, when it names ``FashionMNIST/`` or ``FashionMNIST/raw/``."""
        def has_files(folder: Path) -> bool:
            return any(self._find(folder, s) for pair in self.files.values() for s in pair)

        if root.name == "raw" and (root.parent.name == self.folder or has_files(root)):
            return root.parent.parent
        if root.name == self.folder or has_files(root / "raw"):
            return root.parent
        return None

    def load(self, root: str | Path, *, train: bool = True, download: bool = True) -> tuple[Any, Any]:
        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            raise DatasetError(f"--data-dir {root} is a file; point it at the folder that holds {self.folder}/ "
                               "(or at an empty folder to download into)")
        raw = root / self.folder / "raw"
        stems = self.files[train]
        paths = [self._find(raw, s) for s in stems]
        if None in paths:
            better = self._misplaced_root(root)
            if better is not None:
                raise DatasetError(
                    f"--data-dir {root} looks like the {self.folder} folder itself; point --data-dir at the "
                    f"folder that holds {self.folder}/ (here: {better})"
                )
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
        """Download into a temporary folder and move the files into ``root`` only when it succeeded,
        so a failed download (no network, a typo in --data-dir) creates nothing on the user's disk."""
        target = root / self.folder / "raw"
        with tempfile.TemporaryDirectory(prefix="ganzoo-download-") as tmp:
            try:
                import torchvision.datasets as tvd

                for train in (True, False):
                    getattr(tvd, self.torchvision_class)(tmp, train=train, download=True)
            except Exception as exc:  # no network, a proxy, a full disk: say where the files must go
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "no details"
                raise DatasetError(
                    f"could not download {self.folder} into {target} ({type(exc).__name__}: {detail}). Fetch "
                    f"{', '.join(f'{s}.gz' for pair in self.files.values() for s in pair)} from {self.mirror} "
                    f"into that folder, or point --data-dir at a folder that already holds {self.folder}/raw/."
                ) from None
            try:
                target.mkdir(parents=True, exist_ok=True)
                for file in (Path(tmp) / self.folder / "raw").iterdir():
                    shutil.move(str(file), target / file.name)
            except OSError as exc:
                raise DatasetError(f"downloaded {self.folder} but cannot write it to {target}: "
                                   f"{exc.strerror or exc}") from None
