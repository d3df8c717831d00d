"""AlexNet v2 of TF-Slim: the "one weird trick" variant (Krizhevsky, 2014), no LRN.

Variables and end points follow tensorflow/models research/slim
`nets/alexnet.py` (scope `alexnet_v2`, fully connected layers as convolutions,
no softmax end point). The original's preprocessing map lacks alexnet_v2;
slimcli uses VGG preprocessing.
"""

from __future__ import annotations

import tensorflow as tf

from slimcli import slim
from slimcli.nets.fc_conv_head import end_points_collection_name, fc_conv_head
from slimcli.nets.registry import NetSpec


def alexnet_v2(inputs, num_classes: int | None = 1000, is_training: bool = True,
               dropout_keep_prob: float = 0.5, spatial_squeeze: bool = True,
               scope: str = "alexnet_v2", global_pool: bool = False):
    """AlexNet v2 at 224x224 (fc6 sees a 5x5 map; larger inputs run fully convolutionally).

    Args:
      inputs: [batch, 224, 224, 3] floats.
      num_classes: logits size; 0 or None returns the fc7 features.
      is_training: enables dropout.
      dropout_keep_prob: keep probability of dropout6 and dropout7.
      spatial_squeeze: squeeze the logits to [batch, num_classes].
      scope: the variable scope.
      global_pool: average fc7 over space (for inputs other than 224).

    Returns:
      (logits or features, end_points).
    """
    with slim.variable_scope(scope, "alexnet_v2") as sc:
        collection = end_points_collection_name(sc)
        with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.max_pool2d],
                            outputs_collections=[collection]):
            net = slim.conv2d(inputs, 64, [11, 11], 4, padding="VALID", scope="conv1")  # 54x54x64
            net = slim.max_pool2d(net, [3, 3], 2, scope="pool1")                        # 26x26x64
            net = slim.conv2d(net, 192, [5, 5], scope="conv2")                          # 26x26x192
            net = slim.max_pool2d(net, [3, 3], 2, scope="pool2")                        # 12x12x192
            net = slim.conv2d(net, 384, [3, 3], scope="conv3")                          # 12x12x384
            net = slim.conv2d(net, 384, [3, 3], scope="conv4")                          # 12x12x384
            net = slim.conv2d(net, 256, [3, 3], scope="conv5")                          # 12x12x256
            net = slim.max_pool2d(net, [3, 3], 2, scope="pool5")                        # 5x5x256
            with slim.arg_scope([slim.conv2d],
                                weights_initializer=slim.truncated_normal_initializer(0.0, 0.005),
                                biases_initializer=slim.constant_initializer(0.1)):
                return fc_conv_head(net, sc, num_classes, is_training, dropout_keep_prob,
                                    spatial_squeeze, global_pool, fc6_depth=4096,
                                    fc6_kernel=[5, 5])


alexnet_v2.default_image_size = 224


def alexnet_v2_arg_scope(weight_decay: float = 0.0005) -> dict:
    """ReLU convs and fully connected layers with bias 0.1 and L2 decay; SAME convs, VALID pools.

    Args:
      weight_decay: L2 regularization of the weights.

    Returns:
      The arg-scope dict.
    """
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=tf.nn.relu,
                        biases_initializer=slim.constant_initializer(0.1),
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.conv2d], padding="SAME"):
            with slim.arg_scope([slim.max_pool2d], padding="VALID") as sc:
                return sc


NETS = (
    NetSpec(name="alexnet_v2", fn=alexnet_v2, arg_scope=alexnet_v2_arg_scope,
            default_image_size=224, preprocessing="vgg", predictions_op=None,
            logits_scopes=("alexnet_v2/fc8",), preprocessing_in_original=False,
            preprocessing_note="the original preprocessing map has no alexnet_v2 entry; "
                               "slimcli uses vgg preprocessing (mean subtraction, 224 crop)"),
)
