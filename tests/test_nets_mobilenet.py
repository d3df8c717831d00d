"""MobileNet v1/v2/v3/EdgeTPU: the original's keyword arguments and genuine checkpoints.

The registry-wide checks (variables, end points, outputs) are in test_nets.py;
these tests use small inputs and the narrowest variants to stay fast.
"""

from __future__ import annotations


import numpy as np
import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.errors import SlimError
from slimcli.nets import mobilenet_v1 as v1
from slimcli.nets.mobilenet import conv_blocks
from slimcli.nets.mobilenet import mobilenet as lib
from slimcli.nets.mobilenet import mobilenet_v2 as v2
from slimcli.nets.mobilenet import mobilenet_v3 as v3
from tests.nets_helpers import max_rel_diff, set_formula_c


def _images(size: int, batch: int = 2) -> tf.Tensor:
    return tf.random.stateless_uniform([batch, size, size, 3], seed=[3, 4], minval=-1, maxval=1)


def _call(fn, arg_scope, images, **kwargs):
    """Runs a net function in a fresh model under its arg scope."""
    model = slim.Model(fn, **kwargs)
    with slim.arg_scope(arg_scope()):
        out, end_points = model(images)
    return out, end_points, model


# --------------------------------------------------------------------------- registry entries

def test_specs_preprocessing_and_fine_tuning_scopes():
    for name in ("mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025"):
        spec = nets.get_net_spec(name)
        assert spec.preprocessing == "inception" and "no entry" in spec.preprocessing_note
    assert nets.get_net_spec("mobilenet_v1").preprocessing_note == ""
    assert nets.get_net_spec("mobilenet_v1").checkpoint_exclude_scopes == "MobilenetV1/Logits"
    assert nets.get_net_spec("mobilenet_edgetpu").logits_scopes == ("MobilenetEdgeTPU/Logits",)
    assert nets.get_net_spec("mobilenet_v3_small").logits_scopes == ("MobilenetV3/Logits",)
    assert nets.get_net_spec("mobilenet_v2_140").zoo_num_classes == 1001


# --------------------------------------------------------------------------- MobileNet v1

def test_v1_num_classes_zero_returns_pooled_features():
    fn = nets.get_network_fn("mobilenet_v1_025", num_classes=0)
    features, end_points = fn(_images(64))
    assert features.shape == (2, 1, 1, 256)
    assert "Logits" not in end_points and "Predictions" not in end_points
    assert not any("Logits/Conv2d_1c_1x1" in n for n in fn.variables_dict())


def test_v1_spatial_squeeze_and_global_pool():
    fn = nets.get_network_fn("mobilenet_v1_025", num_classes=5, spatial_squeeze=False)
    logits, _ = fn(_images(64))
    assert logits.shape == (2, 1, 1, 5)
    # 320 x 320 input: a 10 x 10 map; the fixed 7x7 pool (stride 2) leaves 2 x 2,
    # global pooling 1 x 1.
    fixed = nets.get_network_fn("mobilenet_v1_025", num_classes=5, spatial_squeeze=False)
    _, end_points = fixed(_images(320, batch=1))
    assert end_points["AvgPool_1a"].shape == (1, 2, 2, 256)   # 7x7, stride 2
    pooled = nets.get_network_fn("mobilenet_v1_025", num_classes=5, global_pool=True)
    logits, end_points = pooled(_images(320, batch=1))
    assert end_points["global_pool"].shape == (1, 1, 1, 256) and logits.shape == (1, 5)
    assert "AvgPool_1a" not in end_points


def test_v1_dropout_keep_prob_only_in_training():
    images = _images(32)
    kept = nets.get_network_fn("mobilenet_v1_025", num_classes=5, is_training=True,
                               dropout_keep_prob=1.0)
    np.testing.assert_array_equal(kept(images)[0].numpy(), kept(images)[0].numpy())
    dropped = nets.get_network_fn("mobilenet_v1_025", num_classes=5, is_training=True,
                                  dropout_keep_prob=0.5)
    assert not np.array_equal(dropped(images)[0].numpy(), dropped(images)[0].numpy())
    evaluated = [dropped(images, is_training=False)[0].numpy() for _ in range(2)]
    np.testing.assert_array_equal(*evaluated)


def test_v1_base_final_endpoint_and_unknown_endpoint():
    net, end_points, _ = _call(v1.mobilenet_v1_base, v1.mobilenet_v1_arg_scope, _images(64),
                               final_endpoint="Conv2d_3_depthwise")
    assert list(end_points)[-1] == "Conv2d_3_depthwise"
    assert net.shape == (2, 16, 16, 128)
    with pytest.raises(SlimError, match=r"unknown final_endpoint 'Conv2d_14'.*Conv2d_13_pointwise"):
        _call(v1.mobilenet_v1_base, v1.mobilenet_v1_arg_scope, _images(32),
              final_endpoint="Conv2d_14")


