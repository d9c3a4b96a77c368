"""Devices and speed settings: what each `auto` resolves to on which machine, and why."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import ganzoo.device as device_mod
from conftest import make_trainer
from ganzoo.device import SpeedSettings
from ganzoo.errors import ConfigError
from ganzoo.layers import Dropout


def settings(**overrides):
    base = {"precision": "auto", "channels_last": "auto", "compile": False, "fast_dropout": "auto",
            "reuse_memory": "auto"}
    return SimpleNamespace(**{**base, **overrides})


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_follows_the_cpu(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: has_bf16)
    speed = SpeedSettings.resolve(settings(), torch.device("cpu"))
    assert speed.precision == expected
    assert speed.dtype == (torch.bfloat16 if has_bf16 else None)
    assert speed.fast_dropout is True and speed.reuse_memory is True


@pytest.mark.parametrize("device, capability, model_ok, expected", [
    ("cpu", "AVX512", True, True), ("cpu", "AVX2", True, False), ("cpu", "AVX512", False, False),
    ("cuda", "AVX2", True, True), ("cuda", "AVX2", False, False), ("mps", "AVX512", True, False)])
def test_auto_channels_last_needs_a_model_written_for_it_and_a_machine_where_it_pays(
        monkeypatch, device, capability, model_ok, expected):
    """Measured faster with AVX-512 and on CUDA, slightly slower with AVX2 only (docs/benchmarks.md)."""
    monkeypatch.setattr(device_mod, "cpu_capability", lambda: capability)
    speed = SpeedSettings.resolve(settings(precision="fp32"), torch.device(device), channels_last_ok=model_ok)
    assert speed.channels_last is expected
    assert speed.reasons["channels_last"].startswith("auto: ")
    assert speed.reuse_memory is (device == "cpu") and speed.fast_dropout is (device == "cpu")


def test_auto_precision_says_why(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: False)
    speed = SpeedSettings.resolve(settings(), torch.device("cpu"))
    assert "no bf16 units" in speed.reasons["precision"]
    assert "precision" not in SpeedSettings.resolve(settings(precision="fp32"), torch.device("cpu")).reasons


def test_explicit_switches_win_over_auto(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: True)
    speed = SpeedSettings.resolve(settings(precision="fp32", channels_last=True, fast_dropout=False, reuse_memory=False),
                                  torch.device("cpu"))
    assert (speed.precision, speed.channels_last, speed.fast_dropout, speed.reuse_memory) == ("fp32", True, False, False)
    speed = SpeedSettings.resolve(settings(channels_last=False), torch.device("cpu"), channels_last_ok=True)
    assert speed.channels_last is False


def test_fp16_on_cpu_is_refused_with_the_alternatives():
    with pytest.raises(ConfigError, match="fp16.*CUDA.*bf16"):
        SpeedSettings.resolve(settings(precision="fp16"), torch.device("cpu"))


def test_the_trainer_switches_every_ganzoo_dropout(tmp_path, tiny_data):
    for fast, expected in (("auto", True), (False, False), (True, True)):
        trainer = make_trainer(tmp_path / f"r{fast}", tiny_data, "dcgan", fast_dropout=fast)
        drops = [m for m in trainer.gan.modules() if isinstance(m, Dropout)]
        assert len(drops) == 2 and all(m.fast is expected for m in drops)
        assert trainer.summary()["fast_dropout"] is expected


