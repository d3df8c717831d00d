"""slim.learning and slimcli.optimization on toy models: numbers checked by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from slimcli import optimization, slim
from slimcli.errors import SlimError
from slimcli.slim import learning
from slimcli.slim.moving_averages import ExponentialMovingAverage


def _toy(w_init=(1.0, 2.0, 3.0), u_init=(0.5, -0.5)):
    def net(x):
        with slim.variable_scope("toy"):
            w = slim.model_variable("w", [3], initializer=list(w_init))
            u = slim.model_variable("u", [2], initializer=list(u_init))
        return w, u
    model = slim.Model(net)
    model(tf.zeros([1, 5]))
    return model


def _toy_loss(model):
    def loss_fn(batch):
        w, u = model(batch)
        return tf.reduce_sum(w * batch[0, :3]) + tf.reduce_sum(u * batch[0, 3:])
    return loss_fn


def _one_step(model, optimizer, x, **kwargs):
    it = iter(tf.data.Dataset.from_tensors(tf.constant([x], tf.float32)).repeat())
    step = learning.create_train_op(_toy_loss(model), optimizer, model, **kwargs)
    metrics = step(it)
    return step, {k: float(v) for k, v in metrics.items()}


def test_multipliers_then_per_gradient_clipping_numerically():
    model = _toy()
    sgd = optimization.make_optimizer("sgd", {})
    # grad w = [3, 4, 0] (norm 5) x 0.5 -> norm 2.5 -> clipped to norm 1; grad u = [.3, .4] kept.
    _, metrics = _one_step(model, sgd, [3.0, 4.0, 0.0, 0.3, 0.4], learning_rate=1.0,
                           gradient_multipliers={"toy/w": 0.5}, clip_gradient_norm=1.0)
    w, u = model.variables_dict()["toy/w"], model.variables_dict()["toy/u"]
    np.testing.assert_allclose(w.numpy(), [1 - 0.6, 2 - 0.8, 3.0], rtol=1e-6)
    np.testing.assert_allclose(u.numpy(), [0.5 - 0.3, -0.5 - 0.4], rtol=1e-6)
    assert metrics["learning_rate"] == 1.0


def test_multiplier_keyed_by_variable_and_variables_to_train():
    model = _toy()
    u = model.variables_dict()["toy/u"]
    sgd = optimization.make_optimizer("sgd", {})
    _one_step(model, sgd, [1.0, 1.0, 1.0, 1.0, 2.0], learning_rate=0.1,
              gradient_multipliers={u.ref(): 3.0}, variables_to_train=[u])
    np.testing.assert_allclose(u.numpy(), [0.5 - 0.3, -0.5 - 0.6], rtol=1e-6)
    np.testing.assert_allclose(model.variables_dict()["toy/w"].numpy(), [1, 2, 3])


def test_gradient_helpers():
    a, b = tf.Variable([1.0], name="net/conv1/weights"), tf.Variable([1.0], name="net/fc/biases")
    pairs = [(tf.constant([3.0, 4.0]), a), (tf.constant([0.1]), b)]
    clipped = learning.clip_gradient_norms(pairs, 1.0)
    np.testing.assert_allclose(clipped[0][0].numpy(), [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(clipped[1][0].numpy(), [0.1], rtol=1e-6)
    scaled = learning.multiply_gradients_matching_regex(pairs, [r"biases$"], 10.0)
    np.testing.assert_allclose(scaled[1][0].numpy(), [1.0], rtol=1e-6)
    np.testing.assert_allclose(scaled[0][0].numpy(), [3.0, 4.0])
    frozen = learning.freeze_gradients_matching_regex(pairs, "conv1")
    assert [v.name for _, v in frozen] == [b.name]
    with pytest.raises(SlimError, match="net/nothing"):
        learning.multiply_gradients(pairs, {"net/nothing": 2.0})


def test_rmsprop_is_tf1_rmsprop():
    """ms starts at 1, epsilon inside the square root (TF1 RMSPropOptimizer)."""
    model = _toy()
    hyper = {"rmsprop_decay": 0.9, "rmsprop_momentum": 0.9, "opt_epsilon": 1.0}
    rms = optimization.make_optimizer("rmsprop", hyper)
    _one_step(model, rms, [2.0, 0.0, 0.0, 0.0, 0.0], learning_rate=0.1)
    g = np.array([2.0, 0.0, 0.0])
    ms = 0.9 * 1.0 + 0.1 * g * g
    mom = 0.1 * g / np.sqrt(ms + 1.0)
    np.testing.assert_allclose(model.variables_dict()["toy/w"].numpy(), [1, 2, 3] - mom,
                               rtol=1e-6)
    names = set(rms.variables_by_name())
    assert names == {"toy/w/RMSProp", "toy/w/RMSProp_1", "toy/u/RMSProp", "toy/u/RMSProp_1"}


FLAGS_DEFAULTS = {"adadelta_rho": 0.95, "adagrad_initial_accumulator_value": 0.1,
                  "adam_beta1": 0.9, "adam_beta2": 0.999, "opt_epsilon": 1.0,
                  "ftrl_learning_rate_power": -0.5, "ftrl_initial_accumulator_value": 0.1,
                  "ftrl_l1": 0.0, "ftrl_l2": 0.0, "momentum": 0.9, "rmsprop_momentum": 0.9,
                  "rmsprop_decay": 0.9}


@pytest.mark.parametrize("name", optimization.OPTIMIZERS.names())
def test_every_optimizer_descends(name):
    model = _toy()
    opt = optimization.make_optimizer(name, FLAGS_DEFAULTS)
    x = [1.0, -1.0, 0.5, 1.0, 1.0]
    loss_fn = _toy_loss(model)
    before = float(loss_fn(tf.constant([x])))
    _one_step(model, opt, x, learning_rate=0.1)
    assert float(loss_fn(tf.constant([x]))) < before
    if name == "adam":
        assert float(opt.variables_by_name()["beta1_power"].numpy()) == pytest.approx(0.81)


def test_exponential_moving_average_tf1_names_and_decay():
    model = _toy()
    step_var = tf.Variable(0, dtype=tf.int64)
    ema = ExponentialMovingAverage(0.9, model.variables_dict(), num_updates=step_var)
    assert set(ema.variables_by_name()) == {"toy/w/ExponentialMovingAverage",
                                            "toy/u/ExponentialMovingAverage"}
    model.variables_dict()["toy/w"].assign([11.0, 2.0, 3.0])
    ema.apply()  # num_updates 0: decay = min(0.9, 1/10) = 0.1
    np.testing.assert_allclose(ema.shadows["toy/w"].numpy(), [1 + 0.9 * 10, 2, 3], rtol=1e-6)


def test_update_ops_false_keeps_batch_norm_statistics():
    def net(x):
        return slim.batch_norm(x, is_training=True, scope="bn")
    model = slim.Model(net)
    model(tf.zeros([4, 3]))
    ds = iter(tf.data.Dataset.from_tensors(tf.ones([4, 3]) * 5.0).repeat())
    mean, = [v for n, v in model.variables_dict().items() if n.endswith("moving_mean")]

    def loss_fn(batch):
        return tf.reduce_sum(model(batch) * tf.constant([1.0, 2.0, 3.0]))
    sgd = optimization.make_optimizer("sgd", {})
    learning.create_train_op(loss_fn, sgd, model, learning_rate=0.1, update_ops=False)(ds)
    np.testing.assert_allclose(mean.numpy(), [0, 0, 0])
    learning.create_train_op(loss_fn, sgd, model, learning_rate=0.1)(ds)
    assert float(mean.numpy()[0]) > 0


def test_learning_rate_policies():
    cfg = optimization.ScheduleConfig(learning_rate=0.1, end_learning_rate=0.001,
                                      decay_factor=0.5, decay_steps=10, total_steps=110,
                                      warmup_steps=0)
    exp = optimization.learning_rate_fn("exponential", cfg)
    assert float(exp(9)) == pytest.approx(0.1) and float(exp(10)) == pytest.approx(0.05)
    poly = optimization.learning_rate_fn("polynomial", cfg)
    assert float(poly(5)) == pytest.approx(0.0505) and float(poly(50)) == pytest.approx(0.001)
    assert float(optimization.learning_rate_fn("fixed", cfg)(99)) == pytest.approx(0.1)
    warm = optimization.learning_rate_fn("cosine", cfg.__class__(
        **{**cfg.__dict__, "warmup_steps": 10}))
    assert float(warm(5)) == pytest.approx(0.05)
    assert float(warm(10)) == pytest.approx(0.1)
    mid = 0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * 0.5))
    assert float(warm(60)) == pytest.approx(mid, rel=1e-5)
    with pytest.raises(SlimError, match="max_number_of_steps"):
        optimization.learning_rate_fn("cosine", cfg.__class__(**{**cfg.__dict__,
                                                                 "total_steps": None}))
    with pytest.raises(SlimError, match="Did you mean 'exponential'"):
        optimization.learning_rate_fn("exponentail", cfg)


def test_decay_steps_as_the_original():
    assert optimization.decay_steps_for(3320, 2.0, 32) == 207
    assert optimization.decay_steps_for(3320, 2.0, 32, 4, sync_replicas=True) == 51
    assert optimization.decay_steps_for(3320, 2.0, 32, 4, sync_replicas=False) == 207


def test_loss_scale_skips_overflowing_step_and_halves():
    model = _toy()
    scale = learning.DynamicLossScale(initial_scale=8.0, growth_steps=2)
    sgd = optimization.make_optimizer("sgd", {})
    data = tf.data.Dataset.from_tensor_slices(tf.constant(
        [[1.0, 0, 0, 0, 0], [np.inf, 0, 0, 0, 0], [1.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0]]))
    it = iter(data.batch(1))
    step = learning.create_train_op(_toy_loss(model), sgd, model, learning_rate=1.0,
                                    loss_scale=scale)
    w = model.variables_dict()["toy/w"]
    step(it)  # gradient 1 unscaled exactly: w0 = 1 - 1
    assert w.numpy()[0] == pytest.approx(0.0) and float(scale.scale.numpy()) == 8.0
    step(it)  # inf gradient: skipped, scale halved
    assert w.numpy()[0] == pytest.approx(0.0) and float(scale.scale.numpy()) == 4.0
    step(it)
    step(it)  # two good steps in a row: scale doubles
    assert w.numpy()[0] == pytest.approx(-2.0) and float(scale.scale.numpy()) == 8.0


def test_summarize_gradients_reports_each_gradient_norm():
    model = _toy()
    x = [3.0, 0.0, 4.0, 1.0, 1.0]
    _, metrics = _one_step(model, optimization.make_optimizer("sgd", {}), x, learning_rate=0.1,
                           summarize_gradients=True)
    assert metrics["gradient_norm/toy/w"] == pytest.approx(5.0)  # d/dw = x[:3]
    assert metrics["gradient_norm/toy/u"] == pytest.approx(math.sqrt(2.0))


def test_autograph_is_off_by_default_and_on_when_asked():
    """A loss with a Python `if` on a tensor needs autograph=True; TF-Slim-style code does not."""
    def branching_loss(model):
        plain = _toy_loss(model)

        def loss_fn(batch):
            loss = plain(batch)
            if loss > 0:  # Python control flow on a tensor
                loss = loss * 2.0
            return loss
        return loss_fn
    sgd = optimization.make_optimizer("sgd", {})
    it = iter(tf.data.Dataset.from_tensors(tf.constant([[1.0, 1, 1, 1, 1]])).repeat())
    model = _toy()
    with pytest.raises(TypeError, match="autograph|Python bool"):
        learning.create_train_op(branching_loss(model), sgd, model, learning_rate=0.1)(it)
    model = _toy()
    step = learning.create_train_op(branching_loss(model), sgd, model, learning_rate=0.1,
                                    autograph=True)
    assert float(step(it)["total_loss"]) == 2.0 * (1 + 2 + 3 + 0.5 - 0.5)
