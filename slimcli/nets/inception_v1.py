"""Inception v1 (GoogLeNet; Szegedy et al., 2014) of TF-Slim, with batch norm.

Variables, end points and the prediction op
(`InceptionV1/Logits/Predictions/Reshape_1`: the softmax sits inside the
`Logits` scope) follow tensorflow/models research/slim `nets/inception_v1.py`.
"""

from __future__ import annotations


import tensorflow as tf

from slimcli import slim
from slimcli.nets import inception_utils
from slimcli.nets.inception_utils import concat_branches, run_blocks, trunc_normal
from slimcli.nets.registry import TF_MODELS_URL, NetSpec, ZooCheckpoint, open_model_zoo_pin

# Channels of each Inception module: Branch_0 1x1; Branch_1 1x1 -> 3x3;
# Branch_2 1x1 -> 3x3; Branch_3 3x3 max pool -> 1x1.
MODULE_DEPTHS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),       # 28 x 28 x 256
    "Mixed_3c": (128, 128, 192, 32, 96, 64),     # 28 x 28 x 480
    "Mixed_4b": (192, 96, 208, 16, 48, 64),      # 14 x 14 x 512
    "Mixed_4c": (160, 112, 224, 24, 64, 64),     # 14 x 14 x 512
    "Mixed_4d": (128, 128, 256, 24, 64, 64),     # 14 x 14 x 512
    "Mixed_4e": (112, 144, 288, 32, 64, 64),     # 14 x 14 x 528
    "Mixed_4f": (256, 160, 320, 32, 128, 128),   # 14 x 14 x 832
    "Mixed_5b": (256, 160, 320, 32, 128, 128),   # 7 x 7 x 832
    "Mixed_5c": (384, 192, 384, 48, 128, 128),   # 7 x 7 x 1024
}
# The original names one 3x3 conv differently; checkpoints keep the name.
BRANCH_2_3X3_NAME = {"Mixed_5b": "Conv2d_0a_3x3"}


def inception_module(net: tf.Tensor, name: str) -> tf.Tensor:
    """One GoogLeNet module with the depths of MODULE_DEPTHS[name]."""
    d0, d1a, d1b, d2a, d2b, d3 = MODULE_DEPTHS[name]
    with slim.variable_scope(name):
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, d0, [1, 1], scope="Conv2d_0a_1x1")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, d1a, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, d1b, [3, 3], scope="Conv2d_0b_3x3")
        with slim.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, d2a, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, d2b, [3, 3],
                                   scope=BRANCH_2_3X3_NAME.get(name, "Conv2d_0b_3x3"))
        with slim.variable_scope("Branch_3"):
            branch_3 = slim.max_pool2d(net, [3, 3], scope="MaxPool_0a_3x3")
            branch_3 = slim.conv2d(branch_3, d3, [1, 1], scope="Conv2d_0b_1x1")
        return concat_branches([branch_0, branch_1, branch_2, branch_3])


def _root_blocks() -> list:
    conv = lambda depth, kernel, stride=1: (
        lambda net, name: slim.conv2d(net, depth, kernel, stride=stride, scope=name))
    pool = lambda kernel: lambda net, name: slim.max_pool2d(net, kernel, stride=2, scope=name)
    return [
        ("Conv2d_1a_7x7", conv(64, [7, 7], 2)),   # 112 x 112 x 64
        ("MaxPool_2a_3x3", pool([3, 3])),         # 56 x 56 x 64
        ("Conv2d_2b_1x1", conv(64, [1, 1])),      # 56 x 56 x 64
        ("Conv2d_2c_3x3", conv(192, [3, 3])),     # 56 x 56 x 192
        ("MaxPool_3a_3x3", pool([3, 3])),         # 28 x 28 x 192
    ]


