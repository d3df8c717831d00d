"""Batch norm folded into the weights, as the original's `fold_batch_norms.py` folded it.

In evaluation (moving statistics, sigma_mv = sqrt(moving_variance + eps)):

    w' = w * gamma / sigma_mv            then fake-quantized
    y  = conv(x, w') + (beta - moving_mean * gamma / sigma_mv)

In training the batch statistics normalize, while the weights are quantized
after scaling by the slowly moving sigma_mv (TF1's "correction" form):

    w' = (sigma_b / sigma_mv) * w * gamma / sigma_b
    y  = conv(x, w') * (sigma_mv / sigma_b) + (beta - mu_b * gamma / sigma_b)

and from step `freeze_bn_delay` on, the moving statistics take over and stop
updating: the factor becomes 1 and `gamma * (mu_b / sigma_b - mu_mv / sigma_mv)`
is added. The batch statistics are those of the float convolution's output
(computed with `tf.nn.moments`, so gradients flow through them as the
original's custom gradient let them); the moving statistics update from them as
`slim.batch_norm` updates them (the variance with Bessel's correction).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim.quantize import fake_quant
from slimcli.slim.quantize.state import APPLY, CallState, pending_fold

__all__ = ["BatchNormParams", "PLANNED", "batch_norm_in_layer", "folded_output"]

PLANNED = "planned"  # what a batch norm answers a fold request with in a PLAN trace


@dataclasses.dataclass
class BatchNormParams:
    """What a folded batch norm hands its layer (float32 tensors)."""
    gamma: tf.Tensor
    beta: tf.Tensor
    moving_mean: tf.Tensor
    moving_variance: tf.Tensor
    epsilon: float
    training: bool
    batch_mean: tf.Tensor | None = None
    batch_variance: tf.Tensor | None = None  # biased (divided by n), as the fold uses it


def batch_norm_in_layer(state: CallState, scope: str, inputs: tf.Tensor, gamma: Any, beta: Any,
                        moving_mean: tf.Variable, moving_variance: tf.Variable,
                        epsilon: float, is_training: bool, decay: float,
                        activation_fn: Callable | None) -> tf.Tensor | None:
    """`slim.batch_norm`'s part in a quantized call.

    Returns None when the batch norm should run as usual (a PLAN trace), or
    `inputs` unchanged after answering the layer's fold request (APPLY).

    Raises:
      SlimError: the batch norm follows no conv or fully connected layer, or
        has its own activation (neither can be folded).
    """
    request = pending_fold()
    if request is None:
        raise SlimError(f"{scope}: this batch norm is not the normalizer_fn of a conv or fully "
                        f"connected layer, so it cannot be folded into that layer's weights and "
                        f"cannot be quantized (the original's rewrite left the batch norms it "
                        f"could not fold in float, which an integer-only model cannot run).")
    if activation_fn is not None:
        raise SlimError(f"{scope}: a batch norm with its own activation_fn cannot be folded for "
                        f"quantization; give the activation to the layer instead.")
    if state.mode != APPLY:
        request.params = PLANNED
        return None
    channels = inputs.shape[-1]
    params = BatchNormParams(
        gamma=tf.ones([channels]) if gamma is None else tf.convert_to_tensor(gamma),
        beta=tf.zeros([channels]) if beta is None else tf.convert_to_tensor(beta),
        moving_mean=tf.convert_to_tensor(moving_mean),
        moving_variance=tf.convert_to_tensor(moving_variance), epsilon=epsilon,
        training=is_training)
    if is_training:
        _batch_statistics(state, params, inputs, moving_mean, moving_variance, decay)
    request.params = params
    return inputs


def _batch_statistics(state: CallState, params: BatchNormParams, inputs: tf.Tensor,
                      moving_mean: tf.Variable, moving_variance: tf.Variable,
                      decay: float) -> None:
    x = tf.cast(inputs, tf.float32)
    mean, variance = tf.nn.moments(x, list(range(x.shape.rank - 1)))
    count = tf.cast(tf.size(x) // tf.size(mean), tf.float32)
    unbiased = variance * count / tf.maximum(count - 1.0, 1.0)
    rate = 1.0 - decay
    frozen = state.bn_frozen()
    if frozen is not False:
        rate = tf.where(frozen, 0.0, rate)
    moving_mean.assign_sub((params.moving_mean - mean) * rate)
    moving_variance.assign_sub((params.moving_variance - unbiased) * rate)
    params.batch_mean, params.batch_variance = mean, variance


def _per_output(values: tf.Tensor, weights: tf.Tensor, depthwise: bool) -> tf.Tensor:
    """`values` [out channels] shaped to multiply `weights` (depthwise: [C, multiplier])."""
    if depthwise:
        return tf.reshape(values, weights.shape[2:])
    return values


def folded_output(state: CallState, params: BatchNormParams, weights: tf.Tensor,
                  conv: Callable[[tf.Tensor], tf.Tensor], depthwise: bool,
                  weights_prefix: str) -> tf.Tensor:
    """The layer's normalized output from its folded, fake-quantized weights."""
    eps = params.epsilon
    if not params.training:
        multiplier = params.gamma * tf.math.rsqrt(params.moving_variance + eps)
        bias = params.beta - params.moving_mean * multiplier
        folded = weights * _per_output(multiplier, weights, depthwise)
        return conv(fake_quant.weights_quant(state, weights_prefix, folded)) + bias
    recip_sigma_mv = tf.math.rsqrt(params.moving_variance + eps)
    recip_sigma = tf.math.rsqrt(params.batch_variance + eps)
    correction_scale = recip_sigma_mv / recip_sigma
    multiplier = params.gamma * recip_sigma
    bias = params.beta - params.batch_mean * multiplier
    folded = (_per_output(correction_scale, weights, depthwise) * weights) * \
        _per_output(multiplier, weights, depthwise)
    y = conv(fake_quant.weights_quant(state, weights_prefix, folded))
    frozen = state.bn_frozen()
    if frozen is False:
        return y * (1.0 / correction_scale) + bias
    offset = params.gamma * (params.batch_mean * recip_sigma - params.moving_mean * recip_sigma_mv)
    recip = tf.where(frozen, tf.ones_like(correction_scale), 1.0 / correction_scale)
    offset = tf.where(frozen, offset, tf.zeros_like(offset))
    return y * recip + offset + bias
