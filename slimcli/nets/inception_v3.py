"""Inception v3 (Szegedy et al., 2015, "Rethinking the Inception Architecture") of TF-Slim.

Variables (including the original's irregular names such as
`Mixed_5c/Branch_1/Conv_1_0c_5x5` and `Mixed_6a/Branch_0/Conv2d_1a_1x1` for a
3x3 conv), end points, the auxiliary head and the prediction op
(`InceptionV3/Predictions/Reshape_1`) follow tensorflow/models research/slim
`nets/inception_v3.py`.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from slimcli import slim
from slimcli.nets import inception_utils
from slimcli.nets.inception_utils import (concat_branches, reduced_kernel_size_for_small_input,
                                          run_blocks, trunc_normal)
from slimcli.nets.registry import TF_MODELS_URL, NetSpec, ZooCheckpoint

# 35 x 35 modules: (Branch_1 conv names, Branch_3 depth). Mixed_5c's names are the original's.
MODULES_35 = {
    "Mixed_5b": (("Conv2d_0a_1x1", "Conv2d_0b_5x5"), 32),   # 35 x 35 x 256
    "Mixed_5c": (("Conv2d_0b_1x1", "Conv_1_0c_5x5"), 64),   # 35 x 35 x 288
    "Mixed_5d": (("Conv2d_0a_1x1", "Conv2d_0b_5x5"), 64),   # 35 x 35 x 288
}
# 17 x 17 modules: the depth of the factorized 7x7 convs.
MODULES_17 = {"Mixed_6b": 128, "Mixed_6c": 160, "Mixed_6d": 160, "Mixed_6e": 192}
# 8 x 8 modules: the name of Branch_1's 3x1 conv (the original differs between the two).
MODULES_8 = {"Mixed_7b": "Conv2d_0b_3x1", "Mixed_7c": "Conv2d_0c_3x1"}


def _avg_pool_branch(net: tf.Tensor, depth: int) -> tf.Tensor:
    with slim.variable_scope("Branch_3"):
        branch = slim.avg_pool2d(net, [3, 3], scope="AvgPool_0a_3x3")
        return slim.conv2d(branch, depth, [1, 1], scope="Conv2d_0b_1x1")


def module_35(net: tf.Tensor, name: str, depth) -> tf.Tensor:
    """35 x 35 module: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""
    (b1_first, b1_second), d3 = MODULES_35[name]
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, depth(64), [1, 1], scope="Conv2d_0a_1x1")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, depth(48), [1, 1], scope=b1_first)
            branch_1 = slim.conv2d(branch_1, depth(64), [5, 5], scope=b1_second)
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, depth(64), [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, depth(96), [3, 3], scope="Conv2d_0b_3x3")
            branch_2 = slim.conv2d(branch_2, depth(96), [3, 3], scope="Conv2d_0c_3x3")
        branch_3 = _avg_pool_branch(net, depth(d3))
        return concat_branches([branch_0, branch_1, branch_2, branch_3])


def reduction_6a(net: tf.Tensor, name: str, depth) -> tf.Tensor:
    """35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 (17 x 17 x 768)."""
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, depth(384), [3, 3], stride=2, padding="VALID",
                                   scope="Conv2d_1a_1x1")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, depth(64), [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, depth(96), [3, 3], scope="Conv2d_0b_3x3")
            branch_1 = slim.conv2d(branch_1, depth(96), [3, 3], stride=2, padding="VALID",
                                   scope="Conv2d_1a_1x1")
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID",
                                       scope="MaxPool_1a_3x3")
        return concat_branches([branch_0, branch_1, branch_2])


def module_17(net: tf.Tensor, name: str, depth) -> tf.Tensor:
    """17 x 17 module with factorized 7x7 convs (17 x 17 x 768)."""
    c7 = depth(MODULES_17[name])
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, depth(192), [1, 1], scope="Conv2d_0a_1x1")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, c7, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, c7, [1, 7], scope="Conv2d_0b_1x7")
            branch_1 = slim.conv2d(branch_1, depth(192), [7, 1], scope="Conv2d_0c_7x1")
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, c7, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, c7, [7, 1], scope="Conv2d_0b_7x1")
            branch_2 = slim.conv2d(branch_2, c7, [1, 7], scope="Conv2d_0c_1x7")
            branch_2 = slim.conv2d(branch_2, c7, [7, 1], scope="Conv2d_0d_7x1")
            branch_2 = slim.conv2d(branch_2, depth(192), [1, 7], scope="Conv2d_0e_1x7")
        branch_3 = _avg_pool_branch(net, depth(192))
        return concat_branches([branch_0, branch_1, branch_2, branch_3])


