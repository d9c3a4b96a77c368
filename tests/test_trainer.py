"""The training loop: every (model, loss) pair trains, d_steps, checkpoints kept, early grids, EMA."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import ganzoo
from conftest import make_trainer
from ganzoo.cli import main
from ganzoo.config import resolve_config
from ganzoo.errors import ConfigError
from ganzoo.rundir import RunDir
from ganzoo.trainer import Trainer


PAIRS = list(itertools.product(ganzoo.list_models(), ganzoo.list_losses()))
# options that make each model small enough for a step in a test (the rest: width = 4)
SMALL = {"vanilla": {"g_hidden": [16], "d_hidden": [16]}, "infogan": {"width": 4, "hidden": 16},
         "began": {"filters": 4, "hidden": 8}, "sagan": {"width": 8}, "stylegan2": {"width": 8}}


@pytest.mark.parametrize(("model", "loss"), PAIRS, ids=[f"{m}+{loss}" for m, loss in PAIRS])
def test_every_allowed_pair_trains_a_step_and_samples(model, loss, tiny_data, tmp_path):
    small = SMALL.get(model, {"width": 4})
    config = resolve_config({
        "model": {"name": model, **small}, "loss": {"name": loss},
        "data": {"root": str(tiny_data), "download": False, "limit": 16},
        "train": {"batch_size": 8, "max_steps": 1, "precision": "fp32"},
    })
    try:
        trainer = Trainer(config, RunDir(tmp_path / "run"), plugin_events=False)
    except ConfigError as exc:  # a combination refused, with the reason
        from ganzoo.assembly import refusal

        assert "cannot train model" in str(exc)
        assert refusal(ganzoo.create_model(model, num_classes=10), loss, ganzoo.create_loss(loss)) is not None
        return
    summary = trainer.fit()
    assert summary["steps"] == 1 and all(np.isfinite(v) for v in summary["final"].values())
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()


def test_d_steps_updates_the_generator_once_every_k_critic_steps(tiny_data, tmp_path):
    config = resolve_config({
        "model": {"name": "wgan-gp", "width": 4}, "loss": {"name": "wgan-gp"},
        "data": {"root": str(tiny_data), "download": False},
        "train": {"batch_size": 8, "max_steps": 6, "d_steps": 3, "precision": "fp32"},
    })
    trainer = Trainer(config, RunDir(tmp_path / "run"), plugin_events=False)
    images = trainer.images[:8].float() / 127.5 - 1
    g_changes, d_changes = [], []
    for _ in range(6):
        g_before = [p.detach().clone() for p in trainer.gan.generator.parameters()]
        d_before = [p.detach().clone() for p in trainer.gan.discriminator.parameters()]
        out = trainer.train_step(images, None)
        trainer.state.step += 1
        g_changes.append(any(not torch.equal(a, b) for a, b in zip(g_before, trainer.gan.generator.parameters())))
        d_changes.append(any(not torch.equal(a, b) for a, b in zip(d_before, trainer.gan.discriminator.parameters())))
        assert ("g_loss" in out) == g_changes[-1]
    assert d_changes == [True] * 6
    assert g_changes == [False, False, True, False, False, True]


@pytest.mark.parametrize("keep", [0, 2, 3])
def test_keep_checkpoints_keeps_exactly_that_many_epoch_snapshots(keep, tiny_data, tmp_path):
    """train.keep_checkpoints was promised and did nothing: every epoch's snapshot stayed on disk."""
    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4, batch_size=48, max_steps=None, epochs=10,
                           keep_checkpoints=keep, early_grids=0)
    trainer.fit()
    files = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert files == sorted(["last.safetensors", *(f"epoch_{e:04d}.safetensors" for e in range(11 - keep, 11))])


def test_early_grids_show_the_first_epoch_at_doubling_steps(tiny_data, tmp_path):
    from ganzoo.trainer import early_grid_steps

    assert early_grid_steps(6, 468) == {25, 50, 100, 200, 400}  # Fashion-MNIST at batch 128
    assert early_grid_steps(2, 468) == {25, 50} and early_grid_steps(0, 468) == set()
    assert early_grid_steps(10**9, 468) == {25, 50, 100, 200, 400}  # a huge count ends at the epoch, at once
    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4, batch_size=2, max_steps=40)
    trainer.fit()  # 48 steps an epoch: grids at steps 25 (50 is past the first epoch) and 40, the end
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert grids == ["epoch_0000.png", "epoch_0001.png", "step_0000025.png"]


def test_the_trainer_knows_no_variant():
    """No model, loss or dataset is named in the core, and the class losses of ACGAN are not in it."""
    import re
    from pathlib import Path

    core = Path(ganzoo.__file__).parent
    names = "|".join(re.escape(n) for n in [*ganzoo.list_models(), "cross_entropy", "aux_weight", "fashion_mnist"])
    pattern = re.compile(rf"[\"'](?:{names})[\"']|F\.(?:cross_entropy)")
    for module in ("trainer.py", "step.py", "assembly.py", "interfaces.py"):
        text = (core / module).read_text()
        assert not pattern.search(text), (module, pattern.search(text).group(0))


