"""Every net of the registry against the original's facts (tests/data/nets/<name>.json).

One test id per net: variables (names and shapes), end points (static shapes),
exported op names, outputs on the documented weights and input (eager and
tf.function), and a training step (finite gradients, batch-norm statistics).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.errors import SlimError
from tests.nets_helpers import DATA, max_rel_diff, reference, reference_input, set_formula_c

NET_NAMES = nets.list_nets()
TOL = 1e-4
GENUINE_CKPTS = os.path.join(DATA, "ckpt")
# Genuine checkpoints written by TF1's Saver from the original nets (tests/data/ckpt/README.md).
GENUINE_NAMES = sorted(d for d in os.listdir(GENUINE_CKPTS)
                       if os.path.isdir(os.path.join(GENUINE_CKPTS, d)))


def _network_fn(name: str, is_training: bool = False, **kwargs):
    ref = reference(name)
    return nets.get_network_fn(name, num_classes=ref["num_classes"], is_training=is_training,
                               **kwargs), ref


@dataclasses.dataclass(frozen=True)
class EvalNet:
    """A net in evaluation mode, built, traced once on the `input` spec, given formula C.

    Read-only once made: the tests below only read its variables, trace and outputs
    (an evaluation call changes nothing), so one copy serves every test of a net.
    """
    fn: object
    ref: dict
    traced: object  # the concrete function of the trace: (logits, end points) on `input`
    logits_name: str
    end_points: dict  # key -> (tensor name, static shape)


@functools.lru_cache(maxsize=1)  # the tests of a net run together (module-scoped parameter)
def _eval_net(name: str) -> EvalNet:
    fn, ref = _network_fn(name, weight_decay=1e-4)  # penalties for the training step
    size = ref["image_size"]
    fn(tf.zeros([1, size, size, 3]))  # creates the variables eagerly: far cheaper than in a trace
    seen = {}

    def forward(x):
        logits, end_points = fn(x)
        seen["logits"] = logits.name
        seen["end_points"] = {k: (v.name, v.shape.as_list()) for k, v in end_points.items()}
        return logits, end_points

    traced = tf.function(forward, autograph=False).get_concrete_function(
        tf.TensorSpec([2, size, size, 3], tf.float32, name="input"))
    set_formula_c(fn.variables_dict(), ref["weights"]["wscale"])
    return EvalNet(fn, ref, traced, seen["logits"], seen["end_points"])


@pytest.fixture(scope="module", autouse=True)
def _free_the_last_net():
    yield
    _eval_net.cache_clear()


@pytest.mark.parametrize("name", NET_NAMES, scope="module")
def test_variables_match_reference(name):
    net = _eval_net(name)
    ref = net.ref
    ours = {n: v.shape.as_list() for n, v in net.fn.variables_dict().items()}
    theirs = {n: shape for n, shape, _ in ref["variables"]}
    assert sorted(set(theirs) - set(ours)) == [], "missing variables"
    assert sorted(set(ours) - set(theirs)) == [], "extra variables"
    assert {n: s for n, s in ours.items() if theirs[n] != s} == {}, "shape mismatches"
    assert sum(int(np.prod(s)) for s in ours.values()) == ref["num_params"]
    assert net.fn.default_image_size == ref["image_size"]


@pytest.mark.parametrize("name", NET_NAMES, scope="module")
def test_end_points_op_names_and_graph_outputs(name):
    """The traced graph: end point shapes, tensor and op names, and its outputs (a graph
    run, where TensorFlow's optimizer may fuse ops) on the documented weights and input."""
    net = _eval_net(name)
    ref = net.ref
    shapes = {k: shape for k, (_, shape) in net.end_points.items()}
    wrong = {k: (shapes.get(k), s) for k, s in ref["end_points"].items() if shapes.get(k) != s}
    assert wrong == {}, "end points missing or of the wrong shape: {key: (ours, original)}"
    assert net.logits_name == ref["logits_tensor"]
    if ref["predictions_tensor"]:
        assert net.end_points[ref["predictions_end_point_key"]][0] == ref["predictions_tensor"]
        assert net.fn.spec.predictions_op == ref["predictions_tensor"][:-2]
        net.traced.graph.get_operation_by_name(net.fn.spec.predictions_op)
    else:
        assert net.fn.spec.predictions_op is None
    logits, _ = net.traced(tf.constant(reference_input(ref["image_size"])))
    assert max_rel_diff(logits, ref["logits"]) < TOL


@pytest.mark.parametrize("name", NET_NAMES, scope="module")
def test_outputs_match_reference(name):
    net = _eval_net(name)
    ref = net.ref
    logits, end_points = net.fn(tf.constant(reference_input(ref["image_size"])))
    assert max_rel_diff(logits, ref["logits"]) < TOL
    if ref["predictions"] is not None:
        key = ref["predictions_end_point_key"]
        assert max_rel_diff(end_points[key], ref["predictions"]) < TOL
    if ref["argmax"] is not None:  # recorded only for nets with a softmax end point
        assert np.argmax(logits.numpy().reshape(2, -1), axis=1).tolist() == ref["argmax"]
    for key, stats in ref["trace"].items():
        value = end_points[key].numpy()
        assert list(value.shape) == stats["shape"], key
        assert max_rel_diff(value.reshape(-1)[:8], stats["first8"]) < 1e-3 or \
            np.allclose(value.reshape(-1)[:8], stats["first8"], atol=1e-4 * max(abs(stats["max"]), 1)), key
        assert abs(value.mean() - stats["mean"]) <= 1e-4 * max(abs(stats["max"]), 1e-3), key


# The training step of these nets runs on 96x96 images (their shapes are checked above at the
# net's own size): they pool globally, so their variables do not depend on the image size. The
# others' do (fully connected layers, auxiliary heads sized to their input): their own size.
SMALL_STEP_NETS = ("resnet_", "mobilenet_", "inception_v2")
SMALL_STEP_SIZE = 96
# NASNet and PNASNet have an auxiliary head in training only: the evaluation net lacks its
# variables, so their step builds a training net of its own, on images of at most 96x96 (the
# auxiliary head's kernel follows the image size; 96 still leaves it a 6x6 input).
TRAINING_ONLY_VARIABLES = ("nasnet_", "pnasnet_")


@pytest.mark.parametrize("name", NET_NAMES, scope="module")
def test_training_step(name):
    """One eager training step of the evaluation net, called in training mode (graph-mode
    training runs in the slim-train tests): finite gradients for every trainable variable;
    batch-norm statistics move in training only. The statistics are put back afterwards."""
    if name.startswith(TRAINING_ONLY_VARIABLES):
        fn, ref = _network_fn(name, is_training=True, weight_decay=1e-4)
        size = min(SMALL_STEP_SIZE, ref["image_size"])
        fn(tf.zeros([1, size, size, 3]))  # builds every variable
    else:
        net = _eval_net(name)
        fn, ref = net.fn, net.ref
        size = SMALL_STEP_SIZE if name.startswith(SMALL_STEP_NETS) else ref["image_size"]
    num_classes = ref["num_classes"]
    images = tf.random.stateless_uniform([2, size, size, 3], seed=[1, 2], minval=-1, maxval=1)
    labels = tf.one_hot([1, 3], num_classes)

    def step(x, y):
        with tf.GradientTape() as tape, slim.losses.collect():
            logits, end_points = fn(x, is_training=True)
            slim.losses.softmax_cross_entropy(tf.reshape(logits, [2, -1]), y)
            if "AuxLogits" in end_points:
                slim.losses.softmax_cross_entropy(tf.reshape(end_points["AuxLogits"], [2, -1]),
                                                  y, weights=0.4)
            regularization = slim.losses.get_regularization_losses()
            total = slim.losses.get_total_loss()
        return total, regularization, tape.gradient(total, fn.trainable_variables)

    moving = {n: v for n, v in fn.variables_dict().items() if "moving_" in n}
    before = {n: v.numpy() for n, v in moving.items()}
    try:
        fn(images, is_training=False)
        assert all(np.array_equal(before[n], v.numpy()) for n, v in moving.items()), \
            "an evaluation call changed batch-norm statistics"
        total, regularization, grads = step(images, labels)
        if moving:
            changed = [n for n, v in moving.items() if not np.array_equal(before[n], v.numpy())]
            assert changed, "a training call left every batch-norm statistic unchanged"
    finally:  # the evaluation net is shared: as it was
        for n, v in moving.items():
            v.assign(before[n])
    assert np.isfinite(total.numpy()) and regularization, "no weight-decay term"
    names = [fn.store.name_of(v) for v in fn.trainable_variables]
    no_grad = [n for n, g in zip(names, grads) if g is None]
    assert no_grad == [], "variables without a gradient"
    bad = [n for n, g in zip(names, grads) if not np.all(np.isfinite(tf.convert_to_tensor(g)))]
    assert bad == [], "non-finite gradients"


@pytest.mark.parametrize("name", GENUINE_NAMES)
def test_genuine_checkpoint_restores_every_key_and_reproduces_outputs(name):
    fn, ref = _network_fn(name)
    size = ref["image_size"]
    fn.build([2, size, size, 3])
    ckpt = os.path.join(GENUINE_CKPTS, name)
    keys = {key for key, _ in slim.list_variables(ckpt)}
    assert sorted(keys - set(fn.variables_dict())) == [], "checkpoint keys the net lacks"
    assert sorted(set(fn.variables_dict()) - keys) == [], "net variables the checkpoint lacks"
    restored = slim.assign_from_checkpoint(ckpt, fn.variables_dict())
    assert sorted(restored) == sorted(keys)
    logits, end_points = fn(tf.constant(reference_input(size)))
    assert max_rel_diff(logits, ref["logits"]) < TOL
    assert max_rel_diff(end_points[ref["predictions_end_point_key"]], ref["predictions"]) < TOL
    assert np.argmax(logits.numpy(), axis=-1).tolist() == ref["argmax"]


def test_genuine_checkpoints_are_the_documented_ones():
    assert GENUINE_NAMES == ["cifarnet", "inception_v1", "lenet", "mobilenet_v1_025",
                             "mobilenet_v2_035"]


def test_unknown_net_lists_known_names_and_closest():
    with pytest.raises(SlimError, match=r"unknown net --model_name='lenett'.*Did you mean 'lenet'"):
        nets.get_network_fn("lenett", num_classes=10)


def test_wrong_rank_and_channels_name_the_expected_shape():
    fn = nets.get_network_fn("lenet", num_classes=10)
    with pytest.raises(SlimError, match=r"expected images of shape \[batch, height, width, channels\]"):
        fn(tf.zeros([28, 28, 3]))
    fn(tf.zeros([1, 28, 28, 3]))
    with pytest.raises(SlimError, match=r"built for 3-channel images.*\[batch, height, width, 3\]"):
        fn(tf.zeros([1, 28, 28, 1]))


def test_too_small_images_name_the_layer_and_the_default_size():
    fn = nets.get_network_fn("inception_v3", num_classes=5, is_training=True)
    with pytest.raises(SlimError, match=r"^inception_v3: images of 96x96 are too small for this "
                                        r"net: .* \(at InceptionV3/AuxLogits/AvgPool_1a_5x5\)"
                                        r".*default is 299x299"):
        fn.build([None, 96, 96, 3])


def test_num_classes_zero_returns_features():
    fn = nets.get_network_fn("lenet", num_classes=0)
    features, end_points = fn(tf.zeros([2, 28, 28, 1]))
    assert features.shape == (2, 1024)
    assert "Logits" not in end_points
