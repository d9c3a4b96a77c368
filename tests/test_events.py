"""Trainer events reach plugins; a failing logger is switched off, not fatal; the TensorBoard plugin."""

from __future__ import annotations

import pytest

from ganzoo import hookimpl
from ganzoo.cli import main
from ganzoo.plugins import register_plugin
from ganzoo.registry import get_registry

FAST = ["--set", "model.width=8", "--batch-size", "32", "--set", "train.log_every=2"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    @hookimpl
    def on_train_start(self, trainer):
        self.events.append(("start", trainer.state.step, trainer.config.model["name"]))

    @hookimpl
    def on_log(self, metrics):  # pluggy's opt-in arguments: take only what you need
        self.events.append(("log", metrics["step"], sorted(metrics)))

    @hookimpl
    def on_epoch_end(self, trainer, epoch, metrics):
        assert (trainer.run.path / metrics["grid"]).is_file()
        self.events.append(("epoch", epoch, metrics["step"]))

    @hookimpl
    def on_train_end(self, trainer, summary):
        self.events.append(("end", summary["status"], summary["steps"]))


def test_plugins_receive_trainer_events_in_order(tmp_path, tiny_data, capsys):
    recorder = Recorder()
    register_plugin(get_registry().plugins, recorder, name="recorder")
    code = main(["train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "2", "--out", str(tmp_path / "r"), *FAST])
    assert code == 0, capsys.readouterr().err
    keys = ["d_fake", "d_loss", "d_real", "epoch", "g_loss", "images_per_s", "step", "time"]
    assert recorder.events == [
        ("start", 0, "dcgan"),
        ("log", 2, keys), ("epoch", 1, 3), ("log", 4, keys), ("log", 6, keys), ("epoch", 2, 6),
        ("end", "completed", 6),
    ]


def test_a_failing_event_hook_is_reported_once_and_training_goes_on(tmp_path, tiny_data, capsys):
    class Broken:
        calls = 0

        @hookimpl
        def on_log(self, metrics):
            Broken.calls += 1
            raise ValueError("disk quota")

    register_plugin(get_registry().plugins, Broken(), name="broken-logger")
    with pytest.warns(RuntimeWarning, match="plugin 'broken-logger': on_log raised ValueError: disk quota"):
        code = main(["train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "2", "--out", str(tmp_path / "r"), *FAST])
    assert code == 0 and Broken.calls == 1


def test_tensorboard_plugin_logs_scalars_and_grids(tmp_path, tiny_data, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed: pip install 'ganzoo[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "r"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "2", "--out", str(run), *FAST]) == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/d_loss")] == [2, 4, 6]
    assert {"train/g_loss", "train/d_real", "train/d_fake", "train/images_per_s"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Images("samples")] == [3, 6]


def test_tensorboard_plugin_writes_what_a_writer_is_given(tmp_path, tiny_data, capsys, monkeypatch):
    """The logger's own logic, with a stand-in SummaryWriter (tensorboard is an optional extra)."""
    import sys
    import types

    import ganzoo_plugins.tensorboard as tb

    calls = []

    class Writer:
        def __init__(self, log_dir, purge_step, flush_secs):
            calls.append(("open", purge_step))

        def add_scalar(self, tag, value, step):
            calls.append(("scalar", tag, step))

        def add_image(self, tag, image, step, dataformats):
            calls.append(("image", tag, step, image.shape[-1], dataformats))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    monkeypatch.setattr(tb, "available", lambda: True)
    run = tmp_path / "r"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "2", "--out", str(run), *FAST]) == 0
    assert calls[0] == ("open", None) and calls[-1] == ("close",)
    assert [c[2] for c in calls if c[:2] == ("scalar", "train/d_loss")] == [2, 4, 6]
    assert [c[2:] for c in calls if c[0] == "image"] == [(3, 3, "HWC"), (6, 3, "HWC")]
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert ("open", 6) in calls  # a resumed run purges what a crash wrote past its checkpoint
