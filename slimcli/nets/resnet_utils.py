"""Building blocks shared by ResNet v1 and v2 (He et al., 2015 and 2016).

Follows tensorflow/models research/slim `nets/resnet_utils.py`: a net is a
list of `Block`s, each a scope, a unit function and one kwargs dict per unit;
`stack_blocks_dense` runs them and, given an `output_stride`, replaces the
striding of the late units by atrous (dilated) convolution so the output
keeps a higher resolution (dense prediction) with the same variables.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError

__all__ = ["Block", "subsample", "conv2d_same", "stack_blocks_dense", "resnet_arg_scope",
           "reachable_output_strides", "batch_norm_mode", "root_output_stride", "depth_function",
           "logits_head", "units_for_depth"]


class Block(NamedTuple):
    """One ResNet block: `scope` ('block1'), `unit_fn` (a bottleneck) and `args`.

    `args` holds one dict of keyword arguments per unit, e.g.
    `{'depth': 256, 'depth_bottleneck': 64, 'stride': 1}`.
    """
    scope: str
    unit_fn: Callable
    args: Sequence[dict]


def subsample(inputs: tf.Tensor, factor: int, scope: str | None = None) -> tf.Tensor:
    """Spatial subsampling by `factor` with a 1x1 max pool (identity when 1).

    Args:
      inputs: [batch, height, width, channels].
      factor: the subsampling factor.
      scope: the name scope of the pool.

    Returns:
      [batch, ceil(height / factor), ceil(width / factor), channels].
    """
    if factor == 1:
        return inputs
    return slim.max_pool2d(inputs, [1, 1], stride=factor, scope=scope)


def conv2d_same(inputs: tf.Tensor, num_outputs: int, kernel_size: int, stride: int,
                rate: int = 1, scope: str | None = None) -> tf.Tensor:
    """A strided convolution whose padding does not depend on the input size.

    With stride 1 this is a 'SAME' convolution. With stride > 1 the input is
    padded explicitly by the effective kernel size (`k + (k - 1)(rate - 1)`)
    minus one, split as evenly as possible, then convolved 'VALID'; so
    `conv2d_same(x, n, 3, 2)` equals a 'SAME' stride-1 convolution
    subsampled by 2 for every input size, odd ones included.

    Args:
      inputs: [batch, height, width, channels].
      num_outputs: output channels.
      kernel_size: the (square) kernel size.
      stride: the output stride.
      rate: the atrous rate.
      scope: the variable scope.

    Returns:
      The convolution output.
    """
    if stride == 1:
        return slim.conv2d(inputs, num_outputs, kernel_size, stride=1, rate=rate,
                           padding="SAME", scope=scope)
    effective = kernel_size + (kernel_size - 1) * (rate - 1)
    pad_begin = (effective - 1) // 2
    pad_end = effective - 1 - pad_begin
    padded = tf.pad(inputs, [[0, 0], [pad_begin, pad_end], [pad_begin, pad_end], [0, 0]])
    return slim.conv2d(padded, num_outputs, kernel_size, stride=stride, rate=rate,
                       padding="VALID", scope=scope)


def reachable_output_strides(blocks: Sequence[Block], root_stride: int = 1) -> list[int]:
    """The `output_stride` values `stack_blocks_dense` can produce for `blocks`.

    Args:
      blocks: the block list.
      root_stride: the stride already applied before the blocks (4 for the
        ResNet root: conv1 and pool1).

    Returns:
      Increasing strides, from `root_stride` to the blocks' full stride.
    """
    strides = [root_stride]
    for block in blocks:
        for unit in block.args:
            step = unit.get("stride", 1)
            if step != 1:
                strides.append(strides[-1] * step)
    return sorted(set(strides))


def _check_output_stride(blocks: Sequence[Block], output_stride: int | None) -> None:
    if output_stride is None:
        return
    valid = reachable_output_strides(blocks)
    if output_stride not in valid:
        raise SlimError(f"stack_blocks_dense: the target output_stride={output_stride} cannot be "
                        f"reached with these blocks; use one of {valid} or None.")


@slim.add_arg_scope
def stack_blocks_dense(net: tf.Tensor, blocks: Sequence[Block], output_stride: int | None = None,
                       store_non_strided_activations: bool = False,
                       outputs_collections: Any = None) -> tf.Tensor:
    """Runs the units of `blocks`, with atrous convolution past `output_stride`.

    Scopes are `<block.scope>/unit_<i>/<unit scope>`; the output of each block
    is collected under the block's scope name (`resnet_v1_50/block1`).

    Args:
      net: [batch, height, width, channels].
      blocks: the `Block`s, applied in order.
      output_stride: the wanted ratio of input to output resolution (counted
        from the input of the blocks), or None for the blocks' full striding.
        Once reached, later strides become atrous rates.
      store_non_strided_activations: move each block's last stride to a
        subsampling after the block, so the collected block output keeps the
        resolution before striding (the net's output is unchanged).
      outputs_collections: where block outputs are collected.

    Returns:
      The output of the last block.

    Raises:
      SlimError: `output_stride` cannot be reached with these blocks.
    """
    _check_output_stride(blocks, output_stride)
    current_stride = 1
    rate = 1
    for block in blocks:
        with slim.variable_scope(block.scope, "block") as sc:
            block_stride = 1
            for i, unit in enumerate(block.args):
                if store_non_strided_activations and i == len(block.args) - 1:
                    block_stride = unit.get("stride", 1)
                    unit = dict(unit, stride=1)
                with slim.variable_scope(f"unit_{i + 1}"):
                    if output_stride is not None and current_stride == output_stride:
                        net = block.unit_fn(net, rate=rate, **dict(unit, stride=1))
                        rate *= unit.get("stride", 1)
                    else:
                        net = block.unit_fn(net, rate=1, **unit)
                        current_stride *= unit.get("stride", 1)
            net = slim.utils.collect_named_outputs(outputs_collections, sc.name, net)
            if output_stride is not None and current_stride == output_stride:
                rate *= block_stride
            else:
                net = subsample(net, block_stride)
                current_stride *= block_stride
    return net


def resnet_arg_scope(weight_decay: float = 0.0001, batch_norm_decay: float = 0.997,
                     batch_norm_epsilon: float = 1e-5, batch_norm_scale: bool = True,
                     activation_fn: Callable | None = tf.nn.relu, use_batch_norm: bool = True,
                     batch_norm_updates_collections: Any = "update_ops") -> dict:
    """The arg scope of ResNet v1 and v2.

    Convolutions: He-initialized weights with L2 decay, batch norm (with
    `gamma` by default) and ReLU; max pooling 'SAME' (pool1 of the root).

    Args:
      weight_decay: L2 weight decay of the convolution weights.
      batch_norm_decay: decay of the moving statistics.
      batch_norm_epsilon: added to the variance.
      batch_norm_scale: whether batch norm has a `gamma`.
      activation_fn: the activation of the convolutions.
      use_batch_norm: whether the convolutions are batch-normalized.
      batch_norm_updates_collections: accepted for compatibility (moving
        statistics are updated in the call).

    Returns:
      The arg-scope dict.
    """
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "scale": batch_norm_scale,
        "updates_collections": batch_norm_updates_collections,
        "fused": None,
    }
    with slim.arg_scope([slim.conv2d], weights_regularizer=slim.l2_regularizer(weight_decay),
                        weights_initializer=slim.variance_scaling_initializer(),
                        activation_fn=activation_fn,
                        normalizer_fn=slim.batch_norm if use_batch_norm else None,
                        normalizer_params=batch_norm_params):
        with slim.arg_scope([slim.batch_norm], **batch_norm_params):
            with slim.arg_scope([slim.max_pool2d], padding="SAME") as sc:
                return sc


def batch_norm_mode(is_training: bool | None):
    """An arg scope setting batch norm's `is_training`; None leaves it as it is.

    Args:
      is_training: True (batch statistics, moving averages updated), False
        (moving statistics) or None (whatever the enclosing arg scope says).

    Returns:
      A context manager.
    """
    if is_training is None:
        return slim.arg_scope([slim.batch_norm])
    return slim.arg_scope([slim.batch_norm], is_training=is_training)


def root_output_stride(output_stride: int | None, blocks: Sequence[Block]) -> int | None:
    """The output stride left for `blocks` after the root block's stride of 4.

    Args:
      output_stride: the net's wanted output stride, or None.
      blocks: the blocks that follow the root block.

    Returns:
      `output_stride // 4`, or None.

    Raises:
      SlimError: the net cannot reach `output_stride` (for the standard
        ResNets: anything but 4, 8, 16, 32).
    """
    if output_stride is None:
        return None
    valid = [4 * stride for stride in reachable_output_strides(blocks)]
    if output_stride not in valid:
        raise SlimError(f"resnet: output_stride={output_stride} cannot be reached; use one of "
                        f"{valid}, or None for {valid[-1]}.")
    return output_stride // 4


def depth_function(depth_multiplier: float, min_base_depth: int) -> Callable[[int], int]:
    """Width scaling: `d -> max(int(d * depth_multiplier), min_base_depth)`.

    Args:
      depth_multiplier: the scale of every bottleneck depth.
      min_base_depth: the smallest depth after scaling.

    Returns:
      The depth function.

    Raises:
      SlimError: `depth_multiplier` <= 0.
    """
    if depth_multiplier <= 0:
        raise SlimError(f"resnet: depth_multiplier={depth_multiplier} must be greater than "
                        f"zero (1 for the published widths).")
    return lambda d: max(int(d * depth_multiplier), min_base_depth)


def logits_head(net: tf.Tensor, end_points: dict, num_classes: int | None, global_pool: bool,
                spatial_squeeze: bool, scope_name: str):
    """The ResNet head: global pool, 1x1-conv `logits`, squeeze, `predictions`.

    Args:
      net: the last block's output.
      end_points: the end points so far; `global_pool`, `<scope>/logits`,
        `<scope>/spatial_squeeze` and `predictions` are added.
      num_classes: logits size; 0 or None returns the features.
      global_pool: average over height and width first.
      spatial_squeeze: squeeze [N, 1, 1, C] logits to [N, C].
      scope_name: the net's scope (`resnet_v1_50`).

    Returns:
      (logits or features, end_points).

    Raises:
      SlimError: spatial_squeeze on logits that are not 1x1.
    """
    if global_pool:
        net = tf.reduce_mean(net, [1, 2], name="pool5", keepdims=True)   # 1 x 1 x 2048
        end_points["global_pool"] = net
    if not num_classes:
        return net, end_points
    net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None,
                      scope="logits")                                      # 1 x 1 x num_classes
    end_points[f"{scope_name}/logits"] = net
    if spatial_squeeze:
        if net.shape[1] not in (1, None) or net.shape[2] not in (1, None):
            raise SlimError(f"{scope_name}: spatial_squeeze=True needs 1x1 logits, got shape "
                            f"{net.shape.as_list()}; pass spatial_squeeze=False or "
                            f"global_pool=True.")
        net = tf.squeeze(net, [1, 2], name="SpatialSqueeze")               # num_classes
        end_points[f"{scope_name}/spatial_squeeze"] = net
    end_points["predictions"] = slim.softmax(net, scope="predictions")
    return net, end_points


def units_for_depth(table: dict[int, tuple[int, ...]], depth: int,
                    family: str) -> tuple[int, ...]:
    """The units per block of a ResNet of `depth` layers.

    Args:
      table: `{depth: (units of block1, ..., block4)}`.
      depth: 50, 101, ...
      family: the net family, for the message (`resnet_v1`).

    Returns:
      The units per block.

    Raises:
      SlimError: `depth` is not in the table.
    """
    if depth not in table:
        raise SlimError(f"{family}: unknown depth={depth}; use one of {sorted(table)}.")
    return table[depth]
