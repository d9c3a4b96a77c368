"""The speed switches: what `auto` resolves to, what each does, and the fast dropout layer's distribution."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import ganzoo.trainer as trainer_mod
from ganzoo.config import resolve_config
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.data import to_unit_range
from ganzoo.layers import Dropout, Flatten, fast_dropout, memory_format_of, set_fast_dropout
from ganzoo.optim import AdamOptions, RMSpropOptions, SGDOptions, build_optimizer
from ganzoo.rundir import RunDir
from ganzoo.trainer import SpeedSettings, Trainer, _load_optimizer_state

CL = torch.channels_last


def settings(**overrides):
    base = {"precision": "auto", "channels_last": "auto", "compile": False, "fast_dropout": "auto",
            "reuse_memory": "auto"}
    return SimpleNamespace(**{**base, **overrides})


CONV_MODELS = ["dcgan", "cgan", "acgan", "sngan", "wgan-gp"]


def _trainer(tmp_path, data, model, **train):
    raw = {"model": {"name": model, "width": 8}, "data": {"name": "fashion_mnist", "root": str(data), "download": False},
           "train": {"batch_size": 24, "max_steps": 2, "precision": "fp32", **train}}
    if model == "wgan-gp":
        raw["loss"] = {"name": "wgan-gp"}
    return Trainer(resolve_config(raw), RunDir(tmp_path / f"{model}-{sorted(train.items())}"), plugin_events=False)


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_follows_the_cpu(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(trainer_mod, "cpu_has_bf16", lambda: has_bf16)
    speed = SpeedSettings.resolve(settings(), torch.device("cpu"))
    assert speed.precision == expected
    assert speed.dtype == (torch.bfloat16 if has_bf16 else None)
    assert speed.channels_last is False and speed.fast_dropout is True and speed.reuse_memory is True


@pytest.mark.parametrize("device, model_ok, expected", [
    ("cpu", True, True), ("cpu", False, False), ("cuda", True, True), ("cuda", False, False), ("mps", True, False)])
def test_auto_channels_last_needs_a_model_written_for_it(device, model_ok, expected):
    speed = SpeedSettings.resolve(settings(precision="fp32"), torch.device(device), channels_last_ok=model_ok)
    assert speed.channels_last is expected
    assert speed.reuse_memory is (device == "cpu") and speed.fast_dropout is (device == "cpu")


def test_explicit_switches_win_over_auto(monkeypatch):
    monkeypatch.setattr(trainer_mod, "cpu_has_bf16", lambda: True)
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
        trainer = _trainer(tmp_path, tiny_data, "dcgan", fast_dropout=fast)
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


# --- channels-last ------------------------------------------------------------------------------

def _layout(t: torch.Tensor) -> str | None:
    """'C' or 'L' for a 4-D tensor in exactly one of the two layouts; None where both or neither apply."""
    if t.dim() != 4:
        return None
    c, cl = t.is_contiguous(), t.is_contiguous(memory_format=CL)
    return "C" if c and not cl else "L" if cl and not c else None


def test_flatten_hands_the_gradient_back_channels_last():
    x = torch.randn(3, 4, 5, 5).contiguous(memory_format=CL).requires_grad_()
    out = Flatten()(x)
    assert torch.equal(out, nn.Flatten()(x.detach().contiguous()))  # the (C, H, W) order a Linear expects
    (out * torch.arange(out.shape[1])).sum().backward()
    assert _layout(x.grad) == "L"
    assert torch.equal(x.grad, torch.arange(100.).view(1, 4, 5, 5).expand(3, 4, 5, 5))
    y = torch.randn(3, 4, 5, 5, requires_grad=True)  # contiguous input: plain nn.Flatten
    Flatten()(y).sum().backward()
    assert _layout(y.grad) == "C"


def test_flatten_supports_double_backward_for_gradient_penalties():
    lin = nn.Linear(100, 1)
    x = torch.randn(3, 4, 5, 5).contiguous(memory_format=CL).requires_grad_()
    penalties = []
    for flatten, inp in ((Flatten(), x), (nn.Flatten(), x.detach().contiguous().requires_grad_())):
        out = torch.tanh(lin(flatten(inp * inp))).sum()
        (grad,) = torch.autograd.grad(out, inp, create_graph=True)
        lin.zero_grad()
        (grad.square().sum()).backward()
        penalties.append(lin.weight.grad.clone())
    torch.testing.assert_close(penalties[0], penalties[1])


def test_memory_format_of_follows_the_first_4d_parameter():
    net = nn.Sequential(nn.Linear(2, 2), nn.Conv2d(3, 4, 3))
    assert memory_format_of(net) == torch.contiguous_format
    assert memory_format_of(net.to(memory_format=CL)) == CL
    assert memory_format_of(nn.Linear(2, 2)) == torch.contiguous_format


@pytest.mark.parametrize("model", CONV_MODELS)
def test_builtin_conv_models_train_channels_last_in_one_layout(tmp_path, tiny_data, model):
    """Every op on a batch of activations sees one layout: a mixed one is several times slower on CPU."""
    from torch.utils._python_dispatch import TorchDispatchMode

    trainer = _trainer(tmp_path, tiny_data, model)
    assert trainer.speed.channels_last is True and trainer.summary()["channels_last"] is True
    mixed: set[str] = set()

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func not in (torch.ops.aten.clone.default, torch.ops.aten.copy_.default, torch.ops.aten._to_copy.default):
                outs = out if isinstance(out, (tuple, list)) else [out]
                layouts = {_layout(t) for t in [*args, *outs]
                           if isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[0] == 24 and t.shape[1] > 1}
                if len(layouts - {None}) > 1:
                    mixed.add(str(func))
            return out

    idx = torch.arange(24)
    y = trainer.labels[idx] if trainer.conditional else None
    with Watch():
        trainer.train_step(to_unit_range(trainer.images[idx]), y)
    # wgan-gp's double backward transposes weights internally; its first-order passes are checked
    allowed = {"aten.convolution.default", "aten.convolution_backward.default"} if model == "wgan-gp" else set()
    assert mixed <= allowed, mixed


@pytest.mark.parametrize("model", CONV_MODELS)
def test_channels_last_computes_what_contiguous_memory_computes(tmp_path, tiny_data, model):
    torch.manual_seed(0)
    plain = _trainer(tmp_path, tiny_data, model, channels_last=False)
    torch.manual_seed(0)
    cl = _trainer(tmp_path, tiny_data, model, channels_last=True)
    assert _layout(next(p for p in cl.gan.parameters() if p.dim() == 4 and p.shape[1] > 1)) == "L"
    idx = torch.arange(24)
    y = plain.labels[idx] if plain.conditional else None
    real = to_unit_range(plain.images[idx])
    outs = []
    for trainer in (plain, cl):
        torch.manual_seed(1)
        trainer.gan.discriminator.eval()  # no dropout: its masks follow memory order, so they would differ
        trainer.train_step(real, y)
        outs.append(trainer.gan.state_dict())
    for key in outs[0]:
        torch.testing.assert_close(outs[0][key], outs[1][key], rtol=1e-4, atol=1e-5, msg=key)


# --- fused optimizers and their state on resume ----------------------------------------------------

def test_auto_fused_optimizers_on_cpu():
    net = nn.Linear(3, 3)
    assert build_optimizer("adam", net.parameters(), AdamOptions()).defaults["fused"] is True
    assert build_optimizer("sgd", net.parameters(), SGDOptions(momentum=0.9)).defaults["fused"] is True
    assert not build_optimizer("adam", net.parameters(), AdamOptions(fused=False)).defaults["fused"]
    assert "fused" not in RMSpropOptions.__dataclass_fields__  # PyTorch has no fused RMSprop
    with pytest.raises(UnknownNameError, match="'fused'"):
        resolve_config({"model": {"name": "dcgan"}, "g_optimizer": {"name": "rmsprop", "fused": True}})


def test_fused_adam_updates_like_the_loop_implementation():
    torch.manual_seed(0)
    params = [torch.randn(16, 8, 3, 3), torch.randn(5)]
    grads = [[torch.randn_like(p) for p in params] for _ in range(3)]
    results = []
    for fused in (True, False):
        ps = [nn.Parameter(p.clone()) for p in params]
        opt = build_optimizer("adam", ps, AdamOptions(lr=0.01, fused=fused))
        for step in grads:
            for p, g in zip(ps, step):
                p.grad = g.clone()
            opt.step()
        results.append(ps)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_optimizer_state_takes_its_parameters_layout_on_load():
    """Checkpoints hold contiguous state; fused Adam would update a channels-last weight wrongly with it."""
    def run(interrupt: bool) -> torch.Tensor:
        torch.manual_seed(0)
        p = nn.Parameter(torch.randn(4, 3, 2, 2).contiguous(memory_format=CL))
        opt = build_optimizer("adam", [p], AdamOptions(lr=0.1))
        for step in range(3):
            p.grad = torch.randn(4, 3, 2, 2).contiguous(memory_format=CL)
            opt.step()
            if interrupt and step == 0:  # what a checkpoint round trip does to the state
                saved = opt.state_dict()
                saved["state"] = {i: {k: v.contiguous() for k, v in st.items()} for i, st in saved["state"].items()}
                opt = build_optimizer("adam", [p], AdamOptions(lr=0.1, fused=False))  # another implementation...
                _load_optimizer_state(opt, saved)
                assert opt.param_groups[0]["fused"] is False  # ...which is kept
                assert _layout(opt.state[p]["exp_avg"]) == "L"
                opt = build_optimizer("adam", [p], AdamOptions(lr=0.1))
                _load_optimizer_state(opt, saved)
                assert opt.param_groups[0]["fused"] is True and _layout(opt.state[p]["exp_avg_sq"]) == "L"
        return p.detach()

    assert torch.equal(run(False), run(True))


# --- keeping freed memory -------------------------------------------------------------------------

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_reuse_memory_stops_the_page_faults_of_every_step(tiny_data, tmp_path):
    script = textwrap.dedent("""
        import resource, sys, torch
        from pathlib import Path
        from ganzoo.config import resolve_config
        from ganzoo.data import to_unit_range
        from ganzoo.rundir import RunDir
        from ganzoo.trainer import Trainer
        raw = {"model": {"name": "dcgan", "width": 64},
               "data": {"name": "fashion_mnist", "root": sys.argv[1], "download": False},
               "train": {"batch_size": 96, "precision": "fp32", "reuse_memory": sys.argv[2] == "on"}}
        trainer = Trainer(resolve_config(raw), RunDir(Path(sys.argv[3])), plugin_events=False)
        real = to_unit_range(trainer.images[:96])
        for _ in range(4):
            trainer.train_step(real, None)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(6):
            trainer.train_step(real, None)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    faults = {mode: int(subprocess.run([sys.executable, "-c", script, str(tiny_data), mode, str(tmp_path / mode)],
                                       capture_output=True, text=True, check=True).stdout.strip())
              for mode in ("off", "on")}
    assert faults["off"] > 6000, faults  # glibc returns the step's big tensors and faults them in again
    # measured over the six steps: 21,000-72,000 faults without; 0-2,200 with
    assert faults["on"] * 5 < faults["off"], faults


def test_the_trainer_reports_reuse_memory(tmp_path, tiny_data):
    trainer = _trainer(tmp_path, tiny_data, "dcgan", reuse_memory=False)
    assert trainer.summary()["reuse_memory"] is False
    trainer = _trainer(tmp_path, tiny_data, "dcgan")
    assert trainer.summary()["reuse_memory"] is sys.platform.startswith("linux")
