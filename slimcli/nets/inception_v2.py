"""Inception v2 (BN-Inception; Ioffe & Szegedy, 2015) of TF-Slim.

Variables, end points and the prediction op (`InceptionV2/Predictions/Reshape_1`)
follow tensorflow/models research/slim `nets/inception_v2.py`, including the
separable 7x7 stem conv (depthwise multiplier 8, with biases, no batch norm).
"""

from __future__ import annotations

import functools

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets import inception_utils
from slimcli.nets.inception_utils import (concat_branches, reduced_kernel_size_for_small_input,
                                          run_blocks, trunc_normal)
from slimcli.nets.registry import TF_MODELS_URL, NetSpec, ZooCheckpoint, open_model_zoo_pin

# Inception modules: Branch_0 1x1; Branch_1 1x1 -> 3x3; Branch_2 1x1 -> 3x3 -> 3x3
# (both 3x3 of the same depth); Branch_3 3x3 pool ('avg' or 'max') -> 1x1.
MODULES = {
    "Mixed_3b": (64, 64, 64, 64, 96, "avg", 32),        # 28 x 28 x 256
    "Mixed_3c": (64, 64, 96, 64, 96, "avg", 64),        # 28 x 28 x 320
    "Mixed_4b": (224, 64, 96, 96, 128, "avg", 128),     # 14 x 14 x 576
    "Mixed_4c": (192, 96, 128, 96, 128, "avg", 128),    # 14 x 14 x 576
    "Mixed_4d": (160, 128, 160, 128, 160, "avg", 96),   # 14 x 14 x 576
    "Mixed_4e": (96, 128, 192, 160, 192, "avg", 96),    # 14 x 14 x 576
    "Mixed_5b": (352, 192, 320, 160, 224, "avg", 128),  # 7 x 7 x 1024
    "Mixed_5c": (352, 192, 320, 192, 224, "max", 128),  # 7 x 7 x 1024
}
# Grid reductions: Branch_0 1x1 -> 3x3/2; Branch_1 1x1 -> 3x3 -> 3x3/2; Branch_2 3x3/2 max pool.
REDUCTIONS = {
    "Mixed_4a": (128, 160, 64, 96),                     # 14 x 14 x 576
    "Mixed_5a": (128, 192, 192, 256),                   # 7 x 7 x 1024
}


def inception_module(net: tf.Tensor, name: str, depth) -> tf.Tensor:
    """An Inception v2 module with the channels of MODULES[name] scaled by `depth`."""
    d0, d1a, d1b, d2a, d2b, pool_kind, d3 = MODULES[name]
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, depth(d0), [1, 1], scope="Conv2d_0a_1x1")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, depth(d1a), [1, 1], weights_initializer=trunc_normal(0.09),
                                   scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, depth(d1b), [3, 3], scope="Conv2d_0b_3x3")
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, depth(d2a), [1, 1], weights_initializer=trunc_normal(0.09),
                                   scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, depth(d2b), [3, 3], scope="Conv2d_0b_3x3")
            branch_2 = slim.conv2d(branch_2, depth(d2b), [3, 3], scope="Conv2d_0c_3x3")
        with slim.variable_scope("Branch_3"):
            if pool_kind == "max":
                branch_3 = slim.max_pool2d(net, [3, 3], scope="MaxPool_0a_3x3")
            else:
                branch_3 = slim.avg_pool2d(net, [3, 3], scope="AvgPool_0a_3x3")
            branch_3 = slim.conv2d(branch_3, depth(d3), [1, 1],
                                   weights_initializer=trunc_normal(0.1), scope="Conv2d_0b_1x1")
        return concat_branches([branch_0, branch_1, branch_2, branch_3])


