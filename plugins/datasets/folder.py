"""``folder:PATH``: every image under PATH, as torchvision's ImageFolder sees it (sub-folders are
classes when every image is in one; hidden ones are skipped), resized and centre-cropped to squares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ganzoo.errors import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _image_files(folder: Path) -> list[Path]:
    """Every image under ``folder``: symlinked folders followed as torchvision's ImageFolder does
    (a link to a sibling is read under its own name too), a link back to a folder above it is not
    (so a loop ends); hidden files and folders (``.ipynb_checkpoints``, ``.thumbnails``) left out."""
    found: list[Path] = []

    def walk(path: str, above: frozenset[str]) -> None:
        real = os.path.realpath(path)
        if real in above:
            return
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            raise DatasetError(f"cannot list image folder {path}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:  # a link in a loop (ELOOP), or one the system refuses: skipped, as a dangling link is
                continue
            if is_dir:
                walk(entry.path, above | {real})
            elif is_file and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(entry.path))

    walk(str(folder), frozenset())
    return sorted(found)


def _eight_bit(img: Any) -> Any:
    """Grey images deeper than 8 bits scaled to 8 (Pillow's convert("L") would clip them: a 16-bit
    scan comes out nearly white, a float one in 0..1 black); other images as they are.

    ``I;16``: by the container (top 8 of 16 bits). ``I`` (32-bit): as 16-bit where any value is
    over 255, else as 8-bit values. ``F``: 0..1 times 255, 0..255 as it is, else its own range.
    """
    import numpy as np
    from PIL import Image

    if img.mode.startswith("I;16") or img.mode == "I":
        a = np.asarray(img).astype(np.int64)
        if img.mode.startswith("I;16") or a.max() > 255:
            a = a.clip(0, 65535) >> 8
        return Image.fromarray(a.clip(0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        low, high = a.min(), a.max()
        if low >= 0 and high <= 1:
            a = a * 255
        elif not (low >= 0 and high <= 255):
            a = (a - low) / max(high - low, 1e-12) * 255
        return Image.fromarray(a.round().clip(0, 255).astype(np.uint8), "L")
    return img


def load_folder(argument: str, *, image_size: int = 32, channels: int | None = None) -> tuple[Any, Any, tuple[str, ...]]:
    """``(images, labels or None, class names)``; ``channels`` 1 or 3, default 3 if any image has colour.
    Each image is decoded, converted and fitted before the next is read, so a folder of large
    photos needs memory for one photo and the small squares only."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    if not argument.strip():
        raise DatasetError("name the image folder: --dataset folder:PATH (e.g. folder:~/pictures/cats)")
    folder = Path(argument).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} does not exist (dataset 'folder:{argument}')")
    files = _image_files(folder)
    if not files:
        raise DatasetError(f"image folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def opened(path: Path) -> Any:
        try:
            return Image.open(path)
        except Exception as exc:  # Pillow raises many kinds for a bad file; every one names it
            raise DatasetError(f"cannot read image {path}: {exc}") from None

    if channels is None:  # from the headers alone: nothing is decoded twice
        def colour(path: Path) -> bool:
            with opened(path) as img:
                return img.mode not in _GRAY_MODES and not img.mode.startswith("I;16")

        channels = 3 if any(colour(path) for path in files) else 1
    mode = "RGB" if channels == 3 else "L"
    arrays = []
    for path in files:
        try:
            with opened(path) as img:
                picture = _eight_bit(img)
                square = ImageOps.fit(picture.convert(mode), (image_size, image_size), Image.BICUBIC)
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None
        array = np.asarray(square, dtype=np.uint8)
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    images = torch.from_numpy(np.stack(arrays))
    parts = [p.relative_to(folder).parts for p in files]
    if not all(len(part) > 1 for part in parts):
        return images, None, ()
    classes = tuple(sorted({part[0] for part in parts}))
    index = {c: i for i, c in enumerate(classes)}
    return images, torch.tensor([index[part[0]] for part in parts], dtype=torch.int64), classes
