"""The registry: every kind registered, listed, looked up and built the same way."""

from __future__ import annotations

import typing
from dataclasses import dataclass

import pytest
import torch

import ganzoo
from ganzoo import option
from ganzoo.errors import ConfigError, PluginError, UnknownNameError
from ganzoo.options import NoOptions
from test_plugins import FakeEntryPoint, TinyOptions, module, tiny_build, with_fake_entry_points


def test_list_takes_include_and_exclude_patterns():
    assert ganzoo.list_models() == sorted(ganzoo.list_models())
    assert ganzoo.list_models("dc*") == ["dcgan"]
    assert "dcgan" not in ganzoo.list_models("*", exclude="dc*")
    assert ganzoo.list_models(["vanilla", "dcgan"]) == ["dcgan", "vanilla"]
    assert ganzoo.list_datasets("*mnist") == ["fashion_mnist", "kmnist", "mnist"]


def test_unknown_names_get_close_match_suggestions():
    with pytest.raises(UnknownNameError) as info:
        ganzoo.get_model_spec("dcgna")
    assert str(info.value) == "unknown model 'dcgna'; did you mean 'dcgan'? `ganzoo list` shows all."
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownNameError, match="did you mean 'nonsaturating'"):
        ganzoo.create_loss("non-saturating")
    with pytest.raises(UnknownNameError, match="did you mean 'fashion_mnist'"):
        ganzoo.get_dataset_spec("fashion-mnist")


def test_a_duplicate_name_is_an_error_naming_both_plugins(monkeypatch):
    fake = module("copycat", register_models=lambda register: register("dcgan", tiny_build, options=TinyOptions))
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("copycat", fake))
    [failure] = registry.failures
    assert failure.name == "copycat"
    assert failure.error == ("model 'dcgan' is already registered by plugin 'dcgan'; this plugin's registration "
                             "of it was skipped")
    assert failure.registration == ("model", "dcgan")
    assert registry.get("model", "dcgan").plugin == "dcgan"  # the first registration stands


def test_adding_a_plugin_does_not_repeat_the_registration_failures_already_reported():
    class Sloppy:
        @ganzoo.hookimpl
        def register_models(self, register):
            register("Bad Name", tiny_build, options=TinyOptions)

    class Fine:
        @ganzoo.hookimpl
        def register_losses(self, register):
            register("fine-loss", lambda o: None)

    ganzoo.add_plugin(Sloppy(), name="sloppy")
    ganzoo.add_plugin(Fine(), name="fine")  # the registry is rebuilt: Sloppy's hook runs again
    from ganzoo.registry import get_registry

    assert [(f.name, f.registration) for f in get_registry().failures] == [("sloppy", ("model", "Bad Name"))]
    assert "fine-loss" in ganzoo.list_losses()


def test_a_builder_returning_the_wrong_type_is_a_plugin_error(monkeypatch):
    fake = module("wrong", register_models=lambda register: register("wrong", lambda o, **kw: [1, 2], options=TinyOptions))
    with_fake_entry_points(monkeypatch, FakeEntryPoint("wrong", fake))
    with pytest.raises(PluginError, match=r"plugin 'wrong': model 'wrong' build\(\) returned list"):
        ganzoo.create_model("wrong")


def test_bad_registration_arguments_are_reported(monkeypatch):
    def hook(register):
        register("Bad Name", tiny_build, options=TinyOptions)
        register("no-options-class", tiny_build, options=dict)
        register("fine", tiny_build, options=TinyOptions)

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("sloppy", module("sloppy", register_models=hook)))
    assert "fine" in registry.names("model")
    assert len(registry.failures) == 2
    assert all(f.name == "sloppy" for f in registry.failures)
    assert registry.failures[0].registration == ("model", "Bad Name")


def test_options_none_registers_a_component_without_options(monkeypatch):
    def hook(register):  # the signatures in the docs write options=None
        register("plain", lambda options: None, options=None, description="takes no options")

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("plain", module("plain", register_losses=hook)))
    assert registry.failures == []
    assert ganzoo.get_loss_spec("plain").options is NoOptions


