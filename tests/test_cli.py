"""The command line end to end, on a tiny IDX dataset written by the test."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.checkpoint import load_checkpoint, split_prefix
from ganzoo.cli import main

FAST = ["--set", "model.width=8", "--batch-size", "32"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_prints_every_kind_with_its_plugin(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("dcgan", "vanilla", "minimax", "nonsaturating", "fashion_mnist", "mnist"):
        assert name in out
    code, out, _ = run_cli(capsys, "list", "--json")
    data = json.loads(out)
    dcgan = next(m for m in data["models"] if m["name"] == "dcgan")
    assert dcgan["plugin"] == "dcgan" and dcgan["package"] == "ganzoo" and dcgan["options"]["latent_dim"] == 100
    assert {d["name"]: d["image_shape"] for d in data["datasets"]}["fashion_mnist"] == [1, 28, 28]
    code, out, _ = run_cli(capsys, "list", "dc*", "--json")
    assert [m["name"] for m in json.loads(out)["models"]] == ["dcgan"] and json.loads(out)["losses"] == []


def test_help_and_list_do_not_import_torch():
    probe = (
        "import sys, contextlib, io\n"
        "from ganzoo.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['list'])\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_train_then_sample_end_to_end(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "dcgan", "--dataset", "fashion_mnist", "--data-dir", tiny_data,
                             "--epochs", 2, "--out", run, "--set", "train.log_every=1", *FAST)
    assert code == 0, err
    assert "done: 2 epochs, 6 steps" in out

    config = tomllib.loads((run / "config.toml").read_text())
    assert config["model"]["name"] == "dcgan" and config["model"]["width"] == 8
    assert config["train"]["batch_size"] == 32 and config["data"]["root"] == str(tiny_data)

    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if "d_loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) and r["images_per_s"] > 0 for r in steps)
    assert [r["epoch"] for r in lines if r.get("event") == "epoch_end"] == [1, 2]

    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == ["epoch_0000.png", "epoch_0001.png", "epoch_0002.png"]
    with Image.open(run / "samples" / "epoch_0002.png") as grid:
        assert grid.mode == "L" and grid.size[0] > 8 * 28  # 8x8 grid of 64 fixed-noise samples

    tensors, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["model"] == "dcgan" and meta["state"]["epoch"] == 2 and meta["state"]["step"] == 6
    assert any(k.startswith("g_optimizer.state.") for k in tensors)
    assert (run / "checkpoints" / "epoch_0002.safetensors").is_file()
    assert json.loads((run / "summary.json").read_text())["steps"] == 6

    code, out, err = run_cli(capsys, "sample", run, "--n", 10, "--out", tmp_path / "s.npy", "--seed", 3)
    assert code == 0, err
    arr = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert arr.shape == (10, 1, 28, 28) and arr.dtype == np.uint8 and arr.max() > arr.min()
    run_cli(capsys, "sample", run, "--n", 10, "--out", tmp_path / "again.npy", "--seed", 3)
    assert np.array_equal(arr, np.load(tmp_path / "again.npy"))  # a seed gives the same samples

    code, _, err = run_cli(capsys, "sample", run, "--n", 16, "--out", tmp_path / "s.png")
    assert code == 0, err
    with Image.open(tmp_path / "s.png") as img:
        assert img.size == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))  # doubled, as the epoch grids are
    code, _, _ = run_cli(capsys, "sample", run / "checkpoints" / "epoch_0001.safetensors", "--n", 2)
    assert code == 0 and (run / "samples" / "sample_seed0.png").is_file()


def test_resume_gives_bit_identical_weights(tmp_path, tiny_data, capsys):
    common = ["--data-dir", tiny_data, *FAST, "--seed", 7]
    assert run_cli(capsys, "train", "dcgan", "--epochs", 2, "--out", tmp_path / "straight", *common)[0] == 0
    assert run_cli(capsys, "train", "dcgan", "--epochs", 1, "--out", tmp_path / "split", *common)[0] == 0
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path / "split", "--epochs", 2)
    assert code == 0, err
    a, meta_a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b, meta_b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.safetensors")
    assert meta_a["state"]["step"] == meta_b["state"]["step"] == 6
    for prefix in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
        wa, wb = split_prefix(a, prefix), split_prefix(b, prefix)
        assert wa.keys() == wb.keys() and wa
        assert all(torch.equal(wa[k], wb[k]) for k in wa), prefix


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "dcgna"], "unknown model 'dcgna'; did you mean 'dcgan'?"),
        (["train", "dcgan", "--loss", "minmax"], "did you mean 'minimax'?"),
        (["train", "dcgan", "--dataset", "fashionmnist"], "did you mean 'fashion_mnist'?"),
        (["train", "dcgan", "--set", "model.widht=3"], "did you mean 'width'?"),
        (["train", "dcgan", "--set", "train.epochs=abc"], "'train.epochs' must be an integer"),
        (["train", "dcgan", "--set", "g_optimizer.lr=-1"], "'g_optimizer.lr' must be greater than 0"),
        (["train", "dcgan", "--set", "d_optimizer.name=adamw"], "unknown optimizer 'adamw'"),
        (["train", "dcgan", "--set", "epochs"], "KEY=VALUE"),
        (["train"], "name a model"),
        (["sample", "no/such/run"], "no run directory or checkpoint at no/such/run"),
        (["train", "dcgan", "--data-dir", "donn\udce9es"],  # Latin-1 bytes in a path: surrogates in Python
         "config key 'data.root' holds a name that is not valid UTF-8"),
        (["sample", "x" * 300], "x" * 300),  # "PATH: File name too long" (3.14's is_dir() swallows it: "no run")
        (["eval", "y" * 300], "y" * 300),
        (["new-plugin", "z" * 300, "--dir", "."], "File name too long"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err + out
    assert not (tmp_path / "runs").exists()  # nothing written


def test_argparse_rejects_non_positive_numbers(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "dcgan", "--epochs", "0"])
    assert info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_missing_dataset_is_one_clear_message(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "dcgan", "--data-dir", tmp_path / "empty", "--out", tmp_path / "r",
                           "--set", "data.download=false")
    assert code == 2
    assert "FashionMNIST files not found in" in err and "Traceback" not in err


def test_refuses_to_overwrite_a_run(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    args = ["train", "dcgan", "--data-dir", tiny_data, "--out", run, "--max-steps", 1, *FAST]
    assert run_cli(capsys, *args)[0] == 0
    before = (run / "checkpoints" / "last.safetensors").read_bytes()
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "already holds a ganzoo run" in err and "--resume" in err
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == before
    assert run_cli(capsys, *args, "--overwrite")[0] == 0


def test_default_run_dirs_are_numbered(tmp_path, tiny_data, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert run_cli(capsys, "train", "vanilla", "--data-dir", tiny_data, "--max-steps", 1, "--set",
                       "model.g_hidden=[16]", "--set", "model.d_hidden=[16]")[0] == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["vanilla-fashion_mnist", "vanilla-fashion_mnist-2"]


def test_python_dash_m_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ganzoo", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ganzoo ")
