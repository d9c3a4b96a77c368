"""Datasets in memory (ganzoo.data): loading a registered dataset, checks on what a loader returns, scaling."""

from __future__ import annotations

import pytest
import torch

from ganzoo import hookimpl
from ganzoo.data import DatasetSplit, load_images, to_uint8, to_unit_range
from ganzoo.errors import DatasetError


def test_loads_idx_files_in_torchvision_layout(tiny_data):
    images, labels, names = load_images("fashion_mnist", tiny_data, download=False)
    assert images.dtype == torch.uint8 and images.shape == (96, 1, 28, 28)
    assert labels.dtype == torch.int64 and labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert images[3, 0, 10, 10].item() == 255  # class 3 has its bar on row 10
    gz_images, _, _ = load_images("mnist", tiny_data, download=False, limit=10)  # gzipped copy
    assert gz_images.shape == (10, 1, 28, 28)


def test_scaling_to_minus_one_one_and_back():
    x = torch.tensor([0, 127, 128, 255], dtype=torch.uint8)
    y = to_unit_range(x)
    assert y.tolist() == pytest.approx([-1.0, -0.00392, 0.00392, 1.0], abs=1e-4)
    assert torch.equal(to_uint8(y), x)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]




def test_registered_class_names_come_with_the_split(tiny_data):
    split = load_images("fashion_mnist", tiny_data, download=False)
    assert isinstance(split, DatasetSplit) and split.class_names[7] == "sneaker"
    assert split.image_shape == (1, 28, 28) and split.num_classes == 10


class Loaders:
    """A plugin whose datasets return what the contract allows, and what it does not."""

    @hookimpl
    def register_datasets(self, register):
        def three(root, *, train, download):
            return torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 2, 1]), ("a", "b", "c")

        def old_style(root, *, train, download):  # ganzoo 0.1's contract: two values, no options
            return torch.zeros(3, 1, 8, 8, dtype=torch.uint8), None

        def floats(root, *, train, download):
            return torch.zeros(2, 1, 8, 8), None

        def mismatched(root, *, train, download):
            return torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 1])

        for name, load in (("three", three), ("old-style", old_style), ("floats", floats), ("mismatched", mismatched)):
            register(name, load, image_shape=(1, 8, 8))


@pytest.fixture
def loaders():
    import ganzoo

    ganzoo.add_plugin(Loaders(), name="loaders")


def test_what_a_loader_returns_is_checked(loaders, tmp_path):
    split = load_images("three", tmp_path)
    assert split.class_names == ("a", "b", "c") and split.num_classes == 3
    old = load_images("old-style", tmp_path)
    assert old.labels is None and old.class_names == () and old.num_classes is None
    with pytest.raises(DatasetError, match=r"dataset 'floats' \(plugin 'loaders'\) returned torch.float32"):
        load_images("floats", tmp_path)
    with pytest.raises(DatasetError, match=r"returned \(3,\) labels for 2 images"):
        load_images("mismatched", tmp_path)
