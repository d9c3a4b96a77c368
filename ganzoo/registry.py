"""What the plugins registered: models, losses, datasets and optimizers, listed by pattern and built by name.

Every kind is one :class:`Spec` subclass that says which hook fills it and which extra arguments
``register`` takes; the registry itself treats all kinds alike.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError, GanzooError, PluginError, UnknownNameError
from .options import NoOptions, build_options, check_defaults, renamed_options
from .plugins import PluginFailure, PluginSet, call_each, load_plugins, register_plugin
from .recipes import normalise_recipes

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
DEFAULT_IMAGE_SHAPE = (1, 28, 28)  # what create_model builds for when no shape is given (MNIST-sized)


@dataclass(frozen=True)
class Spec:
    """One registered component: its builder, its options dataclass and the plugin that registered it."""

    kind: ClassVar[str] = ""
    plural: ClassVar[str] = ""
    hook: ClassVar[str] = ""

    name: str
    build: Callable[..., Any]
    plugin: str
    options: type = NoOptions
    description: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False  # what a config that names none of this kind gets (the first one registered)

    @classmethod
    def from_registration(cls, name: Any, build: Any, plugin: str, kwargs: dict[str, Any]) -> Spec:
        """Check what a plugin passed to ``register`` and make the spec; TypeError/ValueError if wrong."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError("names are lower-case letters, digits, '_', '-' and '.'")
        if not callable(build):
            raise TypeError(f"the builder must be callable, got {type(build).__name__}")
        if not isinstance(kwargs.get("description", ""), str):
            raise TypeError(f"description= must be a string, got {type(kwargs['description']).__name__}")
        if kwargs.get("options") is None:  # left out, or options=None as the signatures in the docs write it
            kwargs["options"] = NoOptions
        options = kwargs["options"]
        if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
            raise TypeError("options= must be a dataclass type")
        check_defaults(options)  # every option has a default a config can give back unchanged
        fixed = dict(kwargs.pop("fixed", None) or {})
        if set(fixed) & {f.name for f in dataclasses.fields(options)}:
            raise ValueError("a fixed switch cannot also be an option")
        if set(fixed) & set(renamed_options(options)):  # ValueError too where former names clash
            raise ValueError("a fixed switch cannot also be an option's former name")
        return cls(name=name, build=build, plugin=plugin, fixed=fixed, **kwargs)

    @classmethod
    def lookup(cls, items: Mapping[str, Spec], name: str) -> Spec:
        try:
            return items[name]
        except KeyError:
            raise UnknownNameError(cls.kind, name, items, hint="`ganzoo list` shows all.") from None

    def make_options(self, values: Mapping[str, Any], where: str | None = None) -> Any:
        """The options instance for ``values``; a fixed switch may be repeated, never changed."""
        where = where or self.kind
        values = dict(values)
        for key, fixed in self.fixed.items():
            if key in values and values.pop(key) != fixed:
                raise ConfigError(
                    f"config key '{where}.{key}' is fixed to {fixed!r} for {self.kind} {self.name!r}: it is what "
                    f"makes {self.name} what it is. Pick another {self.kind} instead (`ganzoo list`)."
                )
        return build_options(self.options, values, where)


@dataclass(frozen=True)
class ModelSpec(Spec):
    kind: ClassVar[str] = "model"
    plural: ClassVar[str] = "models"
    hook: ClassVar[str] = "register_models"

    recipes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # dataset -> recipe name -> source

    @classmethod
    def from_registration(cls, name: Any, build: Any, plugin: str, kwargs: dict[str, Any]) -> Spec:
        kwargs["recipes"] = normalise_recipes(kwargs.pop("recipes", None))
        return super().from_registration(name, build, plugin, kwargs)


@dataclass(frozen=True)
class LossSpec(Spec):
    kind: ClassVar[str] = "loss"
    plural: ClassVar[str] = "losses"
    hook: ClassVar[str] = "register_losses"


