"""Building blocks of the MobileNet v2/v3/EdgeTPU family.

The inverted-residual block `expanded_conv` (optional 1x1 or fused expansion,
depthwise conv, linear 1x1 projection, residual add), squeeze-excite, the
hard-swish activation, and the padding and channel-rounding helpers. Variable
scopes and block end points (`expansion_output`, `depthwise_output`,
`output`) follow tensorflow/models research/slim `nets/mobilenet/conv_blocks.py`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Rounds `value` to the nearest multiple of `divisor`, at least `min_value`.

    The result never drops more than 10% below `value` (one more `divisor` is
    added when it would).

    Args:
      value: the channel count to round (may be fractional after a multiplier).
      divisor: the multiple to round to.
      min_value: the smallest result; `divisor` when None.

    Returns:
      The rounded channel count.
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def fixed_padding(inputs: tf.Tensor, kernel_size: Sequence[int] | int,
                  rate: int = 1) -> tf.Tensor:
    """Pads height and width so that a VALID conv gives SAME's output size.

    The padding depends only on the kernel size (and dilation rate), not on the
    input size: `(k_eff - 1) // 2` before and the rest after.

    Args:
      inputs: [batch, height, width, channels].
      kernel_size: the conv's kernel size (an int or [kh, kw]).
      rate: the conv's dilation rate.

    Returns:
      The padded tensor.
    """
    kh, kw = slim.utils.two_element_tuple(kernel_size)
    pads = []
    for k in (kh, kw):
        effective = k + (k - 1) * (rate - 1)
        total = effective - 1
        pads.append([total // 2, total - total // 2])
    return tf.pad(inputs, [[0, 0], pads[0], pads[1], [0, 0]])


def hard_swish(x: tf.Tensor) -> tf.Tensor:
    """x * relu6(x + 3) / 6, in a `hard_swish` name scope."""
    with tf.name_scope("hard_swish"):
        return x * tf.nn.relu6(x + np.float32(3)) * np.float32(1.0 / 6.0)


def hard_sigmoid_gate(x: tf.Tensor) -> tf.Tensor:
    """The squeeze-excite gate of MobileNet v3: relu6(x + 3) * 0.16667."""
    return tf.nn.relu6(x + 3) * 0.16667


def _expand_by_factor(factor: float, divisible_by: int, num_inputs: int) -> int:
    return make_divisible(num_inputs * factor, divisible_by)


def expand_input_by_factor(factor: float, divisible_by: int = 8) -> Callable[..., int]:
    """An expansion size: `num_inputs * factor` rounded to `divisible_by`.

    Args:
      factor: the expansion ratio (6 for MobileNet v2).
      divisible_by: the channel multiple.

    Returns:
      A function `(num_inputs) -> inner channel count`.
    """
    return functools.partial(_expand_by_factor, factor, divisible_by)


def squeeze_excite(input_tensor: tf.Tensor, divisible_by: int = 8, squeeze_factor: float = 3,
                   inner_activation_fn: Callable = tf.nn.relu,
                   gating_fn: Callable = tf.sigmoid) -> tf.Tensor:
    """Squeeze-and-excitation: channel gates from the globally pooled input.

    Variables under `squeeze_excite/`: `Conv` (to C / squeeze_factor channels,
    rounded) and `Conv_1` (back to C), both 1x1 with biases.

    Args:
      input_tensor: [batch, height, width, C].
      divisible_by: the channel multiple of the squeeze layer.
      squeeze_factor: C is divided by this in the squeeze layer.
      inner_activation_fn: the squeeze layer's activation.
      gating_fn: the excite layer's activation (the gate).

    Returns:
      `input_tensor * gate`, same shape as the input.
    """
    with slim.variable_scope("squeeze_excite"):
        _, height, width, channels = input_tensor.shape.as_list()
        squeeze_channels = make_divisible(channels / squeeze_factor, divisible_by)
        pooled = tf.nn.avg_pool2d(input_tensor, [1, height, width, 1], [1, 1, 1, 1], "VALID")
        squeeze = slim.conv2d(pooled, squeeze_channels, [1, 1], normalizer_fn=None,
                              activation_fn=inner_activation_fn)
        excite = slim.conv2d(squeeze, channels, [1, 1], normalizer_fn=None,
                             activation_fn=gating_fn)
        return input_tensor * excite


def squeeze_excite_v3(expansion_tensor: tf.Tensor, input_tensor: tf.Tensor) -> tf.Tensor:
    """MobileNet v3's expansion transform: squeeze-excite (factor 4, hard-sigmoid gate)."""
    del input_tensor
    return squeeze_excite(expansion_tensor, squeeze_factor=4, inner_activation_fn=tf.nn.relu,
                          gating_fn=hard_sigmoid_gate)


def _pointwise(inputs: tf.Tensor, num_outputs: int, scope: str, **kwargs: Any) -> tf.Tensor:
    """The 1x1 expansion/projection conv."""
    return slim.conv2d(inputs, num_outputs, [1, 1], stride=1, scope=scope, **kwargs)