def inception_v1_base(inputs, final_endpoint: str = "Mixed_5c", include_root_block: bool = True,
                      scope="InceptionV1"):
    """Inception v1 up to `final_endpoint` (default: the last module, 7 x 7 x 1024).

    Args:
      inputs: [batch, height, width, 3] floats.
      final_endpoint: the last end point to build (Conv2d_1a_7x7 ... Mixed_5c).
      include_root_block: build the stem (Conv2d_1a_7x7 ... MaxPool_3a_3x3);
        without it the modules start on `inputs`.
      scope: the variable scope (a name or an open scope).

    Returns:
      (the tensor of final_endpoint, end_points).

    Raises:
      SlimError: unknown final_endpoint.
    """
    pool = lambda kernel: lambda net, name: slim.max_pool2d(net, kernel, stride=2, scope=name)
    blocks = _root_blocks() if include_root_block else []
    blocks += [(name, inception_module) for name in ("Mixed_3b", "Mixed_3c")]
    blocks.append(("MaxPool_4a_3x3", pool([3, 3])))                         # 14 x 14 x 480
    blocks += [(f"Mixed_4{c}", inception_module) for c in "bcdef"]
    blocks.append(("MaxPool_5a_2x2", pool([2, 2])))                         # 7 x 7 x 832
    blocks += [(name, inception_module) for name in ("Mixed_5b", "Mixed_5c")]
    with slim.variable_scope(scope, "InceptionV1"):
        with slim.arg_scope([slim.conv2d, slim.fully_connected],
                            weights_initializer=trunc_normal(0.01)):
            with slim.arg_scope([slim.conv2d, slim.max_pool2d], stride=1, padding="SAME"):
                return run_blocks(inputs, blocks, final_endpoint, "inception_v1_base")


def inception_v1(inputs, num_classes: int | None = 1000, is_training: bool = True,
                 dropout_keep_prob: float = 0.8, prediction_fn=slim.softmax,
                 spatial_squeeze: bool = True, reuse=None, scope: str = "InceptionV1",
                 global_pool: bool = False):
    """Inception v1 classifier: base, 7x7 average pool, dropout, 1x1 conv logits.

    Args:
      inputs: [batch, 224, 224, 3] floats.
      num_classes: logits size; 0 or None returns the pooled features [batch, 1, 1, 1024].
      is_training: batch norm in training mode and dropout on.
      dropout_keep_prob: keep probability of Dropout_0b.
      prediction_fn: turns logits into predictions.
      spatial_squeeze: squeeze the logits to [batch, num_classes].
      reuse: reuse the variables of an earlier build of `scope` in this call.
      scope: the variable scope.
      global_pool: average over the whole feature map instead of a 7x7 window.

    Returns:
      (logits or features, end_points).
    """
    with slim.variable_scope(scope, "InceptionV1", reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_v1_base(inputs, scope=sc)           # 7 x 7 x 1024
            with slim.variable_scope("Logits"):
                if global_pool:
                    net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
                    end_points["global_pool"] = net
                else:
                    net = slim.avg_pool2d(net, [7, 7], stride=1, scope="AvgPool_0a_7x7")
                    end_points["AvgPool_0a_7x7"] = net                      # 1 x 1 x 1024
                if not num_classes:
                    return net, end_points
                net = slim.dropout(net, dropout_keep_prob, scope="Dropout_0b")
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope="Conv2d_0c_1x1")
                if spatial_squeeze:
                    logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
                end_points["Logits"] = logits
                end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


inception_v1.default_image_size = 224
inception_v1_arg_scope = inception_utils.inception_arg_scope

NETS = (
    NetSpec(name="inception_v1", fn=inception_v1, arg_scope=inception_v1_arg_scope,
            default_image_size=224, preprocessing="inception",
            predictions_op="InceptionV1/Logits/Predictions/Reshape_1",
            logits_scopes=("InceptionV1/Logits",),
            # Digest: open_model_zoo models/public/googlenet-v1-tf/model.yml.
            zoo=ZooCheckpoint(f"{TF_MODELS_URL}inception_v1_2016_08_28.tar.gz",
                              "inception_v1.ckpt", 69.8, **open_model_zoo_pin(
                                  "googlenet-v1-tf", "sha256:7a620c430fcaba8f8f716241f5148c4c47"
                                  "c035cce4e49ef02cfbe6cd1adf96a6", 24642554))),
)