@pytest.mark.parametrize("bad", [0.0, -0.5])
def test_v1_depth_multiplier_must_be_positive(bad):
    with pytest.raises(SlimError, match=rf"depth_multiplier must be > 0, got {bad}"):
        nets.get_network_fn("mobilenet_v1", num_classes=5, depth_multiplier=bad)(_images(32))


def test_v1_min_depth_and_custom_conv_defs():
    conv_defs = [v1.Conv(kernel=[3, 3], stride=2, depth=32),
                 v1.DepthSepConv(kernel=[3, 3], stride=2, depth=64)]
    net, end_points, model = _call(v1.mobilenet_v1_base, v1.mobilenet_v1_arg_scope, _images(32),
                                   conv_defs=conv_defs, depth_multiplier=0.25, min_depth=12,
                                   final_endpoint="Conv2d_1_pointwise")
    assert list(end_points) == ["Conv2d_0", "Conv2d_1_depthwise", "Conv2d_1_pointwise"]
    assert end_points["Conv2d_0"].shape == (2, 16, 16, 12)   # max(32 * 0.25, 12)
    assert net.shape == (2, 8, 8, 16)                        # max(64 * 0.25, 12)
    assert "MobilenetV1/Conv2d_1_depthwise/depthwise_weights" in model.variables_dict()


def test_v1_output_stride_and_explicit_padding():
    _, normal, _ = _call(v1.mobilenet_v1_base, v1.mobilenet_v1_arg_scope, _images(64),
                         depth_multiplier=0.25)
    _, dilated, _ = _call(v1.mobilenet_v1_base, v1.mobilenet_v1_arg_scope, _images(64),
                          depth_multiplier=0.25, output_stride=8)
    assert normal["Conv2d_13_pointwise"].shape == (2, 2, 2, 256)
    assert dilated["Conv2d_13_pointwise"].shape == (2, 8, 8, 256)
    _, padded, _ = _call(v1.mobilenet_v1_base, v1.mobilenet_v1_arg_scope, _images(64),
                         depth_multiplier=0.25, use_explicit_padding=True)
    assert {k: t.shape for k, t in padded.items()} == {k: t.shape for k, t in normal.items()}
    with pytest.raises(SlimError, match=r"output_stride must be 8, 16, 32 or None, got 4"):
        _call(v1.mobilenet_v1_base, v1.mobilenet_v1_arg_scope, _images(32), output_stride=4)


def test_v1_scope_and_reuse():
    def two_towers(images):
        # is_training=False: the default (True) would apply dropout.
        a, _ = v1.mobilenet_v1(images, num_classes=3, depth_multiplier=0.25, scope="Tower",
                               is_training=False)
        b, _ = v1.mobilenet_v1(images, num_classes=3, depth_multiplier=0.25, scope="Tower",
                               is_training=False, reuse=True)
        return a, b

    model = slim.Model(two_towers)
    with slim.arg_scope(v1.mobilenet_v1_arg_scope(is_training=False)):
        a, b = model(_images(32))
    names = list(model.variables_dict())
    assert len(names) == 137 and all(n.startswith("Tower/") for n in names)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


# --------------------------------------------------------------------------- MobileNet v2 / v3

def test_make_divisible_and_expansion():
    assert conv_blocks.make_divisible(32 * 0.35, 8) == 16   # 8 would lose > 10%
    assert conv_blocks.make_divisible(1280 * 1.4, 8) == 1792
    assert conv_blocks.make_divisible(3, 8, min_value=4) == 4
    assert conv_blocks.expand_input_by_factor(184 / 80.)(num_inputs=80) == 184
    assert conv_blocks.expand_input_by_factor(1, divisible_by=1)(num_inputs=13) == 13
    assert lib.scaled_depth(16, 0.35) == 8 and lib.scaled_depth(16, 0.35, min_depth=12) == 12


def test_hard_swish_and_gate_values():
    x = tf.constant([-4.0, -3.0, -1.0, 0.0, 1.0, 3.0, 5.0])
    np.testing.assert_allclose(conv_blocks.hard_swish(x).numpy(),
                               [0, 0, -1 / 3, 0, 2 / 3, 3, 5], atol=1e-6)
    np.testing.assert_allclose(conv_blocks.hard_sigmoid_gate(x).numpy(),
                               np.clip(x.numpy() + 3, 0, 6) * 0.16667, atol=1e-6)


def test_v2_num_classes_zero_and_finegrain_mode():
    features, end_points = nets.get_network_fn("mobilenet_v2_035", num_classes=None)(_images(32))
    assert features.shape == (2, 1, 1, 1280) and "Logits" not in end_points
    _, coarse = nets.get_network_fn("mobilenet_v2", num_classes=4, depth_multiplier=0.5)(
        _images(32))
    _, fine = nets.get_network_fn("mobilenet_v2", num_classes=4, depth_multiplier=0.5,
                                  finegrain_classification_mode=True)(_images(32))
    assert coarse["layer_19"].shape[-1] == 640 and fine["layer_19"].shape[-1] == 1280
    assert coarse["layer_18"].shape[-1] == fine["layer_18"].shape[-1] == 160


