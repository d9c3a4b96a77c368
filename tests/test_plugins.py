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


def test_an_entry_point_that_is_not_a_plugin_is_reported_and_every_command_works(monkeypatch, capsys):
    from ganzoo.cli import main

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("nothing", None), FakeEntryPoint("text", "oops"))
    assert sorted((f.name, "not a module, class or object" in f.error) for f in registry.failures) == [
        ("nothing", True), ("text", True)]
    assert "dcgan" in registry.names("model")
    assert main(["list", "--json"]) == 0 and "nothing" in capsys.readouterr().err


def test_one_module_under_two_entry_points_loads_once_and_keeps_its_models(monkeypatch):
    twice = module("twice", register_models=lambda register: register("twice", tiny_build, options=TinyOptions))
    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("first", twice), FakeEntryPoint("second", twice))
    assert "twice" in registry.names("model") and registry.get("model", "twice").plugin == "first"
    [failure] = registry.failures
    assert failure.name == "second" and "already loaded as plugin 'first'" in failure.error
    assert "second" not in registry.plugins.infos


def test_built_in_plugins_load_before_third_party_ones_whatever_their_names(monkeypatch):
    """An entry point named 'aaa' sorts before 'dcgan' and 'losses': it must not take their names
    (or the default loss) because of the alphabet."""
    import importlib.metadata

    real = list(importlib.metadata.entry_points().select(group="ganzoo"))

    def squatter(register):
        register("dcgan", tiny_build, options=TinyOptions)

    def loud_loss(register):
        register("aaa-loss", lambda o: None, default=True)

    fakes = [FakeEntryPoint("aaa", module("aaa", register_models=squatter), dist="ganzoo-aaa"),
             FakeEntryPoint("aab", module("aab", register_losses=loud_loss), dist="ganzoo-aab")]

    class Found:
        def select(self, group):
            return [*fakes, *real] if group == "ganzoo" else []

    monkeypatch.setattr(plugins.metadata, "entry_points", lambda: Found())
    order = [ep.name for ep in plugins._entry_points()]
    assert order[-2:] == ["aaa", "aab"]  # ganzoo's own first
    registry = Registry(plugins.load_plugins(env={}))
    reset_registry(registry)
    assert registry.get("model", "dcgan").plugin == "dcgan"
    assert registry.default("loss") == "nonsaturating"
    assert [f.name for f in registry.failures] == ["aaa"] and "already registered by plugin 'dcgan'" in registry.failures[0].error


def test_options_that_list_or_configs_cannot_read_are_refused_at_registration(monkeypatch, capsys):
    from dataclasses import dataclass as plain

    from ganzoo.cli import main

    @plain(frozen=True)
    class NoDefault:
        width: int

    @plain(frozen=True)
    class Unreadable:
        width: "NotImportedAtRunTime" = 3  # noqa: F821 - a type imported only under TYPE_CHECKING

    def hook(register):
        register("nodefault", tiny_build, options=NoDefault)
        register("nodescription", tiny_build, options=TinyOptions, description=None)
        register("unreadable", tiny_build, options=Unreadable)

    registry = with_fake_entry_points(monkeypatch, FakeEntryPoint("sloppy2", module("sloppy2", register_models=hook)))
    errors = " ".join(f.error for f in registry.failures)
    assert "option 'width' of NoDefault has no default" in errors and "description= must be a string" in errors
    assert "the options of Unreadable cannot be read: NameError" in errors
    assert "nodefault" not in registry.names("model")
    assert main(["list"]) == 0  # was: TypeError from MISSING() in every `ganzoo list`
    capsys.readouterr()


def test_a_builder_that_raises_is_blamed_on_its_plugin_in_one_line(monkeypatch, capsys, tiny_data):
    from ganzoo.cli import main
    from ganzoo.errors import ConfigError, PluginError

    def old_signature(options):  # no image_shape= keyword: a plugin written against a guess
        return None

    hook = module("guess", register_models=lambda register: register("guess", old_signature, options=TinyOptions))
    with_fake_entry_points(monkeypatch, FakeEntryPoint("guess", hook))
    with pytest.raises(PluginError, match=r"plugin 'guess': model 'guess' build\(\) raised TypeError"):
        ganzoo.create_model("guess")
    assert main(["train", "guess", "--data-dir", str(tiny_data), "--recipe", "none", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "plugin 'guess'" in err and "Traceback" not in err

    def too_big(options, **kwargs):
        raise MemoryError

    hook = module("huge", register_models=lambda register: register("huge", too_big, options=TinyOptions))
    with_fake_entry_points(monkeypatch, FakeEntryPoint("huge", hook))
    with pytest.raises(ConfigError, match=r"model 'huge' does not fit in memory with these options \(latent_dim=8\)"):
        ganzoo.create_model("huge")


def test_a_broken_recipe_file_is_a_warning_not_a_broken_list(monkeypatch, tmp_path, capsys):
    from ganzoo.cli import main

    bad = tmp_path / "fashion_mnist.toml"
    bad.write_text("[model\nwidth = 3\n")
    hook = module("withrecipe", register_models=lambda register: register(
        "withrecipe", tiny_build, options=TinyOptions, recipes={"fashion_mnist": bad}))
    with_fake_entry_points(monkeypatch, FakeEntryPoint("withrecipe", hook))
    assert main(["list", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "dcgan" in out and "plugin 'withrecipe': model 'withrecipe': recipe fashion_mnist:" in " ".join(err.split())


def test_conformance_says_which_plugins_failed_when_a_model_is_unknown(monkeypatch):
    from ganzoo.testing import _check_known

    with_fake_entry_points(monkeypatch, FakeEntryPoint("mygan", ImportError("No module named 'torchx'")))
    with pytest.raises(pytest.fail.Exception, match=r"(?s)unknown model 'mygan'.*plugin 'mygan': failed to import "
                                                    r"fake_mygan: .*torchx"):
        _check_known(["mygan"])
