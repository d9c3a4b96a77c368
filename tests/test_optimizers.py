"""The built-in optimizers (plugins/optimizers): fused updates, and their state through a checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.checkpoint import load_optimizer_state
from ganzoo.config import resolve_config
from ganzoo.errors import UnknownNameError
from test_layers import CL, _layout


# --- fused optimizers and their state on resume ----------------------------------------------------

def test_auto_fused_optimizers_on_cpu():
    net = nn.Linear(3, 3)
    assert ganzoo.create_optimizer("adam", net.parameters()).defaults["fused"] is True
    assert ganzoo.create_optimizer("sgd", net.parameters(), momentum=0.9).defaults["fused"] is True
    assert not ganzoo.create_optimizer("adam", net.parameters(), fused=False).defaults["fused"]
    assert "fused" not in ganzoo.get_optimizer_spec("rmsprop").options.__dataclass_fields__  # PyTorch has no fused RMSprop
    with pytest.raises(UnknownNameError, match="'fused'"):
        resolve_config({"model": {"name": "dcgan"}, "g_optimizer": {"name": "rmsprop", "fused": True}})


def test_fused_adam_updates_like_the_loop_implementation():
    torch.manual_seed(0)
    params = [torch.randn(16, 8, 3, 3), torch.randn(5)]
    grads = [[torch.randn_like(p) for p in params] for _ in range(3)]
    results = []
    for fused in (True, False):
        ps = [nn.Parameter(p.clone()) for p in params]
        opt = ganzoo.create_optimizer("adam", ps, lr=0.01, fused=fused)
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
        opt = ganzoo.create_optimizer("adam", [p], lr=0.1)
        for step in range(3):
            p.grad = torch.randn(4, 3, 2, 2).contiguous(memory_format=CL)
            opt.step()
            if interrupt and step == 0:  # what a checkpoint round trip does to the state
                saved = opt.state_dict()
                saved["state"] = {i: {k: v.contiguous() for k, v in st.items()} for i, st in saved["state"].items()}
                opt = ganzoo.create_optimizer("adam", [p], lr=0.1, fused=False)  # another implementation...
                load_optimizer_state(opt, saved)
                assert opt.param_groups[0]["fused"] is False  # ...which is kept
                assert _layout(opt.state[p]["exp_avg"]) == "L"
                opt = ganzoo.create_optimizer("adam", [p], lr=0.1)
                load_optimizer_state(opt, saved)
                assert opt.param_groups[0]["fused"] is True and _layout(opt.state[p]["exp_avg_sq"]) == "L"
        return p.detach()

    assert torch.equal(run(False), run(True))


