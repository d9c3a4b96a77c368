"""The built-in datasets (plugins/datasets): the MNIST family's IDX files, CIFAR-10, image folders,
their error messages, and what a mistaken --data-dir does (nothing, but say so)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from conftest import make_mnist_like, write_idx
from ganzoo.cli import main
from ganzoo.data import load_images
from ganzoo.errors import DatasetError, UnknownNameError
from ganzoo_plugins.datasets.idx import IdxDataset, read_idx

FASHION_MNIST = IdxDataset("FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist")


def _folder(**values):
    from ganzoo_plugins.datasets import FolderOptions

    return FolderOptions(**values)


class Offline:
    """torchvision's dataset classes when there is no network: they create their folders, then fail."""

    def __init__(self, root, *args, **kwargs):
        from pathlib import Path

        (Path(root) / "FashionMNIST" / "raw").mkdir(parents=True, exist_ok=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error [Errno -3]>")


def test_missing_files_say_where_and_what(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_images("fashion_mnist", tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "--data-dir" in message


def test_failed_download_is_a_clear_error_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    typo = tmp_path / "does" / "not" / "exist"
    with pytest.raises(DatasetError, match=r"could not download FashionMNIST into .*RuntimeError: Error downloading"):
        FASHION_MNIST.load(typo, download=True)
    assert not (tmp_path / "does").exists()  # no empty FashionMNIST/raw tree on the user's disk
    (tmp_path / "mine").mkdir()
    with pytest.raises(DatasetError):
        FASHION_MNIST.load(tmp_path / "mine", download=True)
    assert list((tmp_path / "mine").iterdir()) == []


def test_a_successful_download_lands_in_the_root(tmp_path, monkeypatch):
    import torchvision.datasets

    from conftest import make_mnist_like

    class Online:
        def __init__(self, root, train=True, download=False):
            make_mnist_like(__import__("pathlib").Path(root), n=12, train=train)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Online)
    images, labels = FASHION_MNIST.load(tmp_path / "new", download=True)
    assert images.shape == (12, 1, 28, 28)
    assert sorted(p.name for p in (tmp_path / "new" / "FashionMNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]


@pytest.mark.parametrize("wrong", ["FashionMNIST", "FashionMNIST/raw"])
def test_data_dir_pointing_inside_the_dataset_says_where_to_point(wrong, tiny_data, tmp_path, monkeypatch, capsys):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    before = sorted(str(p) for p in tiny_data.rglob("*"))
    code = main(["train", "dcgan", "--data-dir", str(tiny_data / wrong), "--out", str(tmp_path / "run")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "point --data-dir at the folder that holds FashionMNIST/" in err and str(tiny_data) in err
    assert sorted(str(p) for p in tiny_data.rglob("*")) == before  # nothing created inside
    assert not (tmp_path / "run").exists()


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


def test_kmnist_reads_the_idx_layout(tmp_path):
    make_mnist_like(tmp_path, "KMNIST", n=12)
    images, labels, _ = load_images("kmnist", tmp_path, download=False)
    assert images.shape == (12, 1, 28, 28) and labels.max() == 9


def write_cifar(root, n=20, name="data_batch_{}", batches=range(1, 6)):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in batches:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(folder / name.format(i), "wb") as fh:
            pickle.dump({b"data": data, b"labels": [j % 10 for j in range(n)]}, fh, protocol=2)
    return folder


def test_cifar10_loads_its_batches_as_3x32x32(tmp_path):
    write_cifar(tmp_path)
    images, labels, names = load_images("cifar10", tmp_path, download=False)
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8 and labels.shape == (100,)
    assert names[0] == "airplane" and len(names) == 10


def test_cifar10_refuses_a_crafted_pickle(tmp_path):
    folder = write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "data_batch_3", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(DatasetError, match=r"data_batch_3 is not a readable CIFAR-10 batch .*refusing to load builtins.print"):
        load_images("cifar10", tmp_path, download=False)


def test_cifar10_missing_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="CIFAR-10 files not found in .*cifar-10-python.tar.gz"):
        load_images("cifar10", tmp_path, download=False)


def test_dcgan_trains_on_cifar10_shapes(tmp_path, capsys):
    write_cifar(tmp_path / "data", n=8)
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--max-steps", "1",
                 "--set", "model.width=4", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.npy").shape == (3, 3, 32, 32)


def test_image_folders_are_resized_cropped_and_labelled(tmp_path):
    for cls, colour in (("cats", (200, 10, 10)), ("dogs", (10, 200, 10))):
        (tmp_path / "pics" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (60 + 10 * i, 40), colour).save(tmp_path / "pics" / cls / f"{i}.png")
    images, labels, names = load_images(f"folder:{tmp_path / 'pics'}", options=_folder(image_size=16))
    assert images.shape == (6, 3, 16, 16) and labels.tolist() == [0, 0, 0, 1, 1, 1] and names == ("cats", "dogs")
    assert images[0, 0].float().mean() > 150 and images[3, 1].float().mean() > 150
    gray = load_images(f"folder:{tmp_path / 'pics'}", options=_folder(image_size=8, channels=1)).images
    assert gray.shape == (6, 1, 8, 8)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_images(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load_images(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read image"):
        load_images(f"folder:{tmp_path / 'bad'}")
    with pytest.raises(UnknownNameError, match="unknown dataset family 'fodler'; did you mean 'folder'"):
        ganzoo.get_dataset_spec("fodler:/x")
    from ganzoo.errors import ConfigError
    from ganzoo.registry import get_dataset_spec

    with pytest.raises(ConfigError, match="image_size"):  # 100000x100000 squares: an allocation traceback
        get_dataset_spec("folder:x").make_options({"image_size": 100000}, "data")
    for bare in ("folder", "folder:", "folder:  "):  # not the current folder, with whatever it holds
        with pytest.raises(DatasetError, match="name the image folder: --dataset folder:PATH"):
            load_images(bare)


def test_an_image_pillow_refuses_for_any_reason_names_the_file(tmp_path):
    """Pillow raises more than OSError: DecompressionBombError for a header claiming 400 MP."""
    import io
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    at = png.index(b"IHDR")
    png[at + 4: at + 12] = struct.pack(">II", 20000, 20000)
    png[at + 17: at + 21] = struct.pack(">I", zlib.crc32(bytes(png[at: at + 17])))
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "huge.png").write_bytes(bytes(png))
    with pytest.raises(DatasetError, match=r"cannot read image .*huge\.png"):
        load_images(f"folder:{tmp_path / 'pics'}", options=_folder(image_size=8))


def test_sixteen_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    (tmp_path / "pics").mkdir()
    Image.fromarray(np.full((8, 8), 30000, np.uint16)).save(tmp_path / "pics" / "scan.png")  # I;16
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(tmp_path / "pics" / "depth.tif")  # F, 0..1
    ramp = np.tile(np.linspace(10, 200, 8, dtype=np.float32), (8, 1))
    Image.fromarray(ramp).save(tmp_path / "pics" / "ramp.tif")  # F holding 0..255 values: kept, not stretched
    images = load_images(f"folder:{tmp_path / 'pics'}", options=_folder(image_size=8)).images
    assert images.shape == (3, 1, 8, 8)  # grey: one channel
    assert images[0].float().mean().item() == pytest.approx(128, abs=1)  # depth.tif: 0.5 of white
    assert images[1].float().mean().item() == pytest.approx(105, abs=2)  # ramp.tif: mean of 10..200
    assert images[2].float().mean().item() == pytest.approx(30000 >> 8, abs=1)  # scan.png: was 255, clipped


def test_hidden_folders_are_skipped_and_linked_folders_followed(tmp_path):
    pics = tmp_path / "pics"
    for cls in ("cats", ".ipynb_checkpoints"):
        (pics / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8), (200, 0, 0)).save(pics / cls / "a.png")
    (tmp_path / "elsewhere").mkdir()
    Image.new("RGB", (8, 8), (0, 200, 0)).save(tmp_path / "elsewhere" / "b.png")
    (pics / "dogs").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (pics / "cats" / "loop").symlink_to(pics, target_is_directory=True)  # a link to a folder above: a loop ends
    (pics / "cats" / "self").symlink_to(pics / "cats" / "self")  # a link to itself (ELOOP): skipped
    (pics / "cats" / "gone.png").symlink_to(tmp_path / "deleted.png")  # a dangling link: skipped
    images, labels, names = load_images(f"folder:{pics}", options=_folder(image_size=8))
    assert names == ("cats", "dogs") and labels.tolist() == [0, 1] and images.shape == (2, 3, 8, 8)
    (pics / "kittens").symlink_to(pics / "cats", target_is_directory=True)  # a sibling's alias is a class too,
    images, labels, names = load_images(f"folder:{pics}", options=_folder(image_size=8))  # whatever the listing order
    assert names == ("cats", "dogs", "kittens") and labels.tolist() == [0, 1, 2]
    assert torch.equal(images[0], images[2])


def test_damaged_gzip_body_labels_out_of_range_and_a_file_as_data_dir_are_named(tmp_path):
    import gzip
    import zlib

    root = make_mnist_like(tmp_path / "d", n=20)
    labels = root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte"
    write_idx(labels, bytes([0, 3, 12] + [1] * 17), (20,))
    with pytest.raises(DatasetError, match=r"labels from 0 to 12, but its classes are 0\.\.9"):
        load_images("fashion_mnist", root, download=False)
    body = bytearray(gzip.compress(bytes(range(256)) * 400))
    body[30] ^= 0xFF  # past the header: zlib's own error, not gzip's
    with pytest.raises(zlib.error):
        gzip.decompress(bytes(body))
    bad = tmp_path / "x-idx3-ubyte.gz"
    bad.write_bytes(bytes(body))
    with pytest.raises(DatasetError, match=r"x-idx3-ubyte\.gz.*delete it and download again"):
        read_idx(bad)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(DatasetError, match="notes.txt is a file"):
        load_images("fashion_mnist", a_file)
    assert a_file.read_text() == "mine"


def test_train_on_an_image_folder(tmp_path, capsys):
    (tmp_path / "pics").mkdir()
    for i in range(10):
        Image.new("L", (40, 40), 20 * i).save(tmp_path / "pics" / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--dataset", f"folder:{tmp_path / 'pics'}", "--max-steps", "1",
                 "--set", "model.width=4", "--set", "data.image_size=24", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "f.npy")]) == 0
    assert np.load(tmp_path / "f.npy").shape == (2, 1, 24, 24)


def test_runs_on_an_image_folder_are_named_after_it(tmp_path, capsys, monkeypatch):
    pics = tmp_path / "my pictures"
    pics.mkdir()
    for i in range(8):
        Image.new("L", (32, 32), 30 * i).save(pics / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "dcgan", "--dataset", f"folder:{pics}/", "--max-steps", "1", "--set", "model.width=4"]) == 0
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["dcgan-my_pictures"]


def test_class_names_of_an_image_folder_reach_conditional_sampling(tmp_path, capsys):
    for cls, shade in (("circles", 40), ("squares", 200)):
        (tmp_path / "pics" / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (16, 16), shade + i).save(tmp_path / "pics" / cls / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "cgan", "--dataset", f"folder:{tmp_path / 'pics'}", "--max-steps", "1", "--set",
                 "model.width=4", "--set", "data.image_size=16", "--out", str(run)]) == 0
    assert main(["sample", str(run), "--class", "squares", "--n", "2", "--out", str(tmp_path / "s.npy")]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--class", "triangles"]) == 2
    err = capsys.readouterr().err
    assert "unknown class 'triangles'" in err and "circles, squares" in err
