"""Settings written once: the fields of a command's config dataclass are its flags.

A field with a help text is a flag of the same name, kind and default:

    batch_size: int = option(32, "Images per step per clone.")
    # the same, spelled out:
    batch_size: int = dataclasses.field(default=32,
                                        metadata={"help": "Images per step per clone."})

A field without one is a library-only setting and has no flag. The flag's kind comes
from the field's type: str, int, float or bool, or Optional of one of them. Optional
metadata: `choices` (a str field becomes an enum flag), `lower_bound` / `upper_bound`
(bounds of an int or float flag). Flags are defined in field order, so a config lists
the original script's flags first and slimcli's own after them.

Every command that has `--dataset_name` or `--model_name` also takes the short
spellings `--dataset` and `--model` (absl aliases).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, TypeVar

from absl import flags

from slimcli.errors import SlimError

__all__ = ["ALIASES", "option", "flag_fields", "define_flags", "from_flags", "from_mapping"]

# alias → the flag it stands for, defined wherever that flag is.
ALIASES = {"dataset": "dataset_name", "model": "model_name"}

_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           bool: flags.DEFINE_bool}
_BOUNDS = ("lower_bound", "upper_bound")

C = TypeVar("C")


def option(default: Any, help: str, **extra: Any) -> Any:  # noqa: A002 - the flag's help text
    """A config field that is also a flag.

    The same as `dataclasses.field(default=default, metadata={"help": help, **extra})`.

    Args:
      default: the one place the default is written.
      help: the flag's help text (`--help`, README).
      **extra: more metadata: `choices`, `lower_bound`, `upper_bound`.
    """
    return dataclasses.field(default=default, metadata={"help": help, **extra})


def flag_fields(config_class: type) -> list[tuple[dataclasses.Field, type]]:
    """`[(field, kind)]` of the fields of `config_class` that are flags, in field order.

    Raises:
      TypeError: a flag field with no default or a type no flag can hold.
    """
    hints = typing.get_type_hints(config_class)
    found = []
    for field in dataclasses.fields(config_class):
        if "help" not in field.metadata:
            continue
        if field.default is dataclasses.MISSING:
            raise TypeError(f"{config_class.__name__}.{field.name} is a flag and needs a "
                            f"default (default=...).")
        found.append((field, _kind(config_class, field.name, hints[field.name])))
    return found


def _kind(config_class: type, name: str, hint: Any) -> type:
    """str, int, float or bool: the type, or the one non-None member of an Optional."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = members[0] if len(members) == 1 else hint
    if hint not in _DEFINE:
        raise TypeError(f"{config_class.__name__}.{name}: a flag field must be str, int, float "
                        f"or bool, or Optional of one; got {hint!r}.")
    return hint


def define_flags(config_class: type, fv: flags.FlagValues) -> None:
    """Defines one flag per flag field of `config_class` on `fv` (plus `ALIASES`)."""
    for field, kind in flag_fields(config_class):
        meta = field.metadata
        if "choices" in meta:
            flags.DEFINE_enum(field.name, field.default, list(meta["choices"]), meta["help"],
                              flag_values=fv)
        else:
            bounds = {k: meta[k] for k in _BOUNDS if k in meta}
            _DEFINE[kind](field.name, field.default, meta["help"], flag_values=fv, **bounds)
        for alias, target in ALIASES.items():
            if target == field.name:
                flags.DEFINE_alias(alias, target, flag_values=fv)


def from_flags(config_class: type[C], fv: flags.FlagValues) -> C:
    """The config that parsed flags `fv` describe (fields without a flag keep their default)."""
    return config_class(**{f.name: fv[f.name].value for f, _ in flag_fields(config_class)})


def from_mapping(config_class: type[C], values: Mapping[str, Any]) -> C:
    """A config from `{field: value}`.

    Raises:
      SlimError: a key that is not a field of `config_class` (the known ones listed).
    """
    names = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise SlimError(f"unknown setting(s) {unknown} for {config_class.__name__}; known: "
                        f"{', '.join(names)}.")
    return config_class(**values)
