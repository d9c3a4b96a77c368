"""Sampling from a run: the one sampling path, by class for conditional runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.cli import main


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
    assert main(["sample", str(run), "--class", "²"]) == 2  # a digit to str.isdigit, not to int()
    assert "unknown class '²'" in capsys.readouterr().err


def test_a_class_is_found_by_its_name_before_its_index():
    from argparse import Namespace
    from types import SimpleNamespace

    from ganzoo.cli import _sample_labels

    generator = SimpleNamespace(num_classes=5)
    meta = {"model": "cgan", "class_names": ["1", "10", "11", "12", "2"]}  # folders 1, 2, 10-12 sort as text
    labels, _ = _sample_labels(Namespace(class_="2", n=3), generator, meta, 3)
    assert labels.tolist() == [4, 4, 4]  # the folder named 2, not the third folder
    labels, _ = _sample_labels(Namespace(class_="3", n=3), generator, meta, 3)
    assert labels.tolist() == [3, 3, 3]  # no class is named 3: the fourth class


def test_an_absurd_number_of_samples_is_refused_in_words(monkeypatch):
    import ganzoo
    from ganzoo import sampling
    from ganzoo.errors import ConfigError

    monkeypatch.setattr(sampling, "available_memory", lambda: 8 * 10**9)
    generator = ganzoo.create_model("dcgan", width=4).generator
    for n in (10**9, 10**305):  # the second used to overflow a float while the message was written
        with pytest.raises(ConfigError, match=r"samples need about [0-9,.]+ GB in memory, and 8\.0 GB are free"):
            sampling.check_fits(generator, n, (1, 28, 28))


def test_class_sampling_is_refused_for_unconditional_runs(tiny_data, tmp_path, capsys):
    run = tmp_path / "dcgan"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--max-steps", "1", "--set", "model.width=4",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--class", "sneaker"]) == 2
    assert "unconditional" in capsys.readouterr().err




def test_one_sampling_path_eval_mode_no_grad_and_restored_even_on_error():
    import ganzoo
    from ganzoo.interfaces import evaluating
    from ganzoo.sampling import generate

    gan = ganzoo.create_model("dcgan", width=4)
    G = gan.generator.train()
    whole = G.sample(10, generator=torch.Generator().manual_seed(1))
    batched = G.sample(10, generator=torch.Generator().manual_seed(1), batch_size=3)
    torch.testing.assert_close(whole, batched)  # the same noise whatever the batch size
    assert not whole.requires_grad and G.training
    assert torch.equal(generate(G, 10, seed=1), whole)  # the CLI's path is the same one
    z = G.sample_latent(4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(G.sample(z=z), G.sample(4, generator=torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="either n or z"):
        G.sample(3, z=z)
    with pytest.raises(RuntimeError):
        with evaluating(G):
            assert not G.training and not torch.is_grad_enabled()
            raise RuntimeError("boom")
    assert G.training and torch.is_grad_enabled()


def test_sample_grids_match_the_training_grids_scale(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--max-steps", "1", "--set", "model.width=4",
                 "--out", str(run)]) == 0
    assert main(["sample", str(run)]) == 0
    with Image.open(run / "samples" / "epoch_0001.png") as epoch, Image.open(run / "samples" / "sample_seed0.png") as ours:
        assert epoch.size == ours.size  # 64 images of 28x28, doubled for viewing in both
