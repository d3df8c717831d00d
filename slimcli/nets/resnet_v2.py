"""ResNet v2 (He et al., "Identity Mappings in Deep Residual Networks", 2016).

Variables, end points and arguments follow tensorflow/models research/slim
`nets/resnet_v2.py`: pre-activation bottleneck units (batch norm + ReLU
`preact` before the convolutions; `conv3` and `shortcut` with biases), a root
conv without batch norm, and a `postnorm` batch norm after the last block.
The variants differ only by the number of units per block: `RESNET_V2_UNITS`.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import tensorflow as tf

from slimcli import slim
from slimcli.nets import resnet_utils
from slimcli.nets.registry import TF_MODELS_URL, NetSpec, ZooCheckpoint

resnet_arg_scope = resnet_utils.resnet_arg_scope

# Units per block (block1..block4) of each depth.
RESNET_V2_UNITS = {
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
               outputs_collections: Any = None, scope: str | None = None) -> tf.Tensor:
    """Pre-activation bottleneck unit: BN-ReLU, then 1x1 → 3x3 (strided) → 1x1.

    Args:
      inputs: [batch, height, width, channels].
      depth: output channels.
      depth_bottleneck: channels of the 1x1 and 3x3 convolutions inside.
      stride: the unit's stride (on the 3x3 conv and the shortcut).
      rate: the atrous rate of the 3x3 conv.
      outputs_collections: where the unit output is collected.
      scope: the variable scope (`bottleneck_v2` by default).

    Returns:
      The unit output, [batch, height / stride, width / stride, depth].
    """
    with slim.variable_scope(scope, "bottleneck_v2") as sc:
        depth_in = slim.utils.last_dimension(inputs.shape, min_rank=4)
        preact = slim.batch_norm(inputs, activation_fn=tf.nn.relu, scope="preact")
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, "shortcut")
        else:
            shortcut = slim.conv2d(preact, depth, [1, 1], stride=stride, normalizer_fn=None,
                                   activation_fn=None, scope="shortcut")
        residual = slim.conv2d(preact, depth_bottleneck, [1, 1], stride=1, scope="conv1")
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride, rate=rate,
                                            scope="conv2")
        residual = slim.conv2d(residual, depth, [1, 1], stride=1, normalizer_fn=None,
                               activation_fn=None, scope="conv3")
        output = shortcut + residual
        return slim.utils.collect_named_outputs(outputs_collections, sc.name, output)


def resnet_v2_block(scope: str, base_depth: int, num_units: int,
                    stride: int) -> resnet_utils.Block:
    """A block of `num_units` pre-activation bottlenecks; the last one carries the stride.

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


def resnet_v2(inputs: tf.Tensor, blocks: Sequence[resnet_utils.Block],
              num_classes: int | None = None, is_training: bool | None = True,
              global_pool: bool = True, output_stride: int | None = None,
              include_root_block: bool = True, spatial_squeeze: bool = True,
              reuse: Any = None, scope: str | None = None):
    """The ResNet v2 builder: root conv, `blocks`, postnorm, global pool, 1x1 logits.

    Args:
      inputs: [batch, height, width, channels].
      blocks: the `Block` list (see `resnet_v2_block`).
      num_classes: logits size; 0 or None returns the (pooled) features.
      is_training: batch-norm mode; None leaves it to the enclosing arg scope.
      global_pool: average the last feature map to 1x1.
      output_stride: 4, 8, 16 or 32 (a value the blocks reach), or None (32):
        the input-to-output resolution ratio; atrous convolution past it.
      include_root_block: start with conv1 (7x7/2, no batch norm) and pool1.
      spatial_squeeze: squeeze the [N, 1, 1, C] logits to [N, C].
      reuse: reuse the variables of the scope.
      scope: the variable scope (`resnet_v2` by default).

    Returns:
      (logits or features, end_points); end points are named by scope
      (`resnet_v2_50/block1`), plus `global_pool` and `predictions`.

    Raises:
      SlimError: an output_stride the blocks cannot reach.
    """
    with slim.variable_scope(scope, "resnet_v2", reuse=reuse) as sc:
        collection = f"{sc.original_name_scope}_end_points"
        collected = [slim.conv2d, bottleneck, resnet_utils.stack_blocks_dense]
        with (slim.arg_scope(collected, outputs_collections=collection),
              resnet_utils.batch_norm_mode(is_training)):
            net = inputs
            if include_root_block:
                output_stride = resnet_utils.root_output_stride(output_stride, blocks)
                # The first unit's preact does the batch norm and ReLU of conv1.
                with slim.arg_scope([slim.conv2d], activation_fn=None, normalizer_fn=None):
                    net = resnet_utils.conv2d_same(net, 64, 7, stride=2, scope="conv1")  # /2 x 64
                net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")              # /4 x 64
            net = resnet_utils.stack_blocks_dense(net, blocks, output_stride)
            # Units end with a sum, not an activation: normalize the last one here.
            net = slim.batch_norm(net, activation_fn=tf.nn.relu, scope="postnorm")
            end_points = slim.utils.convert_collection_to_dict(collection)
            return resnet_utils.logits_head(net, end_points, num_classes, global_pool,
                                            spatial_squeeze, sc.name)


