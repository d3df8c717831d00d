"""Each layer: variable names and shapes as TF-Slim, and the numbers against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError


def build(fn, *inputs):
    model = slim.Model(fn)
    out = model(*inputs)
    return model, out, {n: v.shape.as_list() for n, v in model.variables_dict().items()}


def test_conv2d_variables_bias_and_normalizer():
    x = tf.ones([1, 8, 8, 3])
    _, out, shapes = build(lambda x: slim.conv2d(x, 5, [3, 2], stride=2), x)
    assert out.shape == (1, 4, 4, 5)
    assert shapes == {"Conv/weights": [3, 2, 3, 5], "Conv/biases": [5]}
    _, out, shapes = build(lambda x: slim.conv2d(x, 5, 3, normalizer_fn=slim.batch_norm), x)
    assert shapes == {"Conv/weights": [3, 3, 3, 5], "Conv/BatchNorm/beta": [5],
                      "Conv/BatchNorm/moving_mean": [5], "Conv/BatchNorm/moving_variance": [5]}


def test_conv2d_matches_numpy_and_dilation():
    rng = np.random.RandomState(0)
    x = rng.randn(1, 5, 5, 2).astype(np.float32)
    w = rng.randn(3, 3, 2, 1).astype(np.float32)

    def net(x):
        return slim.conv2d(x, 1, [3, 3], padding="VALID", activation_fn=None,
                           weights_initializer=w)

    _, out, _ = build(net, tf.constant(x))
    expected = np.zeros([1, 3, 3, 1], np.float32)
    for i in range(3):
        for j in range(3):
            expected[0, i, j, 0] = np.sum(x[0, i:i + 3, j:j + 3, :] * w[..., 0])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    _, out, _ = build(lambda x: slim.conv2d(x, 1, [3, 3], rate=2, padding="VALID"),
                      tf.constant(x))
    assert out.shape == (1, 1, 1, 1)
    with pytest.raises(SlimError, match="rate=2 and stride=2 cannot both be > 1"):
        build(lambda x: slim.conv2d(x, 1, [3, 3], rate=2, stride=2), tf.constant(x))


def test_separable_conv2d_with_and_without_pointwise():
    x = tf.ones([1, 6, 6, 4])
    _, out, shapes = build(lambda x: slim.separable_conv2d(x, 8, [3, 3], depth_multiplier=2), x)
    assert out.shape == (1, 6, 6, 8)
    assert shapes == {"SeparableConv2d/depthwise_weights": [3, 3, 4, 2],
                      "SeparableConv2d/pointwise_weights": [1, 1, 8, 8],
                      "SeparableConv2d/biases": [8]}
    _, out, shapes = build(lambda x: slim.separable_conv2d(x, None, [3, 3], stride=2,
                                                           scope="Conv2d_1_depthwise"), x)
    assert out.shape == (1, 3, 3, 4)
    assert shapes == {"Conv2d_1_depthwise/depthwise_weights": [3, 3, 4, 1],
                      "Conv2d_1_depthwise/biases": [4]}


def test_conv2d_transpose_and_in_plane():
    x = tf.ones([2, 5, 5, 3])
    _, out, shapes = build(lambda x: slim.conv2d_transpose(x, 7, [3, 3], stride=2), x)
    assert out.shape == (2, 10, 10, 7)
    assert shapes == {"Conv2d_transpose/weights": [3, 3, 7, 3], "Conv2d_transpose/biases": [7]}
    _, out, _ = build(lambda x: slim.conv2d_transpose(x, 7, [3, 3], stride=2, padding="VALID"), x)
    assert out.shape == (2, 11, 11, 7)
    _, out, shapes = build(lambda x: slim.conv2d_in_plane(x, [3, 3], activation_fn=None,
                                                          weights_initializer=slim.ones_initializer()), x)
    assert shapes == {"ConvInPlane/weights": [3, 3, 1, 1], "ConvInPlane/biases": [3]}
    assert float(out[0, 2, 2, 0]) == pytest.approx(9.0)


def test_fully_connected_on_rank_3_and_regularizers():
    x = tf.ones([2, 4, 3])
    model, out, shapes = build(lambda x: slim.fully_connected(
        x, 6, weights_regularizer=slim.l1_regularizer(0.5),
        biases_regularizer=slim.l2_regularizer(0.1)), x)
    assert out.shape == (2, 4, 6)
    assert shapes == {"fully_connected/weights": [3, 6], "fully_connected/biases": [6]}
    regs = slim.losses.get_regularization_losses(store=model)
    w = model.variables_dict()["fully_connected/weights"].numpy()
    assert float(regs[0]) == pytest.approx(0.5 * np.abs(w).sum(), rel=1e-5)
    assert float(regs[1]) == pytest.approx(0.0)


def test_batch_norm_training_updates_and_eval_uses_moving_stats():
    rng = np.random.RandomState(1)
    x = tf.constant(rng.randn(8, 3, 3, 2).astype(np.float32) * 3 + 1)

    def net(x, is_training):
        return slim.batch_norm(x, decay=0.9, scale=True, epsilon=1e-3, is_training=is_training)

    model = slim.Model(net)
    out = model(x, is_training=True)
    variables = model.variables_dict()
    assert sorted(variables) == ["BatchNorm/beta", "BatchNorm/gamma", "BatchNorm/moving_mean",
                                 "BatchNorm/moving_variance"]
    xs = x.numpy().reshape(-1, 2)
    mean, var = xs.mean(0), xs.var(0)
    np.testing.assert_allclose(out.numpy().reshape(-1, 2), (xs - mean) / np.sqrt(var + 1e-3),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(variables["BatchNorm/moving_mean"].numpy(), 0.1 * mean, rtol=1e-4)
    n = xs.shape[0]
    np.testing.assert_allclose(variables["BatchNorm/moving_variance"].numpy(),
                               0.9 + 0.1 * var * n / (n - 1), rtol=1e-4)
    frozen = variables["BatchNorm/moving_mean"].numpy()
    out = model(x, is_training=False)
    np.testing.assert_array_equal(variables["BatchNorm/moving_mean"].numpy(), frozen)
    mm = variables["BatchNorm/moving_mean"].numpy()
    mv = variables["BatchNorm/moving_variance"].numpy()
    np.testing.assert_allclose(out.numpy().reshape(-1, 2), (xs - mm) / np.sqrt(mv + 1e-3),
                               rtol=1e-4, atol=1e-4)


def test_batch_norm_on_2d_inputs_and_bad_is_training():
    model, out, shapes = build(lambda x: slim.batch_norm(x, is_training=True), tf.ones([4, 3]))
    assert shapes == {"BatchNorm/beta": [3], "BatchNorm/moving_mean": [3],
                      "BatchNorm/moving_variance": [3]}
    with pytest.raises(SlimError, match="is_training must be a Python bool"):
        build(lambda x: slim.batch_norm(x, is_training=tf.constant(True)), tf.ones([4, 3]))


def test_batch_norm_center_false_and_eval_inside_tf_function():
    x = tf.constant(np.random.RandomState(2).randn(6, 2, 2, 3).astype(np.float32) + 2)
    model = slim.Model(lambda x, is_training: slim.batch_norm(
        x, center=False, scale=False, is_training=is_training))
    out = model(x, is_training=True)
    assert sorted(model.variables_dict()) == ["BatchNorm/moving_mean", "BatchNorm/moving_variance"]
    # No beta: the training output has zero mean per channel.
    np.testing.assert_allclose(out.numpy().mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    stats = {n: v.numpy() for n, v in model.variables_dict().items()}
    tf.function(lambda x: model(x, is_training=False))(x)
    for name, value in model.variables_dict().items():
        np.testing.assert_array_equal(value.numpy(), stats[name], err_msg=name)
    tf.function(lambda x: model(x, is_training=True))(x)
    assert not np.array_equal(model.variables_dict()["BatchNorm/moving_mean"].numpy(),
                              stats["BatchNorm/moving_mean"])


def test_pools_dropout_flatten_and_end_point_aliases():
    def net(x):
        x = slim.max_pool2d(x, [2, 2], scope="pool1", outputs_collections="ep")
        x = slim.avg_pool2d(x, [2, 2], stride=1, padding="SAME", outputs_collections="ep")
        x = slim.dropout(x, 0.5, is_training=True, outputs_collections="ep")
        x = slim.flatten(x, outputs_collections="ep")
        return x, slim.utils.convert_collection_to_dict("ep")

    x = tf.reshape(tf.range(32, dtype=tf.float32), [2, 4, 4, 1])
    _, (out, end_points), _ = build(net, x)
    assert list(end_points) == ["pool1", "AvgPool2D", "Dropout", "Flatten"]
    assert end_points["pool1"].shape == (2, 2, 2, 1)
    assert float(end_points["pool1"][0, 0, 0, 0]) == 5.0
    assert out.shape == (2, 4)
    kept = end_points["Dropout"].numpy()
    pooled = end_points["AvgPool2D"].numpy()
    assert np.all((kept == 0) | np.isclose(kept, 2 * pooled))


def test_one_hot_unit_norm_softmax_bias_add():
    def net(x):
        onehot = slim.one_hot_encoding(tf.constant([0, 2]), 3)
        normed = slim.unit_norm(x, dim=1)
        probs = slim.softmax(x)
        biased = slim.bias_add(x, initializer=slim.constant_initializer(1.0))
        return onehot, normed, probs, biased

    x = tf.constant([[3.0, 4.0], [1.0, 0.0]])
    _, (onehot, normed, probs, biased), shapes = build(net, x)
    np.testing.assert_array_equal(onehot.numpy(), [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(normed.numpy(), [[0.6, 0.8], [1.0, 0.0]], rtol=1e-5)
    e = np.exp(x.numpy() - x.numpy().max(1, keepdims=True))
    np.testing.assert_allclose(probs.numpy(), e / e.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(biased.numpy(), x.numpy() + 1)
    assert shapes == {"BiasAdd/biases": [2]}


def test_layers_reject_bad_inputs_with_the_expected_shape():
    with pytest.raises(SlimError, match=r"conv2d: expected a rank-4 input \[batch, height, width, "
                                        r"channels\], got shape \(3, 3\)"):
        build(lambda x: slim.conv2d(x, 1, [1, 1]), tf.ones([3, 3]))
    with pytest.raises(SlimError, match="dropout: expected keep_prob in \\(0, 1\\]"):
        build(lambda x: slim.dropout(x, 1.5), tf.ones([3, 3]))
    with pytest.raises(SlimError, match="data_format='NCHW' is not supported"):
        build(lambda x: slim.max_pool2d(x, [2, 2], data_format="NCHW"), tf.ones([1, 4, 4, 1]))


def test_mixed_precision_inputs_compute_in_their_dtype():
    def net(x):
        x = slim.conv2d(x, 4, [3, 3], normalizer_fn=slim.batch_norm,
                        normalizer_params={"is_training": True})
        return slim.fully_connected(slim.flatten(x), 2)

    model, out, _ = build(net, tf.ones([2, 4, 4, 3], tf.float16))
    assert out.dtype == tf.float16
    assert all(v.dtype == tf.float32 for v in model.variables)
