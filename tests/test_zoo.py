"""The zoo composes: every (model, loss) pair the registry allows trains a step and samples."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import main
from ganzoo.config import resolve_config
from ganzoo.data import load_images
from ganzoo.errors import ConfigError, DatasetError, UnknownNameError
from ganzoo.rundir import RunDir
from ganzoo.trainer import Trainer

PAIRS = list(itertools.product(ganzoo.list_models(), ganzoo.list_losses()))


@pytest.mark.parametrize(("model", "loss"), PAIRS, ids=[f"{m}+{l}" for m, l in PAIRS])
def test_every_allowed_pair_trains_a_step_and_samples(model, loss, tiny_data, tmp_path):
    small = {"width": 4} if model != "vanilla" else {"g_hidden": [16], "d_hidden": [16]}
    config = resolve_config({
        "model": {"name": model, **small}, "loss": {"name": loss},
        "data": {"root": str(tiny_data), "download": False, "limit": 16},
        "train": {"batch_size": 8, "max_steps": 1, "precision": "fp32"},
    })
    try:
        trainer = Trainer(config, RunDir(tmp_path / "run"), plugin_events=False)
    except ConfigError as exc:  # a combination the loss refuses, with the reason
        assert loss == "wgan-gp" and "cannot train model" in str(exc)
        assert ganzoo.create_loss(loss).check(ganzoo.create_model(model, num_classes=10)) is not None
        return
    summary = trainer.fit()
    assert summary["steps"] == 1 and all(np.isfinite(v) for v in summary["final"].values())
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()


def test_d_steps_updates_the_generator_once_every_k_critic_steps(tiny_data, tmp_path):
    config = resolve_config({
        "model": {"name": "wgan-gp", "width": 4}, "loss": {"name": "wgan-gp"},
        "data": {"root": str(tiny_data), "download": False},
        "train": {"batch_size": 8, "max_steps": 6, "d_steps": 3, "precision": "fp32"},
    })
    trainer = Trainer(config, RunDir(tmp_path / "run"), plugin_events=False)
    images = trainer.images[:8].float() / 127.5 - 1
    g_changes, d_changes = [], []
    for _ in range(6):
        g_before = [p.detach().clone() for p in trainer.gan.generator.parameters()]
        d_before = [p.detach().clone() for p in trainer.gan.discriminator.parameters()]
        out = trainer.train_step(images, None)
        trainer.state.step += 1
        g_changes.append(any(not torch.equal(a, b) for a, b in zip(g_before, trainer.gan.generator.parameters())))
        d_changes.append(any(not torch.equal(a, b) for a, b in zip(d_before, trainer.gan.discriminator.parameters())))
        assert ("g_loss" in out) == g_changes[-1]
    assert d_changes == [True] * 6
    assert g_changes == [False, False, True, False, False, True]


def test_wasserstein_loss_refuses_a_batchnorm_critic_from_the_cli(tiny_data, tmp_path, capsys):
    code = main(["train", "dcgan", "--loss", "wgan-gp", "--data-dir", str(tiny_data), "--out", str(tmp_path / "r"),
                 "--set", "model.d_batchnorm=true"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "loss 'wgan-gp' cannot train model 'dcgan': the critic uses BatchNorm" in err


def test_conditional_runs_sample_by_class(tiny_data, tmp_path, capsys):
    run = tmp_path / "cgan"
    assert main(["train", "cgan", "--data-dir", str(tiny_data), "--max-steps", "2", "--batch-size", "16",
                 "--set", "model.width=4", "--out", str(run)]) == 0
    with Image.open(run / "samples" / "epoch_0001.png") as grid:  # a row of 8 per class: 10 rows
        assert grid.size == (2 * (8 * 30 + 2), 2 * (10 * 30 + 2))
    capsys.readouterr()
    for chosen in ("sandal", "5"):
        assert main(["sample", str(run), "--class", chosen, "--n", "6", "--out", str(tmp_path / f"{chosen}.npy")]) == 0
    a, b = np.load(tmp_path / "sandal.npy"), np.load(tmp_path / "5.npy")
    assert a.shape == (6, 1, 28, 28) and np.array_equal(a, b)  # 'sandal' is class 5 of Fashion-MNIST
    assert main(["sample", str(run), "--class", "7", "--n", "6", "--out", str(tmp_path / "7.npy")]) == 0
    assert not np.array_equal(a, np.load(tmp_path / "7.npy"))
    capsys.readouterr()
    assert main(["sample", str(run), "--class", "sandle"]) == 2
    assert "did you mean 'sandal'" in capsys.readouterr().err
    assert main(["sample", str(run), "--class", "12"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_class_sampling_is_refused_for_unconditional_runs(tiny_data, tmp_path, capsys):
    run = tmp_path / "dcgan"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--max-steps", "1", "--set", "model.width=4",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--class", "sneaker"]) == 2
    assert "unconditional" in capsys.readouterr().err


def test_generator_ema_is_kept_resumed_and_used_for_sampling(tiny_data, tmp_path, capsys):
    from ganzoo.checkpoint import load_checkpoint, split_prefix
    from ganzoo.sampling import load_generator

    common = ["--data-dir", str(tiny_data), "--set", "model.width=4", "--batch-size", "16",
              "--set", "train.ema_decay=0.9", "--seed", "1"]
    assert main(["train", "dcgan", "--epochs", "2", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["train", "dcgan", "--epochs", "1", "--out", str(tmp_path / "b"), *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "--epochs", "2"]) == 0
    ta, _ = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.safetensors")
    tb, _ = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.safetensors")
    ema, raw = split_prefix(ta, "generator_ema"), split_prefix(ta, "generator")
    assert ema.keys() == raw.keys()
    assert not torch.equal(ema["project.weight"], raw["project.weight"])  # an average, not a copy
    assert all(torch.equal(ema[k], split_prefix(tb, "generator_ema")[k]) for k in ema)  # exact resume
    generator, meta = load_generator(tmp_path / "a")
    assert meta["sampled_from"] == "generator_ema"
    assert torch.equal(generator.state_dict()["project.weight"], ema["project.weight"])


def test_kmnist_reads_the_idx_layout(tmp_path):
    from conftest import make_mnist_like

    make_mnist_like(tmp_path, "KMNIST", n=12)
    images, labels = load_images("kmnist", tmp_path, download=False)
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
    images, labels = load_images("cifar10", tmp_path, download=False)
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8 and labels.shape == (100,)


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
    images, labels = load_images(f"folder:{tmp_path / 'pics'}", image_size=16)
    assert images.shape == (6, 3, 16, 16) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert images[0, 0].float().mean() > 150 and images[3, 1].float().mean() > 150
    gray, _ = load_images(f"folder:{tmp_path / 'pics'}", image_size=8, channels=1)
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
