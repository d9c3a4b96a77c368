"""On a CUDA GPU: bf16 autocast, channels-last, steps replayed from CUDA graphs, resume, and sampling on
the CPU from a GPU run.

Every test here is marked ``cuda`` and skips, saying so, on a machine without a GPU; the rest of
the suite runs on the CPU on every machine (conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganzoo
from conftest import make_trainer
from ganzoo.checkpoint import load_checkpoint, split_prefix
from ganzoo.cli import main
from ganzoo.testing import ConformanceSuite

pytestmark = pytest.mark.cuda
FAST = ["--set", "model.width=8", "--batch-size", "32", "--device", "cuda"]


def test_a_run_trains_on_the_gpu_in_bf16_channels_last(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "1", "--out", str(run), *FAST]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["device"].startswith("cuda") and summary["precision"] in ("bf16", "fp16")
    assert summary["channels_last"] is True and all(np.isfinite(v) for v in summary["final"].values())
    assert summary["cuda_graphs"] is True and summary["auto"]["cuda_graphs"].startswith("auto: on for CUDA")


@pytest.mark.parametrize("model", ganzoo.list_models())
def test_every_model_that_declares_cuda_graphs_replays_its_step_as_it_runs_eagerly(model):
    """The conformance check a plugin's CI runs on a GPU (this suite's conftest hides the GPU from it)."""
    ConformanceSuite().test_cuda_graph_promise(model)


def test_a_critic_with_d_steps_a_penalty_and_an_ema_trains_from_graphs(tiny_data, tmp_path, capsys):
    """wgan-gp: D-only and D+G steps (two graphs, each replayed after 3 eager steps: 18 steps), the
    gradient penalty's double backward, the EMA."""
    runs = {}
    for graphs in ("true", "false"):
        run = tmp_path / graphs
        assert main(["train", "wgan-gp", "--data-dir", str(tiny_data), "--epochs", "6", "--out", str(run), *FAST,
                     "--set", "train.d_steps=2", "--set", "train.ema_decay=0.99", "--set", f"train.cuda_graphs={graphs}",
                     "--seed", "4"]) == 0
        runs[graphs] = json.loads((run / "summary.json").read_text())
    assert runs["true"]["cuda_graphs"] is True and runs["false"]["cuda_graphs"] is False
    for summary in runs.values():
        assert summary["steps"] == runs["false"]["steps"] and all(np.isfinite(v) for v in summary["final"].values())


def test_sampling_on_the_cpu_from_a_gpu_run_gives_the_gpus_images(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--max-steps", "3", "--out", str(run), *FAST]) == 0
    for device in ("cpu", "cuda"):
        assert main(["sample", str(run), "--n", "8", "--device", device, "--out", str(tmp_path / f"{device}.npy")]) == 0
    cpu, gpu = (np.load(tmp_path / f"{d}.npy").astype(int) for d in ("cpu", "cuda"))
    # the same noise (drawn on the CPU) through the same weights; TF32 convolutions on the GPU move
    # a pixel by at most a few of 255 levels
    assert np.abs(cpu - gpu).max() <= 4


def test_resume_on_the_gpu_continues_the_run(tiny_data, tmp_path, capsys):
    common = ["--data-dir", str(tiny_data), *FAST, "--seed", "3"]
    assert main(["train", "dcgan", "--epochs", "2", "--out", str(tmp_path / "straight"), *common]) == 0
    assert main(["train", "dcgan", "--epochs", "1", "--out", str(tmp_path / "split"), *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--epochs", "2"]) == 0
    a, meta_a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b, meta_b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.safetensors")
    assert meta_a["state"] == {**meta_b["state"], "train_seconds": meta_a["state"]["train_seconds"]}
    # cuDNN's backward kernels accumulate in a nondeterministic order, so bit-exactness (which the
    # CPU tests check) is not promised here: six steps from the same state stay close
    for key, value in split_prefix(a, "generator").items():
        torch.testing.assert_close(value, split_prefix(b, "generator")[key], rtol=5e-2, atol=5e-3, msg=key)


@pytest.mark.parametrize("model", ["dcgan", "cgan", "acgan", "sngan", "wgan-gp"])
def test_channels_last_computes_what_contiguous_memory_computes_on_the_gpu(tiny_data, tmp_path, model):
    from ganzoo.data import to_unit_range

    outs = []
    for layout in (False, True):
        torch.manual_seed(0)
        trainer = make_trainer(tmp_path / str(layout), tiny_data, model, channels_last=layout, device="cuda")
        trainer.gan.discriminator.eval()
        idx = torch.arange(24, device=trainer.device)
        y = trainer.labels[idx] if trainer.gan.generator.num_classes else None
        torch.manual_seed(1)
        trainer.train_step(to_unit_range(trainer.images[idx]), y)
        outs.append({k: v.float().cpu() for k, v in trainer.gan.state_dict().items()})
    # TF32 convolutions (PyTorch's default on Ampere and newer) round to 10 mantissa bits, and the
    # two layouts pick different kernels: one Adam step at lr 2e-4 agrees to about 1e-3
    for key in outs[0]:
        torch.testing.assert_close(outs[0][key], outs[1][key], rtol=1e-2, atol=2e-3, msg=key)
