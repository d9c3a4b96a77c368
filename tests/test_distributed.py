"""Data-parallel training with torchrun: two CPU processes (gloo), rank 0 writes, reproducible."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from ganzoo.checkpoint import load_checkpoint, split_prefix


def train(run, data, *extra, nproc=("--nproc", "2")):
    argv = [sys.executable, "-m", "ganzoo", "train", "dcgan", "--data-dir", str(data), "--epochs", "2",
            "--batch-size", "16", "--set", "model.width=4", "--seed", "3", "--out", str(run), *nproc, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


def test_two_processes_train_reproducibly_and_only_rank_0_writes(tiny_data, tmp_path):
    first = train(tmp_path / "a", tiny_data)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("done: 2 epochs") == 1  # one report, from rank 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 12  # 96 images / global batch 16, x2 epochs
    assert sorted(p.name for p in (tmp_path / "a" / "samples").iterdir()) == [
        "epoch_0000.png", "epoch_0001.png", "epoch_0002.png"]

    second = train(tmp_path / "b", tiny_data, nproc=("--n", "2"))  # argparse's shortest abbreviation, too
    assert second.returncode == 0, second.stderr
    a, _ = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.safetensors")
    b, _ = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.safetensors")
    for prefix in ("generator", "discriminator"):
        wa, wb = split_prefix(a, prefix), split_prefix(b, prefix)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), prefix


def test_an_uneven_global_batch_is_refused(tiny_data, tmp_path):
    result = train(tmp_path / "c", tiny_data, "--batch-size", "15")
    assert result.returncode != 0
    assert "must divide evenly over 2 processes" in result.stderr


def test_nproc_fits_the_machine(monkeypatch, capsys, tiny_data, tmp_path):
    from ganzoo.api import resolve_nproc
    from ganzoo.cli import main

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # a machine with one GPU
    assert resolve_nproc("auto") == 1 and resolve_nproc(1) == 1
    code = main(["train", "dcgan", "--data-dir", str(tiny_data), "--nproc", "2", "--out", str(tmp_path / "r")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "--nproc 2 asks for one GPU per process, but this machine has 1 visible GPU" in err
    assert "--device cpu" in err and not (tmp_path / "r").exists()
    assert resolve_nproc(2, "cpu") == 2  # CPU processes are not bound to GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert resolve_nproc("auto") == 1
