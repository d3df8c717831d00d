"""A TF-Slim user's library code, run against slimcli.slim (issue 19, one test per finding)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError

HERE = os.path.dirname(__file__)


def _toy():
    def net(x, is_training=True):
        with slim.variable_scope("toy"):
            w = slim.model_variable("w", [3], initializer=[1.0, 2.0, 3.0])
            h = slim.batch_norm(x, is_training=is_training, decay=0.5, scope="bn")
        return tf.reduce_sum(w * x[0, :3]) + 0.0 * tf.reduce_sum(h)
    model = slim.Model(net)
    model(tf.zeros([2, 3]))
    return model


def _loss_fn(model):
    return lambda batch: model(batch)


def _batches(x):
    return iter(tf.data.Dataset.from_tensors(tf.constant(x, tf.float32)).repeat())


# 1 ---------------------------------------------------------------------------------------
def test_1_modules_reachable_as_with_import_tf_slim_as_slim():
    assert callable(slim.learning.create_train_op) and callable(slim.learning.train)
    assert callable(slim.metrics.streaming_accuracy)
    assert callable(slim.metrics.aggregate_metric_map)
    assert callable(slim.evaluation.evaluation_loop) and callable(slim.evaluation.evaluate_once)
    assert callable(slim.losses.softmax_cross_entropy)
    assert callable(slim.variables.get_variables_to_restore)
    assert callable(slim.arg_scope) and callable(slim.get_or_create_global_step)


# 2 ---------------------------------------------------------------------------------------
def test_2_create_train_op_takes_keras_and_tf1_optimizers():
    x = [[3.0, 4.0, 5.0], [0.0, 0.0, 0.0]]
    model = _toy()
    step = slim.learning.create_train_op(_loss_fn(model), tf.keras.optimizers.SGD(0.1), model)
    step(_batches(x))
    w = model.variables_dict()["toy/w"]
    np.testing.assert_allclose(w.numpy(), [1 - 0.3, 2 - 0.4, 3 - 0.5], rtol=1e-6)

    model = _toy()
    opt = tf.compat.v1.train.MomentumOptimizer(learning_rate=0.1, momentum=0.9)
    step = slim.learning.create_train_op(_loss_fn(model), opt, model)
    it = _batches(x)
    step(it)
    metrics = step(it)
    # TF1 momentum: accum = 0.9 * accum + g; w -= lr * accum -> total 0.1 * (1 + 1.9) * g.
    w = model.variables_dict()["toy/w"]
    np.testing.assert_allclose(w.numpy(), np.array([1, 2, 3]) - 0.29 * np.array([3, 4, 5]),
                               rtol=1e-6)
    assert float(metrics["learning_rate"]) == pytest.approx(0.1)
    with pytest.raises(SlimError, match="centered=True is not supported"):
        slim.learning.create_train_op(_loss_fn(model), tf.compat.v1.train.RMSPropOptimizer(
            0.1, centered=True), model)


# 3 ---------------------------------------------------------------------------------------
def test_3_update_ops_run_exactly_the_given_ops():
    x = [[1.0, 1.0, 1.0], [3.0, 5.0, 7.0]]
    sgd = tf.keras.optimizers.SGD(0.0)

    def moving_mean(model):
        return model.variables_dict()["toy/bn/moving_mean"].numpy().copy()

    model = _toy()
    counter = tf.Variable(0.0)
    before = moving_mean(model)
    step = slim.learning.create_train_op(_loss_fn(model), sgd, model,
                                         update_ops=[lambda: counter.assign_add(2.0)])
    step(_batches(x))
    assert counter.numpy() == 2.0
    np.testing.assert_array_equal(moving_mean(model), before)  # batch-norm updates not run

    model = _toy()
    slim.learning.create_train_op(_loss_fn(model), tf.keras.optimizers.SGD(0.0), model,
                                  update_ops=[])(_batches(x))
    np.testing.assert_array_equal(moving_mean(model), before)
    model = _toy()
    slim.learning.create_train_op(_loss_fn(model), tf.keras.optimizers.SGD(0.0), model,
                                  update_ops=None)(_batches(x))
    np.testing.assert_allclose(moving_mean(model), 0.5 * np.array([2.0, 3.0, 4.0]), rtol=1e-6)
    with pytest.raises(SlimError, match="is not callable"):
        slim.learning.create_train_op(_loss_fn(model), sgd, model, update_ops=["op"])


# 4 ---------------------------------------------------------------------------------------
def test_4_init_fn_taking_a_session_restores_values(tmp_path):
    source = _toy()
    source.variables_dict()["toy/w"].assign([7.0, 8.0, 9.0])
    slim.save_checkpoint(source.variables_dict(), str(tmp_path / "src" / "model.ckpt-1"))
    model = _toy()
    variables_to_restore = slim.get_variables_to_restore(include=["toy/w"], store=model)

    def InitAssignFn(sess):  # noqa: N802 - the seed's name
        sess.run(lambda: slim.assign_from_checkpoint(str(tmp_path / "src"),
                                                     variables_to_restore, store=model))

    step = slim.get_or_create_global_step(model)
    slim.learning.train(lambda: {}, str(tmp_path / "train"), number_of_steps=0,
                        variables_to_save=model.variables_dict(), global_step=step,
                        init_fn=InitAssignFn)
    np.testing.assert_array_equal(model.variables_dict()["toy/w"].numpy(), [7.0, 8.0, 9.0])
    names = slim.assign_from_checkpoint(str(tmp_path / "src"), variables_to_restore, store=model)
    init_assign_op, _ = names + [None]
    with pytest.raises(SlimError, match="returns the names restored"):
        slim.learning.train(lambda: {}, str(tmp_path / "train2"), number_of_steps=0,
                            variables_to_save=model.variables_dict(), global_step=step,
                            init_fn=lambda sess: sess.run(init_assign_op))


# 5 ---------------------------------------------------------------------------------------
def test_5_scope_filters_are_regular_expressions_matched_at_the_start():
    def net(x):
        for scope in ("conv1", "conv2", "conv3", "fc7", "fc8"):
            x = slim.fully_connected(x, 2, scope=scope)
        return x
    model = slim.Model(net)
    model(tf.zeros([1, 2]))

    def names(variables):
        return [model.store.name_of(v) for v in variables]
    assert names(slim.get_variables_to_restore(exclude=[".*fc8"], store=model)) == [
        f"{s}/{v}" for s in ("conv1", "conv2", "conv3", "fc7") for v in ("weights", "biases")]
    assert names(slim.get_variables_to_restore(include=["conv[12]"], store=model)) == [
        "conv1/weights", "conv1/biases", "conv2/weights", "conv2/biases"]
    assert names(slim.get_variables(scope="fc8", store=model)) == ["fc8/weights", "fc8/biases"]
    assert names(slim.get_variables(scope=".*/biases", store=model)) == [
        f"{s}/biases" for s in ("conv1", "conv2", "conv3", "fc7", "fc8")]
    assert slim.get_variables(scope="biases", store=model) == []  # anchored at the start
    with pytest.raises(SlimError, match="not a valid regular expression"):
        slim.get_variables(scope="conv[", store=model)
    assert "startswith" not in slim.variables.get_variables_to_restore.__doc__


# 6 ---------------------------------------------------------------------------------------
RNG = np.random.RandomState(0)
P = RNG.randint(0, 2, 40)
L = RNG.randint(0, 2, 40)
V = RNG.rand(40).astype(np.float32)
U = RNG.rand(40).astype(np.float32)


def test_6_streaming_metrics_equal_numpy_counts():
    m = slim.metrics
    names_to_values, names_to_updates = m.aggregate_metric_map({
        "accuracy": m.streaming_accuracy(P, L),
        "precision": m.streaming_precision(P, L),
        "recall": m.streaming_recall(P, L),
        "mae": m.streaming_mean_absolute_error(V, U),
        "mse": m.streaming_mean_squared_error(V, U),
        "mre": m.streaming_mean_relative_error(V, U, U + 1.0),
        "less": m.streaming_percentage_less(V, 0.3),
    })
    assert set(names_to_values) == set(names_to_updates) == {
        "accuracy", "precision", "recall", "mae", "mse", "mre", "less"}
    for update in names_to_updates.values():
        update()
    tp, fp, fn = np.sum(P & L), np.sum(P & (1 - L)), np.sum((1 - P) & L)
    expected = {"accuracy": np.mean(P == L), "precision": tp / (tp + fp),
                "recall": tp / (tp + fn), "mae": np.mean(np.abs(V - U)),
                "mse": np.mean((V - U) ** 2), "mre": np.mean(np.abs(V - U) / (U + 1.0)),
                "less": np.mean(V < 0.3)}
    for name, value in names_to_values.items():
        assert float(value()) == pytest.approx(expected[name], rel=1e-5), name

    value, update = m.streaming_accuracy(None, None)
    update(P[:20], L[:20])
    update(tf.constant(P[20:]), tf.constant(L[20:]))
    assert float(value) == pytest.approx(np.mean(P == L))
    values, updates = m.aggregate_metrics(m.streaming_true_positives(P, L),
                                          m.streaming_false_negatives(P, L))
    assert [float(u()) for u in updates] == [tp, fn] and len(values) == 2


# 7 ---------------------------------------------------------------------------------------
def test_7_evaluation_with_tf_slim_keywords(tmp_path):
    def net(x):
        return x * slim.model_variable("scale", shape=[], initializer=slim.ones_initializer())
    model = slim.Model(net)
    x = RNG.randn(12, 3).astype(np.float32)
    y = x.argmax(1)
    y[:3] = x[:3].argmin(1)
    model(x)
    slim.save_checkpoint(model.variables_dict(), str(tmp_path / "model.ckpt-5"))
    batches = iter(tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat())
    accuracy = slim.metrics.Accuracy()

    def eval_op():
        images, labels = next(batches)
        accuracy.update(tf.argmax(model(images), 1), labels)
    names_to_values, names_to_updates = slim.metrics.aggregate_metric_map(
        {"eval/Accuracy": (slim.metrics.MetricValue(accuracy),
                           slim.metrics.MetricUpdate(accuracy, (), {}))})
    final = slim.evaluation.evaluation_loop(
        "", str(tmp_path), str(tmp_path / "eval"), num_evals=3, eval_op=eval_op,
        final_op=names_to_values, summary_op=None, eval_interval_secs=0, timeout=0,
        variables_to_restore=model.variables_dict(), max_number_of_evaluations=1)
    assert final["eval/Accuracy"] == pytest.approx(9 / 12)
    assert names_to_updates["eval/Accuracy"] is not None
    once = slim.evaluation.evaluate_once(
        "", str(tmp_path / "model.ckpt-5"), str(tmp_path / "eval"), num_evals=3,
        eval_op=eval_op, final_op=names_to_values,
        variables_to_restore=model.variables_dict())
    assert once["eval/Accuracy"] == pytest.approx(9 / 12)  # the metric was reset first
    assert tf.io.gfile.glob(str(tmp_path / "eval" / "events.*"))
    step = slim.get_or_create_global_step(model)
    assert slim.get_or_create_global_step(model) is step and int(step) == 0


# 9 ---------------------------------------------------------------------------------------
def _tf_slim_names() -> list[str]:
    with open(os.path.join(HERE, "data", "tf_slim_public_names.txt")) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_9_every_tf_slim_name_is_provided_or_documented_as_replaced():
    with open(os.path.join(HERE, "..", "docs", "library.md")) as f:
        docs = f.read()
    table = docs[docs.index("## Coming from TF-Slim"):]
    documented = set(re.findall(r"^\| `([\w.]+)`", table, re.M))
    missing = []
    for entry in _tf_slim_names():
        module, name = entry.split(".", 1)
        provided = hasattr(getattr(slim, module, None), name) or (
            module in ("variables", "losses") and hasattr(slim, name))
        if not provided and entry not in documented:
            missing.append(entry)
    assert not missing, f"neither in slimcli.slim nor in docs/library.md's table: {missing}"
    assert len(_tf_slim_names()) > 100