def test_an_option_whose_default_its_own_type_refuses_is_not_registered(monkeypatch):
    """It would train, and then the run's config.toml would not load again (resume, sample, eval)."""

    @dataclass(frozen=True)
    class Half:
        scale: int = option(0.5)

    @dataclass(frozen=True)
    class Stringly:
        width: int = option("32")

    @dataclass(frozen=True)
    class Below:
        depth: int = option(0, min=1)

    @dataclass(frozen=True)
    class Table:
        extra: dict = option({"a": 1})

    @dataclass(frozen=True)
    class Reread:
        rate: float = option("0.5")  # coerce reads it, as 0.5: the run would resume with another value

    @dataclass(frozen=True)
    class Unset:  # None is "not set" (config files leave it out); a float default may be an int
        seed: int = option(None)
        gain: float = option(1)
        sizes: tuple[float, ...] = option((1, 2))
        anything: typing.List = option([1, "x"])

    def hook(register):
        for name, options in (("half", Half), ("stringly", Stringly), ("below", Below), ("table", Table),
                              ("reread", Reread), ("unset", Unset), ("fine", TinyOptions)):
            register(name, tiny_build, options=options)

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("sloppy", module("sloppy", register_models=hook)))
    assert registry.names("model", ["half", "stringly", "below", "table", "reread", "unset", "fine"]) == [
        "fine", "unset"]
    errors = {f.registration[1]: f.error for f in registry.failures}
    assert errors["reread"] == ("cannot register model 'reread': option 'rate' of Reread: its default '0.5' would "
                                "be read back from a config as 0.5; write it as 0.5")
    assert errors["half"] == ("cannot register model 'half': option 'scale' of Half: its default does not pass its "
                              "own check (config key 'scale' must be an integer, got 0.5)")
    assert "must be an integer, got '32'" in errors["stringly"]
    assert "must be at least 1, got 0" in errors["below"]
    assert errors["table"] == ("cannot register model 'table': option 'extra' of Table is declared as dict, which a "
                               "config cannot give: use bool, int, float, str, a Literal, a tuple or list of these, "
                               "or X | None")



@dataclass(frozen=True)
class LionOptions:
    lr: float = option(1e-4, min=0, min_exclusive=True, help="learning rate")
    betas: tuple[float, float] = option((0.9, 0.99))


def _lion(options, *, params):
    """Lion (Chen et al. 2023): the sign of an interpolated momentum, as a third party would add it."""

    class Lion(torch.optim.Optimizer):
        def __init__(self, params, lr, betas):
            super().__init__(params, {"lr": lr, "betas": betas})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    m = self.state.setdefault(p, {}).setdefault("exp_avg", torch.zeros_like(p))
                    p.add_(torch.sign(b1 * m + (1 - b1) * p.grad), alpha=-group["lr"])
                    m.mul_(b2).add_(p.grad, alpha=1 - b2)

    return Lion(params, options.lr, options.betas)


def test_a_third_party_optimizer_is_listed_selected_and_trains(monkeypatch, tiny_data, tmp_path, capsys):
    from ganzoo.cli import main

    fake = module("lion", register_optimizers=lambda register: register("lion", _lion, options=LionOptions,
                                                                       description="sign momentum"))
    with_fake_entry_points(monkeypatch, FakeEntryPoint("lion", fake, dist="ganzoo-lion"))
    assert "lion" in ganzoo.list_optimizers()
    capsys.readouterr()
    assert main(["list", "lion", "--json"]) == 0
    listed = __import__("json").loads(capsys.readouterr().out)["optimizers"]
    assert listed[0]["options"] == {"lr": 1e-4, "betas": [0.9, 0.99]} and listed[0]["package"] == "ganzoo-lion"
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data-dir", str(tiny_data), "--max-steps", "2", "--set", "model.width=4",
                 "--set", "g_optimizer.name=lion", "--set", "g_optimizer.lr=1e-3", "--out", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--max-steps", "3"]) == 0  # its state round-trips too
    with pytest.raises(UnknownNameError, match="'beta'.*did you mean 'betas'"):
        ganzoo.create_optimizer("lion", [torch.nn.Parameter(torch.zeros(1))], beta=0.9)


