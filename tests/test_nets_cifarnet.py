"""CifarNet: the net's keyword arguments (its genuine checkpoint is tested in test_nets.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.nets.cifarnet import cifarnet
from tests.nets_helpers import reference


def test_num_classes_zero_returns_fc4_features():
    fn = nets.get_network_fn("cifarnet", num_classes=0)
    features, end_points = fn(tf.zeros([2, 32, 32, 3]))
    assert features.shape == (2, 192)
    assert "Logits" not in end_points and "Predictions" not in end_points
    assert not any("logits" in name for name in fn.variables_dict())


def test_dropout_keep_prob_acts_only_in_training():
    x = tf.random.stateless_uniform([4, 32, 32, 3], seed=[3, 4])
    fn = nets.get_network_fn("cifarnet", num_classes=10, dropout_keep_prob=0.5)
    eval_logits, _ = fn(x, is_training=False)
    train_logits, _ = fn(x, is_training=True)
    kept_logits, _ = fn(x, is_training=True, dropout_keep_prob=1.0)
    assert not np.allclose(eval_logits, train_logits)
    np.testing.assert_allclose(eval_logits, kept_logits, rtol=1e-6, atol=1e-6)


def test_weight_decay_regularizes_fully_connected_weights_but_not_logits():
    fn = nets.get_network_fn("cifarnet", num_classes=10, weight_decay=0.004)
    fn.build([1, 32, 32, 3])
    regularized = [name for name, _, _ in fn.store.regularizers()]
    assert regularized == ["CifarNet/fc3/weights", "CifarNet/fc4/weights"]


def test_scope_and_prediction_fn():
    def sigmoid(logits, scope=None):
        return tf.nn.sigmoid(logits, name=scope)

    model = slim.Model(cifarnet, scope="MyCifar", prediction_fn=sigmoid)
    logits, end_points = model(tf.zeros([1, 32, 32, 3]))
    assert all(name.startswith("MyCifar/") for name in model.variables_dict())
    np.testing.assert_allclose(end_points["Predictions"], tf.nn.sigmoid(logits))


@pytest.mark.parametrize("name", ["cifarnet", "alexnet_v2", "overfeat", "vgg_16",
                                  "inception_v1", "inception_v3"])
def test_spec_fine_tuning_scopes_name_real_variables(name):
    spec = nets.get_net_spec(name)
    ref = reference(name)
    variables = [v for v, _, _ in ref["variables"]]
    for scope in spec.logits_scopes:
        assert any(v.startswith(scope + "/") for v in variables), scope