def test_v2_min_depth_divisible_by_and_activation():
    _, end_points = nets.get_network_fn("mobilenet_v2", num_classes=4, depth_multiplier=0.35,
                                        min_depth=24, divisible_by=4)(_images(32))
    assert end_points["layer_1"].shape[-1] == 24          # 32 * 0.35 -> 12 -> at least 24
    assert end_points["layer_18"].shape[-1] == 112         # 320 * 0.35
    # relu instead of relu6: large inputs now give activations above 6.
    relu = nets.get_network_fn("mobilenet_v2_035", num_classes=4, activation_fn=tf.nn.relu)
    _, relu_points = relu(100.0 * _images(32))
    assert float(tf.reduce_max(relu_points["layer_1"])) > 6.0
    assert float(tf.reduce_min(relu_points["layer_1"])) >= 0.0


def test_v2_base_final_endpoint_and_errors():
    net, end_points, _ = _call(v2.mobilenet_base, v2.training_scope, _images(32),
                               depth_multiplier=0.35, final_endpoint="layer_5")
    assert net is end_points["layer_5"] and "layer_6" not in end_points
    assert "layer_5/expansion_output" in end_points and "global_pool" not in end_points
    with pytest.raises(SlimError, match=r"unknown final_endpoint 'layer_20'.*layer_19"):
        _call(v2.mobilenet_base, v2.training_scope, _images(32), final_endpoint="layer_20")
    with pytest.raises(SlimError, match=r"depth_multiplier must be > 0, got 0"):
        _call(v2.mobilenet, v2.training_scope, _images(32), depth_multiplier=0)
    with pytest.raises(SlimError, match=r"output_stride must be None, 1 or a multiple of 2, got 3"):
        _call(v2.mobilenet, v2.training_scope, _images(32), output_stride=3)


def test_v2_output_stride_and_explicit_padding():
    _, normal, _ = _call(v2.mobilenet_base, v2.training_scope, _images(64),
                         depth_multiplier=0.35)
    _, dilated, model = _call(v2.mobilenet_base, v2.training_scope, _images(64),
                              depth_multiplier=0.35, output_stride=16)
    assert normal["layer_19"].shape[1:3] == (2, 2) and dilated["layer_19"].shape[1:3] == (4, 4)
    assert len(model.variables_dict()) == 260
    _, padded, _ = _call(v2.mobilenet_base, v2.training_scope, _images(64),
                         depth_multiplier=0.35, use_explicit_padding=True)
    assert {k: t.shape for k, t in padded.items()} == {k: t.shape for k, t in normal.items()}


def test_v3_squeeze_excite_block_end_points():
    _, end_points, model = _call(v3.mobilenet_base, v3.training_scope, _images(64),
                                 conv_defs=v3.V3_SMALL, depth_multiplier=0.75,
                                 final_endpoint="layer_2")
    assert set(end_points) == {"layer_1", "layer_2", "layer_2/depthwise_output",
                               "layer_2/output"}
    squeeze = model.variables_dict()["MobilenetV3/expanded_conv/squeeze_excite/Conv/weights"]
    assert squeeze.shape == (1, 1, 16, 8)


def test_v3_scope_reuse_and_edgetpu_finegrain():
    def twice(images):
        a, _ = v3.mobilenet(images, num_classes=3, conv_defs=v3.V3_SMALL_MINIMALISTIC,
                            scope="Small")
        b, _ = v3.mobilenet(images, num_classes=3, conv_defs=v3.V3_SMALL_MINIMALISTIC,
                            scope="Small", reuse=True)
        return a, b

    model = slim.Model(twice)
    with slim.arg_scope(v3.training_scope(is_training=False)):
        a, b = model(_images(32))
    assert all(n.startswith("Small/") for n in model.variables_dict())
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    _, end_points = nets.get_network_fn("mobilenet_edgetpu", num_classes=3,
                                        depth_multiplier=0.5)(_images(32))
    assert end_points["layer_24"].shape[-1] == 640
    _, end_points = nets.get_network_fn("mobilenet_edgetpu", num_classes=3, depth_multiplier=0.5,
                                        finegrain_classification_mode=True)(_images(32))
    assert end_points["layer_24"].shape[-1] == 1280


def test_v3_float16_inputs_compute_in_float16():
    fn = nets.get_network_fn("mobilenet_v3_small", num_classes=10)
    images = _images(32)
    fn.build(images.shape)
    set_formula_c(fn.variables_dict(), 2 ** 0.5)  # the initializer's logits are ~1e-10
    logits, _ = fn(images)
    half, end_points = fn(tf.cast(images, tf.float16))
    assert half.dtype == tf.float16 and end_points["layer_2"].dtype == tf.float16
    assert max_rel_diff(tf.cast(half, tf.float32), logits) < 2e-2
