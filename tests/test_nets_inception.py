"""Inception v1-v3: keyword arguments of the nets and of their `*_base` functions.

Most tests trace symbolically (no compute) with a small depth_multiplier to stay fast.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.errors import SlimError
from slimcli.nets import inception_v1, inception_v2, inception_v3


def _trace(fn, shape, **kwargs):
    """Static shapes of (output, end points) from a symbolic trace (no compute)."""
    seen = {}

    def forward(x):
        out, end_points = fn(x, **kwargs)
        seen["out"] = out.shape.as_list()
        seen["end_points"] = {k: v.shape.as_list() for k, v in end_points.items()}
        return out

    tf.function(forward, autograph=False).get_concrete_function(tf.TensorSpec(shape))
    return seen["out"], seen["end_points"]


BASES = [
    (inception_v1.inception_v1_base, "Mixed_4c", [1, 224, 224, 3], [1, 14, 14, 512]),
    (inception_v2.inception_v2_base, "Mixed_4a", [1, 224, 224, 3], [1, 14, 14, 576]),
    (inception_v3.inception_v3_base, "Mixed_6a", [1, 299, 299, 3], [1, 17, 17, 768]),
]


@pytest.mark.parametrize("base,final,shape,expected", BASES, ids=["v1", "v2", "v3"])
def test_base_stops_at_final_endpoint(base, final, shape, expected):
    model = slim.Model(base, final_endpoint=final)
    out, end_points = _trace(model, shape)
    assert out == expected
    assert list(end_points)[-1] == final
    assert not any(name.split("/")[1] > final for name in model.variables_dict()
                   if name.split("/")[1].startswith("Mixed"))


@pytest.mark.parametrize("base", [b for b, *_ in BASES], ids=lambda b: b.__name__)
def test_base_rejects_unknown_final_endpoint(base):
    with pytest.raises(SlimError,
                       match=r"unknown final_endpoint='Mixed_9z'; use one of .*Mixed_5c"):
        slim.Model(base, final_endpoint="Mixed_9z")(tf.zeros([1, 224, 224, 3]))


@pytest.mark.parametrize("name", ["inception_v2", "inception_v3"])
@pytest.mark.parametrize("multiplier", [0.0, -0.5])
def test_depth_multiplier_must_be_positive(name, multiplier):
    fn = nets.get_network_fn(name, num_classes=10, depth_multiplier=multiplier)
    with pytest.raises(SlimError, match=rf"depth_multiplier must be greater than zero.*"
                                        rf"depth_multiplier={multiplier}"):
        fn(tf.zeros([1, 224, 224, 3]))


def test_v3_depth_multiplier_and_min_depth_scale_channels():
    fn = nets.get_network_fn("inception_v3", num_classes=10, depth_multiplier=0.5, min_depth=24)
    _, end_points = _trace(fn, [1, 299, 299, 3])
    assert end_points["Conv2d_1a_3x3"] == [1, 149, 149, 24]     # max(int(32 * 0.5), 24)
    assert end_points["Mixed_7c"] == [1, 8, 8, 1024]
    assert fn.variables_dict()["InceptionV3/Conv2d_4a_3x3/weights"].shape == [3, 3, 40, 96]


def test_v2_depth_multiplier_sets_the_separable_stem_multiplier():
    fn = nets.get_network_fn("inception_v2", num_classes=10, depth_multiplier=0.25)
    fn.build([1, 224, 224, 3])
    stem = fn.variables_dict()["InceptionV2/Conv2d_1a_7x7/depthwise_weights"]
    assert stem.shape == [7, 7, 3, 5]                            # min(int(16 / 3), 8)


def test_v3_create_aux_logits_false_and_num_classes_zero():
    fn = nets.get_network_fn("inception_v3", num_classes=10, create_aux_logits=False,
                             depth_multiplier=0.25)
    _, end_points = _trace(fn, [1, 299, 299, 3])
    assert "AuxLogits" not in end_points
    assert not any("AuxLogits" in name for name in fn.variables_dict())
    features = nets.get_network_fn("inception_v3", num_classes=0, depth_multiplier=0.25)
    out, end_points = _trace(features, [1, 299, 299, 3])
    assert out == [1, 1, 1, 512] and "AuxLogits" not in end_points and "Logits" not in end_points


def test_v3_small_input_reduces_pool_kernels_and_global_pool():
    fn = nets.get_network_fn("inception_v3", num_classes=10, depth_multiplier=0.25)
    out, end_points = _trace(fn, [1, 163, 163, 3])  # Mixed_6e 8 x 8, Mixed_7c 3 x 3
    assert end_points["Mixed_7c"] == [1, 3, 3, 512] and out == [1, 10]
    assert end_points["AuxLogits"] == [1, 10]
    assert "InceptionV3/AuxLogits/Conv2d_2a_2x2/weights" in fn.variables_dict()
    pooled = nets.get_network_fn("inception_v3", num_classes=10, depth_multiplier=0.25,
                                 global_pool=True, spatial_squeeze=False)
    out, end_points = _trace(pooled, [1, 400, 400, 3])
    assert end_points["global_pool"] == [1, 1, 1, 512] and out == [1, 1, 1, 10]
    assert end_points["AuxLogits"] == [1, 3, 3, 10]  # the aux head does not pool globally


@pytest.mark.parametrize("name,key", [("inception_v1", "AvgPool_0a_7x7"),
                                      ("inception_v2", "AvgPool_1a")])
def test_v1_v2_features_and_global_pool(name, key):
    kwargs = {"depth_multiplier": 0.25} if name == "inception_v2" else {}
    fn = nets.get_network_fn(name, num_classes=None, **kwargs)
    out, end_points = _trace(fn, [1, 224, 224, 3])
    assert out == end_points[key] and "Logits" not in end_points
    pooled = nets.get_network_fn(name, num_classes=6, global_pool=True, **kwargs)
    out, end_points = _trace(pooled, [1, 320, 320, 3])
    assert end_points["global_pool"][1:3] == [1, 1] and out == [1, 6]


def test_v2_plain_stem_and_nhwc_only():
    model = slim.Model(inception_v2.inception_v2_base, use_separable_conv=False,
                       final_endpoint="Conv2d_1a_7x7")
    _trace(model, [1, 224, 224, 3])
    assert list(model.variables_dict())[0] == "InceptionV2/Conv2d_1a_7x7/weights"
    with pytest.raises(SlimError, match=r"data_format='NCHW' is not supported; use 'NHWC'"):
        slim.Model(inception_v2.inception_v2_base, data_format="NCHW")(tf.zeros([1, 64, 64, 3]))


@pytest.mark.parametrize("base", [inception_v1.inception_v1_base, inception_v2.inception_v2_base],
                         ids=["v1", "v2"])
def test_include_root_block_false_starts_at_the_modules(base):
    model = slim.Model(base, include_root_block=False, final_endpoint="Mixed_3b")
    out, end_points = _trace(model, [1, 28, 28, 192])
    assert list(end_points) == ["Mixed_3b"] and out[:3] == [1, 28, 28]


def test_scope_and_reuse():
    def two_towers(images):
        with slim.arg_scope(inception_v1.inception_v1_arg_scope()):
            first, _ = inception_v1.inception_v1(images, num_classes=3, scope="Tower",
                                                 is_training=False)
            second, _ = inception_v1.inception_v1(images, num_classes=3, scope="Tower",
                                                  is_training=False, reuse=True)
        return first, {"second": second}

    model = slim.Model(two_towers)
    out, end_points = _trace(model, [1, 224, 224, 3])
    assert out == end_points["second"] == [1, 3]
    assert len(model.variables_dict()) == 230
    assert all(name.startswith("Tower/") for name in model.variables_dict())
