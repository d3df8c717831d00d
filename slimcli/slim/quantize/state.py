"""What a quantized model call needs to know while the net runs: settings and state.

A quantized call (see `model.py`) makes a `CallState` active in a context
variable; the slim layers ask `current()` and, when it is set, build their
quantized form (`layer.py`) instead of the float one. Layers mark the ops they
create as theirs (`layer_body`), so the op callback that quantizes the net's
own additions (`model.py`) leaves them alone. A layer folding its batch norm
opens a `FoldRequest` that `slim.batch_norm` fills with its parameters and
statistics instead of normalizing.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from typing import Any, Callable, Iterator

import tensorflow as tf

from slimcli.errors import SlimError

__all__ = ["QuantizeConfig", "CallState", "FoldRequest", "current", "layer_body",
           "inside_layer", "active", "fold_request", "pending_fold", "note_passthrough", "PLAN",
           "APPLY"]

PLAN, APPLY = "plan", "apply"


@dataclasses.dataclass(frozen=True)
class QuantizeConfig:
    """Simulated 8-bit quantization, as TF1's `contrib.quantize` rewrite did it.

    Attributes:
      quant_delay: training steps in float before the fake quantization
        switches on (the ranges collect statistics from step 0); None or 0: on
        from the start. Evaluation and export are always quantized.
      freeze_bn_delay: from this training step on, folded batch norms use their
        moving statistics and stop updating them (None: never, as
        `create_training_graph` did).
      ema_decay: decay of the activation ranges' moving averages.
      weight_bits: bits of the weights (narrow range, symmetric).
      activation_bits: bits of the activations.
      input_range: the (min, max) of the net's preprocessed input, quantized
        with this fixed range (None: the input stays float).
    """
    quant_delay: int | None = None
    freeze_bn_delay: int | None = None
    ema_decay: float = 0.999
    weight_bits: int = 8
    activation_bits: int = 8
    input_range: tuple[float, float] | None = None

    def __post_init__(self):
        for name in ("weight_bits", "activation_bits"):
            bits = getattr(self, name)
            if not 2 <= bits <= 8:
                raise SlimError(f"QuantizeConfig.{name}={bits}: fake quantization takes 2 to 8 "
                                f"bits; use 8.")
        if not 0.0 < self.ema_decay < 1.0:
            raise SlimError(f"QuantizeConfig.ema_decay={self.ema_decay} must be in (0, 1); "
                            f"the original used 0.999.")


@dataclasses.dataclass
class CallState:
    """One quantized model call: its settings, mode, store, plan and counters.

    Attributes:
      config: the settings.
      mode: `PLAN` (a float trace that records the net's structure) or
        `APPLY` (the quantized forward pass).
      store: the model's variable store.
      is_training: the call's mode (ranges update, batch statistics fold).
      step: the training step (an int64 tensor or variable) for the delays.
      plan: the `Plan` of this call's signature (APPLY mode).
      recorder: what a PLAN trace collects (`plan.Recorder`).
      net_op_count: ops made by the net's own code so far in this call.
    """
    config: QuantizeConfig
    mode: str
    store: Any
    is_training: bool
    step: Any = None
    plan: Any = None
    recorder: Any = None
    net_op_count: int = 0

    def delayed(self, quantized: tf.Tensor, original: tf.Tensor) -> tf.Tensor:
        """`quantized` from step `quant_delay` on, `original` before (training only)."""
        delay = self.config.quant_delay
        if not self.is_training or not delay or self.step is None:
            return quantized
        active = tf.greater_equal(tf.cast(self.step, tf.int64), delay)
        return tf.where(active, quantized, original)

    def bn_frozen(self) -> tf.Tensor | bool:
        """Whether folded batch norms use their moving statistics now (training)."""
        delay = self.config.freeze_bn_delay
        if delay is None or self.step is None:
            return False
        return tf.greater_equal(tf.cast(self.step, tf.int64), delay)


_STATE: contextvars.ContextVar[CallState | None] = contextvars.ContextVar(
    "slim_quantize_state", default=None)
_LAYER_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar(
    "slim_quantize_layer_depth", default=0)


def current() -> CallState | None:
    """The quantized call in progress, or None (the float path)."""
    return _STATE.get()


@contextlib.contextmanager
def active(state: CallState) -> Iterator[CallState]:
    """Makes `state` the quantized call in progress for the block."""
    token = _STATE.set(state)
    depth = _LAYER_DEPTH.set(0)
    try:
        yield state
    finally:
        _LAYER_DEPTH.reset(depth)
        _STATE.reset(token)


def inside_layer() -> bool:
    """True while a slim layer marked with `layer_body` runs."""
    return _LAYER_DEPTH.get() > 0


def layer_body(fn: Callable) -> Callable:
    """Marks a slim layer: the ops it makes are its own, not the net's code.

    Outside a quantized call it costs one context-variable read.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _STATE.get() is None:
            return fn(*args, **kwargs)
        token = _LAYER_DEPTH.set(_LAYER_DEPTH.get() + 1)
        try:
            return fn(*args, **kwargs)
        finally:
            _LAYER_DEPTH.reset(token)
    return wrapper


@dataclasses.dataclass
class FoldRequest:
    """What a layer folding its batch norm receives from `slim.batch_norm`.

    Attributes:
      layer: the layer's scope name (for errors).
      params: `BatchNormParams`, set by the batch norm.
    """
    layer: str
    params: Any = None


_FOLD: contextvars.ContextVar[FoldRequest | None] = contextvars.ContextVar(
    "slim_quantize_fold", default=None)


@contextlib.contextmanager
def fold_request(layer: str) -> Iterator[FoldRequest]:
    """Opens a request for the next batch norm's parameters (see `pending_fold`)."""
    request = FoldRequest(layer)
    token = _FOLD.set(request)
    try:
        yield request
    finally:
        _FOLD.reset(token)


def pending_fold() -> FoldRequest | None:
    """The unanswered fold request of the layer now normalizing, if any; taking it answers
    it (a batch norm nested further down is not folded)."""
    request = _FOLD.get()
    if request is None or request.params is not None:
        return None
    return request


def note_passthrough(inputs: tf.Tensor, outputs: tf.Tensor) -> None:
    """Tells a PLAN trace that a layer (dropout) passes `inputs` on as `outputs`."""
    state = _STATE.get()
    if state is not None and state.mode == PLAN and outputs is not inputs:
        state.recorder.passthrough[(id(outputs.graph), outputs.name)] = inputs
