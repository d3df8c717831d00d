"""Reference facts of the original nets (tests/data/nets/*.json) and formula C."""

from __future__ import annotations

import functools
import json
import os
import zlib

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "data")


@functools.lru_cache(maxsize=None)
def reference(name: str) -> dict:
    with open(os.path.join(DATA, "nets", f"{name}.json")) as f:
        return json.load(f)


def reference_input(size: int, batch: int = 2) -> np.ndarray:
    """The documented input: sin(arange * 0.001) as [batch, size, size, 3] float32."""
    x = np.sin(np.arange(batch * size * size * 3, dtype=np.float64) * 0.001)
    return x.reshape(batch, size, size, 3).astype(np.float32)


def ref_value_c(name: str, shape: list[int], wscale: float) -> np.ndarray:
    """Formula C of tests/data/nets/README: a deterministic value for each variable."""
    n = int(np.prod(shape)) if len(shape) else 1
    rs = np.random.RandomState(zlib.crc32(name.encode()) & 0xFFFFFFFF)
    base = rs.uniform(-1.0, 1.0, size=n)
    leaf = name.split("/")[-1]
    if leaf == "moving_variance":
        v = 1.0 + 0.25 * (base + 1.0)
    elif leaf in ("moving_mean", "beta", "biases", "bias"):
        v = 0.05 * base
    elif leaf == "gamma":
        v = 1.0 + 0.1 * base
    else:
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        if leaf == "depthwise_weights":
            fan_in = int(np.prod(shape[:2]))
        v = base * np.sqrt(3.0 / max(fan_in, 1)) * wscale
    return v.reshape(shape).astype(np.float32)


def set_formula_c(variables: dict, wscale: float) -> None:
    """Assigns formula C to every variable of `{name: variable}`."""
    for name, var in variables.items():
        var.assign(ref_value_c(name, var.shape.as_list(), wscale))


def max_rel_diff(actual, expected) -> float:
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-12))
