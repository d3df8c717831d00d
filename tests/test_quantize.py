"""Quantization-aware training: the fake-quantized forward pass, its ranges and its names.

The references are computed here with TensorFlow's fake-quant ops by hand, from the
formulas of the original's `contrib.quantize` (r1.15): batch norm folded into the
weights in its training-time "correction" form, symmetric last-value weight ranges,
zero-debiased moving-average activation ranges.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.errors import SlimError
from slimcli.export_formats import float_tensors
from slimcli.slim.quantize import QuantizeConfig, QuantizedModel
from slimcli.tflite_eval import TFLiteClassifier

EPS = 0.001
DATA = os.path.join(os.path.dirname(__file__), "data", "quantize")


def _two_layer_net(images, is_training=True):
    with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                        normalizer_params={"is_training": is_training, "scale": True,
                                           "decay": 0.9, "epsilon": EPS}):
        net = slim.conv2d(images, 4, [3, 3], activation_fn=tf.nn.relu6, scope="conv1")
        return slim.conv2d(net, 3, [1, 1], activation_fn=tf.nn.relu, scope="conv2")


def _set_values(model, seed=0):
    rng = np.random.RandomState(seed)
    values = {}
    for name, var in model.variables_dict(slim.variables.MODEL_VARIABLES).items():
        shape = var.shape.as_list()
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith(("gamma",)):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.5, shape)
        values[name] = value.astype(np.float32)
        var.assign(values[name])
    return values


def _quantized_two_layer(step, delay=5, freeze_bn_delay=None):
    model = QuantizedModel(_two_layer_net, QuantizeConfig(quant_delay=delay,
                                                          freeze_bn_delay=freeze_bn_delay,
                                                          input_range=(-1.0, 1.0)))
    model.quantizer.step = tf.Variable(step, dtype=tf.int64)
    model.build([None, 6, 6, 2])
    return model, _set_values(model)


def _images(seed=1):
    return tf.constant(np.random.RandomState(seed).uniform(-1, 1, (3, 6, 6, 2)), tf.float32)


def _fq(x, low, high, narrow=False):
    return tf.quantization.fake_quant_with_min_max_vars(x, low, high, narrow_range=narrow)


def _reference_layer(x, values, scope, activation, frozen=False):
    """One conv + batch norm layer of the original's quantized training graph, by hand
    (`frozen`: after freeze_bn_delay, normalized with the moving statistics)."""
    w, gamma = values[f"{scope}/weights"], values[f"{scope}/BatchNorm/gamma"]
    beta = values[f"{scope}/BatchNorm/beta"]
    moving_variance = values[f"{scope}/BatchNorm/moving_variance"]
    mean, variance = tf.nn.moments(tf.nn.conv2d(x, w, 1, "SAME"), [0, 1, 2])
    if frozen:
        mean, variance = values[f"{scope}/BatchNorm/moving_mean"], moving_variance
    folded = w * gamma / np.sqrt(moving_variance + EPS)
    bound = tf.reduce_max(tf.abs(folded))
    y = tf.nn.conv2d(x, _fq(folded, -bound, bound, narrow=True), 1, "SAME")
    y = y * tf.sqrt(moving_variance + EPS) / tf.sqrt(variance + EPS)
    y = activation(y + beta - mean * gamma / tf.sqrt(variance + EPS))
    # The first update of a zero-debiased moving average is the batch's own range.
    return _fq(y, tf.minimum(tf.reduce_min(y), 0.0), tf.maximum(tf.reduce_max(y), 0.0))


def _assert_close_to_quantized(actual, expected):
    """Equal up to float rounding (which moves the learnt range by ~1e-6 relative), but for a
    rare element rounded to the neighbouring quantization step."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    step = (expected.max() - min(expected.min(), 0.0)) / 255.0
    diff = np.abs(actual - expected)
    assert diff.max() <= step * 1.01, (diff.max(), step)
    assert np.mean(diff <= 1e-4 * np.abs(expected) + 1e-6) >= 0.97


