"""The TF-Slim README's examples, in TF2 form, each in eager mode and inside tf.function."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli import slim
from slimcli.distribute import mirrored_strategy
from slimcli.errors import SlimError
from tests.nets_helpers import reference

MODES = ["eager", "function"]


def run(mode: str, fn, *args):
    """Runs fn(*args) eagerly or as a tf.function."""
    if mode == "function":
        return tf.function(fn, autograph=False)(*args)
    return fn(*args)


def vgg16_readme(inputs):
    """VGG-16 as the TF-Slim README writes it: repeat + arg_scope."""
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=tf.nn.relu,
                        weights_initializer=slim.truncated_normal_initializer(0.0, 0.01),
                        weights_regularizer=slim.l2_regularizer(0.0005)):
        with slim.variable_scope("vgg_16"):
            net = slim.repeat(inputs, 2, slim.conv2d, 64, [3, 3], scope="conv1")
            net = slim.max_pool2d(net, [2, 2], scope="pool1")
            net = slim.repeat(net, 2, slim.conv2d, 128, [3, 3], scope="conv2")
            net = slim.max_pool2d(net, [2, 2], scope="pool2")
            net = slim.repeat(net, 3, slim.conv2d, 256, [3, 3], scope="conv3")
            net = slim.max_pool2d(net, [2, 2], scope="pool3")
            net = slim.repeat(net, 3, slim.conv2d, 512, [3, 3], scope="conv4")
            net = slim.max_pool2d(net, [2, 2], scope="pool4")
            net = slim.repeat(net, 3, slim.conv2d, 512, [3, 3], scope="conv5")
            net = slim.max_pool2d(net, [2, 2], scope="pool5")
            # The original writes the classifier as convolutions (fc6 is 7x7 VALID).
            net = slim.conv2d(net, 4096, [7, 7], padding="VALID", scope="fc6")
            net = slim.dropout(net, 0.5, is_training=False, scope="dropout6")
            net = slim.conv2d(net, 4096, [1, 1], scope="fc7")
            net = slim.dropout(net, 0.5, is_training=False, scope="dropout7")
            net = slim.conv2d(net, 1001, [1, 1], activation_fn=None, scope="fc8")
    return tf.squeeze(net, [1, 2], name="fc8/squeezed")


@pytest.mark.parametrize("mode", MODES)
def test_readme_vgg16_has_exactly_vgg16s_variables(mode):
    model = slim.Model(vgg16_readme)
    if mode == "eager":
        assert model(tf.zeros([1, 224, 224, 3])).shape == (1, 1001)
    else:
        model.build([1, 224, 224, 3])  # traced in a tf.function
    ours = {n: v.shape.as_list() for n, v in model.variables_dict().items()}
    theirs = {n: s for n, s, _ in reference("vgg_16")["variables"]}
    assert ours == theirs
    assert len(model.store.regularizers()) == 16  # one L2 penalty per weights variable


@pytest.mark.parametrize("mode", MODES)
def test_repeat_and_stack_scopes(mode):
    def net(x):
        y = slim.repeat(x, 3, slim.conv2d, 4, [3, 3], scope="conv3")
        y = slim.flatten(y)
        y = slim.stack(y, slim.fully_connected, [8, 6, 5], scope="fc")
        return slim.stack(y, slim.fully_connected, [(3,), (2,)], activation_fn=None)

    model = slim.Model(net)
    out = run(mode, model, tf.ones([2, 5, 5, 1]))
    assert out.shape == (2, 2)
    assert list(model.variables_dict()) == [
        "conv3/conv3_1/weights", "conv3/conv3_1/biases", "conv3/conv3_2/weights",
        "conv3/conv3_2/biases", "conv3/conv3_3/weights", "conv3/conv3_3/biases",
        "fc/fc_1/weights", "fc/fc_1/biases", "fc/fc_2/weights", "fc/fc_2/biases",
        "fc/fc_3/weights", "fc/fc_3/biases",
        "Stack/fully_connected_1/weights", "Stack/fully_connected_1/biases",
        "Stack/fully_connected_2/weights", "Stack/fully_connected_2/biases"]


@pytest.mark.parametrize("mode", MODES)
def test_default_scope_names_are_made_unique_per_call(mode):
    def net(x):
        x = slim.conv2d(x, 2, [1, 1])
        x = slim.conv2d(x, 2, [1, 1])
        x = slim.fully_connected(slim.flatten(x), 3)
        return slim.fully_connected(x, 3)

    model = slim.Model(net)
    run(mode, model, tf.ones([1, 2, 2, 1]))
    run(mode, model, tf.ones([1, 2, 2, 1]))  # a second call reuses, creates nothing
    assert list(model.variables_dict()) == [
        "Conv/weights", "Conv/biases", "Conv_1/weights", "Conv_1/biases",
        "fully_connected/weights", "fully_connected/biases",
        "fully_connected_1/weights", "fully_connected_1/biases"]


@pytest.mark.parametrize("mode", MODES)
def test_arg_scope_nesting_and_local_override(mode):
    seen = {}

    def net(x):
        with slim.arg_scope([slim.conv2d], padding="SAME", activation_fn=None,
                            weights_initializer=slim.ones_initializer()):
            with slim.arg_scope([slim.conv2d], stride=2):
                a = slim.conv2d(x, 1, [3, 3], scope="a")                  # SAME, stride 2
                b = slim.conv2d(x, 1, [3, 3], padding="VALID", scope="b")  # local override
            c = slim.conv2d(x, 1, [3, 3], scope="c")                      # outer scope only
        seen.update(a=a.shape.as_list(), b=b.shape.as_list(), c=c.shape.as_list())
        return a

    run(mode, slim.Model(net), tf.ones([1, 8, 8, 1]))
    assert seen == {"a": [1, 4, 4, 1], "b": [1, 3, 3, 1], "c": [1, 8, 8, 1]}


def test_arg_scope_rejects_unknown_kwargs_and_undecorated_ops():
    with pytest.raises(SlimError, match="conv2d does not accept argument.*bogus"):
        with slim.arg_scope([slim.conv2d], bogus=1):
            pass
    with pytest.raises(SlimError, match="is not decorated with @add_arg_scope"):
        with slim.arg_scope([tf.nn.relu], name="x"):
            pass


def test_arg_scope_can_be_saved_and_reentered():
    @slim.add_arg_scope
    def f(a, b=1, c=2):
        return a, b, c

    with slim.arg_scope([f], b=10) as sc:
        pass
    assert f(0) == (0, 1, 2)
    with slim.arg_scope(sc):
        assert f(0) == (0, 10, 2)
        assert f(0, 5) == (0, 5, 2)  # positional wins over the scope
    assert slim.arg_scoped_arguments(f) == ["a", "b", "c"]


def _two_layer_net(x):
    with slim.arg_scope([slim.fully_connected], weights_regularizer=slim.l2_regularizer(0.1)):
        x = slim.fully_connected(x, 4, scope="hidden")
        return slim.fully_connected(x, 2, activation_fn=None, scope="logits")


@pytest.mark.parametrize("mode", MODES)
def test_regularization_is_in_the_total_loss(mode):
    model = slim.Model(_two_layer_net)
    x = tf.constant(np.random.RandomState(0).randn(3, 5), tf.float32)
    labels = tf.one_hot([0, 1, 1], 2)

    def total(x):
        with slim.losses.collect():
            logits = model(x)
            data = slim.losses.softmax_cross_entropy(logits, labels)
            return data, slim.losses.get_total_loss()

    data, total_loss = run(mode, total, x)
    weights = [v.numpy() for n, v in model.variables_dict().items() if n.endswith("weights")]
    expected_reg = sum(0.1 * np.sum(w ** 2) / 2 for w in weights)
    np.testing.assert_allclose(total_loss.numpy(), data.numpy() + expected_reg, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_get_variables_to_restore_include_exclude(mode):
    model = slim.Model(_two_layer_net)
    run(mode, model, tf.ones([1, 5]))
    names = lambda vs: [model.store.name_of(v) for v in vs]  # noqa: E731
    assert names(slim.get_variables_to_restore(exclude=["logits"], store=model)) == [
        "hidden/weights", "hidden/biases"]
    assert names(slim.get_variables_to_restore(include=["logits"], store=model)) == [
        "logits/weights", "logits/biases"]
    assert names(slim.get_variables_by_name("weights", store=model)) == [
        "hidden/weights", "logits/weights"]
    assert names(slim.get_variables(scope="hidden", suffix="biases", store=model)) == [
        "hidden/biases"]
    assert slim.get_unique_variable("logits/biases", store=model) is \
        model.variables_dict()["logits/biases"]


@pytest.mark.parametrize("mode", MODES)
def test_restore_through_a_name_map(mode, tmp_path):
    source = slim.Model(_two_layer_net)
    run(mode, source, tf.ones([1, 5]))
    prefix = slim.save_checkpoint(source.variables_dict(), str(tmp_path / "model.ckpt-7"))

    def renamed(x):
        with slim.variable_scope("student"):
            return _two_layer_net(x)

    target = slim.Model(renamed)
    run(mode, target, tf.ones([1, 5]))
    name_map = {n.replace("student/", ""): v for n, v in target.variables_dict().items()}
    restored = slim.assign_from_checkpoint_fn(str(tmp_path), name_map)()
    assert sorted(restored) == sorted(source.variables_dict())
    for name, var in source.variables_dict().items():
        np.testing.assert_array_equal(target.variables_dict()[f"student/{name}"].numpy(),
                                      var.numpy())
    assert prefix.endswith("model.ckpt-7")


def test_new_variable_after_build_is_an_error_naming_it():
    calls = {"n": 0}

    def net(x):
        calls["n"] += 1
        y = slim.fully_connected(x, 2, scope="a")
        if calls["n"] > 1:
            y = slim.fully_connected(y, 2, scope="late")
        return y

    model = slim.Model(net)
    model(tf.ones([1, 3]))
    with pytest.raises(SlimError, match="variable late/weights does not exist and the model is "
                                        "already built"):
        model(tf.ones([1, 3]))


def test_same_variable_twice_needs_reuse():
    def clash(x):
        slim.fully_connected(x, 2, scope="fc")
        return slim.fully_connected(x, 2, scope="fc")

    with pytest.raises(SlimError, match="variable fc/weights already exists"):
        slim.Model(clash)(tf.ones([1, 3]))

    def shared(x):
        a = slim.fully_connected(x, 2, scope="fc")
        return a + slim.fully_connected(x, 2, scope="fc", reuse=True)

    model = slim.Model(shared)
    model(tf.ones([1, 3]))
    assert list(model.variables_dict()) == ["fc/weights", "fc/biases"]


def test_layers_without_an_active_store_explain_the_fix():
    with pytest.raises(SlimError, match="no variable store is active"):
        slim.conv2d(tf.ones([1, 3, 3, 1]), 1, [1, 1])


def test_variable_and_model_variable_with_a_bare_store():
    store = slim.VariableStore()
    with store.scope():
        with slim.variable_scope("block"):
            w = slim.variable("weights", shape=[2, 3], initializer=slim.zeros_initializer(),
                              regularizer=slim.l2_regularizer(0.5))
            m = slim.model_variable("mv", shape=[4], initializer=slim.ones_initializer())
            slim.local_variable([1, 2], name="local")
    assert w.name == "block/weights:0"
    assert [store.name_of(v) for v in slim.get_variables(store=store)] == [
        "block/weights", "block/mv", "block/local"]
    assert [store.name_of(v) for v in slim.get_model_variables(store=store)] == ["block/mv"]
    assert [store.name_of(v) for v in slim.get_trainable_variables(store=store)] == [
        "block/weights", "block/mv"]
    np.testing.assert_array_equal(m.numpy(), np.ones(4))
    assert [store.name_of(v) for v in slim.get_variables_by_suffix("weights", store=store)] == [
        "block/weights"]
    assert slim.get_variables_by_suffix("mv", scope="other", store=store) == []
    slim.add_model_variable(w, store=store)
    assert [store.name_of(v) for v in slim.get_model_variables(store=store)] == [
        "block/weights", "block/mv"]
    slim.add_model_variable(tf.Variable([7.0], name="outside"), store=store)
    assert [store.name_of(v) for v in slim.get_model_variables(store=store)][-1] == "outside"
    slim.assign_from_values({"block/mv": np.arange(4)}, store=store)
    np.testing.assert_array_equal(m.numpy(), np.arange(4))
    with pytest.raises(SlimError, match="block/mv has shape \\[4\\], the value has shape \\[2\\]"):
        slim.assign_from_values_fn({"block/mv": [1, 2]}, store=store)()


def test_mirrored_strategy_builds_and_steps_a_small_net():
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])

    def net(x, is_training=True):
        x = slim.conv2d(x, 4, [3, 3], normalizer_fn=slim.batch_norm,
                        normalizer_params={"is_training": is_training, "scale": True})
        return slim.fully_connected(slim.flatten(x), 3, activation_fn=None)

    with strategy.scope():
        model = slim.Model(net)
        model.build([None, 6, 6, 2])
        optimizer = tf.keras.optimizers.SGD(0.1)
    assert isinstance(model.variables_dict()["Conv/weights"], tf.distribute.DistributedValues)

    @tf.function
    def step(x, y):
        def replica(x, y):
            with tf.GradientTape() as tape, slim.losses.collect():
                slim.losses.sparse_softmax_cross_entropy(model(x), y)
                loss = slim.losses.get_total_loss() / strategy.num_replicas_in_sync
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return strategy.reduce("SUM", strategy.run(replica, (x, y)), axis=None)

    x = tf.random.stateless_normal([4, 6, 6, 2], seed=[0, 1])
    y = tf.constant([0, 1, 2, 0])
    before = model.variables_dict()["Conv/weights"].numpy()
    moving_before = model.variables_dict()["Conv/BatchNorm/moving_mean"].numpy()
    losses = [float(step(x, y)) for _ in range(5)]
    assert losses[-1] < losses[0]
    assert not np.array_equal(before, model.variables_dict()["Conv/weights"].numpy())
    assert not np.array_equal(moving_before,
                              model.variables_dict()["Conv/BatchNorm/moving_mean"].numpy())


def test_summaries_write_tensorboard_layouts_and_leave_out_non_finite_values(tmp_path, caplog):
    import glob

    from tensorflow.core.util import event_pb2
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=3), caplog.at_level("WARNING", logger="slimcli.train"):
        slim.summaries.histogram("net/w", np.array([1.0, 2.0, np.nan, 3.0, np.inf]), buckets=4)
        slim.summaries.scalar("loss", np.float32(1.5))
        slim.summaries.image("images", np.zeros([2, 4, 5, 3], np.float32), max_outputs=1)
    writer.close()
    assert "histogram net/w: 2 of 5 values are NaN or Inf and are left out" in caplog.text
    values = {}
    for path in glob.glob(str(tmp_path / "events.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                values[value.tag] = (event.step, value.metadata.plugin_data.plugin_name,
                                     tf.make_ndarray(value.tensor))
    step, plugin, table = values["net/w"]
    assert (step, plugin) == (3, "histograms") and table.shape == (4, 3)
    assert table[:, 2].sum() == 3 and table[0, 0] == 1.0 and table[-1, 1] == 3.0
    assert values["loss"][1] == "scalars" and float(values["loss"][2]) == 1.5
    assert values["images"][1] == "images" and values["images"][2][:2].tolist() == [b"5", b"4"]
