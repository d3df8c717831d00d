"""Weight initializers with TF-Slim's names and formulas.

Each returns a callable `(shape, dtype=tf.float32) -> Tensor`, the form that
`slim.variable` and the layers take (TensorFlow's own `tf.*_initializer()`
objects work as well).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import tensorflow as tf

from slimcli.errors import SlimError

Initializer = Callable[..., tf.Tensor]


def _fans(shape: Sequence[int]) -> tuple[float, float]:
    """(fan_in, fan_out) as TF-Slim computed them (receptive field times channels)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def variance_scaling_initializer(factor: float = 2.0, mode: str = "FAN_IN",
                                 uniform: bool = False, seed: int | None = None) -> Initializer:
    """He/Xavier-style initializer: variance `factor / n`.

    Args:
      factor: the scale (2.0 = He et al.).
      mode: `FAN_IN`, `FAN_OUT` or `FAN_AVG`.
      uniform: uniform in [-limit, limit] instead of a truncated normal.
      seed: op seed.
    """
    if mode not in ("FAN_IN", "FAN_OUT", "FAN_AVG"):
        raise SlimError(f"variance_scaling_initializer: mode={mode!r}; use FAN_IN, FAN_OUT or FAN_AVG.")

    def init(shape, dtype=tf.float32, **_):
        fan_in, fan_out = _fans(shape)
        n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "FAN_AVG": (fan_in + fan_out) / 2.0}[mode]
        if uniform:
            limit = math.sqrt(3.0 * factor / n)
            return tf.random.uniform(shape, -limit, limit, dtype=dtype, seed=seed)
        stddev = math.sqrt(1.3 * factor / n)  # 1.3: the truncated normal's variance correction
        return tf.random.truncated_normal(shape, 0.0, stddev, dtype=dtype, seed=seed)

    return init


def xavier_initializer(uniform: bool = True, seed: int | None = None) -> Initializer:
    """Glorot & Bengio's initializer (TF-Slim's default for weights)."""
    return variance_scaling_initializer(1.0, "FAN_AVG", uniform, seed)


def truncated_normal_initializer(mean: float = 0.0, stddev: float = 1.0,
                                 seed: int | None = None) -> Initializer:
    def init(shape, dtype=tf.float32, **_):
        return tf.random.truncated_normal(shape, mean, stddev, dtype=dtype, seed=seed)
    return init


def random_normal_initializer(mean: float = 0.0, stddev: float = 1.0,
                              seed: int | None = None) -> Initializer:
    def init(shape, dtype=tf.float32, **_):
        return tf.random.normal(shape, mean, stddev, dtype=dtype, seed=seed)
    return init


def random_uniform_initializer(minval: float = -0.05, maxval: float = 0.05,
                               seed: int | None = None) -> Initializer:
    def init(shape, dtype=tf.float32, **_):
        return tf.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed)
    return init


def constant_initializer(value: float = 0.0) -> Initializer:
    def init(shape, dtype=tf.float32, **_):
        return tf.fill(shape, tf.cast(value, dtype))
    return init


def zeros_initializer() -> Initializer:
    return constant_initializer(0.0)


def ones_initializer() -> Initializer:
    return constant_initializer(1.0)