def test_create_functions_take_an_options_instance_or_keywords():
    from ganzoo.config import resolve_config

    config = resolve_config({"model": {"name": "dcgan", "width": 4}, "loss": {"name": "wgan-gp", "penalty_weight": 2}})
    gan = ganzoo.create_model("dcgan", config.model.options)
    assert gan.discriminator.features[0].out_channels == 4
    assert ganzoo.create_loss("wgan-gp", config.loss.options).penalty_weight == 2
    with pytest.raises(TypeError, match="either an options instance or keyword options"):
        ganzoo.create_model("dcgan", config.model.options, width=8)
    with pytest.raises(TypeError, match="must be a DCGANOptions"):
        ganzoo.create_model("dcgan", config.loss.options)
    opt = ganzoo.create_optimizer("sgd", gan.generator.parameters(), lr=0.5, momentum=0.9)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9


def test_a_variants_defining_switches_are_fixed():
    with pytest.raises(ConfigError, match=r"'model.conditional' is fixed to True for model 'cgan'"):
        ganzoo.create_model("cgan", num_classes=10, conditional=False)
    assert ganzoo.create_model("cgan", num_classes=10, conditional=True).generator.num_classes == 10  # repeating is fine
    with pytest.raises(ConfigError, match=r"'model.spectral_norm' is fixed to True for model 'sngan'"):
        ganzoo.create_model("sngan", spectral_norm=False)
    with pytest.raises(ConfigError, match=r"'model.d_batchnorm' is fixed to False for model 'wgan-gp'"):
        ganzoo.create_model("wgan-gp", d_batchnorm=True)
    assert ganzoo.get_model_spec("acgan").fixed == {"conditional": False, "aux_classifier": True,
                                                    "spectral_norm": False}


def test_registration_refuses_a_switch_that_is_also_an_option(monkeypatch):
    def hook(register):
        register("both", tiny_build, options=TinyOptions, fixed={"latent_dim": 8})

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("both", module("both", register_models=hook)))
    [failure] = registry.failures
    assert "a fixed switch cannot also be an option" in failure.error


def test_registration_refuses_former_names_that_would_make_a_key_mean_two_things(monkeypatch):
    from dataclasses import make_dataclass

    def options_with(**fields):
        return make_dataclass("Opts", [(k, bool, v) for k, v in fields.items()], frozen=True)

    cases = {
        "a fixed switch cannot also be an option's former name": (
            options_with(g_batchnorm=option(False, was="conditional")), {"conditional": True}),
        "'width' names 'depth' as a former name, but 'depth' is an option too": (
            options_with(depth=option(False), width=option(False, was="depth")), {}),
        "both name 'size' as a former name": (
            options_with(width=option(False, was="size"), height=option(False, was=("size",))), {}),
    }
    for i, (error, (options, fixed)) in enumerate(cases.items()):
        def hook(register, options=options, fixed=fixed):
            register(f"clash{i}", tiny_build, options=options, fixed=fixed)

        fake = FakeEntryPoint(f"clash{i}", module(f"clash{i}", register_models=hook))
        registry = with_fake_entry_points(monkeypatch, fake)
        [failure] = [f for f in registry.failures if f.name == f"clash{i}"]
        assert error in failure.error, failure.error
        assert f"clash{i}" not in registry.names("model")


