"""What the plugins registered: models, losses and datasets, listed by pattern and built by name."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import PluginError, UnknownNameError
from .plugins import PluginFailure, PluginSet, load_plugins

KINDS = ("model", "loss", "dataset")
HOOKS = {"model": "register_models", "loss": "register_losses", "dataset": "register_datasets"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


@dataclass(frozen=True)
class NoOptions:
    """Options dataclass for components that take none."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., Any]
    options: type
    plugin: str
    description: str = ""
    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class LossSpec:
    name: str
    build: Callable[..., Any]
    options: type
    plugin: str
    description: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Callable[..., Any]
    image_shape: tuple[int, int, int]
    plugin: str
    num_classes: int | None = None
    class_names: tuple[str, ...] = ()
    description: str = ""
    parametric: bool = False  # used as NAME:ARGUMENT, e.g. folder:~/pictures


Spec = ModelSpec | LossSpec | DatasetSpec


class Registry:
    """Collects registrations from a :class:`PluginSet`, one plugin at a time."""

    def __init__(self, plugins: PluginSet) -> None:
        self.plugins = plugins
        self._items: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            caller = getattr(plugins.manager.hook, HOOKS[kind])
            for impl in caller.get_hookimpls():
                register = self._registrar(kind, impl.plugin_name)
                try:
                    impl.function(*([register] if "register" in impl.argnames else []))
                except Exception as exc:
                    self._fail(impl.plugin_name, f"{HOOKS[kind]} raised {type(exc).__name__}: {exc}")

    @property
    def failures(self) -> list[PluginFailure]:
        return self.plugins.failures

    def _fail(self, plugin: str, error: str) -> None:
        info = self.plugins.infos.get(plugin)
        self.plugins.failures.append(PluginFailure(plugin, error, info.distribution if info else None))

    def _registrar(self, kind: str, plugin: str) -> Callable[..., None]:
        def register(name: str, build: Callable[..., Any], **kwargs: Any) -> None:
            try:
                spec = self._make_spec(kind, plugin, name, build, kwargs)
            except (TypeError, ValueError) as exc:
                self._fail(plugin, f"cannot register {kind} {name!r}: {exc}")
                return
            existing = self._items[kind].get(name)
            if existing is not None:
                self._fail(
                    plugin,
                    f"{kind} {name!r} is already registered by plugin {existing.plugin!r}; "
                    f"plugin {plugin!r}'s registration was skipped",
                )
                return
            self._items[kind][name] = spec

        register.__doc__ = f"Register a {kind} for plugin {plugin!r}."
        return register

    @staticmethod
    def _make_spec(kind: str, plugin: str, name: Any, build: Any, kwargs: dict[str, Any]) -> Spec:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError("names are lower-case letters, digits, '_', '-' and '.'")
        if not callable(build):
            raise TypeError(f"the builder must be callable, got {type(build).__name__}")
        options = kwargs.pop("options", NoOptions)
        if kind != "dataset" and not (isinstance(options, type) and dataclasses.is_dataclass(options)):
            raise TypeError("options= must be a dataclass type")
        if kind == "model":
            recipes = kwargs.pop("recipes", None) or {}
            return ModelSpec(name, build, options, plugin, recipes=dict(recipes), **kwargs)
        if kind == "loss":
            return LossSpec(name, build, options, plugin, **kwargs)
        shape = kwargs.pop("image_shape", None)
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)):
            raise ValueError(f"image_shape= must be a (channels, height, width) tuple, got {shape!r}")
        class_names = tuple(kwargs.pop("class_names", ()))
        return DatasetSpec(name, build, shape, plugin, class_names=class_names, **kwargs)

    def names(self, kind: str, include: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
        """Sorted names matching any shell-style ``include`` pattern and no ``exclude`` pattern."""
        inc = [include] if isinstance(include, str) else list(include) or ["*"]
        exc = [exclude] if isinstance(exclude, str) else list(exclude)
        return sorted(
            n for n in self._items[kind]
            if any(fnmatch.fnmatchcase(n, p) for p in inc) and not any(fnmatch.fnmatchcase(n, p) for p in exc)
        )

    def get(self, kind: str, name: str) -> Any:
        if kind == "dataset" and ":" in name:
            prefix = name.partition(":")[0]
            spec = self._items[kind].get(prefix)
            if spec is not None and spec.parametric:
                return spec
            parametric = [n for n, s in self._items[kind].items() if s.parametric]
            raise UnknownNameError("dataset family", prefix, parametric,
                                   hint="Datasets written NAME:ARGUMENT: " + ", ".join(f"{p}:..." for p in parametric) + ".")
        try:
            return self._items[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self._items[kind], hint="`ganzoo list` shows all.") from None


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = Registry(load_plugins())
    return _registry


def reset_registry(registry: Registry | None = None) -> None:
    """Forget the loaded registry (or install ``registry``); for tests and notebooks."""
    global _registry
    _registry = registry


def list_models(include: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    return get_registry().names("model", include, exclude)


def list_losses(include: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    return get_registry().names("loss", include, exclude)


def list_datasets(include: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    return get_registry().names("dataset", include, exclude)


def get_model_spec(name: str) -> ModelSpec:
    return get_registry().get("model", name)


def get_loss_spec(name: str) -> LossSpec:
    return get_registry().get("loss", name)


def get_dataset_spec(name: str) -> DatasetSpec:
    return get_registry().get("dataset", name)


def create_model(name: str, *, image_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int | None = None,
                 **options: Any) -> Any:
    """Build a registered GAN by name: ``create_model("dcgan", width=32)`` -> :class:`ganzoo.interfaces.GAN`."""
    from .config import build_options
    from .interfaces import GAN

    spec = get_model_spec(name)
    opts = build_options(spec.options, options, "model")
    gan = spec.build(opts, image_shape=tuple(image_shape), num_classes=num_classes)
    if not isinstance(gan, GAN):
        raise PluginError(
            f"plugin {spec.plugin!r}: model {name!r} build() returned {type(gan).__name__}, "
            "expected ganzoo.interfaces.GAN"
        )
    return gan


def create_loss(name: str, **options: Any) -> Any:
    """Build a registered loss by name."""
    from .config import build_options
    from .interfaces import Loss

    spec = get_loss_spec(name)
    loss = spec.build(build_options(spec.options, options, "loss"))
    if not isinstance(loss, Loss):
        raise PluginError(
            f"plugin {spec.plugin!r}: loss {name!r} build() returned {type(loss).__name__}, "
            "expected ganzoo.interfaces.Loss"
        )
    return loss
