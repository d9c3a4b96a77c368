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
        real = (big,) if loss.generator_sees_real else ()
        assert torch.isfinite(loss.discriminator_loss(big, -big))
        assert torch.isfinite(loss.generator_loss(big, *real))
        assert torch.isfinite(loss.generator_loss(-big, *real))


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




def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_relativistic_standard_by_hand():
    loss = ganzoo.create_loss("rsgan")
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    d = (softplus(-(2.0 - 0.5)) + softplus(-(-1.0 + 3.0))) / 2  # pairs (2, 0.5) and (-1, -3)
    g = (softplus(-(0.5 - 2.0)) + softplus(-(-3.0 + 1.0))) / 2
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator_loss(fake, real).item() == pytest.approx(g, rel=1e-6)
    assert loss.generator_sees_real is True
    with pytest.raises(ValueError, match="needs D's logits on real images"):
        loss.generator_loss(fake)


def test_relativistic_average_by_hand():
    loss = ganzoo.create_loss("ragan")
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    mr, mf = sum(REAL) / 2, sum(FAKE) / 2  # 0.5 and -1.25
    d = sum(softplus(-(r - mf)) for r in REAL) / 2 + sum(softplus(f - mr) for f in FAKE) / 2
    g = sum(softplus(-(f - mr)) for f in FAKE) / 2 + sum(softplus(r - mf) for r in REAL) / 2
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert loss.generator_loss(fake, real).item() == pytest.approx(g, rel=1e-6)


def test_relativistic_losses_train_a_step_with_the_real_logits_of_the_updated_d(tiny_data, tmp_path):
    """The step passes D's logits on the reals to G's loss; the other losses' G side is unchanged."""
    from conftest import make_trainer

    seen = []
    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4)
    original = trainer.parts.step.loss
    loss = ganzoo.create_loss("ragan")
    real_generator_loss = loss.generator_loss

    def spy(fake_logits, real_logits=None):
        seen.append(real_logits)
        return real_generator_loss(fake_logits, real_logits)

    loss.generator_loss = spy
    trainer.parts.step.loss = loss
    out = trainer.train_step(trainer.images[:24].float() / 127.5 - 1, None)
    assert seen and seen[0].shape == (24,) and not seen[0].requires_grad and "g_loss" in out
    assert not original.generator_sees_real


def test_wgan_clips_the_critic_and_logs_its_estimate():
    loss = ganzoo.create_loss("wgan", clip=0.05)
    critic = torch.nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.5, -0.01, -2.0]]))
    logged = loss.after_discriminator_update(critic, torch.tensor([1.0, 3.0]), torch.tensor([0.5, 0.5]))
    assert critic.weight[0].tolist() == pytest.approx([0.05, -0.01, -0.05])
    assert logged["wasserstein"].item() == pytest.approx(1.5)
    assert loss.discriminator_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.5, 0.5])).item() == pytest.approx(-1.5)
    assert loss.check(ganzoo.create_model("wgan")) is None
    sigmoid_critic = ganzoo.create_model("wgan", width=4)
    sigmoid_critic.discriminator.head = torch.nn.Sequential(sigmoid_critic.discriminator.head, torch.nn.Sigmoid())
    assert "sigmoid" in loss.check(sigmoid_critic)
