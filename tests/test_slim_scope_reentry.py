"""Re-entering a VariableScope object reopens its original op name scope (TF1's rule)."""

import tensorflow as tf

from slimcli import slim


def _net(x):
    with slim.variable_scope(None, "Net") as sc:
        y = slim.conv2d(x, 4, [1, 1], scope="a")
    with slim.variable_scope(sc):
        z = tf.identity(y, name="out")
        w = slim.conv2d(z, 4, [1, 1], scope="b")
    return w, z


def test_reentered_scope_keeps_variable_and_op_names():
    model = slim.Model(_net)
    names = {}

    def trace(x):
        w, z = model(x)
        names["z"] = z.name
        return w

    tf.function(trace, autograph=False).get_concrete_function(tf.TensorSpec([1, 3, 3, 2]))
    assert names["z"] == "Net/out:0"
    assert sorted(model.variables_dict()) == ["Net/a/biases", "Net/a/weights", "Net/b/biases",
                                              "Net/b/weights"]


def _tower(x, reuse):
    with slim.variable_scope("Tower", reuse=reuse):
        return slim.conv2d(x, 4, [1, 1], normalizer_fn=slim.batch_norm,
                           normalizer_params={"is_training": False})


def _two_towers(x):
    with slim.variable_scope("Outer"):
        first = _tower(x, None)
        second = _tower(x, True)
    return first, second


def test_second_build_with_reuse_gets_the_same_default_names():
    model = slim.Model(_two_towers)
    first, second = model(tf.ones([1, 2, 2, 3]))
    assert sorted(model.variables_dict()) == [
        "Outer/Tower/Conv/BatchNorm/beta", "Outer/Tower/Conv/BatchNorm/moving_mean",
        "Outer/Tower/Conv/BatchNorm/moving_variance", "Outer/Tower/Conv/weights"]
    assert float(tf.reduce_max(tf.abs(first - second))) == 0.0
