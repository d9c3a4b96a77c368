"""Plugin loading and the registry: discovery, failures, duplicates, patterns, suggestions."""

from __future__ import annotations

import types
from dataclasses import dataclass

import pytest

import ganzoo
from ganzoo import hookimpl, plugins
from ganzoo.errors import PluginError, UnknownNameError
from ganzoo.registry import Registry, reset_registry


class FakeDist:
    def __init__(self, name: str, version: str = "1.0") -> None:
        self.metadata = {"Name": name}
        self.version = version


class FakeEntryPoint:
    def __init__(self, name: str, target, dist: str = "ganzoo-fake") -> None:
        self.name, self.value, self.dist, self._target = name, f"fake_{name}", FakeDist(dist), target

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn) if not hook_name.startswith("_") else fn)
    return mod


@dataclass(frozen=True)
class TinyOptions:
    latent_dim: int = 8


def tiny_build(options, *, image_shape, num_classes=None):
    return ganzoo.create_model("vanilla", image_shape=image_shape, latent_dim=options.latent_dim,
                               g_hidden=[8], d_hidden=[8])


def with_fake_entry_points(monkeypatch, *fakes, env=None):
    real = plugins._entry_points()
    monkeypatch.setattr(plugins, "_entry_points", lambda: [*real, *fakes])
    registry = Registry(plugins.load_plugins(env=env or {}))
    reset_registry(registry)
    return registry


def test_builtins_are_entry_points_of_the_ganzoo_distribution():
    eps = {ep.name: ep for ep in plugins._entry_points()}
    for name in ("dcgan", "vanilla", "losses"):
        assert eps[name].dist.metadata["Name"] == "ganzoo"
        assert eps[name].value.startswith("ganzoo_plugins.")
    registry = ganzoo.registry.get_registry()
    assert registry.get("model", "dcgan").plugin == "dcgan"
    assert registry.plugins.infos["dcgan"].builtin
    assert not registry.failures


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


def test_third_party_entry_point_registers_a_model(monkeypatch):
    fake = module("tiny", register_models=lambda register: register("tiny", tiny_build, options=TinyOptions))
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("tiny", fake, dist="ganzoo-tiny"))
    spec = registry.get("model", "tiny")
    assert spec.plugin == "tiny"
    info = registry.plugins.infos["tiny"]
    assert (info.distribution, info.version, info.builtin, info.hooks) == ("ganzoo-tiny", "1.0", False, ["register_models"])
    assert ganzoo.create_model("tiny", latent_dim=4).latent_dim == 4


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(monkeypatch):
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("broken", ImportError("No module named 'missing_dep'")))
    assert "dcgan" in registry.names("model")
    [failure] = registry.failures
    assert failure.name == "broken" and "missing_dep" in failure.error and failure.distribution == "ganzoo-fake"


def test_a_misspelled_hook_is_reported_against_its_plugin(monkeypatch):
    fake = module("typo", register_model=lambda register: None)  # missing the final 's'
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("typo", fake))
    [failure] = registry.failures
    assert failure.name == "typo" and "register_model" in failure.error
    assert "typo" not in registry.plugins.infos
    assert "dcgan" in registry.names("model")


def test_a_duplicate_name_is_an_error_naming_both_plugins(monkeypatch):
    fake = module("copycat", register_models=lambda register: register("dcgan", tiny_build, options=TinyOptions))
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("copycat", fake))
    [failure] = registry.failures
    assert failure.name == "copycat"
    assert "'dcgan' is already registered by plugin 'dcgan'" in failure.error
    assert registry.get("model", "dcgan").plugin == "dcgan"  # the first registration stands


def test_a_hook_that_raises_is_reported(monkeypatch):
    def boom(register):
        raise RuntimeError("kaput")

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("boom", module("boom", register_losses=boom)))
    [failure] = registry.failures
    assert "register_losses raised RuntimeError: kaput" in failure.error
    assert "nonsaturating" in registry.names("loss")


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


def test_env_switches_select_plugins(monkeypatch):
    fake = module("tiny", register_models=lambda register: register("tiny", tiny_build, options=TinyOptions))
    ep = FakeEntryPoint("tiny", fake, dist="ganzoo-tiny")
    no_auto = with_fake_entry_points(monkeypatch, ep, env={"GANZOO_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "tiny" not in no_auto.names("model") and "dcgan" in no_auto.names("model")
    only = Registry(plugins.load_plugins(env={"GANZOO_PLUGINS": "tiny,losses"}))
    assert only.names("model") == ["tiny"]
    assert "nonsaturating" in only.names("loss")
    assert "fashion_mnist" in only.names("dataset")  # default plugin modules always load
