"""CifarNet: the small CIFAR-10 net of TF-Slim (after the cuda-convnet CIFAR-10 model).

Variables, end points and the prediction op (`CifarNet/Predictions/Reshape_1`)
follow tensorflow/models research/slim `nets/cifarnet.py`.
"""

from __future__ import annotations

import tensorflow as tf

from slimcli import slim
from slimcli.nets.registry import NetSpec


def _lrn(net: tf.Tensor, name: str) -> tf.Tensor:
    """Local response normalization with CifarNet's constants."""
    return tf.nn.local_response_normalization(net, depth_radius=4, bias=1.0, alpha=0.001 / 9.0,
                                              beta=0.75, name=name)


def cifarnet(images, num_classes: int | None = 10, is_training: bool = False,
             dropout_keep_prob: float = 0.5, prediction_fn=slim.softmax,
             scope: str = "CifarNet"):
    """CifarNet: conv-pool-lrn twice, then fc3 (384), fc4 (192) and the logits.

    Args:
      images: [batch, 32, 32, 3] floats.
      num_classes: logits size; 0 or None returns the fc4 features.
      is_training: enables dropout.
      dropout_keep_prob: keep probability of dropout3 (after fc3).
      prediction_fn: turns logits into predictions.
      scope: the variable scope.

    Returns:
      (logits or fc4 features, end_points).
    """
    end_points = {}
    with slim.variable_scope(scope, "CifarNet"):
        net = end_points["conv1"] = slim.conv2d(images, 64, [5, 5], scope="conv1")  # 32x32x64
        net = end_points["pool1"] = slim.max_pool2d(net, [2, 2], 2, scope="pool1")  # 16x16x64
        net = _lrn(net, "norm1")
        net = end_points["conv2"] = slim.conv2d(net, 64, [5, 5], scope="conv2")     # 16x16x64
        net = _lrn(net, "norm2")
        net = end_points["pool2"] = slim.max_pool2d(net, [2, 2], 2, scope="pool2")  # 8x8x64
        net = end_points["Flatten"] = slim.flatten(net)                              # 4096
        net = end_points["fc3"] = slim.fully_connected(net, 384, scope="fc3")
        net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout3")
        net = end_points["fc4"] = slim.fully_connected(net, 192, scope="fc4")
        if not num_classes:
            return net, end_points
        logits = end_points["Logits"] = slim.fully_connected(
            net, num_classes, biases_initializer=slim.zeros_initializer(),
            weights_initializer=slim.truncated_normal_initializer(stddev=1 / 192.0),
            weights_regularizer=None, activation_fn=None, scope="logits")
        end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


cifarnet.default_image_size = 32


def cifarnet_arg_scope(weight_decay: float = 0.004) -> dict:
    """ReLU layers; N(0, 0.05) conv weights; fully connected: N(0, 0.04), bias 0.1, L2 decay.

    Args:
      weight_decay: L2 regularization of the fully connected weights.

    Returns:
      The arg-scope dict.
    """
    with slim.arg_scope([slim.conv2d],
                        weights_initializer=slim.truncated_normal_initializer(stddev=5e-2),
                        activation_fn=tf.nn.relu):
        with slim.arg_scope([slim.fully_connected],
                            biases_initializer=slim.constant_initializer(0.1),
                            weights_initializer=slim.truncated_normal_initializer(stddev=0.04),
                            weights_regularizer=slim.l2_regularizer(weight_decay),
                            activation_fn=tf.nn.relu) as sc:
            return sc


NETS = (
    NetSpec(name="cifarnet", fn=cifarnet, arg_scope=cifarnet_arg_scope, default_image_size=32,
            preprocessing="cifarnet", predictions_op="CifarNet/Predictions/Reshape_1",
            logits_scopes=("CifarNet/logits",), zoo_num_classes=10,
            keras_twin=("Sequential", {})),  # built layer by layer in slimcli.benchmark
)
