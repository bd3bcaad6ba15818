"""Configs that describe themselves: each field of a stage's `*Config` carries its help text and bounds.

A field is declared with `option(default, help, ge=..., gt=..., le=...)`. From that one declaration
the config checks itself when it is made (`Checked.__post_init__`), `configure` applies changes from
the CLI, a job's parameters or the admin tab (unknown keys and values out of bounds are refused, with
the field's name), and `add_arguments` builds the command-line flags, so no default is written twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any


class ConfigError(ValueError):
    """A config change that cannot be made: an unknown field, or a value of the wrong type or out of bounds."""


BOUNDS = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"), "le": (lambda v, b: v <= b, "<=")}


def option(default: Any, help: str, **bounds: float) -> Any:
    """A config field with its help text and bounds (`ge`, `gt`, `le`); lists and configs are copied per instance."""
    unknown = set(bounds) - set(BOUNDS)
    if unknown:
        raise TypeError(f"unknown bounds {sorted(unknown)}")
    metadata = {"help": help, "bounds": bounds}
    if dataclasses.is_dataclass(default) or isinstance(default, list):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _copy(value):
    return dataclasses.replace(value) if dataclasses.is_dataclass(value) else list(value)


@cache
def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base(kind: Any) -> Any:
    """`float` of `float | None`; the type a value is parsed as."""
    if isinstance(kind, UnionType) or typing.get_origin(kind) is typing.Union:
        return next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


class Checked:
    """Mixed into a config dataclass: every field with bounds is checked when the config is made."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            for bound, limit in f.metadata.get("bounds", {}).items():
                test, sign = BOUNDS[bound]
                if value is not None and not test(value, limit):
                    raise ConfigError(f"{type(self).__name__}.{f.name} must be {sign} {limit}, not {value!r}")


def _parse(kind: Any, value: Any, name: str) -> Any:
    kind = _base(kind)
    if value is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool and isinstance(value, str) and value.lower() in ("1", "0", "true", "false", "yes", "no"):
        return value.lower() in ("1", "true", "yes")
    if kind in (int, float, str, Path) and not isinstance(value, bool):
        try:
            return kind(value)
        except ValueError:
            pass
    if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    raise ConfigError(f"{name} must be {getattr(kind, '__name__', kind)}, not {value!r}")


def configure(cfg: Any, changes: dict) -> Any:
    """`cfg` with `changes` applied (None keeps the default); an unknown key or a bad value is refused."""
    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ConfigError(f"{type(cfg).__name__} has no {', '.join(unknown)}; its fields: {', '.join(sorted(names))}")
    types = _types(type(cfg))
    values = {k: _parse(types[k], v, f"{type(cfg).__name__}.{k}") for k, v in changes.items() if v is not None}
    return dataclasses.replace(cfg, **values)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, rename: dict[str, str] | None = None,
                  prefix: str = "") -> None:
    """One flag per field of `cls` (nested configs as `--<field>-<their field>`), default None: a flag
    that is not given leaves the config's own default. `rename` gives a field another flag name."""
    rename = rename or {}
    defaults = cls()
    for f in dataclasses.fields(cls):
        kind, default = _base(_types(cls)[f.name]), getattr(defaults, f.name)
        dest = prefix + f.name
        if dataclasses.is_dataclass(kind):
            add_arguments(parser, kind, prefix=dest + "__")
            continue
        bounds = "".join(f"; {BOUNDS[b][1]} {v}" for b, v in f.metadata.get("bounds", {}).items())
        text = f"{f.metadata.get('help', '')} (default: {default!r}{bounds})"
        flag = rename.get(f.name) or _flag(dest.replace("__", "-"))
        if kind is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif typing.get_origin(kind) is tuple:
            parser.add_argument(flag, dest=dest, nargs="+", default=None, help=text)
        else:
            parser.add_argument(flag, dest=dest, type=kind, default=None, help=text)


def from_arguments(cls: type, args: argparse.Namespace, base: Any = None) -> Any:
    """The config the flags of `add_arguments` describe (fields not given keep `base`'s or the defaults)."""
    cfg = base if base is not None else cls()
    given = vars(args)
    changes = {}
    for f in dataclasses.fields(cls):
        kind = _base(_types(cls)[f.name])
        if dataclasses.is_dataclass(kind):
            nested = {k.split("__", 1)[1]: v for k, v in given.items() if k.startswith(f.name + "__") and v is not None}
            if nested:
                changes[f.name] = configure(getattr(cfg, f.name), nested)
        elif given.get(f.name) is not None:
            changes[f.name] = given[f.name]
    return configure(cfg, changes)
