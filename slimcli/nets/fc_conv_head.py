"""The classifier head shared by AlexNet v2, OverFeat and VGG: fully connected layers as convs.

fc6 is a VALID convolution over the whole remaining feature map (so the net can
also run fully convolutionally on larger images), fc7 and fc8 are 1x1 convs;
dropout6/dropout7 sit between them. End points come from the net's output
collection, with `<scope>/fc8` added for the logits, as in TF-Slim.
"""

from __future__ import annotations

import tensorflow as tf

from slimcli import slim


def end_points_collection_name(scope: slim.scopes.VariableScope) -> str:
    """The output-collection key of a net's scope (TF-Slim's `<name scope>_end_points`)."""
    return f"{scope.original_name_scope}_end_points"


def fc_conv_head(net: tf.Tensor, scope: slim.scopes.VariableScope, num_classes: int | None,
                 is_training: bool, dropout_keep_prob: float, spatial_squeeze: bool,
                 global_pool: bool, fc6_depth: int, fc6_kernel: list[int],
                 fc6_padding: str = "VALID") -> tuple[tf.Tensor, dict]:
    """fc6 → dropout6 → fc7 [→ global pool] [→ dropout7 → fc8 (logits)].

    Args:
      net: the last pooled feature map.
      scope: the net's open variable scope (names the end points and the collection).
      num_classes: logits size; 0 or None stops after fc7 (or the global pool).
      is_training: enables dropout.
      dropout_keep_prob: keep probability of dropout6 and dropout7.
      spatial_squeeze: squeeze the [1, 1] spatial dimensions of the logits
        (op `<scope>/fc8/squeezed`).
      global_pool: average fc7 over its spatial dimensions (end point `global_pool`).
      fc6_depth: output channels of fc6.
      fc6_kernel: fc6's kernel, the size of the feature map it sees.
      fc6_padding: fc6's padding (VGG's `fc_conv_padding`).

    Returns:
      (logits or features, end_points).
    """
    net = slim.conv2d(net, fc6_depth, fc6_kernel, padding=fc6_padding, scope="fc6")
    net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout6")
    net = slim.conv2d(net, 4096, [1, 1], scope="fc7")                        # 1 x 1 x 4096
    end_points = dict(slim.utils.convert_collection_to_dict(end_points_collection_name(scope)))
    if global_pool:
        net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
        end_points["global_pool"] = net
    if num_classes:
        net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout7")
        net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None,
                          biases_initializer=slim.zeros_initializer(), scope="fc8")
        if spatial_squeeze:
            net = tf.squeeze(net, [1, 2], name="fc8/squeezed")
        end_points[f"{scope.name}/fc8"] = net
    return net, end_points
