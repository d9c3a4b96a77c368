"""Nothing lost, clear errors: signals, kills during writes, divergence, bad files, hostile input."""

from __future__ import annotations

import errno
import json
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import make_mnist_like
from ganzoo import add_plugin, hookimpl
from ganzoo.checkpoint import load_checkpoint
from ganzoo.cli import main
from ganzoo.errors import CheckpointError
from ganzoo.rundir import RunDir

FAST = ["--set", "model.width=4", "--batch-size", "8"]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def start_training(run: Path, data: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    argv = [sys.executable, *extra, "-m", "ganzoo", "train", "dcgan", "--data-dir", str(data), "--epochs", "1000",
            "--out", str(run), "--set", "train.log_every=1", *FAST]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def metrics_lines(run: Path) -> int:
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_and_says_how_to_resume(sig, tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    proc = start_training(run, tiny_data)
    wait_for(lambda: metrics_lines(run) >= 3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"{sig.name} received" in err and f"ganzoo train --resume {run}" in " ".join(err.split())
    _, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    stopped_at = meta["state"]["step"]
    assert stopped_at >= 3
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    code, _, err = cli(capsys, "train", "--resume", run, "--max-steps", stopped_at + 2)
    assert code == 0, err
    assert load_checkpoint(run / "checkpoints" / "last.safetensors")[1]["state"]["step"] == stopped_at + 2
    records = RunDir(run).read_metrics()
    assert [r["step"] for r in records if r.get("event") == "resume"] == [stopped_at]
    steps = [r["step"] for r in records if "d_loss" in r]
    assert steps == sorted(steps) and steps[-1] == stopped_at + 2


def test_steps_trained_again_after_a_resume_replace_the_interrupted_runs_records(tmp_path):
    # killed at step 7 after an epoch checkpoint at step 4: the resumed run logs steps 5.. again
    run = RunDir(tmp_path)
    lines = [{"step": 2, "d_loss": 1.0}, {"step": 4, "d_loss": 0.9}, {"event": "epoch_end", "step": 4},
             {"step": 6, "d_loss": 0.8}, {"step": 7, "d_loss": 0.7},
             {"event": "resume", "step": 4, "epoch": 1}, {"step": 6, "d_loss": 0.5}, {"step": 8, "d_loss": 0.4}]
    run.metrics.write_text("\n".join(json.dumps(r) for r in lines) + '\n{"step": 9, "d_lo', encoding="utf-8")
    records = run.read_metrics()
    assert [(r.get("event"), r["step"]) for r in records] == [
        (None, 2), (None, 4), ("epoch_end", 4), ("resume", 4), (None, 6), (None, 8)]
    assert records[4]["d_loss"] == 0.5  # the resumed run's value, not the interrupted one's


def test_a_record_appended_after_a_cut_line_starts_a_line_of_its_own(tmp_path):
    run = RunDir(tmp_path)
    run.metrics.write_text('{"step": 2, "d_loss": 1.0}\n{"step": 4, "d_lo', encoding="utf-8")  # killed mid-write
    run.append_metrics({"event": "resume", "step": 2, "epoch": 0})
    run.append_metrics({"step": 4, "d_loss": 0.5})
    assert run.read_metrics() == [{"step": 2, "d_loss": 1.0}, {"event": "resume", "step": 2, "epoch": 0},
                                  {"step": 4, "d_loss": 0.5}]
    RunDir(tmp_path / "new").path.mkdir()
    fresh = RunDir(tmp_path / "new")
    fresh.append_metrics({"step": 1})
    assert fresh.metrics.read_text() == '{"step": 1}\n'


SLOW_FSYNC = """
import os, sys, time
real_fsync, calls = os.fsync, [0]
def fsync(fd):
    if ".last.safetensors.tmp-" in os.readlink(f"/proc/self/fd/{fd}"):
        calls[0] += 1
    if calls[0] == int(os.environ["HANG_AT_WRITE"]):
        open(os.environ["HANG_MARKER"], "w").close()
        time.sleep(600)  # the temporary file is written; the rename has not happened
    real_fsync(fd)
os.fsync = fsync
sys.argv = ["ganzoo", *sys.argv[1:]]
from ganzoo.cli import main
sys.exit(main())
"""


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_intact(tmp_path, tiny_data, capsys):
    run, marker = tmp_path / "run", tmp_path / "hanging"
    script = tmp_path / "slow_fsync.py"
    script.write_text(SLOW_FSYNC)
    # hang in the fsync of the second write of last.safetensors: the end of epoch 2
    argv = [sys.executable, str(script), "train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "5",
            "--out", str(run), *FAST]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HANG_AT_WRITE": "2", "HANG_MARKER": str(marker)})
    wait_for(marker.exists)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    leftovers = list((run / "checkpoints").glob(".last.safetensors.tmp-*"))
    assert leftovers, "the kill should have landed during the write"
    _, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["state"]["epoch"] == 1  # epoch 1's checkpoint, whole
    code, _, err = cli(capsys, "train", "--resume", run, "--epochs", 2)
    assert code == 0, err
    assert not list((run / "checkpoints").glob(".*.tmp-*"))


class NaNAfter:
    """A loss plugin that diverges at a chosen step."""

    def __init__(self, step: int) -> None:
        self.step = step

    @hookimpl
    def register_losses(self, register):
        from dataclasses import dataclass

        from ganzoo.interfaces import Loss

        limit = self.step

        @dataclass(frozen=True)
        class Options:
            pass

        class Exploding(Loss):
            calls = 0

            def discriminator_loss(self, real, fake):
                Exploding.calls += 1
                value = torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()
                return value * float("nan") if Exploding.calls > limit else value

            def generator_loss(self, fake):
                return torch.nn.functional.softplus(-fake).mean()

        register("exploding", lambda options: Exploding(), options=Options)


def _diverge(run, data, capsys):
    """Train dcgan into ``run`` with a loss that turns NaN at D's 15th step: (exit code, stderr)."""
    add_plugin(NaNAfter(step=14), name="nan")
    code, _, err = cli(capsys, "train", "dcgan", "--loss", "exploding", "--data-dir", data, "--epochs", 5,
                       "--out", run, *FAST)
    return code, err


def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    code, err = _diverge(run, tiny_data, capsys)
    assert code == 1
    message = " ".join(err.split())
    assert "d_loss became nan at step 15" in message and "lower learning rate" in message
    _, meta = load_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["state"]["step"] == 12  # end of epoch 1 (12 steps of 8 images), the last good state
    assert json.loads((run / "summary.json").read_text())["status"] == "diverged"


@pytest.fixture
def trained(tmp_path_factory, ) -> Path:
    data = make_mnist_like(tmp_path_factory.mktemp("d"), n=32)
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "dcgan", "--data-dir", str(data), "--max-steps", "2", "--out", str(run), *FAST]) == 0
    return run


def test_corrupt_and_truncated_checkpoints_are_one_line(trained, tmp_path, capsys):
    last = trained / "checkpoints" / "last.safetensors"
    data = last.read_bytes()
    cases = {
        "truncated.safetensors": data[: len(data) // 2],
        "garbage.safetensors": os.urandom(2000),
        "empty.safetensors": b"",
        "header.safetensors": data[:6],
    }
    for name, payload in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        code, _, err = cli(capsys, "sample", path, "--out", tmp_path / "x.png")
        assert code == 2, name
        assert str(path) in err and "truncated or corrupt" in err and "Traceback" not in err, (name, err)
        assert len(err.strip().splitlines()) == 1, err


def test_a_safetensors_file_that_is_not_ours_is_named(tmp_path, capsys):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    code, _, err = cli(capsys, "sample", path)
    assert code == 2 and "not a ganzoo checkpoint" in err


def test_weights_for_another_config_are_refused_with_the_mismatch(trained, tmp_path, capsys):
    from ganzoo.checkpoint import save_checkpoint

    tensors, meta = load_checkpoint(trained / "checkpoints" / "last.safetensors")
    meta["config"]["model"]["width"] = 16  # claims another width than its weights have
    forged = tmp_path / "forged.safetensors"
    save_checkpoint(forged, tensors, {k: v for k, v in meta.items() if k not in ("format", "format_version")})
    code, _, err = cli(capsys, "sample", forged)
    assert code == 2 and "has shape" in err and "another config" in " ".join(err.split())


def test_sampling_needs_only_the_checkpoint(trained, tmp_path, capsys):
    (trained / "config.toml").unlink()
    code, _, err = cli(capsys, "sample", trained, "--n", 4, "--out", tmp_path / "s.npy")
    assert code == 0, err


def test_checkpoints_hold_no_pickles(trained):
    raw = (trained / "checkpoints" / "last.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8: 8 + header_len])
    assert all(v["dtype"] in ("F32", "I64", "U8") for k, v in header.items() if k != "__metadata__")
    assert b"\x80\x04\x95" not in raw and b"\x80\x02" not in raw[:8 + header_len]


def test_a_full_disk_during_a_checkpoint_is_reported_and_loses_nothing(tmp_path, tiny_data, capsys, monkeypatch):
    import ganzoo.checkpoint as ckpt

    run = tmp_path / "run"
    real_write, writes = ckpt.atomic_write_bytes, []

    def fill_up(path, data):
        writes.append(path)
        if len(writes) > 2:  # epoch 1 (last + snapshot) succeed, epoch 2's first write fails
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", fill_up)
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--epochs", 3, "--out", run, *FAST)
    message = " ".join(err.split())
    assert code == 2 and "No space left on device" in message and "is intact" in message
    assert "ganzoo train --resume" in message
    monkeypatch.undo()
    assert load_checkpoint(run / "checkpoints" / "last.safetensors")[1]["state"]["epoch"] == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "FashionMNIST files not found"),
        ("truncated", "is truncated"),
        ("wrong-size", "holds images of shape (1, 32, 32), but registered (1, 28, 28)"),
    ],
)
def test_bad_dataset_folders_exit_2(setup, message, tmp_path, capsys):
    root = tmp_path / "data"
    if setup == "empty":
        (root / "FashionMNIST" / "raw").mkdir(parents=True)
    elif setup == "truncated":
        make_mnist_like(root, n=20)
        images = root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
        images.write_bytes(images.read_bytes()[:-100])
    else:
        make_mnist_like(root, n=20, size=32)
    code, out, err = cli(capsys, "train", "dcgan", "--data-dir", root, "--out", tmp_path / "run",
                         "--set", "data.download=false")
    assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err


