"""The Python API: ganzoo.train does exactly what `ganzoo train` does, and nothing before training starts."""

from __future__ import annotations

import pytest
import torch

import ganzoo
from ganzoo.checkpoint import load_checkpoint, split_prefix
from ganzoo.cli import main
from ganzoo.errors import ConfigError, DatasetError, GanzooError


def test_train_reproduces_the_command_exactly(tiny_data, tmp_path, capsys):
    argv = ["train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "2", "--batch-size", "32", "--seed", "5",
            "--set", "model.width=8", "--set", "d_optimizer.name=sgd", "--out", str(tmp_path / "cli")]
    assert main(argv) == 0
    run = ganzoo.train("dcgan", data_dir=tiny_data, epochs=2, batch_size=32, seed=5,
                       overrides={"model.width": 8, "d_optimizer.name": "sgd"}, out=tmp_path / "api")
    assert isinstance(run, ganzoo.Run) and run.summary["status"] == "completed" and run.summary["steps"] == 6
    assert (tmp_path / "cli" / "config.toml").read_text() == (tmp_path / "api" / "config.toml").read_text()
    a, _ = load_checkpoint(tmp_path / "cli" / "checkpoints" / "last.safetensors")
    b, _ = load_checkpoint(run.path / "checkpoints" / "last.safetensors")
    for prefix in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        wa, wb = split_prefix(a, prefix), split_prefix(b, prefix)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), prefix
    assert [p.name for p in run.grids] == ["epoch_0000.png", "epoch_0001.png", "epoch_0002.png"]
    assert run.sample(5).shape == (5, 1, 28, 28)
    assert "<img" in run._repr_html_()
    made_by_the_cli = ganzoo.Run.open(tmp_path / "cli")  # a run the command line made, opened from Python
    assert made_by_the_cli.config == run.config and made_by_the_cli.summary["steps"] == 6
    assert torch.equal(made_by_the_cli.sample(5, seed=2), run.sample(5, seed=2))
    assert run.sample(torch.tensor(3)).shape == (3, 1, 28, 28)  # any integer type: torch's, numpy's
    for n in (0, -1, 2.5):
        with pytest.raises(GanzooError, match="n must be a whole number of at least 1"):
            run.sample(n)
    with pytest.raises(GanzooError, match="n must be a whole number of at least 10, got 1"):
        run.evaluate(n=1)


def test_opening_what_is_not_a_run_names_the_path(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    for path, words in ((tmp_path / "missing", "does not exist"), (tmp_path / "notes.txt", "is not a run folder"),
                        (tmp_path, "holds no checkpoint")):
        with pytest.raises(GanzooError, match=words) as caught:
            ganzoo.Run.open(path)
        assert str(path) in str(caught.value)


def test_train_resumes_and_says_when_there_is_nothing_left(tiny_data, tmp_path):
    common = dict(data_dir=tiny_data, batch_size=32, overrides=["model.width=8"])
    first = ganzoo.train("dcgan", epochs=1, out=tmp_path / "r", **common)
    assert first.summary["epochs"] == 1
    more = ganzoo.train(resume=first.path, epochs=2)
    assert more.summary["epochs"] == 2 and more.summary["steps"] == 6
    notes = []
    again = ganzoo.train(resume=first.path, log=notes.append)
    assert again.note and "already trained 2 epochs" in again.note and notes == [again.note]


def test_train_config_is_what_train_would_use(tmp_path):
    config, sources = ganzoo.train_config("vanilla", epochs=3, overrides=["d_optimizer.name=rmsprop"])
    assert config.train.epochs == 3 and config.d_optimizer.name == "rmsprop"
    assert sources and "vanilla/fashion_mnist" in sources[0]
    with pytest.raises(TypeError, match="unexpected keyword arguments: epoch"):
        ganzoo.train_config("vanilla", epoch=3)


@pytest.mark.parametrize("case", ["missing data", "failed download", "incompatible loss", "no gpu", "bad option"])
def test_a_failed_start_leaves_no_run_folder(case, tiny_data, tmp_path, monkeypatch):
    """A run folder exists only once every check has passed and training starts."""
    monkeypatch.chdir(tmp_path)
    kwargs = {"data_dir": tiny_data, "overrides": {"model.width": 4}, "max_steps": 1}
    expected: type[Exception] = GanzooError
    if case == "missing data":
        kwargs.update(data_dir=tmp_path / "empty", overrides={"data.download": False})
        expected = DatasetError
    elif case == "failed download":
        import torchvision.datasets

        def offline(*args, **kwargs):
            raise RuntimeError("no network")

        monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
        kwargs.update(data_dir=tmp_path / "fresh")
        expected = DatasetError
    elif case == "incompatible loss":
        kwargs.update(loss="wgan-gp", overrides={"model.d_batchnorm": True})
        expected = ConfigError
    elif case == "no gpu":
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        kwargs.update(device="cuda")
        expected = ConfigError
    else:
        kwargs.update(overrides={"model.width": 0})
        expected = ConfigError
    with pytest.raises(expected):
        ganzoo.train("dcgan", **kwargs)
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "fresh").exists()
    run = ganzoo.train("dcgan", data_dir=tiny_data, overrides={"model.width": 4}, max_steps=1)
    assert run.path.name == "dcgan-fashion_mnist"  # the first real run gets the plain name