def test_generator_ema_is_kept_resumed_and_used_for_sampling(tiny_data, tmp_path, capsys):
    from ganzoo.checkpoint import load_checkpoint, split_prefix
    from ganzoo.sampling import load_generator

    common = ["--data-dir", str(tiny_data), "--set", "model.width=4", "--batch-size", "16",
              "--set", "train.ema_decay=0.9", "--seed", "1"]
    assert main(["train", "dcgan", "--epochs", "2", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["train", "dcgan", "--epochs", "1", "--out", str(tmp_path / "b"), *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "--epochs", "2"]) == 0
    ta, _ = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.safetensors")
    tb, _ = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.safetensors")
    ema, raw = split_prefix(ta, "generator_ema"), split_prefix(ta, "generator")
    assert ema.keys() == raw.keys()
    assert not torch.equal(ema["project.weight"], raw["project.weight"])  # an average, not a copy
    assert all(torch.equal(ema[k], split_prefix(tb, "generator_ema")[k]) for k in ema)  # exact resume
    generator, meta = load_generator(tmp_path / "a")
    assert meta["sampled_from"] == "generator_ema"
    assert torch.equal(generator.state_dict()["project.weight"], ema["project.weight"])


def test_the_ema_warms_up_then_keeps_its_decay():
    from ganzoo.step import ema_decay_at

    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert ema_decay_at(90, 0.999) == pytest.approx(0.91)
    assert ema_decay_at(10**6, 0.999) == 0.999
    assert ema_decay_at(0, 0.999, warmup=False) == 0.999
    assert ema_decay_at(10, 0.5) == 0.5  # a short window is reached at once: 11 / 20 > 0.5


@pytest.mark.parametrize("warmup", [True, False])
def test_a_generator_update_moves_the_ema_by_the_step_s_decay(warmup):
    import copy

    from ganzoo.step import StepModules, discriminator_update, generator_update

    torch.manual_seed(0)
    gan = ganzoo.create_model("dcgan", width=4)
    before = copy.deepcopy(gan.generator)
    m = StepModules(gan=gan, G=gan.generator, D=gan.discriminator, D_frozen=gan.discriminator,
                    loss=ganzoo.create_loss("nonsaturating"),
                    opt_g=torch.optim.SGD(gan.generator.parameters(), lr=0.1),
                    opt_d=torch.optim.SGD(gan.discriminator.parameters(), lr=0.1), device_type="cpu",
                    ema=copy.deepcopy(gan.generator).requires_grad_(False), ema_decay=0.999, ema_warmup=warmup)
    real, z = torch.rand(8, 1, 28, 28) * 2 - 1, gan.generator.sample_latent(8)
    _, fake, _ = discriminator_update(m, real, None, z)
    generator_update(m, real, fake, None, z, g_step=20)
    decay = 21 / 30 if warmup else 0.999
    old, new, ema = (dict(g.named_parameters()) for g in (before, gan.generator, m.ema))
    name = "project.weight"
    assert not torch.equal(old[name], new[name])
    torch.testing.assert_close(ema[name], decay * old[name] + (1 - decay) * new[name])
    # the average is kept out of autograd: no graph growing with every step, no leaf turned non-leaf
    assert all(p.grad_fn is None and not p.requires_grad for p in m.ema.parameters())


def test_the_ema_warm_up_counts_g_updates_not_d_steps(monkeypatch, tiny_data, tmp_path):
    """With train.d_steps = 3, G's k-th update (from 0) happens at step 3k + 2: the warm-up gets k."""
    import ganzoo.step as step_module
    from conftest import make_trainer

    seen = []
    real_update = step_module.generator_update

    def spy(*args, g_step, **kwargs):
        seen.append(g_step)
        return real_update(*args, g_step=g_step, **kwargs)

    monkeypatch.setattr(step_module, "generator_update", spy)
    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4, d_steps=3, ema_decay=0.9, max_steps=9)
    real = trainer.images[:24].float() / 127.5 - 1
    for step in range(9):
        trainer.state.step = step
        trainer.train_step(real, None)
    assert seen == [0, 1, 2]


def test_d_sees_the_reals_and_the_fakes_as_separate_batches_in_training_mode(tiny_data, tmp_path):
    """The contract docs/plugins.md states and a D with BatchNorm relies on (began's d_batchnorm sees
    a collapsing G through it): every call of D in a step gets either the real batch or a batch of
    fakes, never one batch of both, and D is in training mode for each."""
    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4)
    real = trainer.images[:24].float() / 127.5 - 1
    calls = []
    hook = trainer.gan.discriminator.register_forward_pre_hook(
        lambda module, args: calls.append((args[0].detach().clone(), module.training)))
    try:
        trainer.train_step(real, None)
    finally:
        hook.remove()
    assert len(calls) >= 3  # D's update: reals, fakes; G's update: fakes
    assert all(training for _, training in calls)
    assert all(len(x) == len(real) for x, _ in calls)
    kinds = ["real" if torch.equal(x, real) else "fake" for x, _ in calls]
    assert kinds.count("real") >= 1 and kinds.count("fake") >= 2
    fakes = [x for (x, _), kind in zip(calls, kinds) if kind == "fake"]
    for x in fakes:  # no real image among them, at any position
        assert ((x[:, None] - real[None]).abs().flatten(2).amax(2) > 1e-3).all()
