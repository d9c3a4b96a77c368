"""Checkpoints: a run's state through safetensors and back, and runs written by earlier versions."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_mnist_like
from ganzoo.checkpoint import load_checkpoint, pack_training_state, split_prefix, unpack_training_state
from ganzoo.cli import main
from ganzoo.errors import CheckpointError

OLD = Path(__file__).parent / "fixtures" / "ganzoo-0.1"


@pytest.mark.parametrize("model", ["acgan", "wgan-gp"])
def test_runs_written_by_ganzoo_0_1_resume_and_sample(model, tmp_path, capsys):
    """Their configs name switches variants now fix (conditional, d_batchnorm) and train.aux_weight."""
    _, meta = load_checkpoint(OLD / f"{model}.safetensors")
    assert meta["ganzoo_version"] == "0.1.0"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD / f"{model}.safetensors", run / "checkpoints" / "last.safetensors")
    data = make_mnist_like(tmp_path / "data", n=32)
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 1, 28, 28)
    assert main(["train", "--resume", str(run), "--data-dir", str(data), "--max-steps", "4"]) == 0, capsys.readouterr().err
    _, after = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert after["state"]["step"] == 4 and after["ganzoo_version"] != "0.1.0"
    if model == "acgan":
        assert after["config"]["model"]["aux_weight"] == 0.5 and "aux_weight" not in after["config"]["train"]
        assert "aux_classifier" not in after["config"]["model"]


def test_training_state_round_trips(tmp_path):
    torch.manual_seed(0)
    modules = {"net": torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))}
    optimizers = {"opt": torch.optim.Adam(modules["net"].parameters(), lr=0.1)}
    modules["net"](torch.randn(5, 3)).sum().backward()
    optimizers["opt"].step()
    tensors, meta = pack_training_state(modules, optimizers, {"extra": torch.arange(3)})
    assert {"net.0.weight", "net.1.running_mean", "opt.state.0.exp_avg", "extra"} <= set(tensors)
    fresh = {"net": torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))}
    fresh_opt = {"opt": torch.optim.Adam(fresh["net"].parameters(), lr=0.5)}
    unpack_training_state(tmp_path / "x", tensors, meta, fresh, fresh_opt)
    assert all(torch.equal(a, b) for a, b in zip(modules["net"].state_dict().values(), fresh["net"].state_dict().values()))
    assert fresh_opt["opt"].param_groups[0]["lr"] == 0.1
    assert torch.equal(fresh_opt["opt"].state[fresh["net"][0].weight]["exp_avg"],
                       optimizers["opt"].state[modules["net"][0].weight]["exp_avg"])
    wrong = {"net": torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5))}
    with pytest.raises(CheckpointError, match=r"x: net weight '0.weight' has shape \(4, 3\) in the file"):
        unpack_training_state(tmp_path / "x", tensors, meta, wrong, {})
    assert split_prefix(tensors, "net").keys() == modules["net"].state_dict().keys()