def test_after_the_delay_the_training_forward_equals_the_fake_quant_reference():
    model, values = _quantized_two_layer(step=5)
    images = _images()
    out = model(images, is_training=True)
    x = tf.quantization.fake_quant_with_min_max_args(images, -1.0, 1.0)
    expected = _reference_layer(_reference_layer(x, values, "conv1", tf.nn.relu6), values,
                                "conv2", tf.nn.relu)
    _assert_close_to_quantized(out, expected)


def test_after_freeze_bn_delay_the_moving_statistics_normalize_and_stay():
    model, values = _quantized_two_layer(step=6, freeze_bn_delay=6)
    images = _images()
    out = model(images, is_training=True)
    x = tf.quantization.fake_quant_with_min_max_args(images, -1.0, 1.0)
    expected = _reference_layer(_reference_layer(x, values, "conv1", tf.nn.relu6, frozen=True),
                                values, "conv2", tf.nn.relu, frozen=True)
    _assert_close_to_quantized(out, expected)
    for name in ("conv1/BatchNorm/moving_mean", "conv2/BatchNorm/moving_variance"):
        np.testing.assert_allclose(model.variables_dict()[name], values[name], rtol=1e-6)


def test_before_the_delay_the_net_trains_in_float_while_ranges_collect():
    model, values = _quantized_two_layer(step=4)
    images = _images()
    out = model(images, is_training=True)
    float_model = slim.Model(_two_layer_net)
    float_model.build([None, 6, 6, 2])
    for name, var in float_model.variables_dict().items():
        var.assign(values[name])
    np.testing.assert_allclose(out, float_model(images, is_training=True), atol=1e-4)
    ranges = model.variables_dict(slim.quantize.RANGES)
    # float32 debiasing: (0.001 * max) / (1 - 0.999) is max up to ~1e-5 relative
    assert float(ranges["conv2/act_quant/max"]) == pytest.approx(float(tf.reduce_max(out)),
                                                                 rel=1e-4)
    counter = "conv2/act_quant/conv2/act_quant/max/local_step"
    assert float(ranges[counter]) == 1.0


def _one_layer_net(images, is_training=True):
    del is_training
    return slim.conv2d(images, 3, [1, 1], activation_fn=tf.nn.relu, scope="conv")


def test_activation_ranges_move_as_a_zero_debiased_moving_average():
    decay = 0.5
    model = QuantizedModel(_one_layer_net, QuantizeConfig(ema_decay=decay,
                                                          input_range=(-1.0, 1.0)))
    model.build([None, 4, 4, 2])
    values = _set_values(model)
    w, b = values["conv/weights"], values["conv/biases"]
    bound = np.abs(w).max()
    biased, maxima = 0.0, []
    for t in range(1, 4):
        images = _images(seed=t)[:, :4, :4]
        model(images, is_training=True)
        x = tf.quantization.fake_quant_with_min_max_args(images, -1.0, 1.0)
        y = tf.nn.relu(tf.nn.conv2d(x, _fq(w, -bound, bound, narrow=True), 1, "SAME") + b)
        maxima.append(float(tf.reduce_max(y)))
        biased = biased * decay + (1 - decay) * maxima[-1]
        ranges = model.variables_dict(slim.quantize.RANGES)
        assert float(ranges["conv/act_quant/max"]) == pytest.approx(biased / (1 - decay ** t),
                                                                    rel=1e-4)
        assert float(ranges["conv/act_quant/min"]) == 0.0  # relu: 0 is always in the range
        assert float(ranges["conv/weights_quant/max"]) == pytest.approx(bound, rel=1e-6)
    assert maxima[0] != pytest.approx(maxima[-1])  # the range did move


