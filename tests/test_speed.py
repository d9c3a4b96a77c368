"""The speed switches: what `auto` resolves to, and the fast dropout layer's distribution."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import ganzoo.trainer as trainer_mod
from ganzoo.config import resolve_config
from ganzoo.errors import ConfigError
from ganzoo.layers import Dropout, fast_dropout, set_fast_dropout
from ganzoo.rundir import RunDir
from ganzoo.trainer import SpeedSettings, Trainer


def settings(**overrides):
    base = {"precision": "auto", "channels_last": "auto", "compile": False, "fast_dropout": "auto"}
    return SimpleNamespace(**{**base, **overrides})


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_follows_the_cpu(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(trainer_mod, "cpu_has_bf16", lambda: has_bf16)
    speed = SpeedSettings.resolve(settings(), torch.device("cpu"))
    assert speed.precision == expected
    assert speed.dtype == (torch.bfloat16 if has_bf16 else None)
    assert speed.channels_last is False and speed.fast_dropout is True


def test_explicit_switches_win_over_auto(monkeypatch):
    monkeypatch.setattr(trainer_mod, "cpu_has_bf16", lambda: True)
    speed = SpeedSettings.resolve(settings(precision="fp32", channels_last=True, fast_dropout=False),
                                  torch.device("cpu"))
    assert (speed.precision, speed.channels_last, speed.fast_dropout) == ("fp32", True, False)


def test_fp16_on_cpu_is_refused_with_the_alternatives():
    with pytest.raises(ConfigError, match="fp16.*CUDA.*bf16"):
        SpeedSettings.resolve(settings(precision="fp16"), torch.device("cpu"))


def test_the_trainer_switches_every_ganzoo_dropout(tmp_path, tiny_data):
    def build(fast):
        raw = {"model": {"name": "dcgan", "dropout": 0.3, "width": 4},
               "data": {"name": "fashion_mnist", "root": str(tiny_data), "download": False},
               "train": {"batch_size": 8, "max_steps": 1, "precision": "fp32", "fast_dropout": fast}}
        return Trainer(resolve_config(raw), RunDir(tmp_path / f"run-{fast}"), plugin_events=False)

    for fast, expected in (("auto", True), (False, False), (True, True)):
        trainer = build(fast)
        drops = [m for m in trainer.gan.modules() if isinstance(m, Dropout)]
        assert len(drops) == 2 and all(m.fast is expected for m in drops)
        assert trainer.summary()["fast_dropout"] is expected


# --- ganzoo.layers.Dropout ---------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.95])
def test_fast_dropout_keeps_each_element_with_probability_1_minus_p(p):
    torch.manual_seed(0)
    n = 400_003  # not a multiple of 4: the last int64 draw is partly used
    out = fast_dropout(torch.ones(n), p)
    kept = out != 0
    rate = kept.double().mean().item()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(rate - (1 - p)) < 5 * sigma
    # survivors are scaled so the expectation is unchanged
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    # each of the four 15-bit lanes of a draw follows the same rate (no lane is biased by the sign bit)
    for lane in range(4):
        lane_rate = kept[lane::4].double().mean().item()
        assert abs(lane_rate - (1 - p)) < 5 * math.sqrt(p * (1 - p) / (n / 4))


def test_fast_dropout_masks_are_independent_between_neighbours():
    torch.manual_seed(1)
    kept = (fast_dropout(torch.ones(800_000), 0.5) != 0).double()
    a, b = kept[:-1], kept[1:]
    correlation = ((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std())
    assert abs(correlation.item()) < 5 / math.sqrt(len(a))


def test_fast_dropout_is_reproducible_from_the_global_seed():
    torch.manual_seed(3)
    first = fast_dropout(torch.ones(1000), 0.3)
    torch.manual_seed(3)
    assert torch.equal(first, fast_dropout(torch.ones(1000), 0.3))
    assert not torch.equal(first, fast_dropout(torch.ones(1000), 0.3))


def test_fast_dropout_gradient_is_the_same_mask():
    torch.manual_seed(0)
    x = torch.randn(8, 4, 6, 6, requires_grad=True)
    out = fast_dropout(x, 0.4)
    out.backward(torch.ones_like(out))
    mask = out.detach() / x.detach()  # randn is never exactly 0
    assert torch.allclose(x.grad, mask, atol=1e-5)
    values = torch.unique(x.grad)
    assert all(v == 0 or abs(v - 1 / 0.6) < 1e-5 for v in values.tolist())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_dropout_follows_dtype_and_memory_layout(dtype):
    x = torch.ones(4, 3, 5, 5, dtype=dtype).contiguous(memory_format=torch.channels_last)
    out = fast_dropout(x, 0.5)
    assert out.dtype == dtype
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert set(out.float().unique().tolist()) <= {0.0, 2.0}


def test_dropout_module_is_nn_dropout_in_eval_and_at_p0():
    layer = Dropout(0.3)
    assert isinstance(layer, nn.Dropout) and layer.state_dict() == {}
    x = torch.randn(16, 8)
    layer.eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(fast_dropout(x, 0.0), x)
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))


def test_dropout_module_uses_pytorchs_mask_when_switched_off():
    layer = Dropout(0.3)
    set_fast_dropout(nn.Sequential(layer), False)
    torch.manual_seed(5)
    ours = layer(torch.ones(1000))
    torch.manual_seed(5)
    assert torch.equal(ours, nn.functional.dropout(torch.ones(1000), 0.3, True))
    set_fast_dropout(nn.Sequential(layer), True)
    torch.manual_seed(5)
    assert not torch.equal(layer(torch.ones(1000)), ours)
