"""Regularizers and augmentations: each term against a value computed by hand, and both kinds
composed with training (config, logging, checks, exact resume)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import ganzoo
from ganzoo.cli import main
from ganzoo.interfaces import Batch, Discriminator, as_output

W = torch.tensor([1.0, 2.0, -2.0, 0.5])  # ||W||^2 = 9.25


class Linear(Discriminator):
    """D(x) = W . x on 1x2x2 images: its input gradient is W everywhere."""

    def __init__(self, weights=W):
        super().__init__((1, 2, 2))
        self.w = torch.nn.Parameter(weights.clone())

    def forward(self, x, y=None):
        return x.flatten(1) @ self.w


def _term(name, real, fake, **options):
    reg = ganzoo.create_regularizer(name, **options)
    D = Linear()
    real_out, fake_out = as_output(D(real)).float(), as_output(D(fake)).float()
    return reg, reg.discriminator_term(D, Batch(real, fake, torch.zeros(len(real), 1), None), real_out, fake_out)


def test_gradient_norm_penalties_by_hand():
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    assert _term("r1", real, fake)[1].item() == pytest.approx(10 / 2 * 9.25)
    assert _term("r1", real, fake, gamma=0.2)[1].item() == pytest.approx(0.1 * 9.25)
    assert _term("r2", real, fake)[1].item() == pytest.approx(46.25)
    penalty = 10 * (math.sqrt(9.25) - 1) ** 2
    assert _term("gp", real, fake)[1].item() == pytest.approx(penalty, rel=1e-5)
    assert _term("dragan", real, fake)[1].item() == pytest.approx(penalty, rel=1e-5)
    assert _term("gp", real, fake, target=0.0)[1].item() == pytest.approx(10 * 9.25, rel=1e-5)


class Quadratic(Discriminator):
    """D(x) = sum(x^2) / 2 on 1x2x2 images: its input gradient is x itself, so where a penalty
    looks (interpolates, perturbed reals) decides its value."""

    def __init__(self):
        super().__init__((1, 2, 2))
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, y=None):
        return x.flatten(1).square().sum(1) / 2


def test_gradient_penalties_look_where_their_papers_say():
    D = Quadratic()
    real = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 2.0], [0.0, 0.0]]]])
    fake = torch.tensor([[[[0.0, 0.0], [0.0, 3.0]]], [[[0.0, 0.0], [4.0, 0.0]]]])
    batch = Batch(real, fake, None, None)
    # gp: x_hat = eps real + (1 - eps) fake, ||grad|| = ||x_hat||, with the eps it draws
    torch.manual_seed(5)
    eps = torch.rand(2, 1, 1, 1)
    norms = (eps * real + (1 - eps) * fake).flatten(1).norm(dim=1)
    torch.manual_seed(5)
    got = ganzoo.create_regularizer("gp").discriminator_term(D, batch, None, None)
    assert got.item() == pytest.approx(10 * ((norms - 1) ** 2).mean().item(), rel=1e-5)
    # dragan: x_hat = real + alpha * 0.5 * std(real) * U[0, 1), near the data only
    torch.manual_seed(6)
    delta = 0.5 * real.std() * torch.rand_like(real)
    alpha = torch.rand(2, 1, 1, 1)
    norms = (real + alpha * delta).flatten(1).norm(dim=1)
    torch.manual_seed(6)
    got = ganzoo.create_regularizer("dragan").discriminator_term(D, batch, None, None)
    assert got.item() == pytest.approx(10 * ((norms - 1) ** 2).mean().item(), rel=1e-5)
    # r1 at the reals, r2 at the fakes: gamma/2 E||x||^2
    assert ganzoo.create_regularizer("r1").discriminator_term(D, batch, None, None).item() == pytest.approx(5 * 2.5)
    assert ganzoo.create_regularizer("r2").discriminator_term(D, batch, None, None).item() == pytest.approx(5 * 12.5)


def test_the_penalty_trains_d_through_its_input_gradient():
    reg, D = ganzoo.create_regularizer("r1"), Linear()
    term = reg.discriminator_term(D, Batch(torch.randn(4, 1, 2, 2), None, None, None), None, None)
    term.backward()
    torch.testing.assert_close(D.w.grad, 10 * W)  # d/dw of gamma/2 ||w||^2


def test_lecam_by_hand_and_its_state():
    reg = ganzoo.create_regularizer("lecam")
    real_out, fake_out = as_output(torch.tensor([1.0, 3.0])), as_output(torch.tensor([-1.0, 0.0]))
    term = reg.discriminator_term(None, None, real_out, fake_out)
    # alpha_R = 2, alpha_F = -0.5 on the first step: 0.3 * ((1.5^2 + 3.5^2) / 2 + (3^2 + 2^2) / 2)
    assert term.item() == pytest.approx(4.125)
    reg.discriminator_term(None, None, as_output(torch.tensor([5.0, 5.0])), fake_out)
    assert reg.state_dict()["ema_real"].item() == pytest.approx(0.99 * 2 + 0.01 * 5)
    again = ganzoo.create_regularizer("lecam")
    again.load_state_dict(reg.state_dict())
    assert again.state_dict()["ema_fake"].item() == pytest.approx(-0.5)


def test_consistency_regularisation_by_hand():
    # an antisymmetric D on 1x1x4 images: a flip negates D(x); shift 0 leaves only the flip
    class Row(Discriminator):
        def __init__(self):
            super().__init__((1, 1, 4))
            self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0, -2.0, -1.0]))

        def forward(self, x, y=None):
            return x.flatten(1) @ self.w

    D, reg = Row(), ganzoo.create_regularizer("bcr", shift=0.0, fake_weight=0.0)
    real = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]], [[[0.0, 1.0, 0.0, 0.0]]], [[[0.5, 0.5, 0.0, 0.0]]]])
    torch.manual_seed(3)
    flipped = (torch.rand(3, 1, 1, 1) < 0.5).flatten()
    torch.manual_seed(3)
    term = reg.discriminator_term(D, Batch(real, real, None, None), as_output(D(real)), as_output(D(real)))
    d = D(real).detach()
    expected = 10 * float(((flipped.float() * 2 * d) ** 2).mean())
    assert term.item() == pytest.approx(expected) and flipped.any()


def test_lazy_regularizers_apply_every_k_steps_times_k(tiny_data, tmp_path):
    from conftest import make_trainer

    trainer = make_trainer(tmp_path / "run", tiny_data, "wgan-gp", width=4, max_steps=4,
                           regularizers=[{"name": "r1", "every": 2}])
    real = trainer.images[:24].float() / 127.5 - 1
    logged = []
    for step in range(4):
        trainer.state.step = step
        logged.append("d_r1" in trainer.train_step(real, None))
    assert logged == [True, False, True, False]


def test_regularizers_and_augmentations_compose_with_training(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "dcgan", "--data-dir", str(tiny_data), "--epochs", "1", "--batch-size", "32", "--seed", "2",
            "--set", "model.width=4", "--set", "train.log_every=1",
            "--set", 'train.regularizers=["r1", {name = "lecam", weight = 0.1}]',
            "--set", 'train.augmentations=[{name = "ada", interval = 1, speed_kimg = 0.1}]']
    assert main([*argv, "--out", str(run)]) == 0
    config = (run / "config.toml").read_text()
    assert 'regularizers = [{name = "r1", gamma = 10.0, every = 1}, {name = "lecam", weight = 0.1, decay = 0.99}]' in config
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"d_r1"' in line]
    assert len(records) == 3 and all({"d_r1", "d_lecam", "ada_p"} <= set(r) for r in records)
    assert all(0 <= r["ada_p"] <= 1 for r in records)  # the controller's rule is checked by hand below
    summary = json.loads((run / "summary.json").read_text())
    assert summary["regularizers"] == ["r1", "lecam"] and summary["augmentations"] == ["ada"]


def test_stateful_parts_resume_exactly(tiny_data, tmp_path, capsys):
    from ganzoo.checkpoint import load_checkpoint, split_prefix

    common = ["--data-dir", str(tiny_data), "--batch-size", "32", "--seed", "4", "--set", "model.width=4",
              "--set", 'train.regularizers=["lecam"]', "--set", 'train.augmentations=["ada"]']
    assert main(["train", "dcgan", "--epochs", "2", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["train", "dcgan", "--epochs", "1", "--out", str(tmp_path / "b"), *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "--epochs", "2"]) == 0
    a, _ = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.safetensors")
    b, _ = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.safetensors")
    assert {"regularizer.lecam.ema_real", "augmentation.ada.p"} <= set(a)
    for prefix in ("generator", "discriminator", "regularizer", "augmentation"):
        wa, wb = split_prefix(a, prefix), split_prefix(b, prefix)
        assert wa and all(torch.equal(wa[k], wb[k]) for k in wa), prefix


def test_a_regularizer_that_cannot_work_says_why_before_training(tiny_data, tmp_path, capsys):
    code = main(["train", "dcgan", "--data-dir", str(tiny_data), "--set", "model.d_batchnorm=true",
                 "--set", 'train.regularizers=["gp"]', "--out", str(tmp_path / "r")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "regularizer 'gp' cannot be used with model 'dcgan': D uses BatchNorm" in err
    assert not (tmp_path / "r").exists()
    assert main(["train", "dcgan", "--set", 'train.regularizers=["lecan"]']) == 2
    assert "unknown regularizer 'lecan'; did you mean 'lecam'?" in capsys.readouterr().err
    assert main(["train", "dcgan", "--set", 'train.regularizers=[{name = "r1", gama = 1}]']) == 2
    assert "did you mean 'gamma'" in capsys.readouterr().err


# --- augmentations ---------------------------------------------------------------------------------

def test_diffaugment_operations_by_hand():
    from ganzoo_plugins.augmentations import ops

    x = torch.full((4, 1, 8, 8), -1.0)
    x[:, :, 3, 4] = 1.0  # one bright pixel
    shifted = ops.translate(x, 0.125)  # up to one pixel each way, filled with 0
    assert shifted.shape == x.shape and ((shifted == 1.0).sum((1, 2, 3)) == 1).all()
    cut = ops.cutout(torch.ones(6, 3, 8, 8))
    zeros = (cut == 0).all(1).sum((1, 2))
    assert ((zeros > 0) & (zeros <= 16)).all()  # a 4x4 square, cut where it leaves the image
    bright = ops.brightness(x)
    assert torch.allclose((bright - x).amax((1, 2, 3)), (bright - x).amin((1, 2, 3)))  # one offset per image
    images = torch.rand(3, 3, 8, 8, requires_grad=True)
    ganzoo.create_augmentation("diffaugment")(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0  # differentiable
    with pytest.raises(Exception, match="unknown augmentation policy zoom"):
        ganzoo.create_augmentation("diffaugment", policy="color,zoom")


def test_adaptive_probability_by_hand():
    ada = ganzoo.create_augmentation("ada", interval=1, speed_kimg=0.1)  # p moves 1 per 100 images
    assert ada.observe(torch.ones(10))["ada_p"].item() == pytest.approx(0.1)  # r_t = 1 > 0.6: up by 10/100
    assert ada.observe(-torch.ones(10))["ada_p"].item() == pytest.approx(0.0)  # r_t = -1 < 0.6: down, clamped
    slow = ganzoo.create_augmentation("ada", interval=2, speed_kimg=0.1)
    assert slow.observe(torch.ones(10))["ada_p"].item() == 0.0  # waits for two updates
    assert slow.observe(torch.ones(10))["ada_p"].item() == pytest.approx(0.2)
    torch.manual_seed(0)
    never = ganzoo.create_augmentation("ada")
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(never(x), x)  # p = 0: nothing applied
