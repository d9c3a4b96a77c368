"""One plugin manager holding every ``ganzoo`` entry point, and the one way hooks are called.

Everything ganzoo ships (``plugins/`` in the source tree, installed as ``ganzoo_plugins``: models,
losses, datasets, optimizers, the TensorBoard logger) is an entry point of the ganzoo distribution
itself, found exactly like a third-party package's. The core has no default plugin module.

Environment switches (as pytest and llm have them):

``GANZOO_PLUGINS=name1,name2``
    load only these entry-point plugins.
``GANZOO_DISABLE_PLUGIN_AUTOLOAD=1``
    load no third-party entry points; the ones ganzoo itself ships still load.
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "ganzoo"
ONLY_ENV = "GANZOO_PLUGINS"
NO_AUTOLOAD_ENV = "GANZOO_DISABLE_PLUGIN_AUTOLOAD"
SELF_DISTRIBUTION = "ganzoo"


@dataclass
class PluginInfo:
    """What ``ganzoo plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = True
    hooks: list[str] = field(default_factory=list)


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or broke the contract; the rest keep working."""

    name: str
    error: str
    distribution: str | None = None
    registration: tuple[str, str] | None = None  # (kind, name) of a registration refused or skipped

    def __str__(self) -> str:
        return f"plugin {self.name!r}: {self.error}"


@dataclass
class PluginSet:
    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    failures: list[PluginFailure]


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({frame[0].filename}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _dist_name(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _entry_points() -> list[metadata.EntryPoint]:
    """Every entry point of the group: ganzoo's own first, each part by name. One distribution seen twice (an editable
    install beside a build folder) counts once; the same name from two distributions stays twice,
    so that the clash is reported instead of one of them silently winning."""
    eps = metadata.entry_points()
    selected = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, [])
    seen: dict[tuple[str, str | None], metadata.EntryPoint] = {}
    for ep in selected:
        seen.setdefault((ep.name, (_dist_name(ep) or "").lower()), ep)
    # ganzoo's own first: where a third-party plugin registers a name (or a default) the zoo has,
    # the built-in one stands and the newcomer is the one reported
    return sorted(seen.values(), key=lambda ep: ((_dist_name(ep) or "").lower() != SELF_DISTRIBUTION, ep.name))


def _register(pm: pluggy.PluginManager, module: Any, info: PluginInfo, failures: list[PluginFailure]) -> None:
    if module is None or isinstance(module, (str, bytes, int, float, bool, list, tuple, dict)):
        failures.append(PluginFailure(info.name, f"its entry point {info.module} is {type(module).__name__}, not a "
                                      "module, class or object with @hookimpl functions", info.distribution))
        return
    if pm.is_registered(module):  # the same module under a second name: its hooks would run twice
        first = pm.get_name(module)
        failures.append(PluginFailure(info.name, f"{info.module} is already loaded as plugin {first!r}", info.distribution))
        return
    try:
        pm.register(module, name=info.name)
        # check_pending() after each plugin, so a misspelled hook blames exactly that plugin.
        pm.check_pending()
    except Exception as exc:  # a broken plugin must not take the others down
        if pm.is_registered(module):  # by this call: a module already loaded was refused above
            pm.unregister(module)
        failures.append(PluginFailure(info.name, _describe(exc), info.distribution))
        return
    info.hooks = sorted(caller.name for caller in pm.get_hookcallers(module) or [])
    if not info.hooks:
        pm.unregister(module)
        failures.append(PluginFailure(info.name, "implements no ganzoo hook (is @hookimpl missing?)", info.distribution))
        return


def load_plugins(env: dict[str, str] | None = None) -> PluginSet:
    """Create a plugin manager and load the entry points into it."""
    env = dict(os.environ if env is None else env)
    pm = pluggy.PluginManager("ganzoo")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    failures: list[PluginFailure] = []

    only = {n.strip() for n in env.get(ONLY_ENV, "").split(",") if n.strip()} if ONLY_ENV in env else None
    no_autoload = _truthy(env.get(NO_AUTOLOAD_ENV))
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        dist_name = _dist_name(ep)
        builtin = (dist_name or "").lower() == SELF_DISTRIBUTION
        if only is not None and ep.name not in only:
            continue
        if no_autoload and not builtin and only is None:
            continue
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist_name,
            version=dist.version if dist is not None else None,
            builtin=builtin,
        )
        if ep.name in infos:
            failures.append(
                PluginFailure(ep.name, f"a plugin named {ep.name!r} is already loaded from {infos[ep.name].distribution}", dist_name)
            )
            continue
        try:
            module = ep.load()
        except Exception as exc:
            failures.append(PluginFailure(ep.name, f"failed to import {ep.value}: {_describe(exc)}", dist_name))
            continue
        _register(pm, module, info, failures)
        if pm.has_plugin(info.name):
            infos[info.name] = info
    return PluginSet(pm, infos, failures)


def register_plugin(plugins: PluginSet, module: Any, name: str | None = None) -> None:
    """Add a plugin object at run time (tests, notebooks). The registry must be rebuilt after."""
    info = PluginInfo(name=name or getattr(module, "__name__", repr(module)), module=repr(module), builtin=False)
    if info.name in plugins.infos or plugins.manager.has_plugin(info.name):
        plugins.failures.append(PluginFailure(info.name, f"a plugin named {info.name!r} is already loaded"))
        return
    _register(plugins.manager, module, info, plugins.failures)
    if plugins.manager.has_plugin(info.name):
        plugins.infos[info.name] = info


def call_each(caller: Any, kwargs: dict[str, Any] | Callable[[str], dict[str, Any]],
              on_error: Callable[[str, Exception], None], skip: set[str] | frozenset[str] = frozenset()) -> None:
    """Call every implementation of one hook by itself, so a failure is blamed on its plugin.

    pluggy would stop at the first exception; here ``on_error(plugin_name, exc)`` is told and the
    other plugins still run. Each implementation gets only the arguments it asks for; ``kwargs``
    may be a function of the plugin's name (the registry gives each plugin its own ``register``).
    """
    for impl in caller.get_hookimpls():
        if impl.plugin_name in skip:
            continue
        given = kwargs(impl.plugin_name) if callable(kwargs) else kwargs
        try:
            impl.function(**{name: given[name] for name in impl.argnames if name in given})
        except Exception as exc:
            on_error(impl.plugin_name, exc)


class Events:
    """Trainer events, sent to every plugin's ``on_*`` hooks. A plugin whose hook raises is warned
    about once and gets no more events in this run; training goes on."""

    def __init__(self, manager: pluggy.PluginManager | None) -> None:
        self.manager = manager
        self.disabled: set[str] = set()

    def emit(self, event: str, **kwargs: Any) -> None:
        if self.manager is None:
            return

        def disable(plugin: str, exc: Exception) -> None:
            self.disabled.add(plugin)
            warnings.warn(f"plugin {plugin!r}: {event} raised {type(exc).__name__}: {exc}; "
                          "its trainer events are off for the rest of this run", RuntimeWarning, stacklevel=3)

        call_each(getattr(self.manager.hook, event), kwargs, disable, self.disabled)