@dataclass(frozen=True)
class OptimizerSpec(Spec):
    kind: ClassVar[str] = "optimizer"
    plural: ClassVar[str] = "optimizers"
    hook: ClassVar[str] = "register_optimizers"


@dataclass(frozen=True)
class RegularizerSpec(Spec):
    kind: ClassVar[str] = "regularizer"
    plural: ClassVar[str] = "regularizers"
    hook: ClassVar[str] = "register_regularizers"


@dataclass(frozen=True)
class AugmentationSpec(Spec):
    kind: ClassVar[str] = "augmentation"
    plural: ClassVar[str] = "augmentations"
    hook: ClassVar[str] = "register_augmentations"


@dataclass(frozen=True)
class DatasetSpec(Spec):
    kind: ClassVar[str] = "dataset"
    plural: ClassVar[str] = "datasets"
    hook: ClassVar[str] = "register_datasets"

    image_shape: tuple[int, int, int] = DEFAULT_IMAGE_SHAPE
    num_classes: int | None = None
    class_names: tuple[str, ...] = ()
    parametric: bool = False  # written NAME:ARGUMENT, e.g. folder:~/pictures

    @property
    def load(self) -> Callable[..., Any]:
        """The loader: ``load(root, *, train, download[, options][, argument])``."""
        return self.build

    @classmethod
    def from_registration(cls, name: Any, build: Any, plugin: str, kwargs: dict[str, Any]) -> Spec:
        shape = kwargs.get("image_shape")
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)):
            raise ValueError(f"image_shape= must be a (channels, height, width) tuple, got {shape!r}")
        kwargs["class_names"] = tuple(kwargs.get("class_names", ()))
        return super().from_registration(name, build, plugin, kwargs)

    @classmethod
    def lookup(cls, items: Mapping[str, Spec], name: str) -> Spec:
        if ":" not in name:
            return super().lookup(items, name)
        family = name.partition(":")[0]
        spec = items.get(family)
        if isinstance(spec, DatasetSpec) and spec.parametric:
            return spec
        parametric = [n for n, s in items.items() if isinstance(s, DatasetSpec) and s.parametric]
        raise UnknownNameError("dataset family", family, parametric,
                               hint="Datasets written NAME:ARGUMENT: " + ", ".join(f"{p}:..." for p in parametric) + ".")

    def run_name(self, name: str) -> str:
        """A file-system-safe short name for runs: ``folder:~/pictures/cats`` -> ``cats``."""
        if not self.parametric:
            return name
        argument = name.partition(":")[2].rstrip("/\\")
        base = Path(argument).expanduser().name or self.name
        return re.sub(r"[^A-Za-z0-9_.\-]+", "_", base).strip("._") or self.name


SPEC_TYPES: dict[str, type[Spec]] = {
    cls.kind: cls for cls in (ModelSpec, LossSpec, DatasetSpec, OptimizerSpec, RegularizerSpec, AugmentationSpec)}
KINDS = tuple(SPEC_TYPES)