def _names_section(section):
    names, current = [], None
    with open(os.path.join(DATA, "mobilenet_v1_variables.txt")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                current = line
            elif line and not line.startswith("#") and current == section:
                names.append(line)
    return names


@pytest.mark.parametrize("is_training", [False, True], ids=["eval", "training"])
def test_quantized_mobilenet_v1_names_its_ranges_as_the_original(is_training):
    net = nets.get_network_fn("mobilenet_v1_025", 5, is_training=is_training,
                              quantize=QuantizeConfig(input_range=(-1.0, 1.0)))
    net.build([None, 32, 32, 3])
    expected = _names_section("[eval]") + (_names_section("[training]") if is_training else [])
    assert sorted(net.variables_dict(slim.quantize.RANGES)) == sorted(expected)
    float_names = set(nets.get_network_fn("mobilenet_v1_025", 5).variables_dict())
    assert float_names <= set(net.variables_dict())


def _residual_net(images, is_training=True):
    """ResNet v1's bypass (relu after the add) and MobileNet v2's (an add after a linear
    projection), and a Mul of a quantized tensor."""
    with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                        normalizer_params={"is_training": is_training}):
        with slim.variable_scope("unit"):
            residual = slim.conv2d(images, 2, [1, 1], activation_fn=None, scope="conv")
            net = tf.nn.relu(images + residual)
        with slim.variable_scope("block"):
            project = slim.conv2d(net, 2, [1, 1], activation_fn=tf.identity, scope="project")
            net = tf.identity(project + net, name="output")
        return net * 0.5


def test_residual_additions_are_quantized_where_the_original_put_them():
    model = QuantizedModel(_residual_net, QuantizeConfig(input_range=(-1.0, 1.0)))
    model.build([None, 4, 4, 2])
    ranges = {n.rsplit("/", 1)[0] for n in model.variables_dict(slim.quantize.RANGES)}
    assert ranges == {"unit/conv/weights_quant", "unit/conv/conv_quant", "unit/act_quant",
                      "block/project/weights_quant", "block/project/act_quant",
                      "block/post_activation_bypass_quant", "mul/activation_Mul_quant"}
    out = model(_images()[:, :4, :4], is_training=False)
    assert out.shape == [3, 4, 4, 2]


def test_a_layer_that_cannot_be_quantized_is_named():
    def net(images):
        return slim.conv2d(images, 2, [1, 1], activation_fn=tf.nn.elu, scope="odd")

    with pytest.raises(SlimError, match=r"^odd: activation elu cannot be quantized") as error:
        QuantizedModel(net, QuantizeConfig(input_range=(-1.0, 1.0))).build([None, 4, 4, 2])
    assert "\n" not in str(error.value)


def test_a_net_that_cannot_be_quantized_names_the_op_in_the_way():
    net = nets.get_network_fn("cifarnet", 10, quantize=QuantizeConfig(input_range=(-1.0, 1.0)))
    with pytest.raises(SlimError, match=r"cifarnet cannot be quantized: .*CifarNet/norm1 \(LRN\)"):
        net.build([None, 32, 32, 3])


def test_float_nets_are_unchanged_by_the_quantized_path_existing():
    model = slim.Model(_two_layer_net)
    model.build([None, 6, 6, 2])
    assert not model.variables_dict(slim.quantize.RANGES)


def test_quantized_residual_additions_convert_to_a_fully_integer_tflite_model(tmp_path):
    model = QuantizedModel(_residual_net, QuantizeConfig(input_range=(-1.0, 1.0)))
    model.build([None, 4, 4, 2])
    _set_values(model)
    images = _images()[:, :4, :4]
    for _ in range(3):  # learn the ranges
        model(images, is_training=True)
    forward = tf.function(lambda x: tf.reshape(model(x, is_training=False), [1, -1]),
                          input_signature=[tf.TensorSpec([1, 4, 4, 2])])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path / "residual.tflite"
    path.write_bytes(converter.convert())
    assert float_tensors(path.read_bytes()) == []
    integer = TFLiteClassifier(str(path))(images.numpy())
    fake_quant = np.concatenate([forward(images[i:i + 1]) for i in range(3)])
    step = float(model.variables_dict()["mul/activation_Mul_quant/max"] -
                 model.variables_dict()["mul/activation_Mul_quant/min"]) / 255
    assert np.max(np.abs(integer - fake_quant)) <= 3 * step
