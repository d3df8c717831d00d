"""Default-name counters of variable scopes follow TF1 when scopes are re-entered."""

from __future__ import annotations

import tensorflow as tf

from slimcli import slim


def test_reentering_a_named_scope_with_reuse_finds_default_named_subscopes():
    def twice(x):
        with slim.variable_scope("shared"):
            a = slim.conv2d(x, 2, 1, normalizer_fn=slim.batch_norm, scope="conv1")
        with slim.variable_scope("shared", reuse=True):
            b = slim.conv2d(x, 2, 1, normalizer_fn=slim.batch_norm, scope="conv1")
        return a, b

    model = slim.Model(twice)
    model(tf.ones([1, 3, 3, 1]))
    assert sorted(model.variables_dict()) == [
        "shared/conv1/BatchNorm/beta", "shared/conv1/BatchNorm/moving_mean",
        "shared/conv1/BatchNorm/moving_variance", "shared/conv1/weights"]


def test_siblings_still_get_unique_default_names():
    def net(x):
        with slim.variable_scope("outer"):
            slim.conv2d(x, 1, 1)
            slim.conv2d(x, 1, 1)
        with slim.variable_scope("outer", reuse=slim.AUTO_REUSE):
            slim.conv2d(x, 1, 1)                      # Conv again, as in TF1
        return x

    model = slim.Model(net)
    model(tf.ones([1, 2, 2, 1]))
    assert sorted(model.variables_dict()) == ["outer/Conv/biases", "outer/Conv/weights",
                                              "outer/Conv_1/biases", "outer/Conv_1/weights"]


def test_reentered_scope_object_with_reuse_finds_default_named_layers():
    def net(x):
        with slim.variable_scope("net") as sc:
            with slim.variable_scope(sc):             # the Inception pattern: base(scope=sc)
                a = slim.conv2d(x, 1, 1)              # net/Conv
        with slim.variable_scope(sc, reuse=True):
            b = slim.conv2d(x, 1, 1)                  # net/Conv again, shared
        return a, b

    model = slim.Model(net)
    a, b = model(tf.ones([1, 2, 2, 1]))
    assert sorted(model.variables_dict()) == ["net/Conv/biases", "net/Conv/weights"]
    assert float(tf.reduce_max(tf.abs(a - b))) == 0.0
