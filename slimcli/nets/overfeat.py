"""OverFeat of TF-Slim (Sermanet et al., 2013), the "fast" model at 231x231.

Variables and end points follow tensorflow/models research/slim
`nets/overfeat.py` (scope `overfeat`, fully connected layers as convolutions,
no softmax end point). The original's preprocessing map lacks overfeat;
slimcli uses VGG preprocessing.
"""

from __future__ import annotations

import tensorflow as tf

from slimcli import slim
from slimcli.nets.fc_conv_head import end_points_collection_name, fc_conv_head
from slimcli.nets.registry import NetSpec


def overfeat(inputs, num_classes: int | None = 1000, is_training: bool = True,
             dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True,
             scope: str = "overfeat", global_pool: bool = False):
    """OverFeat at 231x231 (fc6 sees a 6x6 map; larger inputs run fully convolutionally).

    Args:
      inputs: [batch, 231, 231, 3] floats.
      num_classes: logits size; 0 or None returns the fc7 features.
      is_training: enables dropout.
      dropout_keep_prob: keep probability of dropout6 and dropout7.
      spatial_squeeze: squeeze the logits to [batch, num_classes].
      scope: the variable scope.
      global_pool: average fc7 over space (for inputs other than 231).

    Returns:
      (logits or features, end_points).
    """
    with slim.variable_scope(scope, "overfeat") as sc:
        collection = end_points_collection_name(sc)
        with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.max_pool2d],
                            outputs_collections=collection):
            net = slim.conv2d(inputs, 64, [11, 11], 4, padding="VALID", scope="conv1")  # 56x56x64
            net = slim.max_pool2d(net, [2, 2], scope="pool1")                           # 28x28x64
            net = slim.conv2d(net, 256, [5, 5], padding="VALID", scope="conv2")         # 24x24x256
            net = slim.max_pool2d(net, [2, 2], scope="pool2")                           # 12x12x256
            net = slim.conv2d(net, 512, [3, 3], scope="conv3")                          # 12x12x512
            net = slim.conv2d(net, 1024, [3, 3], scope="conv4")                         # 12x12x1024
            net = slim.conv2d(net, 1024, [3, 3], scope="conv5")                         # 12x12x1024
            net = slim.max_pool2d(net, [2, 2], scope="pool5")                           # 6x6x1024
            with slim.arg_scope([slim.conv2d],
                                weights_initializer=slim.truncated_normal_initializer(0.0, 0.005),
                                biases_initializer=slim.constant_initializer(0.1)):
                return fc_conv_head(net, sc, num_classes, is_training, dropout_keep_prob,
                                    spatial_squeeze, global_pool, fc6_depth=3072,
                                    fc6_kernel=[6, 6])


overfeat.default_image_size = 231


def overfeat_arg_scope(weight_decay: float = 0.0005) -> dict:
    """ReLU convs and fully connected layers with zero biases and L2 decay; SAME convs, VALID pools.

    Args:
      weight_decay: L2 regularization of the weights.

    Returns:
      The arg-scope dict.
    """
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=tf.nn.relu,
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        biases_initializer=slim.zeros_initializer()):
        with slim.arg_scope([slim.conv2d], padding="SAME"):
            with slim.arg_scope([slim.max_pool2d], padding="VALID") as sc:
                return sc


NETS = (
    NetSpec(name="overfeat", fn=overfeat, arg_scope=overfeat_arg_scope, default_image_size=231,
            preprocessing="vgg", predictions_op=None, logits_scopes=("overfeat/fc8",),
            preprocessing_in_original=False,
            preprocessing_note="the original preprocessing map has no overfeat entry; "
                               "slimcli uses vgg preprocessing (mean subtraction; crop to 231)"),
)