class Registry:
    """Collects registrations from a :class:`PluginSet`, one plugin at a time."""

    def __init__(self, plugins: PluginSet) -> None:
        self.plugins = plugins
        self._items: dict[str, dict[str, Spec]] = {kind: {} for kind in SPEC_TYPES}
        self._failures: list[PluginFailure] = []  # this registry's own: a rebuilt one does not repeat them
        for kind, spec_type in SPEC_TYPES.items():
            caller = getattr(plugins.manager.hook, spec_type.hook)

            def fail(plugin: str, exc: Exception, hook: str = spec_type.hook) -> None:
                self._fail(plugin, f"{hook} raised {type(exc).__name__}: {exc}")

            call_each(caller, lambda plugin, kind=kind: {"register": self._registrar(kind, plugin)}, fail)

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to load, then registrations that raised, were refused or were skipped."""
        return [*self.plugins.failures, *self._failures]

    def _fail(self, plugin: str, error: str, registration: tuple[str, str] | None = None) -> None:
        info = self.plugins.infos.get(plugin)
        self._failures.append(PluginFailure(plugin, error, info.distribution if info else None, registration))

    def _registrar(self, kind: str, plugin: str) -> Callable[..., None]:
        spec_type = SPEC_TYPES[kind]

        def register(name: str, build: Callable[..., Any], **kwargs: Any) -> None:
            try:
                spec = spec_type.from_registration(name, build, plugin, dict(kwargs))
            except (TypeError, ValueError) as exc:
                self._fail(plugin, f"cannot register {kind} {name!r}: {exc}", (kind, str(name)))
                return
            existing = self._items[kind].get(name)
            if existing is not None:
                self._fail(plugin, f"{kind} {name!r} is already registered by plugin {existing.plugin!r}; "
                                   f"this plugin's registration of it was skipped", (kind, name))
                return
            self._items[kind][name] = spec

        register.__doc__ = f"Register a {kind} for plugin {plugin!r}."
        return register

    def names(self, kind: str, include: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
        """Sorted names matching any shell-style ``include`` pattern and no ``exclude`` pattern."""
        inc = [include] if isinstance(include, str) else list(include) or ["*"]
        exc = [exclude] if isinstance(exclude, str) else list(exclude)
        return sorted(
            n for n in self._items[kind]
            if any(fnmatch.fnmatchcase(n, p) for p in inc) and not any(fnmatch.fnmatchcase(n, p) for p in exc)
        )

    def get(self, kind: str, name: str) -> Any:
        if not self._items[kind]:
            raise UnknownNameError(kind, name, (), hint=f"No {SPEC_TYPES[kind].kind} is registered at all: is ganzoo "
                                   "installed (pip install -e . in a source checkout)? `ganzoo plugins` says what loaded.")
        return SPEC_TYPES[kind].lookup(self._items[kind], name)

    def default(self, kind: str) -> str | None:
        """The name of the first component of ``kind`` a plugin registered with ``default=True``."""
        return next((name for name, spec in self._items[kind].items() if spec.default), None)


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


def lazy(target: str, *, options: bool = True) -> Callable[..., Any]:
    """A builder for ``register`` that imports ``"package.module:Name"`` only when it is called, so
    that registering it imports no torch: ``register("hinge", lazy("my_plugin.losses:Hinge"))``.
    The builder passes its options on to ``Name`` (``options=False``: calls ``Name()``) and any
    keyword arguments the registry gives it (``image_shape=``, ``params=``, ...)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"lazy() takes 'package.module:Name', got {target!r}")

    def build(opts: Any, **kwargs: Any) -> Any:
        import importlib

        made = getattr(importlib.import_module(module_name), attribute)
        return made(opts, **kwargs) if options else made(**kwargs)

    build.__qualname__ = build.__name__ = f"lazy({target})"
    return build


