"""Run configuration: where each setting comes from, and the one validated :class:`Config` it makes.

A configuration has six sections. ``model``, ``loss``, ``g_optimizer`` and ``d_optimizer`` each name
a registered component (``name = "dcgan"``) followed by that component's options; ``data`` names a
dataset and holds ``root``, ``download``, ``limit`` and the dataset's own options; ``train`` is fixed
below. Settings are layered, later layers winning (:func:`compose`)::

    the model's recipe for the dataset -> --config FILE -> flags (--epochs, ...) -> --set KEY=VALUE

and a resumed run starts from its checkpoint's config and may change only what cannot change the
maths of the run so far (:data:`RESUMABLE`: its length, its device and speed switches, logging,
``data.root``). Changing a component's
``name`` in any layer starts that component from its defaults; the layer's other keys for it apply.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError, UnknownNameError
from .options import NoOptions, build_options, coerce, option, options_to_dict, renamed_options
from .recipes import DEFAULT, find_recipe, recipe_names
from .registry import get_dataset_spec, get_model_spec, get_registry
from .tomlfile import dump_toml, load_toml, parse_literal

__all__ = [
    "Component", "Config", "DataSettings", "TrainSettings", "compose", "dump_toml", "load_toml", "merge",
    "option", "parse_override", "resolve_config",
]

SECTIONS = ("model", "loss", "data", "train", "g_optimizer", "d_optimizer")
COMPONENT_KINDS = {"model": "model", "loss": "loss", "g_optimizer": "optimizer", "d_optimizer": "optimizer"}
DATA_KEYS = ("name", "root", "download", "limit")
# What a resumed run may change: where things are, how long it goes on, how it is reported and how
# fast it computes; never what it computes (seed, batch, d_steps, regularizers, ...).
RESUMABLE = {
    "data": ("root", "download"),
    "train": ("epochs", "max_steps", "max_minutes", "device", "log_every", "early_grids", "keep_checkpoints",
              "eval_every", "eval_n", "ema_decay", "ema_warmup", "precision", "channels_last", "compile", "fast_dropout",
              "reuse_memory", "cuda_graphs"),
}
NO_RECIPE = "none"  # --recipe none: start from the model's defaults


@dataclass(frozen=True)
class DataSettings:
    name: str = option("", help="registered dataset name (`ganzoo list`); default: the one a plugin marks default")
    root: str | None = option(None, help="dataset root in torchvision's layout; default $GANZOO_DATA_DIR")
    download: bool = option(True, help="download missing files when possible")
    limit: int | None = option(None, min=1, help="use only the first N training images")
    options: Any = field(default_factory=NoOptions)  # the dataset's own options (the section's other keys)


MAX_SEED = 2**32 - 1  # NumPy's range; the data order derives per-epoch seeds from it without overflow


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = option(10, min=1, help="total epochs (a resumed run continues up to this)")
    batch_size: int = option(128, min=1, help="images per step")
    seed: int = option(0, min=0, max=MAX_SEED, help="seeds weights, noise and data order")
    d_steps: int = option(1, min=1, help="discriminator updates per generator update")
    max_steps: int | None = option(None, min=1, help="stop after this many steps in total")
    max_minutes: float | None = option(
        None, min=0, min_exclusive=True, help="stop after this many minutes of training steps in total (a budget)")
    log_every: int = option(50, min=1, help="steps between metrics.jsonl lines")
    grid_size: int = option(64, min=1, max=1024, help="images in each fixed-noise sample grid")
    early_grids: int = option(
        6, min=0, help="extra grids in the first epoch, spaced doubling (steps 25, 50, 100, ...), so the "
                       "first picture comes early; 0 = one grid per epoch only")
    keep_checkpoints: int = option(2, min=0, help="per-epoch checkpoints kept besides last.safetensors")
    device: Literal["auto", "cpu", "cuda", "mps"] = option("auto", help="auto picks cuda, then mps, then cpu")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option(
        "auto", help="autocast precision; auto: bf16 on GPUs and CPUs with bf16 units, else fp32")
    channels_last: Literal["auto"] | bool = option(
        "auto", help="channels-last memory for models that declare it; auto: where it measured faster")
    compile: bool = option(False, help="torch.compile G and D")
    cuda_graphs: Literal["auto"] | bool = option(
        "auto", help="replay each training step from a CUDA graph (one launch instead of hundreds); auto: on for "
                     "CUDA when the model, loss, regularizers and augmentations all declare it")
    fast_dropout: Literal["auto"] | bool = option(
        "auto", help="ganzoo.layers.Dropout draws its masks faster (same distribution); auto: on for CPU")
    reuse_memory: Literal["auto"] | bool = option(
        "auto", help="keep memory freed in a step for the next (glibc malloc, no page faults); auto: on for CPU")
    ema_decay: float = option(0.0, min=0, max=0.99999, help="EMA of G's weights for sampling (0 = off; e.g. 0.999)")
    ema_warmup: bool = option(True, help="the EMA's decay at step t is min(ema_decay, (1 + t) / (10 + t)), so an "
                                         "early EMA is not mostly G's random initial weights")
    eval_every: int = option(0, min=0, help="score FID/KID every N epochs and keep checkpoints/best (0 = off)")
    eval_n: int = option(2000, min=10, help="samples per score during training")


@dataclass(frozen=True)
class Component(Mapping[str, Any]):
    """A registered component chosen by name, with its options instance (typed and checked).

    It reads like the dict it is stored as: ``component["name"]``, ``component["lr"]``, ``dict(component)``.
    """

    name: str
    options: Any = field(default_factory=NoOptions)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **options_to_dict(self.options)}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


# train.* keys that list components of a kind: names, or tables {name = ..., KEY = VALUE}
LISTS = {"regularizers": "regularizer", "augmentations": "augmentation"}


@dataclass(frozen=True)
class Config:
    """A fully validated configuration; ``to_dict()`` is what the run directory stores."""

    model: Component
    loss: Component
    data: DataSettings
    train: TrainSettings
    g_optimizer: Component
    d_optimizer: Component
    regularizers: tuple[Component, ...] = ()  # train.regularizers
    augmentations: tuple[Component, ...] = ()  # train.augmentations

    def to_dict(self) -> dict[str, dict[str, Any]]:
        data = {k: getattr(self.data, k) for k in DATA_KEYS if getattr(self.data, k) is not None}
        lists = {key: [c.to_dict() for c in getattr(self, key)] for key in LISTS if getattr(self, key)}
        return {
            "model": self.model.to_dict(),
            "loss": self.loss.to_dict(),
            "data": {**data, **options_to_dict(self.data.options)},
            "train": {**options_to_dict(self.train), **lists},
            "g_optimizer": self.g_optimizer.to_dict(),
            "d_optimizer": self.d_optimizer.to_dict(),
        }


# --- layering --------------------------------------------------------------------------------------

def parse_override(text: str) -> tuple[str, Any]:
    """``"g_optimizer.lr=1e-4"`` -> ``("g_optimizer.lr", 0.0001)``; the value is a TOML literal or a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=5), got {text!r}")
    return key, parse_literal(raw)