def test_output_that_cannot_be_written_exits_2(tmp_path, tiny_data, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", blocker / "run")
    assert code == 2 and "cannot write to output folder" in err
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", blocker)
    assert code == 2 and "exists and is not a folder" in err
    assert blocker.read_text() == "I am a file"


def test_a_folder_of_other_files_is_never_overwritten(tmp_path, tiny_data, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("...")
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", precious, "--overwrite")
    assert code == 2 and "not a ganzoo run" in err
    assert (precious / "chapter1.tex").read_text() == "..."


def test_overwrite_never_clears_a_project_folder_that_merely_looks_like_a_run(tmp_path, tiny_data, capsys):
    project = tmp_path / "project"  # the user's own: a ganzoo config of theirs, checkpoints of another tool, git
    for name, text in (("config.toml", '[model]\nname = "dcgan"\n\n[train]\nepochs = 2\n'),
                       ("checkpoints/model.pt", "weights"), (".git/HEAD", "ref: refs/heads/main"), ("train.py", "...")):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", project, "--overwrite")
    assert code == 2 and "not a ganzoo run" in err
    (project / "samples").mkdir()  # data of theirs, and another tool's weights in safetensors
    (project / "checkpoints" / "model.safetensors").write_bytes(b"weights")
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", project, "--overwrite")
    assert code == 2 and "not a ganzoo run" in err
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", project)
    assert code == 2 and "files that are not a ganzoo run; pass another --out" in " ".join(err.split())
    assert "--resume" not in err  # it could not be resumed, nor overwritten
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before


def test_a_run_that_never_started_can_be_overwritten(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"  # what a start killed before its config.toml was written leaves
    for folder in ("samples", "checkpoints"):
        (run / folder).mkdir(parents=True)
    (run / ".lock").write_bytes(b"")
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", run)
    assert code == 2 and "already holds a ganzoo run; it has no checkpoint to resume from" in " ".join(err.split())
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--out", run, "--overwrite", "--max-steps", 1,
                       *FAST)
    assert code == 0, err


def test_overwrite_replaces_what_ganzoo_wrote_and_keeps_and_names_the_rest(trained, capsys):
    (trained / "notes.md").write_text("lr 2e-4 looked best")  # the user's
    (trained / "mygan-epochs.csv").write_text("old")  # a third-party plugin's (the new-plugin scaffold writes one)
    (trained / "tensorboard").mkdir(exist_ok=True)  # the built-in tensorboard plugin's: ganzoo's own
    (trained / "tensorboard" / "events").write_text("old")
    (trained / ".DS_Store").write_bytes(b"")  # a file browser's: kept, not named
    (trained / "eval.json").write_text("{}")
    old = (trained / "checkpoints" / "last.safetensors").read_bytes()
    data = load_checkpoint(trained / "checkpoints" / "last.safetensors")[1]["config"]["data"]["root"]
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", data, "--max-steps", 1, "--out", trained,
                       "--overwrite", *FAST)
    assert code == 0, err
    assert "kept what ganzoo did not write there: mygan-epochs.csv, notes.md (a plugin's" in " ".join(err.split())
    assert (trained / "notes.md").read_text() == "lr 2e-4 looked best"
    assert (trained / "mygan-epochs.csv").read_text() == "old" and (trained / ".DS_Store").exists()
    assert not (trained / "eval.json").exists() and not (trained / "tensorboard" / "events").exists()
    assert (trained / "checkpoints" / "last.safetensors").read_bytes() != old


def test_files_nested_past_what_python_parses_are_one_line(trained, tmp_path, capsys):
    deep = "[" * 100_000  # json and tomllib recurse: RecursionError, neither a decode error nor a ValueError
    with open(trained / "metrics.jsonl", "a") as fh:
        fh.write(deep + "\n")
    code, _, err = cli(capsys, "compare", trained, "--json")
    assert code == 0, err  # a damaged metrics line is skipped, as a line cut by a crash is
    (trained / "summary.json").write_text(deep)
    code, _, err = cli(capsys, "compare", trained)
    assert code == 2 and "summary.json cannot be read" in err and "Traceback" not in err
    config = tmp_path / "deep.toml"
    config.write_text(f"[model]\nwidth = {deep}\n")
    code, _, err = cli(capsys, "train", "dcgan", "--config", config)
    assert code == 2 and "deep.toml: invalid TOML:" in err and "nested" in err  # tomli on 3.10 says it its way
    code, _, err = cli(capsys, "train", "dcgan", "--set", f"model.width={deep[:5000]}")
    assert code == 2 and "'model.width' must be an integer" in err


def test_config_file_errors_exit_2_with_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "dcgan"\nwidth = [1,\n')
    code, _, err = cli(capsys, "train", "--config", bad)
    assert code == 2 and "invalid TOML" in err and "line 3" in err
    typo = tmp_path / "typo.toml"
    typo.write_text('[model]\nname = "dcgan"\n[trian]\nepochs = 3\n')
    code, _, err = cli(capsys, "train", "--config", typo)
    assert code == 2 and "did you mean 'train'" in err
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    code, _, err = cli(capsys, "train", "--config", empty)
    assert code == 2 and f"{empty} names no model" in " ".join(err.split())
    big = tmp_path / "seed.toml"
    big.write_text('[model]\nname = "dcgan"\n[train]\nseed = 18446744073709551616\n')
    code, _, err = cli(capsys, "train", "--config", big)  # torch.manual_seed would overflow
    assert code == 2 and "train.seed" in err and "4294967295" in err
    with pytest.raises(SystemExit) as stop:  # argparse's exit: 2 and the usage
        cli(capsys, "train", "dcgan", "--seed", 2**44)  # would overflow the data order later
    assert stop.value.code == 2 and "must be from 0 to 4294967295" in capsys.readouterr().err


def test_new_plugin_refuses_names_it_could_not_load_under(tmp_path):
    from ganzoo.errors import GanzooError
    from ganzoo.scaffold import new_plugin

    for name, message in (("relativistic", "a plugin named 'relativistic' is already installed"),
                          ("losses", "a plugin named 'losses' is already installed"),
                          ("dcgan", "a model named 'dcgan' is already registered"),
                          ("tiny\n", "must start with a letter")):
        with pytest.raises(GanzooError, match=message):
            new_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_resume_refuses_changes_that_would_break_it(trained, capsys):
    code, _, err = cli(capsys, "train", "--resume", trained, "--batch-size", 4)
    assert code == 2 and "--batch-size cannot change when resuming" in err
    code, _, err = cli(capsys, "train", "vanilla", "--resume", trained)
    assert code == 2 and "is a dcgan run" in err
    code, _, err = cli(capsys, "train", "--resume", trained.parent / "nope")
    assert code == 2 and "no run directory or checkpoint" in err


def test_resume_continues_from_the_last_checkpoint_and_refuses_any_other_file(trained, tmp_path, capsys):
    """An epoch snapshot would have been read for its config while training went on from
    last.safetensors; a lone checkpoint file would have made its folder's parent the run."""
    last = trained / "checkpoints" / "last.safetensors"
    snapshot = trained / "checkpoints" / "epoch_0001.safetensors"
    shutil.copy(last, snapshot)
    code, _, err = cli(capsys, "train", "--resume", snapshot)
    err = " ".join(err.split())
    assert code == 2 and f"{snapshot} is not one" in err and f"pass the run folder: --resume {trained}" in err
    lone = tmp_path / "downloads" / "model.safetensors"
    lone.parent.mkdir()
    shutil.copy(last, lone)
    code, _, err = cli(capsys, "train", "--resume", lone)
    assert code == 2 and "is not in a run folder's checkpoints/" in " ".join(err.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]  # nothing written beside it
    code, out, _ = cli(capsys, "train", "--resume", last)  # the last checkpoint's own path is the run
    assert code == 0 and "has already trained" in out and "raise --max-steps to train further" in out


def test_doctor_reports_health(capsys):
    code, out, _ = cli(capsys, "doctor", "--json")
    info = json.loads(out)
    assert code == 0 and torch.__version__.startswith(info["packages"]["torch"])
    assert "dcgan" in info["plugins"]["models"] and info["plugins"]["failed"] == []
    assert info["device"]["torch_threads"] >= 1
    code, out, _ = cli(capsys, "doctor")
    assert code == 0 and "plugins" in out and "data root" in out


def test_checkpoint_loader_raises_typed_errors(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_non_finite_weights_stop_the_run_before_a_checkpoint_is_written(tmp_path, tiny_data, monkeypatch):
    from ganzoo.errors import TrainingDiverged
    from ganzoo.config import resolve_config
    from ganzoo.rundir import RunDir
    from ganzoo.trainer import Trainer

    config = resolve_config({"model": {"name": "dcgan", "width": 4}, "data": {"root": str(tiny_data), "download": False},
                             "train": {"batch_size": 32, "epochs": 2}})
    trainer = Trainer(config, RunDir(tmp_path / "run"), plugin_events=False)
    real_step = trainer.train_step

    def poisoned(real, y):
        out = real_step(real, y)
        if trainer.state.step == 5:  # the last step of epoch 2: a weight goes bad, its losses still look fine
            with torch.no_grad():
                trainer.gan.generator.project.weight[0, 0] = float("inf")
        return out

    monkeypatch.setattr(trainer, "train_step", poisoned)
    with pytest.raises(TrainingDiverged, match=r"generator weight 'project.weight' holds NaN or inf after step 6"):
        trainer.fit()
    _, meta = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert meta["state"]["step"] == 3  # epoch 1's checkpoint stands


def test_doctor_does_not_count_an_empty_dataset_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANZOO_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "FashionMNIST" / "raw").mkdir(parents=True)  # what a failed download once left
    make_mnist_like(tmp_path / "data", "MNIST", n=4)
    code, out, _ = cli(capsys, "doctor", "--json")
    assert code == 0 and json.loads(out)["data"]["present"] == ["MNIST"]


# --- run folders: overwrite, ordering, locks, full disks and odd files ---------------------------

def test_overwrite_keeps_the_new_runs_config(trained, capsys):
    data = load_checkpoint(trained / "checkpoints" / "last.safetensors")[1]["config"]["data"]["root"]
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", data, "--max-steps", 3, "--out", trained,
                       "--overwrite", *FAST)
    assert code == 0, err
    config = (trained / "config.toml").read_text()  # the command writes it, the trainer must not remove it
    assert "max_steps = 3" in config
    code, out, _ = cli(capsys, "compare", trained, "--json")
    assert code == 0 and json.loads(out)[0]["config"]["model"]["name"] == "dcgan"


def test_snapshots_and_grids_past_epoch_9999_keep_their_order(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create()
    for epoch in (9998, 9999, 10000):
        run.epoch_checkpoint(epoch).write_bytes(b"x")
        run.grid(epoch).write_bytes(b"x")
    copy = run.checkpoints / "epoch_0005 (copy).safetensors"  # the user's: not a snapshot, never pruned
    copy.write_bytes(b"x")
    (run.samples / "epoch_\u00b2.png").write_bytes(b"x")  # str.isdigit() takes a superscript two; int() does not
    run.prune_snapshots(2)  # by name, epoch_10000 sorts first and the newest was deleted
    assert [p.name for p in run.epoch_snapshots()] == ["epoch_9999.safetensors", "epoch_10000.safetensors"]
    assert [p.stem for p in run.epoch_grids()] == ["epoch_9998", "epoch_9999", "epoch_10000"]
    assert copy.is_file()


def _poison_at(trainer, step: int, *, then=None):
    real_step = trainer.train_step

    def poisoned(real, y):
        out = real_step(real, y)
        if trainer.state.step == step - 1:  # the weights go bad; the losses of this step still look fine
            with torch.no_grad():
                trainer.gan.generator.project.weight[0, 0] = float("inf")
            if then:
                then()
        return out
    return poisoned


@pytest.mark.parametrize("how", ["signal", "budget"])
def test_a_checkpoint_written_off_schedule_is_checked_for_bad_weights(how, tmp_path, tiny_data, monkeypatch):
    """Ctrl-C, SIGTERM and the end of a time or step budget write a checkpoint mid-epoch; off the CPU
    the losses are read back only on log steps, so the weights are what must be checked there."""
    from ganzoo.errors import TrainingDiverged

    from conftest import make_trainer

    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4, batch_size=32, epochs=10,
                           max_steps=5 if how == "budget" else None)
    stop = (lambda: setattr(trainer, "_stop_signal", signal.SIGTERM)) if how == "signal" else None
    monkeypatch.setattr(trainer, "train_step", _poison_at(trainer, 5, then=stop))
    with pytest.raises(TrainingDiverged, match="holds NaN or inf after step 5"):
        trainer.fit()
    _, meta = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert meta["state"]["step"] == 3  # epoch 1's checkpoint stands
    assert not torch.isinf(load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")[0][
        "generator.project.weight"]).any()


