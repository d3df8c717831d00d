"""Fake quantization with learnt ranges, as the original's `quant_ops.py` learnt them.

Where the original's rewrite put a fake-quant op with name prefix `P`, the
range lives in the scalar variables `P/min` and `P/max`:

* weights (`LastValueQuantize`): each training step sets the range to the
  weights' own min and max, made symmetric around 0 (the original's
  `symmetric=True` rule) so the integer model gets int8 weights with zero
  point 0; 8 bits, narrow range [-127, 127]. Initial range [-6, 6].
* activations (`MovingAvgQuantize`): each training step moves the range
  towards the batch's min and max (0 always included) by an exponential
  moving average with decay 0.999. As in the original (TF1's
  `assign_moving_average`, zero-debiased), the average is kept in
  `P/P/min/biased` with its update count in `P/P/min/local_step` (and the
  same for `max`), and `P/min` holds it debiased. 8 bits, range [0, 255].
  Initial range [-6, 6], or [0, 6] for `act_quant`.

In evaluation the ranges are read, not updated. A `QuantSpot` names one such
place; `create_variables` makes its variables in a model's store.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterable

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import scopes
from slimcli.slim.quantize.state import CallState

__all__ = ["QuantSpot", "RANGES", "create_variables", "weights_quant", "moving_quant",
           "input_quant", "range_names"]

# The store collection of every range variable (saved, not a model variable: fine-tuning
# restores them only where the checkpoint has them).
RANGES = "quantization_ranges"


@dataclasses.dataclass(frozen=True)
class QuantSpot:
    """One fake-quant place: its name prefix, its kind and its initial range."""
    prefix: str
    moving: bool = True
    init_min: float = -6.0
    init_max: float = 6.0


def range_names(spot: QuantSpot, is_training: bool) -> dict[str, float]:
    """`{variable name: initial value}` of `spot` (the debias pair too when training)."""
    names = {f"{spot.prefix}/min": spot.init_min, f"{spot.prefix}/max": spot.init_max}
    if spot.moving and is_training:
        for end in ("min", "max"):
            shadow = f"{spot.prefix}/{spot.prefix}/{end}"
            names[f"{shadow}/biased"] = 0.0
            names[f"{shadow}/local_step"] = 0.0
    return names


def create_variables(store, spots: Iterable[QuantSpot], is_training: bool) -> list[str]:
    """Creates the range variables of `spots` missing from `store`; returns their names.

    They are made under `tf.init_scope()` and the distribution strategy in
    scope, synchronized on read and averaged across replicas (like batch
    norm's moving statistics), non-trainable, in the `RANGES` collection.
    """
    made = []
    built, store.built = store.built, False
    try:
        for spot in spots:
            for name, value in range_names(spot, is_training).items():
                if name in store:
                    continue
                store.get_or_create(
                    name, [], tf.float32, _constant(value), None, False, [RANGES],
                    tf.VariableSynchronization.ON_READ, tf.VariableAggregation.MEAN, None)
                made.append(name)
    finally:
        store.built = built
    return made


def _constant(value: float):
    return lambda shape, dtype=tf.float32: tf.fill(shape, tf.constant(value, dtype))


def _variable(state: CallState, name: str) -> tf.Variable:
    try:
        return state.store.get(name)
    except SlimError:
        raise SlimError(f"quantization range {name} was not created: the net made a layer its "
                        f"quantization plan does not know; this is a bug, please report it "
                        f"with the net's name.") from None


def _read(var: tf.Variable) -> tf.Tensor:
    return tf.convert_to_tensor(var)


def _name_scope(prefix: str):
    """The op name scope `prefix` of the call (`.../act_quant/FakeQuantWithMinMaxVars`, as the
    original named its ops); nothing in eager mode."""
    if tf.executing_eagerly():
        return contextlib.nullcontext()
    context = scopes.current_context()
    root = context.op_prefix if context is not None else ""
    return tf.name_scope(f"{root}/{prefix}/" if root else f"{prefix}/")


def weights_quant(state: CallState, prefix: str, weights: tf.Tensor) -> tf.Tensor:
    """`weights` fake-quantized per tensor with a symmetric last-value range."""
    with _name_scope(prefix):
        return _weights_quant(state, prefix, weights)


def _weights_quant(state: CallState, prefix: str, weights: tf.Tensor) -> tf.Tensor:
    low_var = _variable(state, f"{prefix}/min")
    high_var = _variable(state, f"{prefix}/max")
    if state.is_training:
        low, high = tf.reduce_min(weights), tf.reduce_max(weights)
        low, high = tf.minimum(low, -high), tf.maximum(high, -low)  # symmetric, 0 inside
        low_var.assign(low)
        high_var.assign(high)
    else:
        low, high = _read(low_var), _read(high_var)
        low, high = tf.minimum(low, -high), tf.maximum(high, -low)
    quantized = tf.quantization.fake_quant_with_min_max_vars(
        weights, low, high, num_bits=state.config.weight_bits, narrow_range=True)
    return state.delayed(quantized, weights)


def moving_quant(state: CallState, spot: QuantSpot, inputs: tf.Tensor) -> tf.Tensor:
    """`inputs` fake-quantized with the moving-average range of `spot`."""
    with _name_scope(spot.prefix):
        return _moving_quant(state, spot, inputs)


def _moving_quant(state: CallState, spot: QuantSpot, inputs: tf.Tensor) -> tf.Tensor:
    prefix = spot.prefix
    low_var = _variable(state, f"{prefix}/min")
    high_var = _variable(state, f"{prefix}/max")
    if state.is_training:
        x = tf.cast(inputs, tf.float32)
        low = _debiased_average(state, prefix, "min", low_var, tf.minimum(tf.reduce_min(x), 0.0))
        high = _debiased_average(state, prefix, "max", high_var,
                                 tf.maximum(tf.reduce_max(x), 0.0))
    else:
        low, high = _read(low_var), _read(high_var)
    quantized = tf.quantization.fake_quant_with_min_max_vars(
        inputs, low, high, num_bits=state.config.activation_bits, narrow_range=False)
    return state.delayed(quantized, inputs)


def _debiased_average(state: CallState, prefix: str, end: str, target: tf.Variable,
                      value: tf.Tensor) -> tf.Tensor:
    """TF1's zero-debiased `assign_moving_average`: updates the shadow pair and `target`."""
    shadow = f"{prefix}/{prefix}/{end}"
    biased = _variable(state, f"{shadow}/biased")
    count = _variable(state, f"{shadow}/local_step")
    decay = state.config.ema_decay
    new_biased = _read(biased) - (_read(biased) - value) * (1.0 - decay)
    new_count = _read(count) + 1.0
    biased.assign(new_biased)
    count.assign(new_count)
    debiased = new_biased / (1.0 - tf.pow(decay, new_count))
    target.assign(debiased)
    return debiased


def input_quant(state: CallState, images: tf.Tensor) -> tf.Tensor:
    """The net's input fake-quantized with the preprocessing's fixed range (no variables)."""
    if state.config.input_range is None:
        return images
    low, high = state.config.input_range
    quantized = tf.quantization.fake_quant_with_min_max_args(
        images, min=float(low), max=float(high), num_bits=state.config.activation_bits,
        name="input_quant")
    return state.delayed(quantized, images)