def reduction_7a(net: tf.Tensor, name: str, depth) -> tf.Tensor:
    """17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 (8 x 8 x 1280)."""
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, depth(192), [1, 1], scope="Conv2d_0a_1x1")
            branch_0 = slim.conv2d(branch_0, depth(320), [3, 3], stride=2, padding="VALID",
                                   scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, depth(192), [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, depth(192), [1, 7], scope="Conv2d_0b_1x7")
            branch_1 = slim.conv2d(branch_1, depth(192), [7, 1], scope="Conv2d_0c_7x1")
            branch_1 = slim.conv2d(branch_1, depth(192), [3, 3], stride=2, padding="VALID",
                                   scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID",
                                       scope="MaxPool_1a_3x3")
        return concat_branches([branch_0, branch_1, branch_2])


def module_8(net: tf.Tensor, name: str, depth) -> tf.Tensor:
    """8 x 8 module with expanded 1x3 / 3x1 splits (8 x 8 x 2048)."""
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, depth(320), [1, 1], scope="Conv2d_0a_1x1")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, depth(384), [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = concat_branches([
                slim.conv2d(branch_1, depth(384), [1, 3], scope="Conv2d_0b_1x3"),
                slim.conv2d(branch_1, depth(384), [3, 1], scope=MODULES_8[name])])
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, depth(448), [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, depth(384), [3, 3], scope="Conv2d_0b_3x3")
            branch_2 = concat_branches([
                slim.conv2d(branch_2, depth(384), [1, 3], scope="Conv2d_0c_1x3"),
                slim.conv2d(branch_2, depth(384), [3, 1], scope="Conv2d_0d_3x1")])
        branch_3 = _avg_pool_branch(net, depth(192))
        return concat_branches([branch_0, branch_1, branch_2, branch_3])


def _stem_blocks(depth) -> list:
    """The VALID-padded stem, 299 x 299 x 3 -> 35 x 35 x 192."""
    def conv(channels, kernel, stride=1, padding="VALID"):
        return lambda net, name: slim.conv2d(net, depth(channels), kernel, stride=stride,
                                             padding=padding, scope=name)
    pool = lambda net, name: slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope=name)
    return [
        ("Conv2d_1a_3x3", conv(32, [3, 3], stride=2)),       # 149 x 149 x 32
        ("Conv2d_2a_3x3", conv(32, [3, 3])),                 # 147 x 147 x 32
        ("Conv2d_2b_3x3", conv(64, [3, 3], padding="SAME")),  # 147 x 147 x 64
        ("MaxPool_3a_3x3", pool),                            # 73 x 73 x 64
        ("Conv2d_3b_1x1", conv(80, [1, 1])),                 # 73 x 73 x 80
        ("Conv2d_4a_3x3", conv(192, [3, 3])),                # 71 x 71 x 192
        ("MaxPool_5a_3x3", pool),                            # 35 x 35 x 192
    ]


def inception_v3_base(inputs, final_endpoint: str = "Mixed_7c", min_depth: int = 16,
                      depth_multiplier: float = 1.0, scope=None):
    """Inception v3 up to `final_endpoint` (default: the last module, 8 x 8 x 2048).

    Args:
      inputs: [batch, height, width, 3] floats.
      final_endpoint: the last end point to build (Conv2d_1a_3x3 ... Mixed_7c).
      min_depth: the smallest channel count after depth_multiplier.
      depth_multiplier: scales every conv's channels (> 0).
      scope: the variable scope (a name or an open scope).

    Returns:
      (the tensor of final_endpoint, end_points).

    Raises:
      SlimError: depth_multiplier <= 0 or unknown final_endpoint.
    """
    depth = inception_utils.depth_fn(depth_multiplier, min_depth, "inception_v3")
    with_depth = lambda fn: functools.partial(fn, depth=depth)
    blocks = (_stem_blocks(depth)
              + [(name, with_depth(module_35)) for name in MODULES_35]
              + [("Mixed_6a", with_depth(reduction_6a))]
              + [(name, with_depth(module_17)) for name in MODULES_17]
              + [("Mixed_7a", with_depth(reduction_7a))]
              + [(name, with_depth(module_8)) for name in MODULES_8])
    with slim.variable_scope(scope, "InceptionV3"):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1,
                            padding="SAME"):
            return run_blocks(inputs, blocks, final_endpoint, "inception_v3_base")