@slim.add_arg_scope
def expanded_conv(input_tensor: tf.Tensor, num_outputs: int,
                  expansion_size: int | Callable[..., int] = expand_input_by_factor(6),
                  stride: int = 1, rate: int = 1, kernel_size: Sequence[int] = (3, 3),
                  residual: bool = True, normalizer_fn: Callable | None = None,
                  expansion_transform: Callable | None = None,
                  depthwise_location: str | None = "expansion",
                  depthwise_channel_multiplier: int = 1, endpoints: dict | None = None,
                  use_explicit_padding: bool = False, padding: str = "SAME",
                  inner_activation_fn: Callable | None = None,
                  depthwise_activation_fn: Callable | None = None,
                  project_activation_fn: Callable = tf.identity,
                  expansion_fn: Callable = _pointwise, scope: str | None = None) -> tf.Tensor:
    """The inverted-residual block: expand, depthwise, project, add.

    Scopes `expand` (only when the expansion is wider than the input),
    `depthwise` (depthwise-only separable conv), `project` (linear by default),
    all in a block scope (`expanded_conv`, `expanded_conv_1`, ...).

    Args:
      input_tensor: [batch, height, width, C].
      num_outputs: channels of the projection.
      expansion_size: inner channels, or a function of C (`expand_input_by_factor`).
      stride: the depthwise stride.
      rate: the depthwise dilation rate.
      kernel_size: the depthwise kernel size.
      residual: add the input when stride is 1 and the channels match.
      normalizer_fn: the normalizer of every conv of the block.
      expansion_transform: `fn(expansion_tensor, input_tensor)` applied after
        the depthwise conv (squeeze-excite in v3).
      depthwise_location: 'expansion' (after the expansion), 'input' (before
        it), 'output' (after the projection) or None (no depthwise: a fused
        block whose `expansion_fn` is a full conv).
      depthwise_channel_multiplier: the depthwise channel multiplier.
      endpoints: a dict that receives the block's end points.
      use_explicit_padding: pad explicitly and use VALID convs.
      padding: 'SAME' or 'VALID' for the depthwise conv.
      inner_activation_fn: activation of the expansion and depthwise convs
        (the arg scope's when None).
      depthwise_activation_fn: activation of the depthwise conv, overriding
        `inner_activation_fn`.
      project_activation_fn: activation of the projection (identity: linear).
      expansion_fn: `fn(inputs, num_outputs, scope=..., normalizer_fn=...)`
        making the expansion (a 1x1 conv, or a kxk conv for fused blocks).
      scope: the block scope (`expanded_conv` made unique when None).

    Returns:
      The block output, [batch, height / stride, width / stride, num_outputs].

    Raises:
      SlimError: an unknown `depthwise_location`, or explicit padding with
        padding other than 'SAME'.
    """
    if depthwise_location not in (None, "input", "output", "expansion"):
        raise SlimError(f"expanded_conv: depthwise_location={depthwise_location!r} is unknown; "
                        f"use 'expansion', 'input', 'output' or None.")
    if use_explicit_padding:
        if padding != "SAME":
            raise SlimError(f"expanded_conv: use_explicit_padding needs padding='SAME', "
                            f"got padding={padding!r}.")
        padding = "VALID"
    conv_defaults, dw_defaults = {}, {}
    if inner_activation_fn is not None:
        conv_defaults["activation_fn"] = dw_defaults["activation_fn"] = inner_activation_fn
    if depthwise_activation_fn is not None:
        dw_defaults["activation_fn"] = depthwise_activation_fn
    with slim.variable_scope(scope, default_name="expanded_conv"), \
            slim.arg_scope([slim.conv2d], **conv_defaults), \
            slim.arg_scope([slim.separable_conv2d], **dw_defaults):
        block_points = {} if endpoints is None else endpoints

        def depthwise(net: tf.Tensor, **kwargs: Any) -> tf.Tensor:
            if use_explicit_padding:
                net = fixed_padding(net, kernel_size, rate)
            net = slim.separable_conv2d(net, None, kernel_size,
                                        depth_multiplier=depthwise_channel_multiplier,
                                        stride=stride, rate=rate, normalizer_fn=normalizer_fn,
                                        padding=padding, scope="depthwise", **kwargs)
            block_points["depthwise_output"] = net
            return net

        net = input_tensor
        if depthwise_location == "input":
            net = depthwise(net, activation_fn=None)
        c_in = net.shape[-1]
        inner = expansion_size(num_inputs=c_in) if callable(expansion_size) else expansion_size
        if inner > c_in:
            net = expansion_fn(net, inner, scope="expand", normalizer_fn=normalizer_fn)
            block_points["expansion_output"] = net
        if depthwise_location == "expansion":
            net = depthwise(net)
        if expansion_transform is not None:
            net = expansion_transform(expansion_tensor=net, input_tensor=input_tensor)
        net = _pointwise(net, num_outputs, scope="project", normalizer_fn=normalizer_fn,
                         activation_fn=project_activation_fn)
        if depthwise_location == "output":
            net = depthwise(net, activation_fn=None)
        if callable(residual):
            net = residual(input_tensor=input_tensor, output_tensor=net)
        elif residual and stride == 1 and net.shape[-1] == input_tensor.shape[-1]:
            net = net + input_tensor
        net = tf.identity(net, name="output")
        block_points["output"] = net
        return net


def fused_expansion(kernel_size: int, stride: int) -> Callable[..., tf.Tensor]:
    """An `expansion_fn` for fused blocks: a full kxk conv with the given stride."""
    return functools.partial(slim.conv2d, kernel_size=kernel_size, stride=stride)