def test_a_full_disk_at_the_end_names_the_checkpoint_not_the_summary(tmp_path, tiny_data, capsys, monkeypatch):
    import ganzoo.checkpoint as ckpt
    import ganzoo.trainer as trainer_module

    run = tmp_path / "run"
    real_write, writes = ckpt.atomic_write_bytes, []

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def fill_up(path, data):
        writes.append(path)
        if len(writes) > 2:
            full(path, data)
        real_write(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", fill_up)
    monkeypatch.setattr(trainer_module, "atomic_write_bytes", full)  # summary.json: the disk is full for it too
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--epochs", 3, "--out", run, *FAST)
    message = " ".join(err.split())
    assert code == 2 and "could not write a checkpoint" in message and "is intact" in message, err
    assert "warning: could not write" in message and "summary.json" in message and "Traceback" not in err


def test_a_picture_that_cannot_be_written_costs_no_work(tmp_path, tiny_data, capsys, monkeypatch):
    import ganzoo.trainer as trainer_module

    def no_pictures(images, path, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer_module, "save_grid", no_pictures)
    run = tmp_path / "run"
    code, _, err = cli(capsys, "train", "dcgan", "--data-dir", tiny_data, "--epochs", 2, "--out", run, *FAST)
    assert code == 0, err
    assert "warning: could not write" in err and "No space left on device" in " ".join(err.split())
    assert load_checkpoint(run / "checkpoints" / "last.safetensors")[1]["state"]["epoch"] == 2


def test_samples_folder_removed_while_training_is_made_again(tmp_path, tiny_data):
    from conftest import make_trainer

    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4, batch_size=32, epochs=2, max_steps=None)
    real_step = trainer.train_step

    def tidy(real, y):  # someone cleans up the pictures during epoch 2
        if trainer.state.step == 4:
            shutil.rmtree(trainer.run.samples)
        return real_step(real, y)

    trainer.train_step = tidy
    trainer.fit()
    assert (tmp_path / "run" / "samples" / "epoch_0002.png").is_file()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")[1]["state"]["epoch"] == 2