def test_every_kind_is_one_spec_type():
    from ganzoo.registry import SPEC_TYPES, Spec

    assert set(SPEC_TYPES) == {"model", "loss", "dataset", "optimizer", "regularizer", "augmentation"}
    assert all(issubclass(t, Spec) and t.hook.startswith("register_") for t in SPEC_TYPES.values())
    from ganzoo import hookspecs

    assert {t.hook for t in SPEC_TYPES.values()} == {n for n in dir(hookspecs) if n.startswith("register_")}


LEGACY_PLUGIN = '''
"""A plugin exactly as ganzoo 0.1's docs taught: ganzoo.config.option, a recipes dict, a loss with
only the two objectives, a dataset loader without options, and event hooks reading the config."""
from dataclasses import dataclass

import torch

from ganzoo import hookimpl
from ganzoo.config import option
from ganzoo.interfaces import GAN, Discriminator, Generator, Loss

EVENTS = []


@dataclass(frozen=True)
class TinyOptions:
    latent_dim: int = option(8, min=1, help="length of z")


class G(Generator):
    def __init__(self, options, image_shape):
        super().__init__(options.latent_dim, image_shape)
        self.net = torch.nn.Linear(options.latent_dim, 64)

    def forward(self, z, y=None):
        return torch.tanh(self.net(z)).view(-1, 1, 8, 8)


class D(Discriminator):
    def __init__(self, image_shape):
        super().__init__(image_shape)
        self.net = torch.nn.Linear(64, 1)

    def forward(self, x, y=None):
        return self.net(x.flatten(1)).squeeze(1)


class Squares(Loss):
    def discriminator_loss(self, real_logits, fake_logits):
        return ((real_logits - 1) ** 2).mean() + (fake_logits ** 2).mean()

    def generator_loss(self, fake_logits):
        return ((fake_logits - 1) ** 2).mean()


def build(options, *, image_shape, num_classes=None):
    return GAN(G(options, image_shape), D(image_shape))


@hookimpl
def register_models(register):
    register("legacy", build, options=TinyOptions, description="0.1 style",
             recipes={"blobs": {"model": {"name": "legacy", "latent_dim": 4}, "loss": {"name": "squares"},
                                "train": {"epochs": 2, "batch_size": 4}}})


@hookimpl
def register_losses(register):
    register("squares", lambda options: Squares())


@hookimpl
def register_datasets(register):
    def load(root, *, train, download):
        g = torch.Generator().manual_seed(0 if train else 1)
        return torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8, generator=g), None

    register("blobs", load, image_shape=(1, 8, 8), description="random 8x8 blobs")


@hookimpl
def on_train_start(trainer):
    EVENTS.append((trainer.config.model["name"], trainer.config.loss["name"], trainer.config.data.name))


@hookimpl
def on_log(trainer, metrics):
    EVENTS.append(metrics["step"])
'''


def test_a_plugin_written_for_ganzoo_0_1_still_works(monkeypatch, tmp_path, capsys):
    import importlib.util
    import json

    from ganzoo.cli import main

    path = tmp_path / "legacy_plugin.py"
    path.write_text(LEGACY_PLUGIN)
    spec = importlib.util.spec_from_file_location("legacy_plugin", path)
    legacy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(legacy)
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("legacy", legacy, dist="ganzoo-legacy"))
    assert not registry.failures
    run = tmp_path / "run"
    assert main(["train", "legacy", "--dataset", "blobs", "--out", str(run), "--set", "train.log_every=2"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["loss"] == "squares"  # the recipe: 2 epochs of 4 steps
    assert legacy.EVENTS == [("legacy", "squares", "blobs"), 2, 4, 6, 8]
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "s.npy")]) == 0


def test_lazy_builders_import_their_target_only_when_called(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "ganzoo_plugins.relativistic.objectives", raising=False)
    build = ganzoo.lazy("ganzoo_plugins.relativistic.objectives:RelativisticAverage", options=False)
    assert "ganzoo_plugins.relativistic.objectives" not in sys.modules
    assert type(build(None)).__name__ == "RelativisticAverage"
    with pytest.raises(ValueError, match="package.module:Name"):
        ganzoo.lazy("no_colon")
