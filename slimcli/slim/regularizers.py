"""Weight regularizers: `fn(weights) -> scalar`, collected per variable by the store."""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from slimcli.errors import SlimError

Regularizer = Callable[[tf.Tensor], tf.Tensor]


def _check_scale(scale: float, name: str) -> None:
    if not isinstance(scale, (int, float)) or scale < 0:
        raise SlimError(f"{name}: expected a scale >= 0. Received: scale={scale!r}")


def l1_regularizer(scale: float) -> Regularizer | None:
    """`scale * sum(|w|)`; None when scale is 0 (no loss added)."""
    _check_scale(scale, "l1_regularizer")
    if scale == 0:
        return None

    def l1(weights):
        w = tf.cast(weights, tf.float32)
        return tf.multiply(float(scale), tf.reduce_sum(tf.abs(w)), name="l1_regularizer")
    return l1


def l2_regularizer(scale: float) -> Regularizer | None:
    """`scale * sum(w**2) / 2` (tf.nn.l2_loss); None when scale is 0."""
    _check_scale(scale, "l2_regularizer")
    if scale == 0:
        return None

    def l2(weights):
        w = tf.cast(weights, tf.float32)
        return tf.multiply(float(scale), tf.nn.l2_loss(w), name="l2_regularizer")
    return l2


def l1_l2_regularizer(scale_l1: float = 1.0, scale_l2: float = 1.0) -> Regularizer | None:
    """The sum of `l1_regularizer(scale_l1)` and `l2_regularizer(scale_l2)`."""
    return sum_regularizer([l1_regularizer(scale_l1), l2_regularizer(scale_l2)])


def sum_regularizer(regularizer_list: Sequence[Regularizer | None]) -> Regularizer | None:
    """A regularizer that adds the given ones (None entries skipped)."""
    regs = [r for r in regularizer_list if r is not None]
    if not regs:
        return None

    def total(weights):
        return tf.add_n([r(weights) for r in regs])
    return total


def apply_regularization(regularizer: Regularizer,
                         weights_list: Sequence[tf.Variable]) -> tf.Tensor:
    """The summed penalty of `regularizer` over `weights_list`."""
    if not weights_list:
        raise SlimError("apply_regularization: weights_list is empty; pass the variables to penalise.")
    return tf.add_n([regularizer(w) for w in weights_list])
