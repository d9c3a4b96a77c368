"""The option schema every pluggable thing shares: a frozen dataclass whose fields are config keys.

``option(default, min=..., max=..., help=...)`` declares a field; :func:`build_options` makes an
instance from user values (types checked, lossless conversions only, ranges checked, unknown keys
suggested); :func:`describe_options` and :func:`options_to_dict` are what ``ganzoo list`` and the
run directory show. This module imports nothing of ganzoo but its errors, so plugins, the config
layer and the registry can all stand on it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError, UnknownNameError

__all__ = ["NoOptions", "build_options", "check_defaults", "coerce", "describe_options", "option", "options_to_dict", "renamed_options"]


def option(default: Any, *, help: str = "", min: float | None = None, max: float | None = None,
           min_exclusive: bool = False, was: str | tuple[str, ...] = ()) -> Any:
    """A dataclass field for a config option, with an optional range that is checked on load.

    ``was`` names the option's former names (``option(False, was="batchnorm")``): configs, runs and
    checkpoints written with an old name still load, as the new name; see :func:`renamed_options`.
    """
    former = (was,) if isinstance(was, str) else was
    if not isinstance(former, (tuple, list)) or not all(isinstance(n, str) and n for n in former):
        raise TypeError(f"was= takes an option's former name or a tuple of them, got {was!r}")
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive, "was": tuple(former)}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class NoOptions:
    """The options of a component that takes none."""


def type_name(annotation: Any) -> str:
    """How a type reads in an error message: ``"an integer"``, ``"'auto' or true or false"``."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"a list of {type_name(args[0]) if args else 'values'}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _coerce_union(value: Any, annotation: Any, key: str, fail: Any) -> Any:
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


