"""Plugin loading: discovery through entry points, failure isolation, env switches, hook dispatch."""

from __future__ import annotations

import types
from dataclasses import dataclass

import pytest

import ganzoo
from ganzoo import hookimpl, plugins
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


def test_everything_built_in_is_an_entry_point_of_the_ganzoo_distribution():
    eps = {ep.name: ep for ep in plugins._entry_points()}
    for name in ("dcgan", "vanilla", "losses", "datasets", "optimizers"):
        assert eps[name].dist.metadata["Name"] == "ganzoo"
        assert eps[name].value.startswith("ganzoo_plugins.")
    registry = ganzoo.registry.get_registry()
    assert registry.get("model", "dcgan").plugin == "dcgan"
    assert registry.get("dataset", "fashion_mnist").plugin == "datasets"
    assert registry.get("optimizer", "adam").plugin == "optimizers"
    assert registry.plugins.infos["dcgan"].builtin
    assert not registry.failures
    assert not hasattr(plugins, "DEFAULT_PLUGINS")  # the core has no plugin of its own


def test_every_plugin_folder_is_an_entry_point():
    """A built-in plugin is its folder and one entry-point line: a folder without the line is a mistake."""
    from pathlib import Path

    folders = {p.parent.name for p in (Path(__file__).parents[1] / "plugins").glob("*/__init__.py")}
    values = {ep.value.removeprefix("ganzoo_plugins.") for ep in plugins._entry_points()
              if ep.dist.metadata["Name"] == "ganzoo"}
    assert folders == values


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


def test_a_hook_that_raises_is_reported(monkeypatch):
    def boom(register):
        raise RuntimeError("kaput")

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("boom", module("boom", register_losses=boom)))
    [failure] = registry.failures
    assert "register_losses raised RuntimeError: kaput" in failure.error
    assert "nonsaturating" in registry.names("loss")


def test_env_switches_select_plugins(monkeypatch):
    fake = module("tiny", register_models=lambda register: register("tiny", tiny_build, options=TinyOptions))
    ep = FakeEntryPoint("tiny", fake, dist="ganzoo-tiny")
    no_auto = with_fake_entry_points(monkeypatch, ep, env={"GANZOO_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "tiny" not in no_auto.names("model") and "dcgan" in no_auto.names("model")
    only = Registry(plugins.load_plugins(env={"GANZOO_PLUGINS": "tiny,losses,datasets"}))
    assert only.names("model") == ["tiny"]
    assert "nonsaturating" in only.names("loss") and only.names("optimizer") == []
    assert "fashion_mnist" in only.names("dataset")  # built-ins are selected like any other plugin


def test_a_hook_that_raises_is_blamed_on_its_plugin_and_the_rest_still_run():
    calls = []

    class Good:
        @hookimpl
        def on_log(self, metrics):
            calls.append(metrics["step"])

    class Bad:
        @hookimpl
        def on_log(self, trainer, metrics):
            raise OSError("disk quota")

    pm = plugins.load_plugins(env={"GANZOO_PLUGINS": ""})
    for obj, name in ((Bad(), "bad"), (Good(), "good")):
        plugins.register_plugin(pm, obj, name=name)
    events = plugins.Events(pm.manager)
    with pytest.warns(RuntimeWarning, match="plugin 'bad': on_log raised OSError: disk quota"):
        events.emit("on_log", trainer=None, metrics={"step": 1})
    events.emit("on_log", trainer=None, metrics={"step": 2})  # bad is off now, without another warning
    assert calls == [1, 2] and events.disabled == {"bad"}


def test_a_third_party_plugin_cannot_take_a_built_in_plugins_name(monkeypatch):
    impostor = module("impostor", register_losses=lambda register: register("impostor-loss", lambda o: None))
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("losses", impostor, dist="ganzoo-impostor"))
    assert registry.plugins.infos["losses"].distribution == "ganzoo"  # ganzoo's own stands
    assert "nonsaturating" in registry.names("loss") and "impostor-loss" not in registry.names("loss")
    [failure] = registry.failures
    assert failure.distribution == "ganzoo-impostor" and "already loaded from ganzoo" in failure.error
