"""Pieces shared by the Inception nets: the arg scope, depth scaling, end-point runner.

The arg scope has TF-Slim's defaults (tensorflow/models research/slim
`nets/inception_utils.py`): He-initialized ReLU convs with batch norm
(decay 0.9997, epsilon 0.001, no `gamma`) and L2 weight decay 4e-5.
"""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError

# (end point name, fn(net, end point name) -> net): the fn names its scope after the end point.
Block = tuple[str, Callable[[tf.Tensor, str], tf.Tensor]]


def inception_arg_scope(weight_decay: float = 0.00004, use_batch_norm: bool = True,
                        batch_norm_decay: float = 0.9997, batch_norm_epsilon: float = 0.001,
                        activation_fn: Callable = tf.nn.relu,
                        batch_norm_updates_collections: str = "update_ops",
                        batch_norm_scale: bool = False) -> dict:
    """The Inception arg scope: conv2d with batch norm, L2 decay on conv and fc weights.

    Args:
      weight_decay: L2 regularization of the weights.
      use_batch_norm: batch norm after every conv2d (else biases).
      batch_norm_decay: decay of the moving statistics.
      batch_norm_epsilon: added to the variance.
      activation_fn: the convs' activation.
      batch_norm_updates_collections: accepted for compatibility (updates run in the call).
      batch_norm_scale: create `gamma` (False in the published checkpoints).

    Returns:
      The arg-scope dict.
    """
    bn_params = {"decay": batch_norm_decay, "epsilon": batch_norm_epsilon,
                 "updates_collections": batch_norm_updates_collections, "fused": None,
                 "scale": batch_norm_scale}
    normalizer_fn = slim.batch_norm if use_batch_norm else None
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.conv2d], weights_initializer=slim.variance_scaling_initializer(),
                            activation_fn=activation_fn, normalizer_fn=normalizer_fn,
                            normalizer_params=bn_params if use_batch_norm else {}) as sc:
            return sc


def trunc_normal(stddev: float):
    """A N(0, stddev) truncated-normal initializer."""
    return slim.truncated_normal_initializer(0.0, stddev)


def depth_fn(depth_multiplier: float, min_depth: int, net: str) -> Callable[[int], int]:
    """`d -> max(int(d * depth_multiplier), min_depth)`, the Inceptions' width scaling.

    Raises:
      SlimError: depth_multiplier <= 0.
    """
    check_depth_multiplier(depth_multiplier, net)
    return lambda d: max(int(d * depth_multiplier), min_depth)


def check_depth_multiplier(depth_multiplier: float, net: str) -> None:
    """Raises SlimError unless depth_multiplier > 0."""
    if not depth_multiplier > 0:
        raise SlimError(f"{net}: depth_multiplier must be greater than zero (1.0 is the published "
                        f"width). Received: depth_multiplier={depth_multiplier}")


def reduced_kernel_size_for_small_input(net: tf.Tensor, kernel_size: Sequence[int]) -> list[int]:
    """The pooling kernel clipped to the feature map, for inputs smaller than the default.

    Unknown spatial dimensions leave `kernel_size` as it is.
    """
    shape = net.shape.as_list()
    if shape[1] is None or shape[2] is None:
        return list(kernel_size)
    return [min(shape[1], kernel_size[0]), min(shape[2], kernel_size[1])]


def concat_branches(branches: Sequence[tf.Tensor]) -> tf.Tensor:
    """The Inception module output: the branches concatenated along channels."""
    return tf.concat(axis=3, values=list(branches))


def run_blocks(net: tf.Tensor, blocks: Sequence[Block], final_endpoint: str, net_name: str,
               end_points: dict | None = None) -> tuple[tf.Tensor, dict]:
    """Applies `(end point, fn)` blocks in order up to and including `final_endpoint`.

    `fn(net, name)` gets its end point's name for its scope: a layer passes it
    as `scope=name`, an Inception module opens `variable_scope(name)`.

    Args:
      net: the input.
      blocks: `(end point name, fn(net, name) -> net)` pairs, in order.
      final_endpoint: the last end point to build.
      net_name: the net's name, for the error message.
      end_points: a dict to add to (a new one when None).

    Returns:
      (the output of `final_endpoint`, end_points).

    Raises:
      SlimError: `final_endpoint` is not one of the blocks' end points.
    """
    names = [name for name, _ in blocks]
    if final_endpoint not in names:
        raise SlimError(f"{net_name}: unknown final_endpoint={final_endpoint!r}; use one of "
                        f"{', '.join(names)}.")
    end_points = {} if end_points is None else end_points
    for name, fn in blocks:
        net = end_points[name] = fn(net, name)
        if name == final_endpoint:
            break
    return net, end_points