def test_a_diverged_runs_summary_and_metrics_are_strict_json(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    assert _diverge(run, tiny_data, capsys)[0] == 1

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    summary = json.loads((run / "summary.json").read_text(), parse_constant=refuse)
    assert summary["status"] == "diverged"
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)
    code, out, _ = cli(capsys, "compare", run, "--json")
    assert code == 0
    json.loads(out, parse_constant=refuse)


def test_compare_and_report_read_a_hand_edited_config_as_best_they_can(trained, capsys):
    for text in ('model = "dcgan"\n', '[model]\nname = 5\n[loss]\nname = "[/x]"\n', '[data]\nname = [1, 2]\n'):
        (trained / "config.toml").write_text(text)
        code, out, err = cli(capsys, "compare", trained)
        assert code == 0 and "Traceback" not in err, (text, err)
        assert " ? " in out or "[/x]" in out, (text, out)
        assert cli(capsys, "report", trained)[0] == 0, text


def test_pictures_and_reports_leave_out_non_finite_and_odd_metrics(trained, tmp_path, capsys):
    from ganzoo.plots import curves_svg, loss_series, write_run_pictures

    with open(trained / "metrics.jsonl", "ab") as fh:
        fh.write(b'{"step": 3, "d_loss": Infinity, "g_loss": 1.0}\n{"step": 4, "d_loss": NaN, "g_loss": null}\n'
                 b'{"step": "5", "d_loss": 1.0, "g_loss": 1.0}\n\xff\xfe not text\n{"step": 6, "d_loss": 0.5, "g_loss": 2.0}\n')
    records = RunDir(trained).read_metrics()
    series = loss_series(records)
    d_steps, g_steps = ({x for x, _ in series[k]} for k in ("d_loss", "g_loss"))
    assert 6 in d_steps and not {3, 4, "5"} & d_steps  # inf, NaN and a step that is not a number are left out
    assert {3, 6} <= g_steps and not {4, "5"} & g_steps
    assert "nan" not in curves_svg(series, title="losses").lower()
    assert (trained / "loss.png") in write_run_pictures(trained, records)
    code, _, err = cli(capsys, "report", trained, "--out", tmp_path / "r.html")
    assert code == 0, err
    code, _, err = cli(capsys, "compare", trained)
    assert code == 0, err


