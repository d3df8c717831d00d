"""LeNet-5-like net of TF-Slim (Y. LeCun et al., 1998), for MNIST-sized inputs.

Variables and end points follow tensorflow/models research/slim `nets/lenet.py`
(scope `LeNet`, softmax op at the root: `Predictions/Reshape_1`).
"""

from __future__ import annotations

import tensorflow as tf

from slimcli import slim
from slimcli.nets.registry import NetSpec


def lenet(images, num_classes: int | None = 10, is_training: bool = False,
          dropout_keep_prob: float = 0.5, prediction_fn=slim.softmax, scope: str = "LeNet"):
    """LeNet: two 5x5 conv + pool stages, fc3 (1024), dropout, fc4 logits.

    Args:
      images: [batch, 28, 28, C] floats.
      num_classes: logits size; 0 or None returns the fc3 features.
      is_training: enables dropout.
      dropout_keep_prob: keep probability of dropout3.
      prediction_fn: turns logits into predictions.
      scope: the variable scope.

    Returns:
      (logits or features, end_points).
    """
    end_points = {}
    with slim.variable_scope(scope, "LeNet"):
        net = end_points["conv1"] = slim.conv2d(images, 32, [5, 5], scope="conv1")  # 28x28x32
        net = end_points["pool1"] = slim.max_pool2d(net, [2, 2], 2, scope="pool1")  # 14x14x32
        net = end_points["conv2"] = slim.conv2d(net, 64, [5, 5], scope="conv2")     # 14x14x64
        net = end_points["pool2"] = slim.max_pool2d(net, [2, 2], 2, scope="pool2")  # 7x7x64
        net = end_points["Flatten"] = slim.flatten(net)                              # 3136
        net = end_points["fc3"] = slim.fully_connected(net, 1024, scope="fc3")
        if not num_classes:
            return net, end_points
        net = end_points["dropout3"] = slim.dropout(net, dropout_keep_prob,
                                                    is_training=is_training, scope="dropout3")
        logits = end_points["Logits"] = slim.fully_connected(net, num_classes, activation_fn=None,
                                                             scope="fc4")
    end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


lenet.default_image_size = 28


def lenet_arg_scope(weight_decay: float = 0.0) -> dict:
    """ReLU convs and fully connected layers, N(0, 0.1) truncated weights, L2 decay."""
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        weights_initializer=slim.truncated_normal_initializer(stddev=0.1),
                        activation_fn=tf.nn.relu) as sc:
        return sc


NETS = (
    NetSpec(name="lenet", fn=lenet, arg_scope=lenet_arg_scope, default_image_size=28,
            preprocessing="lenet", predictions_op="Predictions/Reshape_1",
            logits_scopes=("LeNet/fc4",), zoo_num_classes=10,
            keras_twin=("Sequential", {})),  # built layer by layer in slimcli.benchmark
)
