"""NASNet-A / PNASNet keyword arguments, hyper-parameters and building blocks.

The registry-wide checks against the original (variables, end points, outputs,
training step) are in test_nets.py; here small configs (few cells, few
filters, small images) prove each option cheaply.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.errors import SlimError
from slimcli.nets.nasnet import nasnet, nasnet_utils, pnasnet

# Three cells and eight filters: reductions before cells 1 and 2, the aux head after cell 1.
TINY = dict(num_cells=3, num_conv_filters=8)


def _tiny(name: str, num_classes=5, is_training=False, **kwargs):
    return nets.get_network_fn(name, num_classes=num_classes, is_training=is_training,
                               **{**TINY, **kwargs})


def _images(size: int, batch: int = 2) -> tf.Tensor:
    return tf.random.stateless_uniform([batch, size, size, 3], seed=[3, 4], minval=-1, maxval=1)


def test_calc_reduction_layers_places_reductions_evenly():
    assert nasnet_utils.calc_reduction_layers(18, 2) == [6, 12]
    assert nasnet_utils.calc_reduction_layers(12, 2) == [4, 8]
    assert nasnet_utils.calc_reduction_layers(9, 2) == [3, 6]
    assert nasnet_utils.calc_reduction_layers(3, 2) == [1, 2]


def test_parse_operation_and_its_errors():
    Operation = nasnet_utils.Operation
    assert nasnet_utils.parse_operation("separable_5x5_2") == Operation("separable", 5, 2)
    assert nasnet_utils.parse_operation("separable_3x3") == Operation("separable", 3, 1)
    assert nasnet_utils.parse_operation("max_pool_3x3") == nasnet_utils.Operation("max_pool", 3)
    assert nasnet_utils.parse_operation("none").kind == "none"
    with pytest.raises(SlimError, match=r"unknown cell operation 'conv_3x3'.*separable_KxK_N"):
        nasnet_utils.parse_operation("conv_3x3")
    with pytest.raises(SlimError, match=r"'separable_3x5_2': rectangular"):
        nasnet_utils.parse_operation("separable_3x5_2")


def test_cell_spec_checks_its_shape():
    with pytest.raises(SlimError, match=r"expected 7 used_hiddenstates flags.*got 6"):
        nasnet_utils.CellSpec(nasnet_utils.NASNET_A_NORMAL.operations,
                              nasnet_utils.NASNET_A_NORMAL.hiddenstate_indices, (1, 0, 0, 0, 0, 0))


def test_drop_path_schedule_scales_with_depth_and_progress():
    # Cell 5 of 22, keep 0.7: depth ratio 6/22.
    full = nasnet_utils.scheduled_keep_prob(0.7, 5, 22, None, 250000)
    assert full == pytest.approx(1 - 6 / 22 * 0.3)
    half = nasnet_utils.scheduled_keep_prob(0.7, 5, 22, tf.constant(125000), 250000)
    assert float(half) == pytest.approx(1 - 0.5 * (1 - full), rel=1e-6)
    start = nasnet_utils.scheduled_keep_prob(0.7, 5, 22, 0, 250000)
    assert float(start) == 1.0
    late = nasnet_utils.scheduled_keep_prob(0.7, 21, 22, tf.Variable(10 ** 6), 250000)
    assert float(late) == pytest.approx(0.7)


def test_drop_path_drops_whole_examples_only_in_training():
    x = tf.ones([2000, 2, 2, 3])
    assert nasnet_utils.drop_path(x, 0.5, is_training=False) is x
    y = nasnet_utils.drop_path(x, 0.5, is_training=True).numpy()
    per_example = y.reshape(2000, -1)
    assert set(np.unique(per_example)) <= {0.0, 2.0}
    assert np.all(per_example.min(axis=1) == per_example.max(axis=1)), "drops whole examples"
    assert 0.4 < (per_example[:, 0] > 0).mean() < 0.6


def test_factorized_reduction_halves_size_and_splits_filters():
    model = slim.Model(lambda images: nasnet_utils.factorized_reduction(images, 5, stride=2))
    with slim.arg_scope(nasnet.nasnet_mobile_arg_scope()):
        y = model(tf.ones([1, 7, 7, 4]))
    assert y.shape == (1, 4, 4, 5)
    shapes = {n: v.shape.as_list() for n, v in model.variables_dict().items()}
    assert shapes["path1_conv/weights"] == [1, 1, 4, 2]
    assert shapes["path2_conv/weights"] == [1, 1, 4, 3]  # the odd filter goes to path 2
    assert shapes["final_path_bn/gamma"] == [5]


def test_num_classes_zero_returns_pooled_features():
    fn = _tiny("nasnet_cifar", num_classes=0)
    features, end_points = fn(_images(16))
    # Normal cells concatenate 6 states: 6 x (8 filters x 2 x 2) after two reductions.
    assert features.shape == (2, 192)
    assert "Logits" not in end_points and "Predictions" not in end_points
    assert not any(n.startswith("final_layer/FC") for n in fn.variables_dict())


def test_end_points_follow_num_cells_and_filter_scaling_rate():
    fn = _tiny("nasnet_cifar", filter_scaling_rate=3.0)
    logits, end_points = fn(_images(16))
    assert logits.shape == (2, 5)
    shapes = {k: v.shape.as_list() for k, v in end_points.items()}
    assert shapes == {
        "Stem": [2, 16, 16, 24], "Cell_0": [2, 16, 16, 48],
        "Reduction_Cell_0": [2, 8, 8, 96], "Cell_1": [2, 8, 8, 144],
        "Reduction_Cell_1": [2, 4, 4, 288], "Cell_2": [2, 4, 4, 432],
        "global_pool": [2, 432], "Logits": [2, 5], "Predictions": [2, 5]}
    names = fn.variables_dict()
    assert "l1_stem_3x3/weights" in names and "conv0/weights" not in names
    assert "cell_2/1x1/weights" in names and "cell_3/1x1/weights" not in names


def test_imagenet_stem_and_pnasnet_strided_cells():
    fn = _tiny("pnasnet_mobile")
    _, end_points = fn(_images(64))
    shapes = {k: v.shape.as_list()[1:] for k, v in end_points.items()}
    # conv0 31x31, stem cells 16 and 8 (5 states x 2 and x 4 filters), cells 8/4/2.
    assert shapes["Stem"] == [8, 8, 20]
    assert [shapes[f"Cell_{i}"] for i in range(3)] == [[8, 8, 40], [4, 4, 80], [2, 2, 160]]
    assert not any(k.startswith("Reduction_Cell") for k in end_points)
    assert "cell_stem_1/comb_iter_0/left/separable_5x5_1/depthwise_weights" in fn.variables_dict()


def test_final_endpoint_stops_early_and_rejects_unknown_names():
    fn = _tiny("nasnet_mobile")
    net, end_points = fn(_images(64), final_endpoint="Reduction_Cell_0")
    assert list(end_points) == ["Stem", "Cell_0", "Reduction_Cell_0"]
    assert net is end_points["Reduction_Cell_0"]
    assert not any(n.startswith(("cell_1/", "final_layer")) for n in fn.variables_dict())
    with pytest.raises(SlimError, match=r"unknown final_endpoint='Mixed_7c'; use one of Stem, "
                                        r"Cell_0, Reduction_Cell_0, Cell_1"):
        _tiny("nasnet_mobile")(_images(64), final_endpoint="Mixed_7c")
    with pytest.raises(SlimError, match=r"unknown final_endpoint='Reduction_Cell_0'"):
        _tiny("pnasnet_mobile")(_images(64), final_endpoint="Reduction_Cell_0")


def test_aux_head_only_when_training_and_use_aux_head():
    fn = _tiny("nasnet_cifar", is_training=True)
    _, end_points = fn(_images(16))
    assert end_points["AuxLogits"].shape == (2, 5)
    aux = {n: v.shape.as_list() for n, v in fn.variables_dict().items() if n.startswith("aux_")}
    # After cell 1 (8 x 8 x 96): avg pool 5/3 → 2 x 2, proj 128, a 2 x 2 conv to 768, FC.
    assert aux["aux_1/aux_logits/proj/weights"] == [1, 1, 96, 128]
    assert aux["aux_1/aux_logits/aux_bn0/gamma"] == [128]
    assert aux["aux_1/aux_logits/Conv/weights"] == [2, 2, 128, 768]
    assert aux["aux_1/aux_logits/aux_bn1/moving_variance"] == [768]
    assert aux["aux_1/aux_logits/FC/weights"] == [768, 5]
    assert aux["aux_1/aux_logits/FC/biases"] == [5]
    _, eval_points = fn(_images(16), is_training=False)
    assert "AuxLogits" not in eval_points
    with pytest.raises(SlimError, match=r"auxiliary head aux_1 needs a feature map of at least "
                                        r"5 x 5; got 4 x 4.*use_aux_head=0"):
        _tiny("nasnet_mobile", is_training=True)(_images(64))
    no_aux = _tiny("nasnet_cifar", is_training=True, use_aux_head=0)
    _, end_points = no_aux(_images(16))
    assert "AuxLogits" not in end_points
    assert not any(n.startswith("aux_") for n in no_aux.variables_dict())


def test_drop_path_only_in_training_and_follows_current_step():
    fn = _tiny("nasnet_cifar", is_training=True, drop_path_keep_prob=0.3, use_aux_head=0)
    x = _images(16, batch=8)
    first, _ = fn(x)
    second, _ = fn(x)
    assert not np.allclose(first, second), "drop-path should make training calls random"
    start_a, _ = fn(x, current_step=tf.constant(0))
    start_b, _ = fn(x, current_step=tf.constant(0))
    np.testing.assert_allclose(start_a, start_b, rtol=1e-6, atol=1e-6)
    eval_a, _ = fn(x, is_training=False)
    eval_b, _ = fn(x, is_training=False)
    np.testing.assert_array_equal(eval_a, eval_b)


def test_dropout_keep_prob_comes_from_the_config():
    fn = _tiny("nasnet_mobile", is_training=True, use_aux_head=0, dense_dropout_keep_prob=1.0)
    x = _images(64)
    np.testing.assert_allclose(fn(x)[0], fn(x)[0], rtol=1e-6, atol=1e-6)
    assert nasnet.MOBILE_IMAGENET_CONFIG.dense_dropout_keep_prob == 0.5


def test_bounded_activation_clips_cell_outputs():
    fn = _tiny("nasnet_cifar", use_bounded_activation=True)
    _, end_points = fn(_images(16) * 50.0)
    reduction = end_points["Reduction_Cell_0"].numpy()
    assert reduction.min() >= 0.0 and reduction.max() <= 6.0
    assert reduction.max() > 0.0


@pytest.mark.parametrize("kwargs,message", [
    ({"num_cell": 3}, r"unknown NASNet hyper-parameter\(s\) num_cell; the known ones are: "
                      r"stem_multiplier"),
    ({"drop_path_keep_prob": 0.0}, r"expected drop_path_keep_prob in \(0, 1\]. Received: "
                                   r"drop_path_keep_prob=0.0"),
    ({"num_cells": 0}, r"expected num_cells > 0. Received: num_cells=0"),
    ({"stem_type": "mnist"}, r"unknown stem_type='mnist'; use one of imagenet, cifar"),
    ({"data_format": "NCHW"}, r"data_format='NCHW' is not supported; use NHWC"),
])
def test_bad_hyper_parameters_name_the_value_and_the_fix(kwargs, message):
    with pytest.raises(SlimError, match=message):
        nets.get_network_fn("nasnet_mobile", num_classes=5, **kwargs)(_images(32))


def test_pnasnet_rejects_the_cifar_stem_and_unknown_sizes():
    with pytest.raises(SlimError, match=r"PNASNet has only the ImageNet stem; got "
                                        r"stem_type='cifar'"):
        pnasnet.build_pnasnet(_images(32), 5, stem_type="cifar")
    spec = tf.TensorSpec([2, None, None, 3], tf.float32)
    fn = _tiny("nasnet_mobile")
    with pytest.raises(SlimError, match=r"known height and width.*got shape \(2, None, None, 3\)"):
        tf.function(fn, autograph=False).get_concrete_function(spec)


def test_registry_entries_carry_the_original_facts():
    expected = {
        # name: (size, preprocessing, classes, fine-tuning scopes)
        "nasnet_cifar": (32, "cifarnet", 10, ("final_layer", "aux_11")),
        "nasnet_mobile": (224, "inception", 1001, ("final_layer", "aux_7")),
        "nasnet_large": (331, "inception", 1001, ("final_layer", "aux_11")),
        "pnasnet_mobile": (224, "inception", 1001, ("final_layer", "aux_5")),
        "pnasnet_large": (331, "inception", 1001, ("final_layer", "aux_7")),
    }
    for name, (size, preprocessing, classes, scopes) in expected.items():
        spec = nets.get_net_spec(name)
        assert (spec.default_image_size, spec.preprocessing, spec.zoo_num_classes,
                spec.logits_scopes) == (size, preprocessing, classes, scopes), name
        assert spec.predictions_op == "final_layer/predictions"
        assert spec.checkpoint_exclude_scopes == ",".join(scopes)
    assert "no nasnet_cifar entry" in nets.get_net_spec("nasnet_cifar").preprocessing_note
    assert nasnet.build_nasnet_large.default_image_size == 331
    assert pnasnet.build_pnasnet_mobile.default_image_size == 224


def test_arg_scopes_have_the_original_defaults():
    cases = [(nasnet.nasnet_cifar_arg_scope, 0.9, 1e-5), (nasnet.nasnet_mobile_arg_scope,
                                                          0.9997, 1e-3),
             (nasnet.nasnet_large_arg_scope, 0.9997, 1e-3),
             (pnasnet.pnasnet_large_arg_scope, 0.9997, 1e-3)]
    for scope_fn, decay, epsilon in cases:
        sc = scope_fn()
        bn = sc[slim.batch_norm._key_op]
        assert (bn["decay"], bn["epsilon"], bn["scale"]) == (decay, epsilon, True), scope_fn
        assert sc[slim.conv2d._key_op]["biases_initializer"] is None
        assert sc[slim.fully_connected._key_op]["scope"] == "FC"


@pytest.mark.parametrize("name,size,cell_nums,total", [
    # ImageNet NASNet: 2 stem + 3 normal + 2 reduction cells, ratio over num_cells + 4.
    ("nasnet_mobile", 64, list(range(7)), 7),
    # CIFAR NASNet: no stem cells, ratio over num_cells + 2.
    ("nasnet_cifar", 16, list(range(5)), 5),
    # PNASNet: 2 stem + 3 cells, ratio over num_cells + 2.
    ("pnasnet_mobile", 64, list(range(5)), 5),
])
def test_drop_path_depth_ratio_counts_every_cell(monkeypatch, name, size, cell_nums, total):
    seen = []
    real = nasnet_utils.scheduled_keep_prob

    def record(keep_prob, cell_num, total_num_cells, current_step, total_training_steps):
        seen.append((cell_num, total_num_cells, total_training_steps))
        return real(keep_prob, cell_num, total_num_cells, current_step, total_training_steps)

    monkeypatch.setattr(nasnet_utils, "scheduled_keep_prob", record)
    fn = _tiny(name, is_training=True, use_aux_head=0, drop_path_keep_prob=0.5)
    fn(_images(size))
    assert sorted({c for c, _, _ in seen}) == cell_nums
    assert {(t, steps) for _, t, steps in seen} == {(total, fn.spec.fn_kwargs["config"]
                                                     .total_training_steps)}
