"""End-point collections and small helpers used by layers and nets."""

from __future__ import annotations

import collections
from typing import Any, Sequence

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import scopes


def _collection(name: str) -> list:
    context = scopes.current_context()
    if context is None:
        raise SlimError(f"collection {name!r} is only available during a model call.")
    return context.collections.setdefault(name, [])


def collect_named_outputs(collections_: str | Sequence[str] | None, alias: str,
                          outputs: Any) -> Any:
    """Records `outputs` under `alias` in the named output collection(s) of this call."""
    if collections_:
        names = [collections_] if isinstance(collections_, str) else collections_
        for name in names:
            _collection(name).append((alias, outputs))
    return outputs


def append_tensor_alias(tensor: Any, alias: str) -> Any:
    """Kept for TF-Slim compatibility: aliases are stored beside tensors here."""
    del alias
    return tensor


def convert_collection_to_dict(collection: str, clear_collection: bool = False) -> dict:
    """`{alias: tensor}` of a named output collection, in the order added."""
    items = _collection(collection)
    result = collections.OrderedDict((alias.rstrip("/"), t) for alias, t in items)
    if clear_collection:
        items.clear()
    return result


def two_element_tuple(int_or_tuple: int | Sequence[int]) -> tuple[int, int]:
    """`3` → `(3, 3)`; `[3, 5]` → `(3, 5)`."""
    if isinstance(int_or_tuple, (list, tuple)):
        if len(int_or_tuple) != 2:
            raise SlimError(f"expected an int or 2 ints, got {list(int_or_tuple)}.")
        return int(int_or_tuple[0]), int(int_or_tuple[1])
    if isinstance(int_or_tuple, tf.TensorShape):
        if len(int_or_tuple) == 2:
            return int(int_or_tuple[0]), int(int_or_tuple[1])
    if isinstance(int_or_tuple, int):
        return int_or_tuple, int_or_tuple
    raise SlimError(f"expected an int or 2 ints, got {int_or_tuple!r}.")


def last_dimension(shape: tf.TensorShape, min_rank: int = 1) -> int:
    """The static last dimension; an error naming the shape when unknown."""
    shape = tf.TensorShape(shape)
    if shape.rank is None or shape.rank < min_rank:
        raise SlimError(f"expected an input of rank >= {min_rank}, got shape {shape}.")
    value = shape[-1]
    if value is None:
        raise SlimError(f"the last dimension of an input of shape {shape} must be known.")
    return int(value)