def add_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object (a module, class or instance with ``@ganzoo.hookimpl`` methods) in
    this process, as an installed one would be: for notebooks, tutorials and tests. What it
    registers is listed and built from now on; its trainer-event hooks join every later run."""
    registry = get_registry()
    register_plugin(registry.plugins, plugin, name=name)
    reset_registry(Registry(registry.plugins))


def _lister(kind: str) -> Callable[..., list[str]]:
    def list_names(include: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
        return get_registry().names(kind, include, exclude)

    list_names.__name__ = f"list_{SPEC_TYPES[kind].plural}"
    list_names.__doc__ = f"Sorted registered {kind} names matching shell-style ``include`` and not ``exclude``."
    return list_names


list_models = _lister("model")
list_losses = _lister("loss")
list_datasets = _lister("dataset")
list_optimizers = _lister("optimizer")
list_regularizers = _lister("regularizer")
list_augmentations = _lister("augmentation")


def get_model_spec(name: str) -> ModelSpec:
    return get_registry().get("model", name)


def get_loss_spec(name: str) -> LossSpec:
    return get_registry().get("loss", name)


def get_dataset_spec(name: str) -> DatasetSpec:
    return get_registry().get("dataset", name)


def get_optimizer_spec(name: str) -> OptimizerSpec:
    return get_registry().get("optimizer", name)


def _options(spec: Spec, options: Any, overrides: Mapping[str, Any], where: str) -> Any:
    if options is None:
        return spec.make_options(overrides, where)
    if not isinstance(options, spec.options):
        raise TypeError(f"options for {spec.kind} {spec.name!r} must be a {spec.options.__name__}, "
                        f"got {type(options).__name__}")
    if overrides:
        raise TypeError("pass either an options instance or keyword options, not both")
    return options


def _checked(spec: Spec, built: Any, expected: type, what: str) -> Any:
    if not isinstance(built, expected):
        raise PluginError(f"plugin {spec.plugin!r}: {spec.kind} {spec.name!r} build() returned "
                          f"{type(built).__name__}, expected {what}")
    return built


def _options_text(args: tuple[Any, ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(args[0]).items()) if args and dataclasses.is_dataclass(args[0]) else "-"


def _build(spec: Spec, *args: Any, **kwargs: Any) -> Any:
    """``spec.build(...)``; an error that is not one of ganzoo's is the plugin's, and says so."""
    try:
        return spec.build(*args, **kwargs)
    except GanzooError:
        raise
    except Exception as exc:  # a builder's bug (or one that cannot take image_shape=): blame its plugin
        if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(
                text in str(exc) for text in ("can't allocate memory", "CUDA out of memory"))):
            raise ConfigError(f"{spec.kind} {spec.name!r} does not fit in memory with these options "
                              f"({_options_text(args)}): choose smaller ones") from None
        raise PluginError(f"plugin {spec.plugin!r}: {spec.kind} {spec.name!r} build() raised "
                          f"{type(exc).__name__}: {exc}") from exc


def create_model(name: str, options: Any = None, *, image_shape: tuple[int, int, int] = DEFAULT_IMAGE_SHAPE,
                 num_classes: int | None = None, **overrides: Any) -> Any:
    """Build a registered GAN: ``create_model("dcgan", width=32)`` -> :class:`ganzoo.interfaces.GAN`.

    Give options as keywords (checked and converted as a config would be) or as an instance of the
    model's options dataclass (``options=``), for example the one a resolved config carries.
    """
    from .interfaces import GAN

    spec = get_model_spec(name)
    opts = _options(spec, options, overrides, "model")
    return _checked(spec, _build(spec, opts, image_shape=tuple(image_shape), num_classes=num_classes),
                    GAN, "ganzoo.interfaces.GAN")


def _create(kind: str, name: str, options: Any, overrides: Mapping[str, Any], expected: str) -> Any:
    """Build a component whose builder takes only its options, checking the type it returns."""
    from . import interfaces

    spec = get_registry().get(kind, name)
    return _checked(spec, _build(spec, _options(spec, options, overrides, kind)), getattr(interfaces, expected),
                    f"ganzoo.interfaces.{expected}")


def create_loss(name: str, options: Any = None, **overrides: Any) -> Any:
    """Build a registered loss by name."""
    return _create("loss", name, options, overrides, "Loss")


def create_regularizer(name: str, options: Any = None, **overrides: Any) -> Any:
    """Build a registered regularizer by name."""
    return _create("regularizer", name, options, overrides, "Regularizer")


def create_augmentation(name: str, options: Any = None, **overrides: Any) -> Any:
    """Build a registered augmentation by name."""
    return _create("augmentation", name, options, overrides, "Augmentation")


def create_optimizer(name: str, params: Iterable[Any], options: Any = None, **overrides: Any) -> Any:
    """Build a registered optimizer over ``params``: ``create_optimizer("adam", model.parameters(), lr=1e-3)``."""
    import torch

    spec = get_optimizer_spec(name)
    built = _build(spec, _options(spec, options, overrides, "optimizer"), params=list(params))
    return _checked(spec, built, torch.optim.Optimizer, "torch.optim.Optimizer")
