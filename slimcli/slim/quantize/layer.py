"""The quantized form of slim's conv, depthwise and fully connected layers.

`slim.conv2d`, `slim.separable_conv2d` and `slim.fully_connected` hand a
`LayerCall` to `quantized_layer` when a quantized call is active. As the
original's rewrite did for the `Conv2D`, `DepthwiseConv2dNative` and `MatMul`
it matched, the layer's weights (with its batch norm folded in) are
fake-quantized at `<layer>/weights_quant` and its output after the activation
at the place the plan says (`<layer>/act_quant` for most). `<layer>` is the op
name scope TF1 gave the layer (`MobilenetV1/MobilenetV1/Conv2d_0`). In a PLAN
trace the layer runs in float and tells the recorder what it is.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim.quantize import fake_quant, fold
from slimcli.slim.quantize.state import PLAN, CallState, fold_request

__all__ = ["LayerCall", "LayerRecord", "quantized_layer", "depthwise_part", "refuse"]

# Activations the original's rewrite matched after a layer (TF op types).
ACTIVATIONS = {tf.nn.relu: "Relu", tf.nn.relu6: "Relu6", tf.identity: "Identity"}


@dataclasses.dataclass
class LayerCall:
    """One call of a weight layer, as the quantized form needs it.

    Attributes:
      scope: the layer's `VariableScope` (name: the variables'; op_scope: TF1's ops').
      inputs: the layer's input.
      weights: the weights variable (the pointwise one of a separable conv).
      conv: `weights tensor -> output` before normalization.
      normalize: `y -> y` with the layer's batch norm or biases (TF-Slim's rule).
      has_normalizer: whether `normalize` calls a normalizer (to be folded).
      activation_fn: the layer's activation, or None.
      depthwise: the weights are depthwise ([k, k, C, multiplier]).
    """
    scope: Any
    inputs: tf.Tensor
    weights: tf.Variable
    conv: Callable[[tf.Tensor], tf.Tensor]
    normalize: Callable[[tf.Tensor], tf.Tensor]
    has_normalizer: bool
    activation_fn: Callable | None
    depthwise: bool = False


@dataclasses.dataclass
class LayerRecord:
    """What a PLAN trace learns of one quantized place inside a layer.

    Attributes:
      key: unique in the call (the layer's variable scope name).
      context: TF1's op name scope of the layer: the quant prefixes start with it.
      inputs: its input tensor (in the PLAN graph).
      output: its output tensor after the activation (in the PLAN graph).
      activated: it has an activation function.
      part: the depthwise half of a separable conv (its output stays in the layer).
    """
    key: str
    context: str
    inputs: tf.Tensor
    output: tf.Tensor
    activated: bool
    part: bool = False


def _check_activation(call: LayerCall) -> None:
    fn = call.activation_fn
    if fn is None or fn in ACTIVATIONS:
        return
    name = getattr(fn, "__name__", repr(fn))
    raise SlimError(f"{call.scope.name}: activation {name} cannot be quantized (the original's "
                    f"rewrite matched relu, relu6 and identity after a layer); train this net "
                    f"without --quantize_delay.")


def _activate(y: tf.Tensor, activation_fn: Callable | None) -> tf.Tensor:
    return y if activation_fn is None else activation_fn(y)


def _float_with_fold_check(call: LayerCall) -> tf.Tensor:
    """The float layer (a PLAN trace), checking that its normalizer can be folded."""
    if not call.has_normalizer:
        return call.normalize(call.conv(call.weights))
    with fold_request(call.scope.name) as request:
        y = call.normalize(call.conv(call.weights))
    if request.params is None:
        raise SlimError(f"{call.scope.name}: its normalizer_fn is not slim.batch_norm, so it "
                        f"cannot be folded into the weights for quantization.")
    return y


def quantized_layer(state: CallState, call: LayerCall) -> tf.Tensor:
    """The layer's output (after its activation), quantized as the plan says.

    Raises:
      SlimError: an activation or normalizer that cannot be quantized.
    """
    _check_activation(call)
    context = call.scope.op_scope
    if state.mode == PLAN:
        out = _activate(_float_with_fold_check(call), call.activation_fn)
        state.recorder.layers.append(LayerRecord(call.scope.name, context, call.inputs, out,
                                                 call.activation_fn is not None))
        return out
    weights = tf.convert_to_tensor(call.weights)
    prefix = f"{context}/weights_quant"
    if call.has_normalizer:
        with fold_request(call.scope.name) as request:
            call.normalize(call.conv(weights))
        y = fold.folded_output(state, request.params, weights, call.conv, call.depthwise,
                               prefix)
    else:
        y = call.normalize(call.conv(fake_quant.weights_quant(state, prefix, weights)))
    out = _activate(y, call.activation_fn)
    return fake_quant.moving_quant(state, state.plan.layer_outputs[call.scope.name], out)


def depthwise_part(state: CallState, scope: Any, inputs: tf.Tensor, weights: tf.Variable,
                   depthwise: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """The depthwise half of a separable conv with `num_outputs`, quantized on its own.

    TF1 named it `<layer>/separable_conv2d/depthwise`, so the original's rewrite
    quantized its weights at `<layer>/separable_conv2d/weights_quant` and its
    output at `<layer>/separable_conv2d/act_quant`.
    """
    key, context = f"{scope.name}/separable_conv2d", f"{scope.op_scope}/separable_conv2d"
    if state.mode == PLAN:
        out = depthwise(weights)
        state.recorder.layers.append(LayerRecord(key, context, inputs, out, True, part=True))
        return out
    quantized = fake_quant.weights_quant(state, f"{context}/weights_quant",
                                         tf.convert_to_tensor(weights))
    return fake_quant.moving_quant(state, state.plan.layer_outputs[key], depthwise(quantized))


def refuse(state: CallState | None, kind: str, scope: str) -> None:
    """Raises for a layer the original's rewrite could not quantize, in a quantized call."""
    if state is None:
        return
    raise SlimError(f"{scope}: a {kind} layer cannot be quantized (the original's rewrite "
                    f"matched Conv2D, DepthwiseConv2dNative and MatMul layers only); train "
                    f"this net without --quantize_delay.")
