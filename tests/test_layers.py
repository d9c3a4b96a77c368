"""Building blocks for plugins (ganzoo.layers): the fast dropout mask's distribution, Flatten's
gradient layout, memory_format_of."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganzoo.layers import Dropout, Flatten, fast_dropout, memory_format_of, set_fast_dropout

CL = torch.channels_last


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