def _aux_logits(net: tf.Tensor, num_classes: int, depth, spatial_squeeze: bool) -> tf.Tensor:
    """The auxiliary classifier on Mixed_6e: 5x5/3 avg pool, 1x1, 5x5, 1x1 logits."""
    with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1,
                        padding="SAME"):
        with slim.variable_scope("AuxLogits"):
            net = slim.avg_pool2d(net, [5, 5], stride=3, padding="VALID",
                                  scope="AvgPool_1a_5x5")                       # 5 x 5 x 768
            net = slim.conv2d(net, depth(128), [1, 1], scope="Conv2d_1b_1x1")   # 5 x 5 x 128
            kernel = reduced_kernel_size_for_small_input(net, [5, 5])
            net = slim.conv2d(net, depth(768), kernel, weights_initializer=trunc_normal(0.01),
                              padding="VALID", scope=f"Conv2d_2a_{kernel[0]}x{kernel[1]}")
            net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None,
                              weights_initializer=trunc_normal(0.001), scope="Conv2d_2b_1x1")
            if spatial_squeeze:
                net = tf.squeeze(net, [1, 2], name="SpatialSqueeze")
            return net


def inception_v3(inputs, num_classes: int | None = 1000, is_training: bool = True,
                 dropout_keep_prob: float = 0.8, min_depth: int = 16,
                 depth_multiplier: float = 1.0, prediction_fn=slim.softmax,
                 spatial_squeeze: bool = True, reuse=None, create_aux_logits: bool = True,
                 scope: str = "InceptionV3", global_pool: bool = False):
    """Inception v3 classifier: base, auxiliary head, 8x8 average pool, dropout, 1x1 logits.

    Args:
      inputs: [batch, 299, 299, 3] floats.
      num_classes: logits size; 0 or None returns the pooled features (and no aux head).
      is_training: batch norm in training mode and dropout on.
      dropout_keep_prob: keep probability of Dropout_1b.
      min_depth: the smallest channel count after depth_multiplier.
      depth_multiplier: scales every conv's channels (> 0).
      prediction_fn: turns logits into predictions.
      spatial_squeeze: squeeze the logits to [batch, num_classes].
      reuse: reuse the variables of an earlier build of `scope` in this call.
      create_aux_logits: build the auxiliary head (end point `AuxLogits`); it
        exists in eval mode too, as in the original.
      scope: the variable scope.
      global_pool: average over the whole feature map instead of an 8x8 window.

    Returns:
      (logits or features, end_points).

    Raises:
      SlimError: depth_multiplier <= 0.
    """
    depth = inception_utils.depth_fn(depth_multiplier, min_depth, "inception_v3")
    with slim.variable_scope(scope, "InceptionV3", reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_v3_base(inputs, scope=sc, min_depth=min_depth,
                                                depth_multiplier=depth_multiplier)
            if create_aux_logits and num_classes:
                end_points["AuxLogits"] = _aux_logits(end_points["Mixed_6e"], num_classes,
                                                      depth, spatial_squeeze)
            with slim.variable_scope("Logits"):
                if global_pool:
                    net = tf.reduce_mean(net, [1, 2], keepdims=True, name="GlobalPool")
                    end_points["global_pool"] = net
                else:
                    kernel = reduced_kernel_size_for_small_input(net, [8, 8])
                    net = slim.avg_pool2d(net, kernel, padding="VALID",
                                          scope=f"AvgPool_1a_{kernel[0]}x{kernel[1]}")
                    end_points["AvgPool_1a"] = net                          # 1 x 1 x 2048
                if not num_classes:
                    return net, end_points
                net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")
                end_points["PreLogits"] = net
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope="Conv2d_1c_1x1")
                if spatial_squeeze:
                    logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
            end_points["Logits"] = logits
            end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


inception_v3.default_image_size = 299
inception_v3_arg_scope = inception_utils.inception_arg_scope

NETS = (
    NetSpec(name="inception_v3", fn=inception_v3, arg_scope=inception_v3_arg_scope,
            default_image_size=299, preprocessing="inception",
            predictions_op="InceptionV3/Predictions/Reshape_1",
            logits_scopes=("InceptionV3/Logits", "InceptionV3/AuxLogits"),
            zoo=ZooCheckpoint(f"{TF_MODELS_URL}inception_v3_2016_08_28.tar.gz",
                              "inception_v3.ckpt", 78.0),
            keras_twin=("InceptionV3", {})),
)
