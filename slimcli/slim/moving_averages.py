"""Exponential moving averages of variables, named as TF1's ExponentialMovingAverage.

Each averaged variable `<name>` gets a shadow variable saved as
`<name>/ExponentialMovingAverage`, so slim-eval (and TF1 code using
`ema.variables_to_restore()`) restores the averages by name. With
`num_updates` the decay is `min(decay, (1 + n) / (10 + n))`, as in TF1.
"""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

__all__ = ["ExponentialMovingAverage", "SHADOW_SUFFIX"]

SHADOW_SUFFIX = "ExponentialMovingAverage"


class ExponentialMovingAverage(tf.Module):
    """Shadow copies of variables updated with `shadow -= (shadow - var) * (1 - decay)`.

    Args:
      decay: the decay (e.g. 0.9999).
      variables: `{name: variable}` to average; shadows start at their values.
      num_updates: an optional step variable; lowers the decay early on.
    """

    def __init__(self, decay: float, variables: Mapping[str, Any],
                 num_updates: tf.Variable | None = None):
        super().__init__(name=SHADOW_SUFFIX)
        if not 0.0 <= decay <= 1.0:
            from slimcli.errors import SlimError
            raise SlimError(f"moving_average_decay must be in [0, 1]; got {decay}.")
        self.decay = float(decay)
        self.num_updates = num_updates
        self.averaged = dict(variables)
        strategy = tf.distribute.get_strategy()
        self.shadows: dict[str, tf.Variable] = {}
        for name, var in self.averaged.items():
            with strategy.extended.colocate_vars_with(var):
                self.shadows[name] = tf.Variable(
                    tf.identity(strategy.experimental_local_results(var)[0]),
                    name=f"{name}/{SHADOW_SUFFIX}", trainable=False)

    def average_name(self, name: str) -> str:
        """The checkpoint name of `name`'s shadow."""
        return f"{name}/{SHADOW_SUFFIX}"

    def variables_by_name(self) -> dict[str, tf.Variable]:
        """`{<name>/ExponentialMovingAverage: shadow}`."""
        return {self.average_name(n): s for n, s in self.shadows.items()}

    def _decay(self) -> tf.Tensor:
        decay = tf.constant(self.decay, tf.float32)
        if self.num_updates is None:
            return decay
        n = tf.cast(self.num_updates, tf.float32)
        return tf.minimum(decay, (1.0 + n) / (10.0 + n))

    def apply(self, strategy: Any = None) -> None:
        """Updates every shadow (cross-replica context, or no strategy)."""
        strategy = strategy or tf.distribute.get_strategy()
        decay = self._decay()

        def update(shadow, value, d):
            return shadow.assign_sub((shadow - tf.cast(value, shadow.dtype)) * (1.0 - d))
        for name, var in self.averaged.items():
            strategy.extended.update(self.shadows[name], update, args=(var, decay), group=False)
