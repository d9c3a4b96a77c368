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
    """Every image under ``folder``: symlinked folders followed (each real folder once, so a link
    loop ends), hidden files and folders (``.ipynb_checkpoints``, ``.thumbnails``) left out."""
    seen: set[str] = set()
    found = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / n for n in names if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(p for p in found if p.is_file())


def _eight_bit(img: Any) -> Any:
    """16-bit and float grey images scaled to 8 bits (Pillow's convert("L") would clip them:
    a 16-bit scan comes out nearly white, a float one nearly black); other images as they are."""
    import numpy as np
    from PIL import Image

    if img.mode.startswith("I;16") or img.mode == "I":
        a = np.asarray(img).astype(np.int64)
        if img.mode.startswith("I;16") or a.max() > 255:
            a = a >> 8
        return Image.fromarray(a.clip(0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = np.nan_to_num(a)
        low, high = (0.0, 1.0) if a.min() >= 0 and a.max() <= 1 else (a.min(), max(a.max(), a.min() + 1e-12))
        return Image.fromarray(((a - low) / (high - low) * 255).round().clip(0, 255).astype(np.uint8), "L")
    return img


def load_folder(argument: str, *, image_size: int = 32, channels: int | None = None) -> tuple[Any, Any, tuple[str, ...]]:
    """``(images, labels or None, class names)``; ``channels`` 1 or 3, default 3 if any image has colour.
    Each image is decoded, converted and fitted before the next is read, so a folder of large
    photos needs memory for the small squares only."""
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
                img.draft(mode, (image_size * 2, image_size * 2))  # a JPEG decodes at a fraction of its size
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
