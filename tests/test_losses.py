import math

import pytest
import torch

import ganzoo


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


REAL, FAKE = [2.0, -1.0], [0.5, -3.0]


def test_nonsaturating_matches_hand_computed_values():
    loss = ganzoo.create_loss("nonsaturating")
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    d_expected = (-sum(math.log(sigmoid(r)) for r in REAL) / 2) + (-sum(math.log(1 - sigmoid(f)) for f in FAKE) / 2)
    g_expected = -sum(math.log(sigmoid(f)) for f in FAKE) / 2
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.generator_loss(fake).item() == pytest.approx(g_expected, rel=1e-6)


def test_minimax_generator_minimises_log_one_minus_d():
    loss = ganzoo.create_loss("minimax")
    fake = torch.tensor(FAKE)
    g_expected = sum(math.log(1 - sigmoid(f)) for f in FAKE) / 2
    assert loss.generator_loss(fake).item() == pytest.approx(g_expected, rel=1e-6)
    # the discriminator side of the game is the same for both losses
    real = torch.tensor(REAL)
    ns = ganzoo.create_loss("nonsaturating")
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(ns.discriminator_loss(real, fake).item())


def test_losses_stay_finite_for_saturated_logits():
    for name in ganzoo.list_losses():
        loss = ganzoo.create_loss(name)
        big = torch.tensor([1e4, -1e4])
        assert torch.isfinite(loss.discriminator_loss(big, -big))
        assert torch.isfinite(loss.generator_loss(big))
        assert torch.isfinite(loss.generator_loss(-big))


def test_minimax_gradient_vanishes_where_nonsaturating_does_not():
    # the reason the non-saturating loss exists: D confidently rejects the fakes
    logits = torch.tensor([-8.0], requires_grad=True)
    ganzoo.create_loss("minimax").generator_loss(logits).backward()
    mm = logits.grad.abs().item()
    logits.grad = None
    ganzoo.create_loss("nonsaturating").generator_loss(logits).backward()
    ns = logits.grad.abs().item()
    assert mm < 1e-3 < 0.9 < ns
