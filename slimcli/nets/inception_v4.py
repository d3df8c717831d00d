"""Inception V4 (Szegedy et al., "Inception-v4, Inception-ResNet and the Impact
of Residual Connections on Learning", 2016).

Variables, end points and arguments follow tensorflow/models research/slim
`nets/inception_v4.py`: a stem (Conv2d_1a..Mixed_5a), 4 Inception-A, a
reduction, 7 Inception-B, a reduction, 3 Inception-C blocks; an auxiliary head
on Mixed_6h; the softmax is a plain op `InceptionV4/Logits/Predictions`.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets.registry import TF_MODELS_URL, NetSpec, ZooCheckpoint

# The end points of inception_v4_base, in order.
BASE_END_POINTS = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Mixed_3a", "Mixed_4a", "Mixed_5a",
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_5e", "Mixed_6a",
    "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_6f", "Mixed_6g", "Mixed_6h",
    "Mixed_7a", "Mixed_7b", "Mixed_7c", "Mixed_7d",
)

_SAME_STRIDE_1 = dict(stride=1, padding="SAME")


def _concat(branches: list[tf.Tensor]) -> tf.Tensor:
    return tf.concat(axis=3, values=branches)


def block_inception_a(inputs: tf.Tensor, scope: str | None = None,
                      reuse: Any = None) -> tf.Tensor:
    """Inception-A (35 x 35 grid): 1x1, 1x1-3x3, 1x1-3x3-3x3, avgpool-1x1 branches, 384 out.

    Args:
      inputs: the previous block's output.
      scope: the variable scope (the end-point name, e.g. `Mixed_5b`).
      reuse: reuse the variables of the scope.

    Returns:
      The concatenated branches.
    """
    with slim.arg_scope([slim.conv2d, slim.avg_pool2d, slim.max_pool2d], **_SAME_STRIDE_1):
        with slim.variable_scope(scope, "BlockInceptionA", reuse=reuse):
            with slim.variable_scope("Branch_0"):
                branch_0 = slim.conv2d(inputs, 96, [1, 1], scope="Conv2d_0a_1x1")
            with slim.variable_scope("Branch_1"):
                branch_1 = slim.conv2d(inputs, 64, [1, 1], scope="Conv2d_0a_1x1")
                branch_1 = slim.conv2d(branch_1, 96, [3, 3], scope="Conv2d_0b_3x3")
            with slim.variable_scope("Branch_2"):
                branch_2 = slim.conv2d(inputs, 64, [1, 1], scope="Conv2d_0a_1x1")
                branch_2 = slim.conv2d(branch_2, 96, [3, 3], scope="Conv2d_0b_3x3")
                branch_2 = slim.conv2d(branch_2, 96, [3, 3], scope="Conv2d_0c_3x3")
            with slim.variable_scope("Branch_3"):
                branch_3 = slim.avg_pool2d(inputs, [3, 3], scope="AvgPool_0a_3x3")
                branch_3 = slim.conv2d(branch_3, 96, [1, 1], scope="Conv2d_0b_1x1")
            return _concat([branch_0, branch_1, branch_2, branch_3])


def block_reduction_a(inputs: tf.Tensor, scope: str | None = None,
                      reuse: Any = None) -> tf.Tensor:
    """Reduction-A: 35 x 35 x 384 → 17 x 17 x 1024.

    Args:
      inputs: the previous block's output.
      scope: the variable scope (the end-point name, e.g. `Mixed_5b`).
      reuse: reuse the variables of the scope.

    Returns:
      The concatenated branches.
    """
    with slim.arg_scope([slim.conv2d, slim.avg_pool2d, slim.max_pool2d], **_SAME_STRIDE_1):
        with slim.variable_scope(scope, "BlockReductionA", reuse=reuse):
            with slim.variable_scope("Branch_0"):
                branch_0 = slim.conv2d(inputs, 384, [3, 3], stride=2, padding="VALID",
                                       scope="Conv2d_1a_3x3")
            with slim.variable_scope("Branch_1"):
                branch_1 = slim.conv2d(inputs, 192, [1, 1], scope="Conv2d_0a_1x1")
                branch_1 = slim.conv2d(branch_1, 224, [3, 3], scope="Conv2d_0b_3x3")
                branch_1 = slim.conv2d(branch_1, 256, [3, 3], stride=2, padding="VALID",
                                       scope="Conv2d_1a_3x3")
            with slim.variable_scope("Branch_2"):
                branch_2 = slim.max_pool2d(inputs, [3, 3], stride=2, padding="VALID",
                                           scope="MaxPool_1a_3x3")
            return _concat([branch_0, branch_1, branch_2])


def block_inception_b(inputs: tf.Tensor, scope: str | None = None,
                      reuse: Any = None) -> tf.Tensor:
    """Inception-B (17 x 17 grid): factorized 7x7 branches, 1024 out.

    Args:
      inputs: the previous block's output.
      scope: the variable scope (the end-point name, e.g. `Mixed_5b`).
      reuse: reuse the variables of the scope.

    Returns:
      The concatenated branches.
    """
    with slim.arg_scope([slim.conv2d, slim.avg_pool2d, slim.max_pool2d], **_SAME_STRIDE_1):
        with slim.variable_scope(scope, "BlockInceptionB", reuse=reuse):
            with slim.variable_scope("Branch_0"):
                branch_0 = slim.conv2d(inputs, 384, [1, 1], scope="Conv2d_0a_1x1")
            with slim.variable_scope("Branch_1"):
                branch_1 = slim.conv2d(inputs, 192, [1, 1], scope="Conv2d_0a_1x1")
                branch_1 = slim.conv2d(branch_1, 224, [1, 7], scope="Conv2d_0b_1x7")
                branch_1 = slim.conv2d(branch_1, 256, [7, 1], scope="Conv2d_0c_7x1")
            with slim.variable_scope("Branch_2"):
                branch_2 = slim.conv2d(inputs, 192, [1, 1], scope="Conv2d_0a_1x1")
                branch_2 = slim.conv2d(branch_2, 192, [7, 1], scope="Conv2d_0b_7x1")
                branch_2 = slim.conv2d(branch_2, 224, [1, 7], scope="Conv2d_0c_1x7")
                branch_2 = slim.conv2d(branch_2, 224, [7, 1], scope="Conv2d_0d_7x1")
                branch_2 = slim.conv2d(branch_2, 256, [1, 7], scope="Conv2d_0e_1x7")
            with slim.variable_scope("Branch_3"):
                branch_3 = slim.avg_pool2d(inputs, [3, 3], scope="AvgPool_0a_3x3")
                branch_3 = slim.conv2d(branch_3, 128, [1, 1], scope="Conv2d_0b_1x1")
            return _concat([branch_0, branch_1, branch_2, branch_3])


def block_reduction_b(inputs: tf.Tensor, scope: str | None = None,
                      reuse: Any = None) -> tf.Tensor:
    """Reduction-B: 17 x 17 x 1024 → 8 x 8 x 1536.

    Args:
      inputs: the previous block's output.
      scope: the variable scope (the end-point name, e.g. `Mixed_5b`).
      reuse: reuse the variables of the scope.

    Returns:
      The concatenated branches.
    """
    with slim.arg_scope([slim.conv2d, slim.avg_pool2d, slim.max_pool2d], **_SAME_STRIDE_1):
        with slim.variable_scope(scope, "BlockReductionB", reuse=reuse):
            with slim.variable_scope("Branch_0"):
                branch_0 = slim.conv2d(inputs, 192, [1, 1], scope="Conv2d_0a_1x1")
                branch_0 = slim.conv2d(branch_0, 192, [3, 3], stride=2, padding="VALID",
                                       scope="Conv2d_1a_3x3")
            with slim.variable_scope("Branch_1"):
                branch_1 = slim.conv2d(inputs, 256, [1, 1], scope="Conv2d_0a_1x1")
                branch_1 = slim.conv2d(branch_1, 256, [1, 7], scope="Conv2d_0b_1x7")
                branch_1 = slim.conv2d(branch_1, 320, [7, 1], scope="Conv2d_0c_7x1")
                branch_1 = slim.conv2d(branch_1, 320, [3, 3], stride=2, padding="VALID",
                                       scope="Conv2d_1a_3x3")
            with slim.variable_scope("Branch_2"):
                branch_2 = slim.max_pool2d(inputs, [3, 3], stride=2, padding="VALID",
                                           scope="MaxPool_1a_3x3")
            return _concat([branch_0, branch_1, branch_2])


def block_inception_c(inputs: tf.Tensor, scope: str | None = None,
                      reuse: Any = None) -> tf.Tensor:
    """Inception-C (8 x 8 grid): split 1x3/3x1 branches, 1536 out.

    Args:
      inputs: the previous block's output.
      scope: the variable scope (the end-point name, e.g. `Mixed_5b`).
      reuse: reuse the variables of the scope.

    Returns:
      The concatenated branches.
    """
    with slim.arg_scope([slim.conv2d, slim.avg_pool2d, slim.max_pool2d], **_SAME_STRIDE_1):
        with slim.variable_scope(scope, "BlockInceptionC", reuse=reuse):
            with slim.variable_scope("Branch_0"):
                branch_0 = slim.conv2d(inputs, 256, [1, 1], scope="Conv2d_0a_1x1")
            with slim.variable_scope("Branch_1"):
                branch_1 = slim.conv2d(inputs, 384, [1, 1], scope="Conv2d_0a_1x1")
                branch_1 = _concat([
                    slim.conv2d(branch_1, 256, [1, 3], scope="Conv2d_0b_1x3"),
                    slim.conv2d(branch_1, 256, [3, 1], scope="Conv2d_0c_3x1")])
            with slim.variable_scope("Branch_2"):
                branch_2 = slim.conv2d(inputs, 384, [1, 1], scope="Conv2d_0a_1x1")
                branch_2 = slim.conv2d(branch_2, 448, [3, 1], scope="Conv2d_0b_3x1")
                branch_2 = slim.conv2d(branch_2, 512, [1, 3], scope="Conv2d_0c_1x3")
                branch_2 = _concat([
                    slim.conv2d(branch_2, 256, [1, 3], scope="Conv2d_0d_1x3"),
                    slim.conv2d(branch_2, 256, [3, 1], scope="Conv2d_0e_3x1")])
            with slim.variable_scope("Branch_3"):
                branch_3 = slim.avg_pool2d(inputs, [3, 3], scope="AvgPool_0a_3x3")
                branch_3 = slim.conv2d(branch_3, 256, [1, 1], scope="Conv2d_0b_1x1")
            return _concat([branch_0, branch_1, branch_2, branch_3])


def _stem(inputs: tf.Tensor, add: Callable[[str, tf.Tensor], bool]) -> tf.Tensor | None:
    """Conv2d_1a_3x3 .. Mixed_5a; None once `add` reports the final end point."""
    # 149 x 149 x 32
    net = slim.conv2d(inputs, 32, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
    if add("Conv2d_1a_3x3", net):
        return None
    # 147 x 147 x 32
    net = slim.conv2d(net, 32, [3, 3], padding="VALID", scope="Conv2d_2a_3x3")
    if add("Conv2d_2a_3x3", net):
        return None
    # 147 x 147 x 64
    net = slim.conv2d(net, 64, [3, 3], scope="Conv2d_2b_3x3")
    if add("Conv2d_2b_3x3", net):
        return None
    with slim.variable_scope("Mixed_3a"):                      # 73 x 73 x 160
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID",
                                       scope="MaxPool_0a_3x3")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 96, [3, 3], stride=2, padding="VALID",
                                   scope="Conv2d_0a_3x3")
        net = _concat([branch_0, branch_1])
    if add("Mixed_3a", net):
        return None
    with slim.variable_scope("Mixed_4a"):                      # 71 x 71 x 192
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 64, [1, 1], scope="Conv2d_0a_1x1")
            branch_0 = slim.conv2d(branch_0, 96, [3, 3], padding="VALID", scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 64, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 64, [1, 7], scope="Conv2d_0b_1x7")
            branch_1 = slim.conv2d(branch_1, 64, [7, 1], scope="Conv2d_0c_7x1")
            branch_1 = slim.conv2d(branch_1, 96, [3, 3], padding="VALID", scope="Conv2d_1a_3x3")
        net = _concat([branch_0, branch_1])
    if add("Mixed_4a", net):
        return None
    with slim.variable_scope("Mixed_5a"):                      # 35 x 35 x 384
        with slim.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 192, [3, 3], stride=2, padding="VALID",
                                   scope="Conv2d_1a_3x3")
        with slim.variable_scope("Branch_1"):
            branch_1 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID",
                                       scope="MaxPool_1a_3x3")
        net = _concat([branch_0, branch_1])
    return None if add("Mixed_5a", net) else net


def inception_v4_base(inputs: tf.Tensor, final_endpoint: str = "Mixed_7d",
                      scope: Any = None) -> tuple[tf.Tensor, dict]:
    """Inception V4 up to `final_endpoint`.

    Args:
      inputs: [batch, 299, 299, 3].
      final_endpoint: the last end point built, one of `BASE_END_POINTS`.
      scope: the variable scope (`InceptionV4` by default).

    Returns:
      (the tensor of `final_endpoint`, end_points).

    Raises:
      SlimError: an unknown `final_endpoint`.
    """
    if final_endpoint not in BASE_END_POINTS:
        raise SlimError(f"inception_v4_base: unknown final_endpoint={final_endpoint!r}; use one "
                        f"of {', '.join(BASE_END_POINTS)}.")
    end_points = {}

    def add(name: str, tensor: tf.Tensor) -> bool:
        end_points[name] = tensor
        return name == final_endpoint

    with slim.variable_scope(scope, "InceptionV4"):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], **_SAME_STRIDE_1):
            net = _stem(inputs, add)
            if net is None:
                return end_points[final_endpoint], end_points
            for letter in "bcde":                               # 35 x 35 x 384
                name = f"Mixed_5{letter}"
                net = block_inception_a(net, name)
                if add(name, net):
                    return net, end_points
            net = block_reduction_a(net, "Mixed_6a")            # 17 x 17 x 1024
            if add("Mixed_6a", net):
                return net, end_points
            for letter in "bcdefgh":                            # 17 x 17 x 1024
                name = f"Mixed_6{letter}"
                net = block_inception_b(net, name)
                if add(name, net):
                    return net, end_points
            net = block_reduction_b(net, "Mixed_7a")            # 8 x 8 x 1536
            if add("Mixed_7a", net):
                return net, end_points
            for letter in "bcd":                                # 8 x 8 x 1536
                name = f"Mixed_7{letter}"
                net = block_inception_c(net, name)
                if add(name, net):
                    return net, end_points
    raise AssertionError("unreachable: final_endpoint was validated")


def inception_v4(inputs: tf.Tensor, num_classes: int | None = 1001, is_training: bool = True,
                 dropout_keep_prob: float = 0.8, reuse: Any = None, scope: str = "InceptionV4",
                 create_aux_logits: bool = True):
    """Inception V4 classifier.

    Args:
      inputs: [batch, 299, 299, 3].
      num_classes: logits size; 0 or None returns the pooled features
        (`global_pool`, [batch, 1, 1, 1536]) without the logits layers.
      is_training: batch norm and dropout in training mode.
      dropout_keep_prob: keep probability of the dropout before the logits.
      reuse: reuse the variables of the scope.
      scope: the variable scope.
      create_aux_logits: build the auxiliary head on Mixed_6h (`AuxLogits`).

    Returns:
      (logits or features, end_points).
    """
    with slim.variable_scope(scope, "InceptionV4", reuse=reuse) as sc:
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
            net, end_points = inception_v4_base(inputs, scope=sc)
            with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d],
                                **_SAME_STRIDE_1):
                if create_aux_logits and num_classes:
                    end_points["AuxLogits"] = _aux_logits(end_points["Mixed_6h"], num_classes)
                with slim.variable_scope("Logits"):
                    kernel_size = net.shape[1:3]                # 8 x 8
                    if kernel_size.is_fully_defined():
                        net = slim.avg_pool2d(net, kernel_size, padding="VALID",
                                              scope="AvgPool_1a")
                    else:
                        net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
                    end_points["global_pool"] = net             # 1 x 1 x 1536
                    if not num_classes:
                        return net, end_points
                    net = slim.dropout(net, dropout_keep_prob, scope="Dropout_1b")
                    net = slim.flatten(net, scope="PreLogitsFlatten")
                    end_points["PreLogitsFlatten"] = net        # 1536
                    logits = slim.fully_connected(net, num_classes, activation_fn=None,
                                                  scope="Logits")
                    end_points["Logits"] = logits
                    end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
    return logits, end_points


def _aux_logits(net: tf.Tensor, num_classes: int) -> tf.Tensor:
    """The auxiliary head on Mixed_6h (17 x 17 x 1024)."""
    with slim.variable_scope("AuxLogits"):
        net = slim.avg_pool2d(net, [5, 5], stride=3, padding="VALID",
                              scope="AvgPool_1a_5x5")           # 5 x 5 x 1024
        net = slim.conv2d(net, 128, [1, 1], scope="Conv2d_1b_1x1")  # 5 x 5 x 128
        net = slim.conv2d(net, 768, net.shape[1:3], padding="VALID",
                          scope="Conv2d_2a")                    # 1 x 1 x 768
        net = slim.flatten(net)
        return slim.fully_connected(net, num_classes, activation_fn=None, scope="Aux_logits")


inception_v4.default_image_size = 299


def inception_arg_scope(weight_decay: float = 0.00004, use_batch_norm: bool = True,
                        batch_norm_decay: float = 0.9997, batch_norm_epsilon: float = 0.001,
                        activation_fn: Callable | None = tf.nn.relu,
                        batch_norm_updates_collections: Any = "update_ops",
                        batch_norm_scale: bool = False) -> dict:
    """The arg scope of the Inception nets (the original's `inception_utils`).

    Convolutions: He-initialized weights with L2 decay, batch norm (no
    `gamma` by default) and ReLU; fully connected layers get the decay too.

    Args:
      weight_decay: L2 weight decay.
      use_batch_norm: batch-normalize the convolutions.
      batch_norm_decay: decay of the moving statistics.
      batch_norm_epsilon: added to the variance.
      activation_fn: the activation of the convolutions.
      batch_norm_updates_collections: accepted for compatibility (moving
        statistics are updated in the call).
      batch_norm_scale: give batch norm a `gamma`.

    Returns:
      The arg-scope dict.
    """
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "updates_collections": batch_norm_updates_collections,
        "fused": None,
        "scale": batch_norm_scale,
    }
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.conv2d], weights_initializer=slim.variance_scaling_initializer(),
                            activation_fn=activation_fn,
                            normalizer_fn=slim.batch_norm if use_batch_norm else None,
                            normalizer_params=batch_norm_params if use_batch_norm else {}) as sc:
            return sc


inception_v4_arg_scope = inception_arg_scope

NETS = (
    NetSpec(name="inception_v4", fn=inception_v4, arg_scope=inception_v4_arg_scope,
            default_image_size=299, preprocessing="inception",
            predictions_op="InceptionV4/Logits/Predictions",
            logits_scopes=("InceptionV4/Logits", "InceptionV4/AuxLogits"),
            zoo=ZooCheckpoint(f"{TF_MODELS_URL}inception_v4_2016_09_09.tar.gz",
                              "inception_v4.ckpt", 80.2)),
)
