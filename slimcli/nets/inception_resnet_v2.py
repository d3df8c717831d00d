"""Inception-ResNet-v2 (Szegedy et al., "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning", 2016).

Variables, end points and arguments follow tensorflow/models research/slim
`nets/inception_resnet_v2.py`: a stem, Mixed_5b, 10 x Block35
(`Repeat/block35_<i>`), Mixed_6a, 20 x Block17 (`Repeat_1/block17_<i>`),
Mixed_7a, 9 x Block8 (`Repeat_2/block8_<i>`) and a last Block8 without
activation (`Block8`), Conv2d_7b_1x1; an auxiliary head on PreAuxLogits; the
softmax is a plain op `InceptionResnetV2/Logits/Predictions`.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.registry import TF_MODELS_URL, NetSpec, ZooCheckpoint

# The end points of inception_resnet_v2_base, in order.
BASE_END_POINTS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_3a_3x3", "Conv2d_3b_1x1",
    "Conv2d_4a_3x3", "MaxPool_5a_3x3", "Mixed_5b", "Mixed_6a", "PreAuxLogits", "Mixed_7a",
    "Conv2d_7b_1x1",
)


def _residual(net: tf.Tensor, mixed: tf.Tensor, scale: float,
              activation_fn: Callable | None) -> tf.Tensor:
    """`net + scale * up(mixed)`, then the activation (ReLU6 also clips the residual)."""
    up = slim.conv2d(mixed, net.shape[3], 1, normalizer_fn=None, activation_fn=None,
                     scope="Conv2d_1x1")
    scaled_up = up * scale
    if activation_fn is tf.nn.relu6:
        scaled_up = tf.clip_by_value(scaled_up, -6.0, 6.0)
    net = net + scaled_up
    if activation_fn:
        net = activation_fn(net)
    return net


def block35(net: tf.Tensor, scale: float = 1.0, activation_fn: Callable | None = tf.nn.relu,
            scope: str | None = None, reuse: Any = None) -> tf.Tensor:
    """The 35 x 35 residual Inception block (Inception-ResNet-A).

    Args:
      net: the previous block's output; the block adds a scaled residual to it.
      scale: the residual's scale.
      activation_fn: applied after the sum (None for the last Block8).
      scope: the variable scope.
      reuse: reuse the variables of the scope.

    Returns:
      A tensor of the shape of `net`.
    """
    with slim.variable_scope(scope, "Block35", reuse=reuse):
        with slim.variable_scope("Branch_0"):
            tower_conv = slim.conv2d(net, 32, 1, scope="Conv2d_1x1")
        with slim.variable_scope("Branch_1"):
            tower_conv1_0 = slim.conv2d(net, 32, 1, scope="Conv2d_0a_1x1")
            tower_conv1_1 = slim.conv2d(tower_conv1_0, 32, 3, scope="Conv2d_0b_3x3")
        with slim.variable_scope("Branch_2"):
            tower_conv2_0 = slim.conv2d(net, 32, 1, scope="Conv2d_0a_1x1")
            tower_conv2_1 = slim.conv2d(tower_conv2_0, 48, 3, scope="Conv2d_0b_3x3")
            tower_conv2_2 = slim.conv2d(tower_conv2_1, 64, 3, scope="Conv2d_0c_3x3")
        mixed = tf.concat(axis=3, values=[tower_conv, tower_conv1_1, tower_conv2_2])
        return _residual(net, mixed, scale, activation_fn)


def block17(net: tf.Tensor, scale: float = 1.0, activation_fn: Callable | None = tf.nn.relu,
            scope: str | None = None, reuse: Any = None) -> tf.Tensor:
    """The 17 x 17 residual Inception block (Inception-ResNet-B).

    Args:
      net: the previous block's output; the block adds a scaled residual to it.
      scale: the residual's scale.
      activation_fn: applied after the sum (None for the last Block8).
      scope: the variable scope.
      reuse: reuse the variables of the scope.

    Returns:
      A tensor of the shape of `net`.
    """
    with slim.variable_scope(scope, "Block17", reuse=reuse):
        with slim.variable_scope("Branch_0"):
            tower_conv = slim.conv2d(net, 192, 1, scope="Conv2d_1x1")
        with slim.variable_scope("Branch_1"):
            tower_conv1_0 = slim.conv2d(net, 128, 1, scope="Conv2d_0a_1x1")
            tower_conv1_1 = slim.conv2d(tower_conv1_0, 160, [1, 7], scope="Conv2d_0b_1x7")
            tower_conv1_2 = slim.conv2d(tower_conv1_1, 192, [7, 1], scope="Conv2d_0c_7x1")
        mixed = tf.concat(axis=3, values=[tower_conv, tower_conv1_2])
        return _residual(net, mixed, scale, activation_fn)


def block8(net: tf.Tensor, scale: float = 1.0, activation_fn: Callable | None = tf.nn.relu,
           scope: str | None = None, reuse: Any = None) -> tf.Tensor:
    """The 8 x 8 residual Inception block (Inception-ResNet-C).

    Args:
      net: the previous block's output; the block adds a scaled residual to it.
      scale: the residual's scale.
      activation_fn: applied after the sum (None for the last Block8).
      scope: the variable scope.
      reuse: reuse the variables of the scope.

    Returns:
      A tensor of the shape of `net`.
    """
    with slim.variable_scope(scope, "Block8", reuse=reuse):
        with slim.variable_scope("Branch_0"):
            tower_conv = slim.conv2d(net, 192, 1, scope="Conv2d_1x1")
        with slim.variable_scope("Branch_1"):
            tower_conv1_0 = slim.conv2d(net, 192, 1, scope="Conv2d_0a_1x1")
            tower_conv1_1 = slim.conv2d(tower_conv1_0, 224, [1, 3], scope="Conv2d_0b_1x3")
            tower_conv1_2 = slim.conv2d(tower_conv1_1, 256, [3, 1], scope="Conv2d_0c_3x1")
        mixed = tf.concat(axis=3, values=[tower_conv, tower_conv1_2])
        return _residual(net, mixed, scale, activation_fn)


def _check_base_args(final_endpoint: str, output_stride: int) -> None:
    if final_endpoint not in BASE_END_POINTS:
        raise SlimError(f"inception_resnet_v2_base: unknown final_endpoint={final_endpoint!r}; "
                        f"use one of {', '.join(BASE_END_POINTS)}.")
    if output_stride not in (8, 16):
        raise SlimError(f"inception_resnet_v2_base: output_stride={output_stride} is not "
                        f"supported; use 16 (or 8, up to PreAuxLogits).")
    if output_stride == 8 and (BASE_END_POINTS.index(final_endpoint)
                               > BASE_END_POINTS.index("PreAuxLogits")):
        raise SlimError(f"inception_resnet_v2_base: output_stride=8 is supported only up to "
                        f"the PreAuxLogits end point, got final_endpoint={final_endpoint!r}; "
                        f"use output_stride=16 or final_endpoint='PreAuxLogits'.")


def _mixed_5b(net: tf.Tensor) -> tf.Tensor:
    with slim.variable_scope("Mixed_5b"):                           # 35 x 35 x 320
        with slim.variable_scope("Branch_0"):
            tower_conv = slim.conv2d(net, 96, 1, scope="Conv2d_1x1")
        with slim.variable_scope("Branch_1"):
            tower_conv1_0 = slim.conv2d(net, 48, 1, scope="Conv2d_0a_1x1")
            tower_conv1_1 = slim.conv2d(tower_conv1_0, 64, 5, scope="Conv2d_0b_5x5")
        with slim.variable_scope("Branch_2"):
            tower_conv2_0 = slim.conv2d(net, 64, 1, scope="Conv2d_0a_1x1")
            tower_conv2_1 = slim.conv2d(tower_conv2_0, 96, 3, scope="Conv2d_0b_3x3")
            tower_conv2_2 = slim.conv2d(tower_conv2_1, 96, 3, scope="Conv2d_0c_3x3")
        with slim.variable_scope("Branch_3"):
            tower_pool = slim.avg_pool2d(net, 3, stride=1, padding="SAME", scope="AvgPool_0a_3x3")
            tower_pool_1 = slim.conv2d(tower_pool, 64, 1, scope="Conv2d_0b_1x1")
        return tf.concat([tower_conv, tower_conv1_1, tower_conv2_2, tower_pool_1], 3)


def _mixed_6a(net: tf.Tensor, padding: str, use_atrous: bool) -> tf.Tensor:
    stride = 1 if use_atrous else 2
    with slim.variable_scope("Mixed_6a"):                           # 17 x 17 x 1088
        with slim.variable_scope("Branch_0"):
            tower_conv = slim.conv2d(net, 384, 3, stride=stride, padding=padding,
                                     scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_1"):
            tower_conv1_0 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
            tower_conv1_1 = slim.conv2d(tower_conv1_0, 256, 3, scope="Conv2d_0b_3x3")
            tower_conv1_2 = slim.conv2d(tower_conv1_1, 384, 3, stride=stride, padding=padding,
                                        scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_2"):
            tower_pool = slim.max_pool2d(net, 3, stride=stride, padding=padding,
                                         scope="MaxPool_1a_3x3")
        return tf.concat([tower_conv, tower_conv1_2, tower_pool], 3)


def _mixed_7a(net: tf.Tensor, padding: str) -> tf.Tensor:
    with slim.variable_scope("Mixed_7a"):                           # 8 x 8 x 2080
        with slim.variable_scope("Branch_0"):
            tower_conv = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
            tower_conv_1 = slim.conv2d(tower_conv, 384, 3, stride=2, padding=padding,
                                       scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_1"):
            tower_conv1 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
            tower_conv1_1 = slim.conv2d(tower_conv1, 288, 3, stride=2, padding=padding,
                                        scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_2"):
            tower_conv2 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
            tower_conv2_1 = slim.conv2d(tower_conv2, 288, 3, scope="Conv2d_0b_3x3")
            tower_conv2_2 = slim.conv2d(tower_conv2_1, 320, 3, stride=2, padding=padding,
                                        scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_3"):
            tower_pool = slim.max_pool2d(net, 3, stride=2, padding=padding,
                                         scope="MaxPool_1a_3x3")
        return tf.concat([tower_conv_1, tower_conv1_1, tower_conv2_2, tower_pool], 3)


def inception_resnet_v2_base(inputs: tf.Tensor, final_endpoint: str = "Conv2d_7b_1x1",
                             output_stride: int = 16, align_feature_maps: bool = False,
                             scope: Any = None,
                             activation_fn: Callable | None = tf.nn.relu):
    """Inception-ResNet-v2 up to `final_endpoint`.

    Args:
      inputs: [batch, 299, 299, 3].
      final_endpoint: the last end point built, one of `BASE_END_POINTS`.
      output_stride: 16, or 8 (atrous Block17s; only up to PreAuxLogits).
      align_feature_maps: 'SAME' padding in the stem and reductions, so
        feature maps align with the input (dense prediction).
      scope: the variable scope (`InceptionResnetV2` by default).
      activation_fn: the activation of the residual blocks.

    Returns:
      (the tensor of `final_endpoint`, end_points).

    Raises:
      SlimError: an unknown `final_endpoint`, an output_stride other than 8
        or 16, or output_stride 8 past PreAuxLogits.
    """
    _check_base_args(final_endpoint, output_stride)
    padding = "SAME" if align_feature_maps else "VALID"
    end_points = {}

    def add(name: str, tensor: tf.Tensor) -> bool:
        end_points[name] = tensor
        return name == final_endpoint

    with slim.variable_scope(scope, "InceptionResnetV2"):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d],
                            stride=1, padding="SAME"):
            # 149 x 149 x 32
            net = slim.conv2d(inputs, 32, 3, stride=2, padding=padding, scope="Conv2d_1a_3x3")
            if add("Conv2d_1a_3x3", net):
                return net, end_points
            # 147 x 147 x 32
            net = slim.conv2d(net, 32, 3, padding=padding, scope="Conv2d_2a_3x3")
            if add("Conv2d_2a_3x3", net):
                return net, end_points
            # 147 x 147 x 64
            net = slim.conv2d(net, 64, 3, scope="Conv2d_2b_3x3")
            if add("Conv2d_2b_3x3", net):
                return net, end_points
            # 73 x 73 x 64
            net = slim.max_pool2d(net, 3, stride=2, padding=padding, scope="MaxPool_3a_3x3")
            if add("MaxPool_3a_3x3", net):
                return net, end_points
            # 73 x 73 x 80
            net = slim.conv2d(net, 80, 1, padding=padding, scope="Conv2d_3b_1x1")
            if add("Conv2d_3b_1x1", net):
                return net, end_points
            # 71 x 71 x 192
            net = slim.conv2d(net, 192, 3, padding=padding, scope="Conv2d_4a_3x3")
            if add("Conv2d_4a_3x3", net):
                return net, end_points
            # 35 x 35 x 192
            net = slim.max_pool2d(net, 3, stride=2, padding=padding, scope="MaxPool_5a_3x3")
            if add("MaxPool_5a_3x3", net):
                return net, end_points
            net = _mixed_5b(net)                                    # 35 x 35 x 320
            if add("Mixed_5b", net):
                return net, end_points
            net = slim.repeat(net, 10, block35, scale=0.17, activation_fn=activation_fn)
            # 17 x 17 x 1088 (output_stride 8: 33 x 33, or 38 x 38 with align_feature_maps)
            use_atrous = output_stride == 8
            net = _mixed_6a(net, padding, use_atrous)
            if add("Mixed_6a", net):
                return net, end_points
            with slim.arg_scope([slim.conv2d], rate=2 if use_atrous else 1):
                net = slim.repeat(net, 20, block17, scale=0.10, activation_fn=activation_fn)
            if add("PreAuxLogits", net):
                return net, end_points
            net = _mixed_7a(net, padding)                           # 8 x 8 x 2080
            if add("Mixed_7a", net):
                return net, end_points
            net = slim.repeat(net, 9, block8, scale=0.20, activation_fn=activation_fn)
            net = block8(net, activation_fn=None)
            net = slim.conv2d(net, 1536, 1, scope="Conv2d_7b_1x1")  # 8 x 8 x 1536
            add("Conv2d_7b_1x1", net)
            return net, end_points


def inception_resnet_v2(inputs: tf.Tensor, num_classes: int | None = 1001,
                        is_training: bool = True, dropout_keep_prob: float = 0.8,
                        reuse: Any = None, scope: str = "InceptionResnetV2",
                        create_aux_logits: bool = True,
                        activation_fn: Callable | None = tf.nn.relu):
    """Inception-ResNet-v2 classifier.

    Args:
      inputs: [batch, 299, 299, 3].
      num_classes: logits size; 0 or None returns the pooled features
        (`global_pool`, [batch, 1, 1, 1536]) without the logits layers.
      is_training: batch norm and dropout in training mode.
      dropout_keep_prob: keep probability of the dropout before the logits.
      reuse: reuse the variables of the scope.
      scope: the variable scope.
      create_aux_logits: build the auxiliary head on PreAuxLogits (`AuxLogits`).
      activation_fn: the activation of the residual blocks.

    Returns:
      (logits or features, end_points).
    """
    with slim.variable_scope(scope, "InceptionResnetV2", reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_resnet_v2_base(inputs, scope=sc,
                                                       activation_fn=activation_fn)
            if create_aux_logits and num_classes:
                end_points["AuxLogits"] = _aux_logits(end_points["PreAuxLogits"], num_classes)
            with slim.variable_scope("Logits"):
                kernel_size = net.shape[1:3]                        # 8 x 8
                if kernel_size.is_fully_defined():
                    net = slim.avg_pool2d(net, kernel_size, padding="VALID",
                                          scope="AvgPool_1a_8x8")
                else:
                    net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
                end_points["global_pool"] = net                     # 1 x 1 x 1536
                if not num_classes:
                    return net, end_points
                net = slim.flatten(net)
                net = slim.dropout(net, dropout_keep_prob, is_training=is_training,
                                   scope="Dropout")
                end_points["PreLogitsFlatten"] = net                # 1536
                logits = slim.fully_connected(net, num_classes, activation_fn=None,
                                              scope="Logits")
                end_points["Logits"] = logits
                end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
    return logits, end_points


def _aux_logits(net: tf.Tensor, num_classes: int) -> tf.Tensor:
    """The auxiliary head on PreAuxLogits (17 x 17 x 1088)."""
    with slim.variable_scope("AuxLogits"):
        net = slim.avg_pool2d(net, 5, stride=3, padding="VALID",
                              scope="Conv2d_1a_3x3")                # 5 x 5 x 1088
        net = slim.conv2d(net, 128, 1, scope="Conv2d_1b_1x1")       # 5 x 5 x 128
        net = slim.conv2d(net, 768, net.shape[1:3], padding="VALID",
                          scope="Conv2d_2a_5x5")                    # 1 x 1 x 768
        net = slim.flatten(net)
        return slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")


inception_resnet_v2.default_image_size = 299


def inception_resnet_v2_arg_scope(weight_decay: float = 0.00004,
                                  batch_norm_decay: float = 0.9997,
                                  batch_norm_epsilon: float = 0.001,
                                  activation_fn: Callable | None = tf.nn.relu,
                                  batch_norm_updates_collections: Any = "update_ops",
                                  batch_norm_scale: bool = False) -> dict:
    """The arg scope of Inception-ResNet-v2.

    L2 decay on weights and biases of convolutions and fully connected
    layers; convolutions batch-normalized (no `gamma` by default) with ReLU.

    Args:
      weight_decay: L2 weight decay.
      batch_norm_decay: decay of the moving statistics.
      batch_norm_epsilon: added to the variance.
      activation_fn: the activation of the convolutions.
      batch_norm_updates_collections: accepted for compatibility (moving
        statistics are updated in the call).
      batch_norm_scale: give batch norm a `gamma`.

    Returns:
      The arg-scope dict.
    """
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        biases_regularizer=slim.l2_regularizer(weight_decay)):
        batch_norm_params = {
            "decay": batch_norm_decay,
            "epsilon": batch_norm_epsilon,
            "updates_collections": batch_norm_updates_collections,
            "fused": None,
            "scale": batch_norm_scale,
        }
        with slim.arg_scope([slim.conv2d], activation_fn=activation_fn,
                            normalizer_fn=slim.batch_norm,
                            normalizer_params=batch_norm_params) as sc:
            return sc


NETS = (
    NetSpec(name="inception_resnet_v2", fn=inception_resnet_v2,
            arg_scope=inception_resnet_v2_arg_scope, default_image_size=299,
            preprocessing="inception", predictions_op="InceptionResnetV2/Logits/Predictions",
            logits_scopes=("InceptionResnetV2/Logits", "InceptionResnetV2/AuxLogits"),
            zoo=ZooCheckpoint(f"{TF_MODELS_URL}inception_resnet_v2_2016_08_30.tar.gz",
                              "inception_resnet_v2_2016_08_30.ckpt", 80.4),
            keras_twin=("InceptionResNetV2", {})),
)
