"""Datasets in memory: a registered dataset loaded once as one uint8 tensor, checked, and scaled to
[-1, 1] batch by batch. The loaders themselves are plugins (``plugins/datasets``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

from .errors import DatasetError
from .paths import default_data_root
from .registry import get_dataset_spec

__all__ = ["DatasetSplit", "default_data_root", "load_images", "to_uint8", "to_unit_range"]


class DatasetSplit(NamedTuple):
    """One split of a dataset: uint8 images ``[N, C, H, W]``, int64 labels ``[N]`` (or None) and
    the names of the classes (empty when it has none)."""

    images: Any
    labels: Any
    class_names: tuple[str, ...] = ()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int | None:
        if self.labels is None:
            return None
        return len(self.class_names) if self.class_names else int(self.labels.max()) + 1


def load_images(name: str, root: str | Path | None = None, *, train: bool = True, download: bool = True,
                limit: int | None = None, options: Any = None) -> DatasetSplit:
    """Load a registered dataset's training (or test) split as a :class:`DatasetSplit`.

    ``options`` is an instance of the dataset's options dataclass (``folder``'s ``image_size``,
    ...); the defaults when None.
    """
    import torch

    spec = get_dataset_spec(name)
    if options is None:
        options = spec.make_options({}, "data")
    base = Path(root).expanduser() if root else default_data_root()
    kwargs: dict[str, Any] = {"train": train, "download": download}
    if spec.parametric:
        kwargs["argument"] = name.partition(":")[2]
    if dataclasses.fields(spec.options):  # loaders without options keep the older signature
        kwargs["options"] = options
    loaded = spec.load(base, **kwargs)
    if not isinstance(loaded, tuple) or len(loaded) not in (2, 3):
        raise DatasetError(f"dataset {name!r} (plugin {spec.plugin!r}) returned {type(loaded).__name__}; "
                           "expected (images, labels) or (images, labels, class_names)")
    images, labels = loaded[0], loaded[1]
    class_names = tuple(loaded[2]) if len(loaded) == 3 and loaded[2] else tuple(spec.class_names)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise DatasetError(
            f"dataset {name!r} (plugin {spec.plugin!r}) returned {getattr(images, 'dtype', type(images).__name__)} "
            f"of shape {tuple(getattr(images, 'shape', ()))}; expected uint8 [N, C, H, W]"
        )
    if not spec.parametric and tuple(images.shape[1:]) != spec.image_shape:
        raise DatasetError(
            f"dataset {name!r} holds images of shape {tuple(images.shape[1:])}, but registered {spec.image_shape}"
        )
    if images.shape[0] == 0:
        raise DatasetError(f"dataset {name!r} holds no images")
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != images.shape[0]):
        raise DatasetError(f"dataset {name!r} returned {tuple(labels.shape)} labels for {images.shape[0]} images")
    if class_names and labels is not None and labels.numel():  # a conditional model would fail mid-training
        low, high = int(labels.min()), int(labels.max())
        if not 0 <= low <= high < len(class_names):
            raise DatasetError(f"dataset {name!r} (plugin {spec.plugin!r}) under {base} has labels from {low} to {high}, "
                               f"but its classes are 0..{len(class_names) - 1}: is its label file damaged? "
                               "(delete it and download again)")
    if limit is not None:
        images = images[:limit]
        labels = labels[:limit] if labels is not None else None
    return DatasetSplit(images.contiguous(), labels.long() if labels is not None else None,
                        class_names if labels is not None else ())


def to_unit_range(images: Any) -> Any:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Any) -> Any:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to("cpu").byte()