def _coerce_sequence(value: Any, annotation: Any, key: str, fail: Any) -> Any:
    if not isinstance(value, (list, tuple)):
        raise fail()
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise ConfigError(f"config key {key!r} must be a list of {len(args)} values, got {value!r}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    inner = args[0] if args else Any
    items = [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _coerce_float(value: Any, key: str, fail: Any) -> float:
    if isinstance(value, bool):
        raise fail()
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise fail() from None
    if not isinstance(value, (int, float)):
        raise fail()
    if not math.isfinite(value):
        raise ConfigError(f"config key {key!r} must be a finite number, got {value!r}")
    return float(value)


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a type annotation, converting only where nothing is lost (int -> float)."""
    def fail() -> ConfigError:
        return ConfigError(f"config key {key!r} must be {type_name(annotation)}, got {value!r}")

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, annotation, key, fail)
    if origin is Literal:
        if value in typing.get_args(annotation) and type(value) in {type(a) for a in typing.get_args(annotation)}:
            return value
        raise fail()
    if origin in (tuple, list):
        return _coerce_sequence(value, annotation, key, fail)
    if annotation is Any:
        return value
    if annotation is float:
        return _coerce_float(value, key, fail)
    if annotation is int and isinstance(value, bool):
        raise fail()
    if annotation in (bool, int, str) and isinstance(value, annotation):
        return value
    raise fail()


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


def renamed_options(cls: type) -> dict[str, str]:
    """``{former name: name}`` for every option of ``cls`` declared with ``option(..., was=...)``.

    ValueError if a former name is an option's current name or the former name of two options:
    either would make a key mean two things.
    """
    if not dataclasses.is_dataclass(cls):
        return {}
    fields = [f.name for f in dataclasses.fields(cls)]
    out: dict[str, str] = {}
    for f in dataclasses.fields(cls):
        for old in f.metadata.get("was", ()):
            if old in fields:
                raise ValueError(f"option {f.name!r} names {old!r} as a former name, but {old!r} is an option too")
            if old in out:
                raise ValueError(f"options {out[old]!r} and {f.name!r} both name {old!r} as a former name")
            out[old] = f.name
    return out


def build_options(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """An instance of the options dataclass ``cls`` made from ``values``.

    ``where`` names the section in messages (``"model"``). Unknown keys, wrong types and values out
    of range raise :class:`ConfigError` naming the full key; so does a ``ValueError`` raised by the
    dataclass's own ``__post_init__`` checks. A former name of an option (``was=``) is read as the
    option; both names with different values are an error.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = _current_names(values, renamed_options(cls), where)
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


def _current_names(values: Mapping[str, Any], renamed: Mapping[str, str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    given: dict[str, list[str]] = {}  # option -> the keys that gave it, as the user wrote them
    for key, value in values.items():
        name = renamed.get(key, key)
        if name in out and out[name] != value:
            keys = " and ".join(f"'{where}.{k}'" for k in [*given[name], key])
            raise ConfigError(f"config keys {keys} name one option, '{where}.{name}' (by its former names too), "
                              f"with different values: keep '{where}.{name}' only")
        out.setdefault(name, value)
        given.setdefault(name, []).append(key)
    return out


def options_to_dict(options: Any) -> dict[str, Any]:
    """A dataclass instance as TOML-friendly values (tuples become lists, None is left out)."""
    out = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if value is None:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def option_defaults(cls: type) -> dict[str, Any]:
    """Every field's default, TOML-friendly (tuples as lists; fields defaulting to None included)."""
    return {key: default for key, _, default, _ in describe_options(cls)}


_PLAIN = (bool, int, float, str, type(None))


def _configurable(annotation: Any) -> bool:
    """Whether :func:`coerce` can check a value of this type (what a TOML config or ``--set`` can give)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation in _PLAIN:
        return True
    if origin is Literal:
        return all(isinstance(a, _PLAIN) for a in args)
    if origin in (typing.Union, types.UnionType, tuple, list):  # typing.List alone: a list of anything
        return all(_configurable(a) for a in args if a is not Ellipsis)
    return False


def _as_written(annotation: Any) -> str:
    """A type as its author wrote it: ``dict``, ``dict[str, int] | None``."""
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _plain(value: Any) -> Any:
    """A value as a config file holds it: tuples as lists, at any depth."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def check_defaults(cls: type) -> None:
    """TypeError naming the first option that has no default, whose type cannot be read or a config
    cannot give, or whose default its own type or range refuses or would change (``scale: int =
    option(0.5)``, ``rate: float = option("0.5")``): such a default would train, and then the run's
    config.toml would not load again, or would load as another value (resume, sample, eval). A
    default of None is "not set" (config files leave it out), whatever the type."""
    for f in dataclasses.fields(cls):  # `ganzoo list` and every config start from the defaults
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"option {f.name!r} of {cls.__name__} has no default; every option needs one")
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # e.g. a type imported only under TYPE_CHECKING
        raise TypeError(f"the options of {cls.__name__} cannot be read: {type(exc).__name__}: {exc}") from None
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if not _configurable(hint):
            raise TypeError(f"option {f.name!r} of {cls.__name__} is declared as {_as_written(hint)}, which a "
                            "config cannot give: use bool, int, float, str, a Literal, a tuple or list of these, "
                            "or X | None")
        default = _default(f)
        if default is None:
            continue
        try:
            value = coerce(default, hint, f.name)
            _check_range(value, f.metadata, f.name)
        except ConfigError as exc:
            raise TypeError(f"option {f.name!r} of {cls.__name__}: its default does not pass its own check "
                            f"({exc})") from None
        if _plain(value) != _plain(default):
            raise TypeError(f"option {f.name!r} of {cls.__name__}: its default {default!r} would be read back from "
                            f"a config as {value!r}; write it as {value!r}")


def describe_options(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(key, type, default, help)`` for each field of an options dataclass."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = _default(f)
        rows.append((f.name, type_name(hints[f.name]), list(default) if isinstance(default, tuple) else default,
                     f.metadata.get("help", "")))
    return rows
