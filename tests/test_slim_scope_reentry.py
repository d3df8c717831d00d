"""Re-entering a VariableScope object: TF1's naming rules.

TF1's `variable_scope(scope_object)` keeps the variable names and opens a new name
scope named after the scope's last component inside the current one (so
`mobilenet_v1_base(scope=sc)` names its ops `MobilenetV1/MobilenetV1/...`); a
`name_scope(sc.original_name_scope)` reopens the first one (the original MobileNet
v2's `_scope_all`).
"""

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
    assert names["z"] == "Net_1/out:0"
    assert sorted(model.variables_dict()) == ["Net/a/biases", "Net/a/weights", "Net/b/biases",
                                              "Net/b/weights"]


def _nested(x):
    with slim.variable_scope("M") as sc:
        with slim.variable_scope(sc):
            inner = tf.identity(x, name="c")
        with slim.variable_scope(sc) as again, slim.name_scope(again.original_name_scope):
            first = tf.identity(x, name="d")
            conv = slim.conv2d(x, 2, [1, 1], scope="e")
    return inner, first, conv


def test_nested_reentry_doubles_the_op_scope_and_original_name_scope_reopens_it():
    model = slim.Model(_nested)
    names = {}

    def trace(x):
        inner, first, conv = model(x)
        names.update(inner=inner.name, first=first.name, conv=conv.op.name)
        return conv

    tf.function(trace, autograph=False).get_concrete_function(tf.TensorSpec([1, 3, 3, 2]))
    assert names["inner"] == "M/M/c:0"
    assert names["first"] == "M/d:0"
    assert names["conv"] == "M/e/Relu"
    assert sorted(model.variables_dict()) == ["M/e/biases", "M/e/weights"]


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
