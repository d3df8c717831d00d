"""Losses against numpy; checkpoints written, read by TF1's Saver, and genuine ones restored."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.slim.checkpoints import CheckpointMismatch

DATA = os.path.join(os.path.dirname(__file__), "data")
RNG = np.random.RandomState(42)
LOGITS = RNG.randn(6, 4).astype(np.float32)
LABELS = np.array([0, 3, 1, 1, 2, 0])
ONEHOT = np.eye(4, dtype=np.float32)[LABELS]
WEIGHTS = np.array([1.0, 0.0, 2.0, 1.0, 0.0, 0.5], np.float32)


def np_log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def weighted_mean(losses, weights):
    weights = np.broadcast_to(weights, losses.shape)
    return (losses * weights).sum() / max(np.count_nonzero(weights), 1)


def test_softmax_cross_entropy_weights_and_label_smoothing():
    per_example = -(ONEHOT * np_log_softmax(LOGITS)).sum(1)
    got = slim.losses.softmax_cross_entropy(LOGITS, ONEHOT, weights=WEIGHTS)
    assert float(got) == pytest.approx(weighted_mean(per_example, WEIGHTS), rel=1e-5)
    smooth = ONEHOT * 0.9 + 0.1 / 4
    got = slim.losses.softmax_cross_entropy(LOGITS, ONEHOT, label_smoothing=0.1)
    assert float(got) == pytest.approx((-(smooth * np_log_softmax(LOGITS)).sum(1)).mean(), rel=1e-5)
    sparse = slim.losses.sparse_softmax_cross_entropy(LOGITS, LABELS)
    assert float(sparse) == pytest.approx(per_example.mean(), rel=1e-5)


def test_elementwise_losses_match_numpy():
    p = 1 / (1 + np.exp(-LOGITS))
    y = (ONEHOT > 0).astype(np.float32)
    w = WEIGHTS[:, None]
    cases = {
        "sigmoid": (slim.losses.sigmoid_cross_entropy(LOGITS, y, weights=w),
                    -(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "mse": (slim.losses.mean_squared_error(p, y, weights=w), (p - y) ** 2),
        "sum_of_squares": (slim.losses.sum_of_squares(p, y, weights=w), (p - y) ** 2),
        "abs": (slim.losses.absolute_difference(p, y, weights=w), np.abs(p - y)),
        "log": (slim.losses.log_loss(p, y, weights=w),
                -(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))),
        "hinge": (slim.losses.hinge_loss(LOGITS, y, weights=w),
                  np.maximum(0, 1 - (2 * y - 1) * LOGITS)),
    }
    for name, (got, losses) in cases.items():
        assert float(got) == pytest.approx(weighted_mean(losses, w), rel=1e-5), name
    a = LOGITS / np.linalg.norm(LOGITS, axis=1, keepdims=True)
    b = ONEHOT
    got = slim.losses.cosine_distance(a, b, axis=1)
    assert float(got) == pytest.approx((1 - (a * b).sum(1)).mean(), rel=1e-5)


def test_loss_collection_add_loss_and_total():
    with slim.losses.collect() as collection:
        first = slim.losses.absolute_difference([1.0, 2.0], [0.0, 0.0])
        slim.losses.add_loss(tf.constant(0.5))
        slim.losses.mean_squared_error([1.0], [0.0], loss_collection=False)
        assert len(slim.losses.get_losses()) == 2
        total = slim.losses.get_total_loss(add_regularization_losses=False)
    assert float(first) == pytest.approx(1.5)
    assert float(total) == pytest.approx(2.0)
    assert len(collection.losses) == 2
    with pytest.raises(SlimError, match="no loss collection is open"):
        slim.losses.get_losses()


def test_regularizers_formulas():
    w = tf.constant([[1.0, -2.0], [3.0, 0.5]])
    assert float(slim.l1_regularizer(0.1)(w)) == pytest.approx(0.65)
    assert float(slim.l2_regularizer(0.1)(w)) == pytest.approx(0.1 * 14.25 / 2)
    assert float(slim.l1_l2_regularizer(0.1, 0.1)(w)) == pytest.approx(0.65 + 0.7125)
    assert slim.l2_regularizer(0.0) is None
    with pytest.raises(SlimError, match="expected a scale >= 0. Received: scale=-1"):
        slim.l2_regularizer(-1)


def _small(x):
    x = slim.conv2d(x, 3, [3, 3], normalizer_fn=slim.batch_norm, scope="conv")
    return slim.fully_connected(slim.flatten(x), 2, activation_fn=None, scope="logits")


def test_saved_checkpoint_reads_with_load_checkpoint_and_tf1_saver(tmp_path):
    model = slim.Model(_small)
    model(tf.ones([1, 4, 4, 1]))
    prefix = slim.save_checkpoint(model.variables_dict(), str(tmp_path / "model.ckpt-3"))
    reader = tf.train.load_checkpoint(str(tmp_path))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(model.variables_dict())
    for name, var in model.variables_dict().items():
        np.testing.assert_array_equal(reader.get_tensor(name), var.numpy())
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix
    assert slim.list_variables(str(tmp_path))[0] == ("conv/BatchNorm/beta", [3])
    graph = tf.Graph()
    with graph.as_default():
        tf1_vars = {n: tf.compat.v1.get_variable(n, shape=v.shape, dtype=tf.float32,
                                                 use_resource=False)
                    for n, v in model.variables_dict().items()}
        saver = tf.compat.v1.train.Saver(tf1_vars)
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, prefix)
            values = sess.run(tf1_vars)
    for name, var in model.variables_dict().items():
        np.testing.assert_array_equal(values[name], var.numpy())
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]


def test_max_to_keep_and_latest_from_directory(tmp_path):
    values = {"a": np.zeros(2, np.float32)}
    for step in (1, 2, 3):
        slim.save_checkpoint(values, str(tmp_path / f"model.ckpt-{step}"), max_to_keep=2)
    assert not (tmp_path / "model.ckpt-1.index").exists()
    assert slim.resolve_checkpoint_path(str(tmp_path)).endswith("model.ckpt-3")
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "model.ckpt-2", "model.ckpt-3"]


def test_mismatch_lists_every_shape_and_missing_key(tmp_path):
    slim.save_checkpoint({"logits/weights": np.zeros([48, 5], np.float32),
                          "logits/biases": np.zeros([5], np.float32),
                          "conv/weights": np.zeros([3, 3, 1, 3], np.float32)},
                         str(tmp_path / "model.ckpt"))
    model = slim.Model(_small)
    model(tf.ones([1, 4, 4, 1]))
    with pytest.raises(CheckpointMismatch) as info:
        slim.assign_from_checkpoint(str(tmp_path), slim.get_variables_to_restore(store=model),
                                    store=model)
    message = str(info.value)
    assert "logits/weights: checkpoint [48, 5] vs model [48, 2]" in message
    assert "logits/biases: checkpoint [5] vs model [2]" in message
    assert [m[0] for m in info.value.mismatched] == ["logits/weights", "logits/biases"]
    restorable = slim.get_variables_to_restore(exclude=["logits"], store=model)
    with pytest.raises(CheckpointMismatch, match="lacks 3 variable\\(s\\): conv/BatchNorm/beta"):
        slim.assign_from_checkpoint(str(tmp_path), restorable, store=model)
    restored = slim.assign_from_checkpoint(str(tmp_path), restorable, ignore_missing_vars=True,
                                           store=model)
    assert restored == ["conv/weights"]
    with pytest.raises(SlimError, match="nothing_here' not found: expected .*nothing_here.index"):
        slim.resolve_checkpoint_path(str(tmp_path / "nothing_here"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(SlimError, match="no checkpoint in directory"):
        slim.resolve_checkpoint_path(str(tmp_path / "empty"))


def test_genuine_tf1_checkpoint_restores_into_model_variables():
    path = os.path.join(DATA, "ckpt", "mobilenet_v1_025", "model.ckpt")
    reader = tf.train.load_checkpoint(path)
    shapes = reader.get_variable_to_shape_map()
    store = slim.VariableStore()
    with store.scope():
        for name in sorted(shapes):
            slim.model_variable(name, shape=shapes[name], initializer=slim.zeros_initializer())
    assert len(shapes) == 137
    restored = slim.assign_from_checkpoint(os.path.dirname(path),
                                           slim.get_model_variables(store=store), store=store)
    assert sorted(restored) == sorted(shapes)
    for name in shapes:
        np.testing.assert_array_equal(store.get(name).numpy(), reader.get_tensor(name))