def resnet_v2_depth(inputs: tf.Tensor, depth: int = 50, num_classes: int | None = None,
                    is_training: bool | None = True, global_pool: bool = True,
                    output_stride: int | None = None, spatial_squeeze: bool = True,
                    reuse: Any = None, scope: str | None = None):
    """ResNet-50/101/152/200 v2: the builder with the block list of `depth`.

    Args:
      inputs: [batch, 224, 224, 3] (any size works).
      depth: 50, 101, 152 or 200 (`RESNET_V2_UNITS`).
      scope: the variable scope; `resnet_v2_<depth>` by default.
      Others: see `resnet_v2`.

    Returns:
      (logits or features, end_points).

    Raises:
      SlimError: unknown depth or a bad output_stride.
    """
    units = resnet_utils.units_for_depth(RESNET_V2_UNITS, depth, "resnet_v2")
    blocks = [resnet_v2_block(f"block{i + 1}", base_depth=base, num_units=n, stride=s)
              for i, (base, n, s) in enumerate(zip(BLOCK_BASE_DEPTHS, units, BLOCK_STRIDES))]
    return resnet_v2(inputs, blocks, num_classes, is_training, global_pool=global_pool,
                     output_stride=output_stride, include_root_block=True,
                     spatial_squeeze=spatial_squeeze, reuse=reuse,
                     scope=scope or f"resnet_v2_{depth}")


resnet_v2.default_image_size = 224
resnet_v2_depth.default_image_size = 224

resnet_v2_50 = functools.partial(resnet_v2_depth, depth=50)
resnet_v2_101 = functools.partial(resnet_v2_depth, depth=101)
resnet_v2_152 = functools.partial(resnet_v2_depth, depth=152)
resnet_v2_200 = functools.partial(resnet_v2_depth, depth=200)
for _fn in (resnet_v2_50, resnet_v2_101, resnet_v2_152, resnet_v2_200):
    _fn.default_image_size = 224


_ZOO_NOTE = ("vgg as in the original factory map; the zoo's ResNet V2 checkpoints were trained "
             "with inception preprocessing at 299: evaluate them with "
             "--preprocessing_name=inception --eval_image_size=299")


# The model zoo's top-1 per depth (ResNet V2 200 is "TBA" in the README);
# keras.applications has the same depths (ResNet50V2, ...).
ZOO_TOP1 = {50: 75.6, 101: 77.0, 152: 77.8}


def _spec(depth: int) -> NetSpec:
    name = f"resnet_v2_{depth}"
    published = depth in ZOO_TOP1
    zoo = ZooCheckpoint(f"{TF_MODELS_URL}{name}_2017_04_14.tar.gz", f"{name}.ckpt",
                        ZOO_TOP1[depth], "use --preprocessing_name=inception "
                        "--eval_image_size=299") if published else None
    return NetSpec(name=name, fn=resnet_v2_depth, arg_scope=resnet_arg_scope,
                   default_image_size=224, preprocessing="vgg",
                   predictions_op=f"{name}/predictions/Reshape_1",
                   logits_scopes=(f"{name}/logits",), fn_kwargs={"depth": depth},
                   zoo_num_classes=1001, predictions_key="predictions",
                   preprocessing_note=_ZOO_NOTE, zoo=zoo,
                   keras_twin=(f"ResNet{depth}V2", {}) if published else None)


NETS = tuple(_spec(depth) for depth in RESNET_V2_UNITS)