def split_key(key: str) -> tuple[str, str]:
    """``"train.epochs"`` -> ``("train", "epochs")``, refusing anything that is not SECTION.KEY."""
    section, dot, name = key.partition(".")
    if not dot or not name or "." in name:
        raise ConfigError(f"config key {key!r} must be SECTION.KEY, with SECTION one of: " + ", ".join(SECTIONS))
    if section not in SECTIONS:
        raise UnknownNameError("config section", section, SECTIONS)
    return section, name


def nest(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"train.epochs": 5}`` -> ``{"train": {"epochs": 5}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, name = split_key(key)
        out.setdefault(section, {})[name] = value
    return out


def merge(base: Mapping[str, Any], update: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Section-wise merge of two config dicts, ``update`` winning.

    When ``update`` changes a component's ``name``, the component starts again from its defaults
    (the old component's options would not fit the new one); ``update``'s other keys for it apply.
    Renaming the dataset keeps ``root``, ``download`` and ``limit`` and drops the old dataset's options.
    Options given before any layer named the component are kept for the one that is named (a config
    file's ``[model] width = 32`` under ``ganzoo train dcgan --recipe none``).
    An option given by its former name (``option(was=...)``) replaces the option as any key does.
    """
    out = {k: dict(v) for k, v in base.items()}
    for section, values in update.items():
        if section not in SECTIONS:
            raise UnknownNameError(f"config section in {source}", section, SECTIONS)
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table of keys, got {values!r}")
        current = out.setdefault(section, {})
        if "name" in values and current.get("name") is not None and values["name"] != current["name"]:
            if section in COMPONENT_KINDS:
                current.clear()
            elif section == "data":
                for key in [k for k in current if k not in DATA_KEYS]:
                    del current[key]
        renamed = _renamed(section, values.get("name", current.get("name")))
        for key in values:
            for other in [k for k in current if k != key and renamed.get(k, k) == renamed.get(key, key)]:
                del current[other]  # the same option under its other name: the later layer wins
        current.update(values)
    return out


def _renamed(section: str, name: Any) -> dict[str, str]:
    """``{former name: name}`` of the options of the component a section names, or of the one it
    gets when none is named (the default loss, optimizer, dataset); none for an unknown name."""
    if section not in (*COMPONENT_KINDS, "data"):
        return {}
    try:
        name = name or default_name(section)
        if not isinstance(name, str):
            return {}
        spec = get_dataset_spec(name) if section == "data" else get_registry().get(COMPONENT_KINDS[section], name)
    except (ConfigError, UnknownNameError):  # no or an unknown name: resolving the config says so
        return {}
    return renamed_options(spec.options)


@dataclass(frozen=True)
class Flag:
    """One setting given by a flag: ``Flag("--epochs", "train.epochs", 5)``; None means not given."""

    label: str
    key: str
    value: Any


def compose(model: str | None = None, *, dataset: str | None = None, recipe: str | None = None,
            config_file: str | Path | None = None, flags: Sequence[Flag] = (),
            overrides: Sequence[str] | Mapping[str, Any] = (),
            resume: Mapping[str, Any] | None = None) -> tuple[Config, list[str]]:
    """The config ``ganzoo train`` would use, and the sources it was layered from (for the log).

    ``overrides`` are the ``--set`` layer: ``["train.epochs=5"]`` or ``{"train.epochs": 5}``.
    ``resume`` is the config of the run being resumed (from its checkpoint).
    """
    flag_layers = [(f.label, nest({f.key: f.value})) for f in flags if f.value is not None]
    pairs = [parse_override(o) for o in overrides] if not isinstance(overrides, Mapping) else list(overrides.items())
    set_layer = ("--set", nest(dict(pairs)))
    if resume is not None:
        return _compose_resumed(resume, model, dataset, recipe, config_file, [*flag_layers, set_layer])

    file_layer = (str(config_file), load_toml(config_file)) if config_file else None
    named = [(f"`ganzoo train {model}`", {"model": {"name": model}})] if model else []
    if dataset:
        named.append(("--dataset", {"data": {"name": dataset}}))
    layers = [*([file_layer] if file_layer else []), *named, *flag_layers, set_layer]
    top = _merge_all(layers)
    model_name = top.get("model", {}).get("name")
    if model_name is None:
        if config_file:
            raise ConfigError(f"{config_file} names no model: add [model] with name = \"dcgan\" (or another "
                              "from `ganzoo list`), or name it on the command line: `ganzoo train dcgan --config FILE`")
        raise ConfigError("name a model (`ganzoo train dcgan`) or pass --config FILE; `ganzoo list` shows models")
    dataset_name = top.get("data", {}).get("name") or default_name("data")
    spec = get_model_spec(coerce(model_name, str, "model.name"))
    get_dataset_spec(coerce(dataset_name, str, "data.name"))  # an unknown dataset is named before recipes
    found = None if recipe == NO_RECIPE else find_recipe(spec, dataset_name, recipe or DEFAULT)
    if found is None and recipe not in (None, NO_RECIPE):
        raise UnknownNameError(f"recipe for {model_name} on {dataset_name}", recipe,
                               [NO_RECIPE, *(r.partition(":")[2] or DEFAULT for r in recipe_names(spec, dataset_name))])
    sources = [found[1]] if found else []
    if file_layer:
        sources.append(file_layer[0])
    if found:
        layers.insert(0, (found[1], found[0]))
    return resolve_config(_merge_all(layers)), sources


def _merge_all(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for source, layer in layers:
        raw = merge(raw, layer, source)
    return raw


def _compose_resumed(base: Mapping[str, Any], model: str | None, dataset: str | None, recipe: str | None,
                     config_file: Any, layers: list[tuple[str, dict[str, Any]]]) -> tuple[Config, list[str]]:
    base = {k: dict(v) for k, v in base.items()}
    if model and model != base.get("model", {}).get("name"):
        raise ConfigError(f"this is a {base.get('model', {}).get('name')} run; it cannot be resumed as {model}")
    for label, given in (("--dataset", dataset), ("--recipe", recipe), ("--config", config_file)):
        if given is not None:
            raise ConfigError(f"{label} cannot change when resuming; start a new run instead")
    for label, layer in layers:
        for section, values in layer.items():
            for key in values:
                if key not in RESUMABLE.get(section, ()):
                    where = label if label != "--set" else f"--set {section}.{key}"
                    may = ", ".join(f"{sec}.{k}" for sec, keys in RESUMABLE.items() for k in keys)
                    raise ConfigError(f"{where} cannot change when resuming: it would change what the run "
                                      f"computes. Start a new run instead; what may change: {may}")
    return resolve_config(_merge_all([("checkpoint", base), *layers])), []


def whole_number(value: Any, name: str, *, least: int) -> int:
    """``value`` as an int (numpy's and torch's integers too) of at least ``least``; else a ConfigError."""
    try:
        number = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        number = None
    if number is None or number < least:
        raise ConfigError(f"{name} must be a whole number of at least {least}, got {value!r}")
    return number


# --- resolution against the registry -----------------------------------------------------------------

def default_name(section: str) -> str:
    """What a config that names no component for ``section`` gets: the one a plugin registered
    with ``default=True`` (ganzoo's own: the nonsaturating loss, Adam, Fashion-MNIST)."""
    kind = COMPONENT_KINDS.get(section, "dataset")
    name = get_registry().default(kind)
    if name is None:
        raise ConfigError(f"no [{section}] name given and no plugin registers a default {kind}: "
                          f"name one (`ganzoo list` shows them)")
    return name


def _component(raw: Mapping[str, Any], section: str) -> Component:
    values = dict(raw.get(section, {}))
    name = values.pop("name", None) or (default_name(section) if section != "model" else None)
    if name is None:
        raise ConfigError(f"no [{section}] name given: name a {section} (e.g. `ganzoo train dcgan`)")
    spec = get_registry().get(COMPONENT_KINDS[section], coerce(name, str, f"{section}.name"))
    return Component(name, spec.make_options(values, section))


def resolve_data(section: Mapping[str, Any]) -> DataSettings:
    """The ``[data]`` section alone, validated against its dataset's options."""
    values = dict(section)
    values["name"] = values.get("name") or default_name("data")
    core = build_options(DataSettings, {k: values.pop(k) for k in DATA_KEYS if k in values}, "data")
    spec = get_dataset_spec(core.name)
    return dataclasses.replace(core, options=spec.make_options(values, "data"))


def _migrate(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Configs written by ganzoo 0.1 (run directories, checkpoints) in today's layout.

    ``train.aux_weight`` was a core setting; it is now the option of the models that have a class
    head (acgan), so it moves to ``[model]`` where the model takes it and is dropped elsewhere,
    where it never had an effect.
    """
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    train = out.get("train")
    if isinstance(train, dict) and "aux_weight" in train:
        weight = train.pop("aux_weight")
        model = out.get("model")
        if isinstance(model, dict) and "name" in model:
            try:
                takes = "aux_weight" in {f.name for f in dataclasses.fields(get_model_spec(model["name"]).options)}
            except UnknownNameError:
                takes = False
            if takes:
                model.setdefault("aux_weight", weight)
    return out


def _listed(key: str, items: Any) -> tuple[Component, ...]:
    """``train.regularizers = ["r1", {name = "lecam", weight = 0.3}]`` -> components, each checked."""
    kind = LISTS[key]
    if isinstance(items, (str, Mapping)):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"config key 'train.{key}' must be a list of {kind} names or tables, got {items!r}")
    out, seen = [], set()
    for i, item in enumerate(items):
        values = {"name": item} if isinstance(item, str) else dict(item) if isinstance(item, Mapping) else None
        if values is None or "name" not in values:
            raise ConfigError(f"config key 'train.{key}[{i}]' must be a {kind} name or a table with a name, got {item!r}")
        name = coerce(values.pop("name"), str, f"train.{key}[{i}].name")
        if name in seen:
            raise ConfigError(f"config key 'train.{key}' names {kind} {name!r} twice")
        seen.add(name)
        out.append(Component(name, get_registry().get(kind, name).make_options(values, f"train.{key}.{name}")))
    return tuple(out)


def resolve_config(raw: Mapping[str, Any]) -> Config:
    """Validate a merged config dict against the registry and fill in every default."""
    for section in raw:
        if section not in SECTIONS:
            raise UnknownNameError("config section", section, SECTIONS)
        if not isinstance(raw[section], Mapping):
            raise ConfigError(f"[{section}] must be a table of keys, got {raw[section]!r}")
    raw = _migrate(raw)
    train = dict(raw.get("train", {}))
    lists = {key: _listed(key, train.pop(key)) for key in LISTS if key in train}
    return Config(
        model=_component(raw, "model"),
        loss=_component(raw, "loss"),
        data=resolve_data(raw.get("data", {})),
        train=build_options(TrainSettings, train, "train"),
        g_optimizer=_component(raw, "g_optimizer"),
        d_optimizer=_component(raw, "d_optimizer"),
        **lists,
    )
