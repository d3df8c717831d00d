"""The generic MobileNet builder: a net is `ConvDefs` (arg-scope defaults + a list of ops).

`mobilenet_base` walks the op list, scaling each op's `num_outputs` by the
depth multiplier, turning strides into dilation once `output_stride` is
reached, and naming end points `layer_1`, `layer_2`, ... (plus
`layer_N/expansion_output`, `layer_N/depthwise_output`, `layer_N/output` for
inverted-residual blocks). `mobilenet` adds the head: global average pool,
dropout, a 1x1 conv to the logits (`<scope>/Logits/output`) and the softmax
(`<scope>/Predictions/Reshape_1`). Follows tensorflow/models research/slim
`nets/mobilenet/mobilenet.py`; MobileNet v2 and v3/EdgeTPU are data for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from typing import Any, Callable, Iterator, Sequence

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.mobilenet.conv_blocks import fixed_padding, make_divisible


@dataclasses.dataclass(frozen=True)
class Op:
    """One layer of a conv def: `fn(net, **params)`.

    Attributes:
      fn: the layer function (`slim.conv2d`, `expanded_conv`, ...).
      params: its keyword arguments.
      scale_outputs: whether the depth multiplier scales `num_outputs`.
    """
    fn: Callable
    params: dict
    scale_outputs: bool = True


def op(fn: Callable, scale_outputs: bool = True, **params: Any) -> Op:
    """An `Op` calling `fn` with `params`."""
    return Op(fn, params, scale_outputs)


@dataclasses.dataclass(frozen=True)
class ConvDefs:
    """A MobileNet architecture as data.

    Attributes:
      defaults: `((ops, kwargs), ...)`: arg scopes entered around the whole
        net, in order (later ones override earlier ones).
      spec: the layers, in order; layer i is end point `layer_{i+1}`.
    """
    defaults: tuple[tuple[tuple[Callable, ...], dict], ...]
    spec: tuple[Op, ...]

    def with_last_op(self, **changes: Any) -> "ConvDefs":
        """A copy whose last op has `params` or `scale_outputs` replaced."""
        last = dataclasses.replace(self.spec[-1], **changes)
        return dataclasses.replace(self, spec=self.spec[:-1] + (last,))


def scaled_depth(num_outputs: float, multiplier: float, divisible_by: int = 8,
                 min_depth: int = 8) -> int:
    """`num_outputs * multiplier` rounded to a multiple of `divisible_by`, >= `min_depth`."""
    return make_divisible(num_outputs * multiplier, divisible_by, min_depth)


@contextlib.contextmanager
def _arg_scopes(defaults: Sequence[tuple[tuple[Callable, ...], dict]]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for ops, kwargs in defaults:
            stack.enter_context(slim.arg_scope(list(ops), **kwargs))
        yield


def _check_base_args(conv_defs: ConvDefs, multiplier: float, final_endpoint: str | None,
                     output_stride: int | None) -> None:
    if multiplier <= 0:
        raise SlimError(f"mobilenet: depth_multiplier must be > 0, got {multiplier}; "
                        f"use e.g. 1.0, 0.75, 0.5 or 0.35.")
    if output_stride is not None and (output_stride == 0 or
                                      (output_stride > 1 and output_stride % 2)):
        raise SlimError(f"mobilenet: output_stride must be None, 1 or a multiple of 2, "
                        f"got {output_stride}.")
    names = [f"layer_{i + 1}" for i in range(len(conv_defs.spec))]
    if final_endpoint is not None and final_endpoint not in names:
        raise SlimError(f"mobilenet: unknown final_endpoint {final_endpoint!r}; use one of "
                        f"layer_1 ... layer_{len(names)}.")


def _accepts(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


@slim.add_arg_scope
def mobilenet_base(inputs: tf.Tensor, conv_defs: ConvDefs, multiplier: float = 1.0,
                   final_endpoint: str | None = None, output_stride: int | None = None,
                   use_explicit_padding: bool = False, scope: Any = None,
                   is_training: bool = False, min_depth: int = 8,
                   divisible_by: int = 8) -> tuple[tf.Tensor, dict]:
    """The MobileNet feature extractor described by `conv_defs`.

    Args:
      inputs: [batch, height, width, channels].
      conv_defs: the architecture.
      multiplier: the depth multiplier applied to every op's `num_outputs`.
      final_endpoint: stop after this layer (`layer_1` ... `layer_N`).
      output_stride: the largest input/activation size ratio; later strides
        become dilation rates. None: no limit.
      use_explicit_padding: pad explicitly and use VALID convs.
      scope: the variable scope (`Mobilenet` when None).
      is_training: batch-norm mode.
      min_depth: the smallest channel count after the multiplier.
      divisible_by: channel counts are rounded to this multiple.

    Returns:
      (the last layer's output, end_points).

    Raises:
      SlimError: depth multiplier <= 0, a bad output_stride, or an unknown
        final_endpoint.
    """
    _check_base_args(conv_defs, multiplier, final_endpoint, output_stride)
    overrides = []
    if use_explicit_padding:
        overrides.append(((slim.conv2d, slim.separable_conv2d), {"padding": "VALID"}))
    # The original's `_scope_all`: ops stay in the scope's first name scope
    # (`MobilenetV2/...`, not `MobilenetV2/MobilenetV2/...` as a re-entered scope opens).
    with slim.variable_scope(scope, default_name="Mobilenet") as sc, \
            slim.name_scope(sc.original_name_scope), \
            slim.arg_scope([slim.batch_norm], is_training=is_training), \
            _arg_scopes(conv_defs.defaults), _arg_scopes(overrides):
        current_stride, rate = 1, 1
        net = inputs
        end_points, block_points = {}, {}
        for i, opdef in enumerate(conv_defs.spec):
            params = dict(opdef.params)
            if opdef.scale_outputs and "num_outputs" in params:
                params["num_outputs"] = scaled_depth(params["num_outputs"], multiplier,
                                                     divisible_by, min_depth)
            stride = params.get("stride", 1)
            if output_stride is not None and current_stride == output_stride:
                layer_stride, layer_rate = 1, rate
                rate *= stride
            else:
                layer_stride, layer_rate = stride, 1
                current_stride *= stride
            params["stride"] = layer_stride
            if layer_rate > 1 and tuple(params.get("kernel_size", ())) != (1, 1):
                params["rate"] = layer_rate
            if use_explicit_padding:
                if "kernel_size" in params:
                    net = fixed_padding(net, params["kernel_size"], layer_rate)
                else:
                    params["use_explicit_padding"] = True
            end_point = f"layer_{i + 1}"
            if _accepts(opdef.fn, "endpoints"):
                params["endpoints"] = block_points[end_point] = {}
            net = end_points[end_point] = opdef.fn(net, **params)
            if end_point == final_endpoint:
                break
        for end_point, points in block_points.items():
            for key, tensor in points.items():
                end_points[f"{end_point}/{key}"] = tensor
        return net, end_points


def global_pool(inputs: tf.Tensor) -> tf.Tensor:
    """Average pool over the whole (static or dynamic) height and width: [N, 1, 1, C]."""
    height, width = inputs.shape[1], inputs.shape[2]
    if height is None or width is None:
        return tf.reduce_mean(inputs, [1, 2], keepdims=True)
    return tf.nn.avg_pool2d(inputs, [1, height, width, 1], [1, 1, 1, 1], "VALID")


@slim.add_arg_scope
def mobilenet(inputs: tf.Tensor, num_classes: int | None = 1001,
              prediction_fn: Callable | None = slim.softmax, reuse: Any = None,
              scope: str = "Mobilenet", base_only: bool = False,
              **mobilenet_args: Any) -> tuple[tf.Tensor, dict]:
    """A MobileNet classifier: `mobilenet_base`, global pool, dropout, 1x1 logits.

    Args:
      inputs: [batch, height, width, channels].
      num_classes: logits size; 0 or None returns the pooled features
        (end point `global_pool`, [batch, 1, 1, C]).
      prediction_fn: turns logits into predictions (`Predictions`).
      reuse: reuse the variables of `scope`.
      scope: the variable scope (`MobilenetV2`, `MobilenetV3`, ...).
      base_only: return the `mobilenet_base` output, without the head.
      **mobilenet_args: `conv_defs`, `multiplier`, `final_endpoint`,
        `output_stride`, `use_explicit_padding`, `is_training`, `min_depth`,
        `divisible_by` of `mobilenet_base`.

    Returns:
      (logits [batch, num_classes], end_points), or the features.

    Raises:
      SlimError: `inputs` is not rank 4, or a bad `mobilenet_base` argument.
    """
    if inputs.shape.rank != 4:
        raise SlimError(f"mobilenet: expected a rank-4 input [batch, height, width, channels], "
                        f"got shape {inputs.shape}.")
    is_training = mobilenet_args.get("is_training", False)
    with slim.variable_scope(scope, "Mobilenet", reuse=reuse) as sc:
        inputs = tf.identity(inputs, "input")
        net, end_points = mobilenet_base(inputs, scope=sc, **mobilenet_args)
        if base_only:
            return net, end_points
        net = tf.identity(net, name="embedding")
        with slim.variable_scope("Logits"):
            net = end_points["global_pool"] = global_pool(net)
            if not num_classes:
                return net, end_points
            net = slim.dropout(net, scope="Dropout", is_training=is_training)
            # 1 x 1 x num_classes
            logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                 normalizer_fn=None,
                                 biases_initializer=slim.zeros_initializer(),
                                 scope="Conv2d_1c_1x1")
            logits = tf.squeeze(logits, [1, 2])
            logits = tf.identity(logits, name="output")
        end_points["Logits"] = logits
        if prediction_fn:
            end_points["Predictions"] = prediction_fn(logits, "Predictions")
    return logits, end_points


def training_scope(is_training: bool = True, weight_decay: float = 0.00004,
                   stddev: float = 0.09, dropout_keep_prob: float = 0.8,
                   bn_decay: float = 0.997) -> dict:
    """The arg scope MobileNet v2/v3 were trained with.

    Args:
      is_training: default mode of batch norm and dropout.
      weight_decay: L2 decay of conv weights (depthwise weights are not decayed).
      stddev: truncated-normal stddev of the weights; < 0 for Xavier.
      dropout_keep_prob: keep probability of the head's dropout.
      bn_decay: the batch-norm moving-average decay.

    Returns:
      The scope dict, for `slim.arg_scope(scope)`.
    """
    if stddev < 0:
        weights_initializer = slim.xavier_initializer()
    else:
        weights_initializer = slim.truncated_normal_initializer(stddev=stddev)
    with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.separable_conv2d],
                        weights_initializer=weights_initializer,
                        normalizer_fn=slim.batch_norm), \
            slim.arg_scope([slim.batch_norm], decay=bn_decay, is_training=is_training), \
            slim.arg_scope([slim.dropout], is_training=is_training,
                           keep_prob=dropout_keep_prob), \
            slim.arg_scope([slim.conv2d],
                           weights_regularizer=slim.l2_regularizer(weight_decay)), \
            slim.arg_scope([slim.separable_conv2d], weights_regularizer=None) as sc:
        return sc