def test_compare_marks_scores_of_an_earlier_checkpoint(trained, capsys):
    (trained / "eval.json").write_text(json.dumps({"fid": 12.5, "step": 1, "epoch": 0}))
    code, out, _ = cli(capsys, "compare", trained)
    assert code == 0 and "12.50*" in out and "trained on after `ganzoo eval`" in " ".join(out.split())
    code, out, _ = cli(capsys, "compare", trained, "--json")
    assert json.loads(out)[0]["stale_eval"] is True
    code, _, _ = cli(capsys, "report", trained, "--out", trained / "r.html")
    assert "of step 1, but the last checkpoint is of step 2" in (trained / "r.html").read_text()
    (trained / "eval.json").write_text(json.dumps({"fid": 12.5, "step": 2, "epoch": 0}))
    code, out, _ = cli(capsys, "compare", trained)
    assert "12.50" in out and "12.50*" not in out


def test_compare_of_the_current_folder_names_it(trained, capsys, monkeypatch):
    monkeypatch.chdir(trained)
    code, out, _ = cli(capsys, "compare", ".", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == trained.name


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_run_being_trained_cannot_be_trained_again(trained, capsys):
    from ganzoo.rundir import RunLock

    data = load_checkpoint(trained / "checkpoints" / "last.safetensors")[1]["config"]["data"]["root"]
    before = (trained / "checkpoints" / "last.safetensors").read_bytes()
    with RunLock(trained):  # another process trains it (flock is per open file, so one process can play both)
        code, _, err = cli(capsys, "train", "--resume", trained, "--max-steps", 4)
        assert code == 2 and "is being trained by another process" in " ".join(err.split())
        code, _, err = cli(capsys, "train", "dcgan", "--data-dir", data, "--out", trained, "--overwrite", *FAST)
        assert code == 2 and "is being trained by another process" in " ".join(err.split())
    assert (trained / "checkpoints" / "last.safetensors").read_bytes() == before
    code, _, err = cli(capsys, "train", "--resume", trained, "--max-steps", 4)
    assert code == 0, err


def test_checkpoints_with_odd_metadata_are_named(trained, tmp_path, capsys):
    from ganzoo.checkpoint import save_checkpoint

    tensors, meta = load_checkpoint(trained / "checkpoints" / "last.safetensors")
    odd = tmp_path / "odd.safetensors"
    save_checkpoint(odd, tensors, {**meta, "format_version": "1"})
    with pytest.raises(CheckpointError, match="metadata is damaged"):
        load_checkpoint(odd)
    newer = dict(meta, state={**meta["state"], "warmup_left": 3})  # a later ganzoo's counter
    save_checkpoint(trained / "checkpoints" / "last.safetensors", tensors, newer)
    code, _, err = cli(capsys, "train", "--resume", trained, "--max-steps", 4)
    assert code == 2 and "warmup_left unknown to ganzoo" in " ".join(err.split())
    save_checkpoint(trained / "checkpoints" / "last.safetensors", tensors, {k: v for k, v in meta.items() if k != "config"})
    code, _, err = cli(capsys, "train", "--resume", trained, "--max-steps", 4)
    assert code == 2 and "holds no training config" in err and "Traceback" not in err


def test_a_report_of_a_hand_edited_config_with_a_top_level_key(trained, tmp_path, capsys):
    config = trained / "config.toml"
    config.write_text('note = "tried lr 1e-3"\n' + config.read_text())
    code, _, err = cli(capsys, "report", trained, "--out", tmp_path / "r.html")
    assert code == 0, err
    assert "tried lr 1e-3" in (tmp_path / "r.html").read_text()


def test_sample_refuses_more_images_than_fit_in_memory(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("ganzoo.sampling.available_memory", lambda: 8 * 10**9)
    code, _, err = cli(capsys, "sample", trained, "--n", 10**9, "--out", tmp_path / "all.npy")
    message = " ".join(err.split())
    assert code == 2 and "1,000,000,000 samples need about" in message and "8.0 GB are free" in message
    assert not (tmp_path / "all.npy").exists()
    code, _, err = cli(capsys, "sample", trained, "--n", 100, "--out", tmp_path / "some.npy")
    assert code == 0, err


def test_a_diverged_runs_scores_are_not_marked_stale(trained, capsys):
    summary = json.loads((trained / "summary.json").read_text())
    (trained / "summary.json").write_text(json.dumps({**summary, "status": "diverged", "steps": 9}))
    (trained / "eval.json").write_text(json.dumps({"fid": 12.5, "step": 2, "epoch": 0}))  # its last checkpoint
    code, out, _ = cli(capsys, "compare", trained)
    assert code == 0 and "12.50" in out and "12.50*" not in out


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_file_system_without_flock_trains_with_a_warning(trained, capsys, monkeypatch):
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    code, _, err = cli(capsys, "train", "--resume", trained, "--max-steps", 4)
    assert code == 0, err
    assert "warning:" in err and " ".join(err.split()).count("is not locked against a second training") == 1


def test_sample_counts_the_labels_of_a_conditional_run_before_drawing_them(tmp_path, tiny_data, capsys, monkeypatch):
    run = tmp_path / "cgan"
    assert main(["train", "cgan", "--data-dir", str(tiny_data), "--max-steps", "1", "--out", str(run), *FAST]) == 0
    monkeypatch.setattr("ganzoo.sampling.available_memory", lambda: 8 * 10**9)

    def labels_first(*args, **kwargs):
        raise AssertionError("the labels were made before the memory check")

    monkeypatch.setattr("ganzoo.cli._sample_labels", labels_first)
    code, _, err = cli(capsys, "sample", run, "--n", 10**9, "--out", f"{tmp_path / 'all'}/")
    assert code == 2 and "samples need about" in " ".join(err.split())


def test_scores_are_stale_when_the_last_checkpoint_is_another_step(trained, capsys):
    from ganzoo.rundir import checkpoint_step

    last = checkpoint_step(trained / "checkpoints" / "last.safetensors")
    assert last == json.loads((trained / "summary.json").read_text())["steps"]
    summary = json.loads((trained / "summary.json").read_text())
    # resumed after `ganzoo eval`, trained on, then diverged: the summary is no longer "completed"
    (trained / "summary.json").write_text(json.dumps({**summary, "status": "diverged", "steps": last + 7}))
    (trained / "eval.json").write_text(json.dumps({"fid": 12.5, "step": last - 1, "epoch": 0}))
    code, out, _ = cli(capsys, "compare", trained)
    assert code == 0 and "12.50*" in out
    # scored while a resumed session trains on: the summary is older than the checkpoint scored
    (trained / "summary.json").write_text(json.dumps({**summary, "steps": last - 1}))
    (trained / "eval.json").write_text(json.dumps({"fid": 12.5, "step": last, "epoch": 0}))
    code, out, _ = cli(capsys, "compare", trained)
    assert code == 0 and "12.50" in out and "12.50*" not in out
    for damaged in (b"", b"\xff" * 8, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}"):
        (trained / "checkpoints" / "damaged.safetensors").write_bytes(damaged)
        assert checkpoint_step(trained / "checkpoints" / "damaged.safetensors") is None


def test_non_finite_scores_are_written_as_null_and_shown_as_a_dash(trained, capsys):
    from ganzoo.evaluation import write_eval

    write_eval(trained, {"fid": float("nan"), "kid": float("inf"), "step": 2, "floor": {"fid": 0.5}})
    text = (trained / "eval.json").read_text()
    assert "NaN" not in text and "Infinity" not in text and json.loads(text)["fid"] is None
    code, out, err = cli(capsys, "compare", trained, "--json")
    assert code == 0 and json.loads(out)[0]["eval"]["fid"] is None
    for scores in ({"fid": float("nan"), "kid": float("inf"), "step": 2, "floor": {"fid": 0.5}},
                   {"fid": "12", "kid": None, "step": 2, "floor": 1.5, "classes_covered": 3, "class_shares": None}):
        write_eval(trained, scores)
        code, out, err = cli(capsys, "compare", trained)
        assert code == 0 and "Traceback" not in err, err
        header = next(line.split() for line in out.splitlines() if "FID" in line.split())
        row = next(line.split() for line in out.splitlines() if line.split()[:2] == [trained.name, "dcgan"])
        fid = row[header.index("FID")]
        assert fid == "-" and "nan" not in out.lower() and "None" not in out
        code, _, err = cli(capsys, "report", trained, "--out", trained / "r.html")
        assert code == 0, err
        page = (trained / "r.html").read_text()
        assert "<td>nan" not in page.lower() and "<td>none" not in page.lower()
        assert "FID (classifier features)" not in page  # no score, no row
        assert ("floor FID" in page) == isinstance(scores["floor"], dict)


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_of_two_processes_told_to_make_one_run_the_second_is_refused(tmp_path):
    from ganzoo.errors import ConfigError
    from ganzoo.rundir import RunLock, prepare_new_run

    path = tmp_path / "run"
    mine = prepare_new_run(path, overwrite=True)  # checked while the folder did not exist yet
    other = prepare_new_run(path)
    lock = RunLock(path)
    lock.acquire()  # nothing to lock yet
    with RunLock(path) as theirs:  # the other process gets there first and starts training
        other.claim(theirs, new=True)
        other.config.write_text("theirs")
        with pytest.raises(ConfigError, match="being trained by another process"):
            mine.claim(lock, new=True)  # --overwrite must not clear a run another process trains
        assert other.config.read_text() == "theirs"
    late = prepare_new_run(tmp_path / "late")
    RunDir(tmp_path / "late").create()
    (tmp_path / "late" / "config.toml").write_text("finished meanwhile")
    with RunLock(late.path) as lock, pytest.raises(ConfigError, match="now holds a ganzoo run"):
        late.claim(lock, new=True)  # without --overwrite a run that appeared since the checks is kept
    assert (tmp_path / "late" / "config.toml").read_text() == "finished meanwhile"


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_overwrite_keeps_the_lock_it_took_on_the_old_run(trained, tmp_path):
    from ganzoo.errors import ConfigError
    from ganzoo.rundir import LOCK_FILE, RunLock, prepare_new_run

    run = prepare_new_run(trained, overwrite=True)
    with RunLock(trained) as lock:
        run.claim(lock, new=True)
        assert sorted(p.name for p in trained.iterdir()) == [LOCK_FILE, "checkpoints", "samples"]
        with pytest.raises(ConfigError, match="being trained by another process"):
            RunLock(trained).acquire()  # the cleared folder is still locked: its lock file outlived the clearing
    assert prepare_new_run(tmp_path / "fresh").path.name == "fresh"
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / LOCK_FILE).write_bytes(b"")  # a folder left with just a lock file is free to use
    prepare_new_run(tmp_path / "fresh")


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_the_run_lock_works_where_flock_needs_a_file_open_for_writing(trained, monkeypatch):
    import fcntl
    import warnings

    from ganzoo.rundir import RunLock

    real_flock = fcntl.flock

    def nfs_flock(fd, operation):  # Linux NFS emulates flock with byte-range locks: LOCK_EX needs write access
        if operation & fcntl.LOCK_EX and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", nfs_flock)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with RunLock(trained) as lock:
            assert lock._held  # locked, not "not locked against a second training"


def test_free_memory_counts_a_containers_cgroup_limit(tmp_path):
    from ganzoo.sampling import cgroup_free

    v2 = tmp_path / "v2"
    job = v2 / "slurm" / "job_7"
    job.mkdir(parents=True)
    (v2 / "slurm" / "memory.max").write_text("8000000000\n")  # the parent's limit binds
    (v2 / "slurm" / "memory.current").write_text("1000000000\n")
    (job / "memory.max").write_text("max\n")
    (job / "memory.current").write_text("500000000\n")
    (v2 / "slurm" / "memory.stat").write_text("anon 1\ninactive_file 200000000\n")
    own = tmp_path / "cgroup"
    own.write_text("0::/slurm/job_7\n")
    assert cgroup_free(v2, own) == 8_000_000_000 - 1_000_000_000 + 200_000_000
    (v2 / "slurm" / "memory.max").write_text("max\n")
    assert cgroup_free(v2, own) is None  # no limit anywhere: MemAvailable alone decides
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)  # a container: its own cgroup is mounted as the root
    (v1 / "memory" / "memory.limit_in_bytes").write_text("4000000000\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text("3000000000\n")
    (v1 / "memory" / "memory.stat").write_text("total_inactive_file 1000000\n")
    own.write_text("4:memory:/docker/abc\n0::/\n")
    assert cgroup_free(v1, own) == 1_001_000_000
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_free(v1, own) is None
    assert cgroup_free(v1, tmp_path / "missing") is None


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_another_users_lock_file_in_a_shared_folder_still_locks(trained, monkeypatch):
    import warnings

    from ganzoo.errors import ConfigError
    from ganzoo.rundir import LOCK_FILE, RunLock

    with RunLock(trained):  # a colleague trains it; their .lock is theirs, and not writable for us
        real_open = os.open

        def not_ours(path, flags, *mode):
            if Path(path).name == LOCK_FILE and flags & os.O_ACCMODE != os.O_RDONLY:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real_open(path, flags, *mode)

        monkeypatch.setattr(os, "open", not_ours)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # locked, or refused: never silently unlocked
            with pytest.raises(ConfigError, match="being trained by another process"):
                RunLock(trained).acquire()