def reduction_module(net: tf.Tensor, name: str, depth) -> tf.Tensor:
    """A grid reduction (stride 2) with the channels of REDUCTIONS[name] scaled by `depth`."""
    d0a, d0b, d1a, d1b = REDUCTIONS[name]
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, depth(d0a), [1, 1], weights_initializer=trunc_normal(0.09),
                                   scope="Conv2d_0a_1x1")
            branch_0 = slim.conv2d(branch_0, depth(d0b), [3, 3], stride=2, scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, depth(d1a), [1, 1], weights_initializer=trunc_normal(0.09),
                                   scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, depth(d1b), [3, 3], scope="Conv2d_0b_3x3")
            branch_1 = slim.conv2d(branch_1, depth(d1b), [3, 3], stride=2, scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.max_pool2d(net, [3, 3], stride=2, scope="MaxPool_1a_3x3")
        return concat_branches([branch_0, branch_1, branch_2])


def _stem_conv(net: tf.Tensor, name: str, depth, use_separable_conv: bool) -> tf.Tensor:
    """Conv2d_1a_7x7: separable (depthwise multiplier min(depth(64) // 3, 8)) or plain."""
    if use_separable_conv:
        multiplier = min(int(depth(64) / 3), 8)
        return slim.separable_conv2d(net, depth(64), [7, 7], depth_multiplier=multiplier,
                                     stride=2, padding="SAME",
                                     weights_initializer=trunc_normal(1.0), scope=name)
    return slim.conv2d(net, depth(64), [7, 7], stride=2, weights_initializer=trunc_normal(1.0),
                       scope=name)


def _blocks(depth, use_separable_conv: bool, include_root_block: bool) -> list:
    pool = lambda net, name: slim.max_pool2d(net, [3, 3], stride=2, scope=name)
    module = functools.partial(inception_module, depth=depth)
    reduction = functools.partial(reduction_module, depth=depth)
    root = [
        ("Conv2d_1a_7x7", functools.partial(_stem_conv, depth=depth,
                                            use_separable_conv=use_separable_conv)),  # 112x112x64
        ("MaxPool_2a_3x3", pool),                                                     # 56x56x64
        ("Conv2d_2b_1x1", lambda net, name: slim.conv2d(
            net, depth(64), [1, 1], weights_initializer=trunc_normal(0.1), scope=name)),
        ("Conv2d_2c_3x3", lambda net, name: slim.conv2d(net, depth(192), [3, 3], scope=name)),
        ("MaxPool_3a_3x3", pool),                                                     # 28x28x192
    ]
    return ((root if include_root_block else [])
            + [("Mixed_3b", module), ("Mixed_3c", module), ("Mixed_4a", reduction)]
            + [(f"Mixed_4{c}", module) for c in "bcde"]
            + [("Mixed_5a", reduction), ("Mixed_5b", module), ("Mixed_5c", module)])


def inception_v2_base(inputs, final_endpoint: str = "Mixed_5c", min_depth: int = 16,
                      depth_multiplier: float = 1.0, use_separable_conv: bool = True,
                      data_format: str = "NHWC", include_root_block: bool = True, scope=None):
    """Inception v2 up to `final_endpoint` (default: the last module, 7 x 7 x 1024).

    Args:
      inputs: [batch, height, width, 3] floats.
      final_endpoint: the last end point to build (Conv2d_1a_7x7 ... Mixed_5c).
      min_depth: the smallest channel count after depth_multiplier.
      depth_multiplier: scales every conv's channels (> 0).
      use_separable_conv: a separable stem conv (the published checkpoints), else a plain one.
      data_format: NHWC only (TensorFlow converts layouts on the GPU itself).
      include_root_block: build the stem (Conv2d_1a_7x7 ... MaxPool_3a_3x3).
      scope: the variable scope (a name or an open scope).

    Returns:
      (the tensor of final_endpoint, end_points).

    Raises:
      SlimError: depth_multiplier <= 0, a data_format other than NHWC, unknown final_endpoint.
    """
    depth = inception_utils.depth_fn(depth_multiplier, min_depth, "inception_v2")
    if data_format != "NHWC":
        raise SlimError(f"inception_v2: data_format={data_format!r} is not supported; use 'NHWC' "
                        f"(TensorFlow picks the GPU layout itself).")
    blocks = _blocks(depth, use_separable_conv, include_root_block)
    with slim.variable_scope(scope, "InceptionV2"):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1,
                            padding="SAME"):
            return run_blocks(inputs, blocks, final_endpoint, "inception_v2_base")


def inception_v2(inputs, num_classes: int | None = 1000, is_training: bool = True,
                 dropout_keep_prob: float = 0.8, min_depth: int = 16,
                 depth_multiplier: float = 1.0, prediction_fn=slim.softmax,
                 spatial_squeeze: bool = True, reuse=None, scope: str = "InceptionV2",
                 global_pool: bool = False):
    """Inception v2 classifier: base, 7x7 average pool, dropout, 1x1 conv logits.

    Args:
      inputs: [batch, 224, 224, 3] floats.
      num_classes: logits size; 0 or None returns the pooled features.
      is_training: batch norm in training mode and dropout on.
      dropout_keep_prob: keep probability of Dropout_1b.
      min_depth: the smallest channel count after depth_multiplier.
      depth_multiplier: scales every conv's channels (> 0).
      prediction_fn: turns logits into predictions.
      spatial_squeeze: squeeze the logits to [batch, num_classes].
      reuse: reuse the variables of an earlier build of `scope` in this call.
      scope: the variable scope.
      global_pool: average over the whole feature map instead of a 7x7 window.

    Returns:
      (logits or features, end_points).

    Raises:
      SlimError: depth_multiplier <= 0.
    """
    inception_utils.check_depth_multiplier(depth_multiplier, "inception_v2")
    with slim.variable_scope(scope, "InceptionV2", reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_v2_base(inputs, scope=sc, min_depth=min_depth,
                                                depth_multiplier=depth_multiplier)
            with slim.variable_scope("Logits"):
                if global_pool:
                    net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
                    end_points["global_pool"] = net
                else:
                    kernel = reduced_kernel_size_for_small_input(net, [7, 7])
                    net = slim.avg_pool2d(net, kernel, padding="VALID",
                                          scope=f"AvgPool_1a_{kernel[0]}x{kernel[1]}")
                    end_points["AvgPool_1a"] = net                          # 1 x 1 x 1024
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


inception_v2.default_image_size = 224
inception_v2_arg_scope = inception_utils.inception_arg_scope

NETS = (
    NetSpec(name="inception_v2", fn=inception_v2, arg_scope=inception_v2_arg_scope,
            default_image_size=224, preprocessing="inception",
            predictions_op="InceptionV2/Predictions/Reshape_1",
            logits_scopes=("InceptionV2/Logits",),
            # Digest: open_model_zoo models/public/googlenet-v2-tf/model.yml.
            zoo=ZooCheckpoint(f"{TF_MODELS_URL}inception_v2_2016_08_28.tar.gz",
                              "inception_v2.ckpt", 73.9, **open_model_zoo_pin(
                                  "googlenet-v2-tf", "sha384:c0b2efbae8fc5e237ae67637dca3f311d4"
                                  "b4f7da576b56067e83d95c398a2fccd50baff9cc0de64335f4d7b78e1adb07",
                                  41577079))),
)
