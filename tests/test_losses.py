import math

import pytest
import torch

import ganzoo
from ganzoo.cli import main


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


def test_least_squares_and_hinge_by_hand():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    ls = ganzoo.create_loss("lsgan")
    d = 0.5 * ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + 0.5 * (0.5 ** 2 + 3 ** 2) / 2
    assert ls.discriminator_loss(real, fake).item() == pytest.approx(d)
    assert ls.generator_loss(fake).item() == pytest.approx(0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2)
    hinge = ganzoo.create_loss("hinge")
    # relu(1 - r): [0, 2]; relu(1 + f): [1.5, 0]
    assert hinge.discriminator_loss(real, fake).item() == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert hinge.generator_loss(fake).item() == pytest.approx(-(0.5 - 3) / 2)


def test_wasserstein_loss_by_hand():
    loss = ganzoo.create_loss("wgan-gp")
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx((0.5 - 3) / 2 - (2 - 1) / 2)
    assert loss.generator_loss(fake).item() == pytest.approx(-(0.5 - 3) / 2)


class QuadraticCritic(torch.nn.Module):
    """D(x) = 0.5 * ||x||^2 per sample, so grad D(x) = x and ||grad|| = ||x|| for each sample."""

    def forward(self, x, y=None):
        return 0.5 * (x ** 2).flatten(1).sum(1)


def test_gradient_penalty_takes_one_norm_per_sample():
    loss = ganzoo.create_loss("wgan-gp", penalty_weight=10.0)
    # real == fake, so every interpolate is that image whatever epsilon is drawn
    images = torch.tensor([[3.0, 4.0], [0.0, 1.0]]).view(2, 1, 1, 2)
    penalty = loss.penalty(QuadraticCritic(), images, images.clone())
    # per-sample norms 5 and 1: 10 * ((5 - 1)^2 + (1 - 1)^2) / 2 = 80
    assert penalty.item() == pytest.approx(80.0)
    # (one norm over the whole batch would give 10 * (sqrt(26) - 1)^2 = 168.0)
    assert penalty.item() != pytest.approx(10 * (math.sqrt(26) - 1) ** 2)


def test_gradient_penalty_is_differentiable_for_the_critic():
    gan = ganzoo.create_model("wgan-gp", width=4)
    loss = ganzoo.create_loss("wgan-gp")
    real, fake = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    loss.penalty(gan.discriminator, real, fake).backward()
    # every weight shapes grad D(x); the output bias alone does not
    grads = {n: p.grad for n, p in gan.discriminator.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.endswith("weight"))
    assert grads["head.bias"] is None


def test_losses_refuse_models_they_cannot_train():
    wgp = ganzoo.create_loss("wgan-gp")
    assert "BatchNorm" in wgp.check(ganzoo.create_model("dcgan", d_batchnorm=True))
    assert wgp.check(ganzoo.create_model("wgan-gp")) is None

    class SigmoidCritic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.out = torch.nn.Sigmoid()

    fake_gan = type("G", (), {"discriminator": SigmoidCritic()})()
    assert "sigmoid" in wgp.check(fake_gan)
    assert ganzoo.create_loss("hinge").check(ganzoo.create_model("dcgan")) is None


def test_wasserstein_loss_refuses_a_batchnorm_critic_from_the_cli(tiny_data, tmp_path, capsys):
    code = main(["train", "dcgan", "--loss", "wgan-gp", "--data-dir", str(tiny_data), "--out", str(tmp_path / "r"),
                 "--set", "model.d_batchnorm=true"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "loss 'wgan-gp' cannot train model 'dcgan': the critic uses BatchNorm" in err


