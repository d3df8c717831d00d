"""A model call with simulated quantization: plan once per signature, then apply.

`Quantizer(config, name)(call, store, images, kwargs, is_training)` runs
`call(images, **kwargs)` (a `slim.Model`'s float call) quantized:

1. the first time a signature (mode, image size, kwargs) is seen, a PLAN
   trace of the float net in a scratch graph records its layers and the ops
   of its own code, `plan.analyze` decides where the original's rewrite put
   its fake-quant ops, and their range variables are created in the store;
2. the call itself then runs with the plan active: the layers fold and
   quantize themselves, and an op callback replaces the outputs of the net's
   own ops that the plan names (residual additions, the activation after
   one) by their fake-quantized values as they are made, so every consumer
   reads the quantized tensor, as the original's rerouting did.

Op callbacks can replace outputs in graph mode only, so an eager call runs
through a `tf.function`. TensorFlow's tape records a replaced output as the
original op's, so the gradient through those few fake-quant ops (not through
the layers') is the straight-through identity, without the clipping mask.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Callable, Iterator

import tensorflow as tf
from tensorflow.python.framework import op_callbacks  # the hook tf.debugging's tools use

from slimcli.errors import SlimError
from slimcli.slim import variables
from slimcli.slim.quantize import fake_quant, plan as plan_lib
from slimcli.slim.quantize.state import APPLY, PLAN, CallState, QuantizeConfig, active, \
    inside_layer

__all__ = ["Quantizer", "QuantizedModel"]

_IN_CALLBACK: contextvars.ContextVar[bool] = contextvars.ContextVar("slim_quantize_callback",
                                                                    default=False)


def _on_op(state: CallState, op_type: str, inputs: Any, attrs: Any, outputs: Any,
           op_name: str | None = None, graph: Any = None):
    """Counts the net's own ops; in APPLY mode quantizes the ones the plan names."""
    del inputs, attrs
    if graph is None or _IN_CALLBACK.get() or inside_layer():
        return None
    ordinal = state.net_op_count
    state.net_op_count += 1
    if state.mode == PLAN:
        state.recorder.net_ops[ordinal] = outputs[0].op if outputs else None
        return None
    planned = state.plan.net_ops.get(ordinal)
    if planned is None:
        return None
    kind, spot = planned
    if kind != op_type:
        raise SlimError(f"the net made {op_type} {op_name} where its quantization plan expects "
                        f"{kind}: its code takes another path than when it was planned; call "
                        f"it with the same settings.")
    token = _IN_CALLBACK.set(True)
    try:
        return [fake_quant.moving_quant(state, spot, outputs[0]), *outputs[1:]]
    finally:
        _IN_CALLBACK.reset(token)


@contextlib.contextmanager
def _quantizing(state: CallState) -> Iterator[CallState]:
    callback = functools.partial(_on_op, state)
    op_callbacks.add_op_callback(callback)
    try:
        with active(state):
            yield state
    finally:
        op_callbacks.remove_op_callback(callback)


def _kwargs_key(kwargs: dict) -> tuple:
    """The call's keyword arguments but `is_training` (the key holds the mode resolved)."""
    return tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "is_training"))


class Quantizer:
    """Runs a model's calls with simulated quantization (see the module docstring).

    Attributes:
      config: the `QuantizeConfig`.
      name: the net's name, for errors.
      step: the training step (a variable) the delays count; None outside training.
    """

    def __init__(self, config: QuantizeConfig, name: str):
        self.config = config
        self.name = name
        self.step = None
        self._plans: dict[tuple, plan_lib.Plan] = {}

    @tf.autograph.experimental.do_not_convert
    def __call__(self, call: Callable, store: Any, images: tf.Tensor, kwargs: dict,
                 is_training: bool):
        """`call(images, **kwargs)`, quantized. `store` holds the model's variables."""
        if tf.executing_eagerly():
            graph_call = tf.function(lambda x: self(call, store, x, kwargs, is_training),
                                     autograph=False)
            return graph_call(images)
        plan = self.plan(call, store, images, kwargs, is_training)
        state = CallState(self.config, APPLY, store, is_training, self.step, plan)
        with _quantizing(state):
            token = _IN_CALLBACK.set(True)  # not one of the net's ops
            try:
                images = fake_quant.input_quant(state, images)
            finally:
                _IN_CALLBACK.reset(token)
            return call(images, **kwargs)

    def plan(self, call: Callable, store: Any, images: tf.Tensor, kwargs: dict,
             is_training: bool) -> plan_lib.Plan:
        """The plan of this signature, traced, analysed and given its variables once."""
        key = (bool(is_training), tuple(images.shape[1:]), images.dtype.name,
               _kwargs_key(kwargs))
        if key not in self._plans:
            state = CallState(self.config, PLAN, store, is_training)

            def trace(x):  # tf.function may trace twice (variables): keep the last
                state.recorder, state.net_op_count = plan_lib.Recorder(images=x), 0
                with _quantizing(state):
                    return call(x, **kwargs)

            spec = tf.TensorSpec([None, *images.shape[1:]], images.dtype)
            graph = tf.function(trace, autograph=False).get_concrete_function(spec).graph
            plan = plan_lib.analyze(state.recorder, graph, self.name,
                                    self.config.input_range is not None)
            fake_quant.create_variables(store, plan.spots(), is_training)
            self._plans[key] = plan
        return self._plans[key]


class QuantizedModel(variables.Model):
    """A `slim.Model` whose every call is quantized (the nets factory's nets take
    `get_network_fn(..., quantize=...)` instead).

    `is_training` (a call's, else the fixed one, else False) says whether the
    ranges and batch statistics update; `model.quantizer.step` counts the delays.
    """

    def __init__(self, fn: Callable, config: QuantizeConfig, name: str | None = None,
                 **fixed_kwargs: Any):
        super().__init__(fn, name=name, **fixed_kwargs)
        self.quantizer = Quantizer(config, self.name)

    def __call__(self, images: Any, **kwargs: Any):
        is_training = kwargs.get("is_training", self._fixed_kwargs.get("is_training", False))
        return self.quantizer(functools.partial(variables.Model.__call__, self), self.store,
                              tf.convert_to_tensor(images), kwargs, bool(is_training))
