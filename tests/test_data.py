import gzip

import pytest
import torch

from conftest import make_mnist_like, write_idx
from ganzoo.data import FASHION_MNIST, load_images, read_idx, to_uint8, to_unit_range
from ganzoo.errors import DatasetError


def test_loads_idx_files_in_torchvision_layout(tiny_data):
    images, labels = load_images("fashion_mnist", tiny_data, download=False)
    assert images.dtype == torch.uint8 and images.shape == (96, 1, 28, 28)
    assert labels.dtype == torch.int64 and labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert images[3, 0, 10, 10].item() == 255  # class 3 has its bar on row 10
    gz_images, _ = load_images("mnist", tiny_data, download=False, limit=10)  # gzipped copy
    assert gz_images.shape == (10, 1, 28, 28)


def test_scaling_to_minus_one_one_and_back():
    x = torch.tensor([0, 127, 128, 255], dtype=torch.uint8)
    y = to_unit_range(x)
    assert y.tolist() == pytest.approx([-1.0, -0.00392, 0.00392, 1.0], abs=1e-4)
    assert torch.equal(to_uint8(y), x)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_missing_files_say_where_and_what(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_images("fashion_mnist", tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "--data-dir" in message


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error [Errno -3]>")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    with pytest.raises(DatasetError, match=r"could not download FashionMNIST into .*RuntimeError: Error downloading"):
        FASHION_MNIST.load(tmp_path, download=True)


def test_truncated_file_names_the_file(tiny_data):
    path = tiny_data / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte is truncated: .*96x28x28"):
        load_images("fashion_mnist", tiny_data, download=False)


def test_corrupt_gzip_and_bad_magic_name_the_file(tmp_path):
    bad = tmp_path / "x-idx3-ubyte.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="x-idx3-ubyte.gz"):
        read_idx(bad)
    wrong = tmp_path / "y"
    wrong.write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00")
    with pytest.raises(DatasetError, match="bad magic number"):
        read_idx(wrong)


def test_label_count_must_match_images(tmp_path):
    root = make_mnist_like(tmp_path, n=20)
    write_idx(root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte", bytes(5), (5,))
    with pytest.raises(DatasetError, match="5 labels for 20 images"):
        load_images("fashion_mnist", root, download=False)


def test_wrong_image_size_is_reported(tmp_path):
    root = make_mnist_like(tmp_path, size=32, n=10)
    with pytest.raises(DatasetError, match=r"shape \(1, 32, 32\), but registered \(1, 28, 28\)"):
        load_images("fashion_mnist", root, download=False)
