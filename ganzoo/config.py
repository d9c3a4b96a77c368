"""Run configuration: TOML recipes, typed ``--set key=value`` overrides, validation.

A configuration has six sections. ``model``, ``loss``, ``g_optimizer`` and ``d_optimizer`` each name
a registered component (``name = "dcgan"``) followed by that component's options, which are checked
against the options dataclass it registered. ``data`` and ``train`` are fixed below.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError, UnknownNameError

COMPONENT_SECTIONS = ("model", "loss", "g_optimizer", "d_optimizer")


def option(default: Any, *, help: str = "", min: float | None = None, max: float | None = None,
           min_exclusive: bool = False) -> Any:
    """A dataclass field for a config option, with an optional range that is checked on load."""
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataSettings:
    name: str = option("fashion_mnist", help="registered dataset name (`ganzoo list`)")
    root: str | None = option(None, help="dataset root in torchvision's layout; default $GANZOO_DATA_DIR")
    download: bool = option(True, help="download missing files when possible")
    limit: int | None = option(None, min=1, help="use only the first N training images")
    image_size: int | None = option(None, min=4, help="folder:PATH datasets: side of the square images (default 32)")
    channels: Literal[1, 3] | None = option(None, help="folder:PATH datasets: 1 or 3 (default: 3 if any image has colour)")


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = option(10, min=1, help="total epochs (a resumed run continues up to this)")
    batch_size: int = option(128, min=1, help="images per step")
    seed: int = option(0, min=0, help="seeds weights, noise and data order")
    d_steps: int = option(1, min=1, help="discriminator updates per generator update")
    max_steps: int | None = option(None, min=1, help="stop after this many steps in total")
    log_every: int = option(50, min=1, help="steps between metrics.jsonl lines")
    grid_size: int = option(64, min=1, max=1024, help="images in each fixed-noise sample grid")
    keep_checkpoints: int = option(2, min=0, help="per-epoch checkpoints kept besides last.safetensors")
    device: Literal["auto", "cpu", "cuda", "mps"] = option("auto", help="auto picks cuda, then mps, then cpu")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option(
        "auto", help="autocast precision; auto: bf16 on GPUs and CPUs with bf16 units, else fp32")
    channels_last: Literal["auto"] | bool = option(
        "auto", help="channels-last memory; auto: on for CPU and CUDA where the model supports it")
    compile: bool = option(False, help="torch.compile G and D (measured slower on small CPUs)")
    fast_dropout: Literal["auto"] | bool = option(
        "auto", help="ganzoo.layers.Dropout draws its masks 3.5-5x faster (same distribution); auto: on for CPU")
    reuse_memory: Literal["auto"] | bool = option(
        "auto", help="keep memory freed in a step for the next (glibc malloc, no page faults); auto: on for CPU")
    ema_decay: float = option(0.0, min=0, max=0.99999, help="EMA of G's weights for sampling (0 = off; e.g. 0.999)")
    aux_weight: float = option(1.0, min=0, help="weight of the class losses of an auxiliary-classifier D")
    eval_every: int = option(0, min=0, help="score FID/KID every N epochs and keep checkpoints/best (0 = off)")
    eval_n: int = option(2000, min=10, help="samples per score during training")


@dataclass(frozen=True)
class Config:
    """A fully validated configuration; ``to_dict()`` is what the run directory stores."""

    model: dict[str, Any]
    loss: dict[str, Any]
    data: DataSettings
    train: TrainSettings
    g_optimizer: dict[str, Any]
    d_optimizer: dict[str, Any]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {
            "model": dict(self.model),
            "loss": dict(self.loss),
            "data": _drop_none(dataclasses.asdict(self.data)),
            "train": _drop_none(dataclasses.asdict(self.train)),
            "g_optimizer": dict(self.g_optimizer),
            "d_optimizer": dict(self.d_optimizer),
        }


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# --- typed values -------------------------------------------------------------------------------

def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"a list of {_type_name(args[0]) if args else 'values'}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a type annotation, converting where it is lossless (int -> float)."""
    def fail() -> ConfigError:
        return ConfigError(f"config key {key!r} must be {_type_name(annotation)}, got {value!r}")

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None or (type(None) in args and isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
            raise fail()
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError:
                continue
        raise fail()
    if origin is Literal:
        if value in typing.get_args(annotation):
            return value
        raise fail()
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise fail()
        args = typing.get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"config key {key!r} must be a list of {len(args)} values, got {value!r}")
            return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [coerce(v, inner, f"{key}[{i}]") if inner is not Any else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if annotation is float:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise fail() from None
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ConfigError(f"config key {key!r} must be a finite number, got {value!r}")
            return float(value)
        raise fail()
    if annotation is str:
        if isinstance(value, str):
            return value
        raise fail()
    raise fail()


def build_options(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Make an instance of options dataclass ``cls`` from ``values``.

    ``where`` names the section for messages, e.g. ``"model"``. Unknown keys, wrong types and values
    out of range raise :class:`ConfigError` naming the full key.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise UnknownNameError(
                f"config key in [{where}]", key, fields,
                hint="Known keys: " + (", ".join(sorted(fields)) or "none") + ".",
            )
        full = f"{where}.{key}"
        value = coerce(value, hints[key], full)
        _check_range(value, fields[key].metadata, full)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{where}]: {exc}") from None


def _check_range(value: Any, meta: Mapping[str, Any], key: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None:
        if meta.get("min_exclusive") and value <= lo:
            raise ConfigError(f"config key {key!r} must be greater than {lo}, got {value!r}")
        if value < lo:
            raise ConfigError(f"config key {key!r} must be at least {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"config key {key!r} must be at most {hi}, got {value!r}")


def options_to_dict(options: Any) -> dict[str, Any]:
    """A dataclass instance as TOML-friendly values (tuples become lists, None is left out)."""
    out = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if value is None:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def describe_options(cls: type) -> list[tuple[str, str, Any, str]]:
    """(key, type, default, help) for each field of an options dataclass, for docs and `ganzoo list`."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows


# --- files and overrides ------------------------------------------------------------------------

def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc)
        if "end of document" in detail:  # tomllib gives no line for this one
            detail += f" (line {max(1, len(text.splitlines()))}: is a bracket or quote left open?)"
        raise ConfigError(f"{path}: invalid TOML: {detail}") from None
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``"g_optimizer.lr=1e-4"`` -> ``("g_optimizer.lr", 0.0001)``.

    The value is read as a TOML literal (numbers, true/false, [lists], "strings"); anything that is
    not a TOML literal is taken as a plain string. Nothing is ever evaluated.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=5), got {text!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    section, dot, name = key.partition(".")
    if not dot or not name or "." in name:
        raise ConfigError(
            f"--set key {key!r} must be SECTION.KEY, with SECTION one of: " + ", ".join(SECTIONS)
        )
    if section not in SECTIONS:
        raise UnknownNameError("config section", section, SECTIONS)
    data.setdefault(section, {})[name] = value


SECTIONS = ("model", "loss", "data", "train", "g_optimizer", "d_optimizer")


def merge(base: dict[str, Any], update: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Section-wise merge of two config dicts; a component's options reset when its name changes."""
    out = {k: dict(v) for k, v in base.items()}
    for section, values in update.items():
        if section not in SECTIONS:
            raise UnknownNameError(f"config section in {source}", section, SECTIONS)
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table of keys, got {values!r}")
        current = out.setdefault(section, {})
        if section in COMPONENT_SECTIONS and "name" in values and values["name"] != current.get("name"):
            current.clear()
        current.update(values)
    return out


def dump_toml(data: Mapping[str, Mapping[str, Any]]) -> str:
    """Write our two-level config dicts as TOML (the standard library only reads TOML)."""
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")


# --- resolution against the registry -------------------------------------------------------------

def _component(raw: Mapping[str, Any], section: str, default_name: str | None, options_for: Any) -> dict[str, Any]:
    values = dict(raw.get(section, {}))
    name = values.pop("name", default_name)
    if name is None:
        raise ConfigError(f"no [{section}] name given: name a {section} (e.g. `ganzoo train dcgan`)")
    name = coerce(name, str, f"{section}.name")
    options = build_options(options_for(name), values, section)
    return {"name": name, **options_to_dict(options)}


def resolve_config(raw: Mapping[str, Any]) -> Config:
    """Validate a merged config dict against the registry and fill in every default."""
    from .optim import get_optimizer
    from .registry import get_dataset_spec, get_loss_spec, get_model_spec

    for section in raw:
        if section not in SECTIONS:
            raise UnknownNameError("config section", section, SECTIONS)
    data = build_options(DataSettings, raw.get("data", {}), "data")
    get_dataset_spec(data.name)
    return Config(
        model=_component(raw, "model", None, lambda n: get_model_spec(n).options),
        loss=_component(raw, "loss", "nonsaturating", lambda n: get_loss_spec(n).options),
        data=data,
        train=build_options(TrainSettings, raw.get("train", {}), "train"),
        g_optimizer=_component(raw, "g_optimizer", "adam", lambda n: get_optimizer(n)[0]),
        d_optimizer=_component(raw, "d_optimizer", "adam", lambda n: get_optimizer(n)[0]),
    )


def find_recipe(model: str, dataset: str) -> tuple[dict[str, Any], str] | None:
    """The tuned recipe for (model, dataset): one the model's plugin registered, else
    ``zoo_configs/<model>-<dataset>.toml``. Returns ``(config dict, where it came from)``."""
    from importlib import resources

    from .registry import get_model_spec

    recipe = get_model_spec(model).recipes.get(dataset)
    if recipe is not None:
        return {k: dict(v) for k, v in recipe.items()}, f"plugin recipe {model}/{dataset}"
    resource = resources.files("ganzoo.zoo_configs").joinpath(f"{model}-{dataset}.toml")
    if resource.is_file():
        with resources.as_file(resource) as path:
            return load_toml(path), f"zoo_configs/{model}-{dataset}.toml"
    return None
