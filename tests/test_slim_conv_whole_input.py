"""conv2d with a kernel covering the whole input runs as a matmul with the same result."""

import numpy as np
import tensorflow as tf

from slimcli import slim


def _net(x):
    return slim.conv2d(x, 6, [3, 4], padding="VALID", activation_fn=None, scope="fc")


def test_whole_input_kernel_matches_convolution_and_its_gradient():
    x = tf.random.stateless_normal([2, 3, 4, 5], seed=[1, 2])
    model = slim.Model(_net)
    model.build([2, 3, 4, 5])
    weights = model.variables_dict()["fc/weights"]
    with tf.GradientTape() as tape:
        y = model(x)
        loss = tf.reduce_sum(y * y)
    grad = tape.gradient(loss, weights)
    with tf.GradientTape() as tape:
        expected = tf.nn.conv2d(x, weights, 1, "VALID") + model.variables_dict()["fc/biases"]
        expected_loss = tf.reduce_sum(expected * expected)
    expected_grad = tape.gradient(expected_loss, weights)
    assert y.shape == (2, 1, 1, 6)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-4)
    traced = tf.function(model).get_concrete_function(tf.TensorSpec([None, 3, 4, 5]))
    assert traced.structured_outputs.shape.as_list() == [None, 1, 1, 6]
    op_types = {op.type for op in traced.graph.get_operations()}
    assert "MatMul" in op_types and "Conv2D" not in op_types
