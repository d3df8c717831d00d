"""ResNet v1 (He et al., "Deep Residual Learning for Image Recognition", 2015).

Variables, end points and arguments follow tensorflow/models research/slim
`nets/resnet_v1.py`: bottleneck units with the stride on the 3x3 conv of the
last unit of each block (as in the released zoo checkpoints), batch norm with
`gamma`, a 7x7 root conv + 3x3 max pool, global average pooling and a 1x1 conv
as the classifier (`resnet_v1_50/logits`). The variants differ only by the
number of units per block: `RESNET_V1_UNITS`.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import tensorflow as tf

from slimcli import slim
from slimcli.nets import resnet_utils
from slimcli.nets.registry import LABELS_OFFSET_NOTE, TF_MODELS_URL, NetSpec, ZooCheckpoint

resnet_arg_scope = resnet_utils.resnet_arg_scope

# Units per block (block1..block4) of each depth.
RESNET_V1_UNITS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
}
# Base depths and strides of block1..block4 (output depth = 4 x base depth).
BLOCK_BASE_DEPTHS = (64, 128, 256, 512)
BLOCK_STRIDES = (2, 2, 2, 1)


@slim.add_arg_scope
def bottleneck(inputs: tf.Tensor, depth: int, depth_bottleneck: int, stride: int, rate: int = 1,
               outputs_collections: Any = None, scope: str | None = None,
               use_bounded_activations: bool = False) -> tf.Tensor:
    """Bottleneck residual unit: 1x1 → 3x3 (strided) → 1x1, plus the shortcut.

    Args:
      inputs: [batch, height, width, channels].
      depth: output channels.
      depth_bottleneck: channels of the 1x1 and 3x3 convolutions inside.
      stride: the unit's stride (on the 3x3 conv and the shortcut).
      rate: the atrous rate of the 3x3 conv.
      outputs_collections: where the unit output is collected.
      scope: the variable scope (`bottleneck_v1` by default).
      use_bounded_activations: ReLU6 and clipping instead of ReLU, for
        quantized inference.

    Returns:
      The unit output, [batch, height / stride, width / stride, depth].
    """
    with slim.variable_scope(scope, "bottleneck_v1") as sc:
        depth_in = slim.utils.last_dimension(inputs.shape, min_rank=4)
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, "shortcut")
        else:
            shortcut = slim.conv2d(inputs, depth, [1, 1], stride=stride,
                                   activation_fn=tf.nn.relu6 if use_bounded_activations else None,
                                   scope="shortcut")
        residual = slim.conv2d(inputs, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride, rate=rate,
                                            scope="conv2")
        residual = slim.conv2d(residual, depth, [1, 1], stride=1, activation_fn=None,
                               scope="conv3")
        if use_bounded_activations:
            residual = tf.clip_by_value(residual, -6.0, 6.0)
            output = tf.nn.relu6(shortcut + residual)
        else:
            output = tf.nn.relu(shortcut + residual)
        return slim.utils.collect_named_outputs(outputs_collections, sc.name, output)


def resnet_v1_block(scope: str, base_depth: int, num_units: int,
                    stride: int) -> resnet_utils.Block:
    """A block of `num_units` bottlenecks; the last one carries the stride.

    Args:
      scope: the block's scope (`block1`).
      base_depth: the bottleneck depth; the output depth is 4x this.
      num_units: the number of units.
      stride: the stride of the block's last unit.

    Returns:
      A `resnet_utils.Block`.
    """
    unit = {"depth": base_depth * 4, "depth_bottleneck": base_depth, "stride": 1}
    return resnet_utils.Block(scope, bottleneck,
                              [dict(unit)] * (num_units - 1) + [dict(unit, stride=stride)])


def resnet_v1(inputs: tf.Tensor, blocks: Sequence[resnet_utils.Block],
              num_classes: int | None = None, is_training: bool | None = True,
              global_pool: bool = True, output_stride: int | None = None,
              include_root_block: bool = True, spatial_squeeze: bool = True,
              store_non_strided_activations: bool = False, reuse: Any = None,
              scope: str | None = None):
    """The ResNet v1 builder: root block, `blocks`, global pool, 1x1 logits.

    Args:
      inputs: [batch, height, width, channels].
      blocks: the `Block` list (see `resnet_v1_block`).
      num_classes: logits size; 0 or None returns the (pooled) features.
      is_training: batch-norm mode; None leaves it to the enclosing arg scope.
      global_pool: average the last feature map to 1x1.
      output_stride: 4, 8, 16 or 32 (a value the blocks reach), or None (32):
        the input-to-output resolution ratio; atrous convolution past it.
      include_root_block: start with conv1 (7x7/2) and pool1 (3x3/2).
      spatial_squeeze: squeeze the [N, 1, 1, C] logits to [N, C].
      store_non_strided_activations: see `resnet_utils.stack_blocks_dense`.
      reuse: reuse the variables of the scope.
      scope: the variable scope (`resnet_v1` by default).

    Returns:
      (logits or features, end_points); end points are named by scope
      (`resnet_v1_50/block1`), plus `global_pool` and `predictions`.

    Raises:
      SlimError: an output_stride the blocks cannot reach.
    """
    with slim.variable_scope(scope, "resnet_v1", reuse=reuse) as sc:
        collection = f"{sc.original_name_scope}_end_points"
        collected = [slim.conv2d, bottleneck, resnet_utils.stack_blocks_dense]
        with (slim.arg_scope(collected, outputs_collections=collection),
              resnet_utils.batch_norm_mode(is_training)):
            net = inputs
            if include_root_block:
                output_stride = resnet_utils.root_output_stride(output_stride, blocks)
                net = resnet_utils.conv2d_same(net, 64, 7, stride=2, scope="conv1")  # /2 x 64
                net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")          # /4 x 64
            net = resnet_utils.stack_blocks_dense(net, blocks, output_stride,
                                                  store_non_strided_activations)
            end_points = slim.utils.convert_collection_to_dict(collection)
            return resnet_utils.logits_head(net, end_points, num_classes, global_pool,
                                            spatial_squeeze, sc.name)


def resnet_v1_depth(inputs: tf.Tensor, depth: int = 50, num_classes: int | None = None,
                    is_training: bool | None = True, global_pool: bool = True,
                    output_stride: int | None = None, spatial_squeeze: bool = True,
                    store_non_strided_activations: bool = False, min_base_depth: int = 8,
                    depth_multiplier: float = 1, reuse: Any = None, scope: str | None = None):
    """ResNet-50/101/152/200 v1: the builder with the block list of `depth`.

    Args:
      inputs: [batch, 224, 224, 3] (any size works).
      depth: 50, 101, 152 or 200 (`RESNET_V1_UNITS`).
      min_base_depth: the smallest bottleneck depth after `depth_multiplier`.
      depth_multiplier: scales every bottleneck depth (> 0).
      scope: the variable scope; `resnet_v1_<depth>` by default.
      Others: see `resnet_v1`.

    Returns:
      (logits or features, end_points).

    Raises:
      SlimError: unknown depth, depth_multiplier <= 0, or a bad output_stride.
    """
    units = resnet_utils.units_for_depth(RESNET_V1_UNITS, depth, "resnet_v1")
    depth_fn = resnet_utils.depth_function(depth_multiplier, min_base_depth)
    blocks = [resnet_v1_block(f"block{i + 1}", base_depth=depth_fn(base), num_units=n, stride=s)
              for i, (base, n, s) in enumerate(zip(BLOCK_BASE_DEPTHS, units, BLOCK_STRIDES))]
    return resnet_v1(inputs, blocks, num_classes, is_training, global_pool=global_pool,
                     output_stride=output_stride, include_root_block=True,
                     spatial_squeeze=spatial_squeeze,
                     store_non_strided_activations=store_non_strided_activations, reuse=reuse,
                     scope=scope or f"resnet_v1_{depth}")


resnet_v1.default_image_size = 224
resnet_v1_depth.default_image_size = 224

resnet_v1_50 = functools.partial(resnet_v1_depth, depth=50)
resnet_v1_101 = functools.partial(resnet_v1_depth, depth=101)
resnet_v1_152 = functools.partial(resnet_v1_depth, depth=152)
resnet_v1_200 = functools.partial(resnet_v1_depth, depth=200)
for _fn in (resnet_v1_50, resnet_v1_101, resnet_v1_152, resnet_v1_200):
    _fn.default_image_size = 224


# The model zoo's top-1 per depth (no ResNet V1 200 checkpoint was published);
# keras.applications has the same depths (ResNet50, ...).
ZOO_TOP1 = {50: 75.2, 101: 76.4, 152: 76.8}


def _spec(depth: int) -> NetSpec:
    name = f"resnet_v1_{depth}"
    published = depth in ZOO_TOP1
    zoo = ZooCheckpoint(f"{TF_MODELS_URL}{name}_2016_08_28.tar.gz", f"{name}.ckpt",
                        ZOO_TOP1[depth], LABELS_OFFSET_NOTE) if published else None
    return NetSpec(name=name, fn=resnet_v1_depth, arg_scope=resnet_arg_scope,
                   default_image_size=224, preprocessing="vgg",
                   predictions_op=f"{name}/predictions/Reshape_1",
                   logits_scopes=(f"{name}/logits",), fn_kwargs={"depth": depth},
                   zoo_num_classes=1000, predictions_key="predictions", zoo=zoo,
                   keras_twin=(f"ResNet{depth}", {}) if published else None)


NETS = tuple(_spec(depth) for depth in RESNET_V1_UNITS)
