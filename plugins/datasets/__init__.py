"""The datasets ganzoo ships: the MNIST family and CIFAR-10 in torchvision's folder layout, and
``folder:PATH`` for any image folder. Registration only; torch is imported when data is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ganzoo import hookimpl, option

FASHION_MNIST_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class FolderOptions:
    image_size: int = option(32, min=4, max=2048, help="side of the square images (shorter side resized, then centre-cropped)")
    channels: Literal[1, 3] | None = option(None, help="1 or 3; default 3 if any image has colour, else 1")


def _idx(folder: str, torchvision_class: str, mirror: str) -> Any:
    def load(root: Any, *, train: bool = True, download: bool = True) -> Any:
        from .idx import IdxDataset

        return IdxDataset(folder, torchvision_class, mirror).load(root, train=train, download=download)

    return load


def _cifar10(root: Any, *, train: bool = True, download: bool = True) -> Any:
    from .cifar import load_cifar10

    return load_cifar10(root, train=train, download=download)


def _folder(root: Any, *, train: bool = True, download: bool = True, options: FolderOptions, argument: str) -> Any:
    from .folder import load_folder

    return load_folder(argument, image_size=options.image_size, channels=options.channels)


@hookimpl
def register_datasets(register: Any) -> None:
    register("fashion_mnist", _idx("FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist"),
             image_shape=(1, 28, 28), num_classes=10, class_names=FASHION_MNIST_CLASSES, default=True,
             description="Zalando's 70,000 28x28 grayscale garments in 10 classes")
    register("mnist", _idx("MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
             image_shape=(1, 28, 28), num_classes=10, class_names=tuple(str(i) for i in range(10)),
             description="LeCun's 70,000 28x28 grayscale handwritten digits")
    register("kmnist", _idx("KMNIST", "KMNIST", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
             image_shape=(1, 28, 28), num_classes=10, class_names=KMNIST_CLASSES,
             description="Kuzushiji-MNIST: 70,000 28x28 cursive Japanese characters in 10 classes")
    register("cifar10", _cifar10, image_shape=(3, 32, 32), num_classes=10, class_names=CIFAR10_CLASSES,
             description="60,000 32x32 colour images in 10 classes")
    register("folder", _folder, image_shape=(3, 32, 32), parametric=True, options=FolderOptions,
             description="folder:PATH - any image folder, resized and centre-cropped; sub-folders are classes")
