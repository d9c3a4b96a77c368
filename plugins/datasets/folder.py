"""``folder:PATH``: every image under PATH, as torchvision's ImageFolder sees it (sub-folders are
classes when every image is in one), resized and centre-cropped to squares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganzoo.errors import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def load_folder(argument: str, *, image_size: int = 32, channels: int | None = None) -> tuple[Any, Any, tuple[str, ...]]:
    """``(images, labels or None, class names)``; ``channels`` 1 or 3, default 3 if any image has colour."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps, UnidentifiedImageError

    folder = Path(argument).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} does not exist (dataset 'folder:{argument}')")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"image folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    pictures = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
                pictures.append(img.copy())
        except (OSError, UnidentifiedImageError) as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None
    if channels is None:
        channels = 3 if any(p.mode not in _GRAY_MODES for p in pictures) else 1
    mode = "RGB" if channels == 3 else "L"
    arrays = []
    for picture in pictures:
        square = ImageOps.fit(picture.convert(mode), (image_size, image_size), Image.BICUBIC)
        array = np.asarray(square, dtype=np.uint8)
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    images = torch.from_numpy(np.stack(arrays))
    parts = [p.relative_to(folder).parts for p in files]
    if not all(len(part) > 1 for part in parts):
        return images, None, ()
    classes = tuple(sorted({part[0] for part in parts}))
    index = {c: i for i, c in enumerate(classes)}
    return images, torch.tensor([index[part[0]] for part in parts], dtype=torch.int64), classes
