"""VGG, AlexNet v2 and OverFeat: keyword arguments of the fc-as-conv nets.

Each test builds one net once (these nets hold 50-145 M parameters), at an
input size where the behaviour under test shows.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.errors import SlimError
from slimcli.nets import vgg as vgg_module


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


def test_alexnet_num_classes_zero_returns_fc7_without_fc8():
    fn = nets.get_network_fn("alexnet_v2", num_classes=0)
    out, end_points = _trace(fn, [2, 224, 224, 3])
    assert out == [2, 1, 1, 4096]
    assert "alexnet_v2/fc8" not in end_points
    assert not any("fc8" in name for name in fn.variables_dict())


def test_alexnet_global_pool_on_a_larger_image():
    fn = nets.get_network_fn("alexnet_v2", num_classes=7, global_pool=True)
    out, end_points = _trace(fn, [1, 288, 288, 3])
    assert end_points["alexnet_v2/fc7"] == [1, 3, 3, 4096]
    assert end_points["global_pool"] == [1, 1, 1, 4096]
    assert out == [1, 7]


def test_overfeat_spatial_squeeze_false_keeps_the_grid():
    fn = nets.get_network_fn("overfeat", num_classes=5, spatial_squeeze=False)
    out, end_points = _trace(fn, [1, 231, 231, 3])
    assert out == [1, 1, 1, 5] == end_points["overfeat/fc8"]


def test_vgg_fc_conv_padding_same_gives_per_location_logits():
    fn = nets.get_network_fn("vgg_a", num_classes=4, fc_conv_padding="SAME",
                             spatial_squeeze=False)
    out, end_points = _trace(fn, [1, 224, 224, 3])
    assert out == [1, 7, 7, 4]
    assert end_points["vgg_a/fc6"] == [1, 7, 7, 4096]


def test_vgg_variants_are_one_builder_with_repeat_counts():
    assert vgg_module.vgg_16.func is vgg_module.vgg is vgg_module.vgg_19.func
    assert nets.get_net_spec("vgg_19").fn_kwargs == {"scope": "vgg_19", "repeats": (2, 2, 4, 4, 4)}
    with pytest.raises(SlimError,
                       match=r"repeats must be 5 positive conv counts.*repeats=\(2, 2\)"):
        slim.Model(vgg_module.vgg, repeats=(2, 2))(tf.zeros([1, 32, 32, 3]))


def _two_towers(images, reuse):
    with slim.arg_scope(vgg_module.vgg_arg_scope()):
        first, _ = vgg_module.vgg_a(images, num_classes=3, fc_conv_padding="SAME",
                                    is_training=False)
        second, _ = vgg_module.vgg_a(images, num_classes=3, fc_conv_padding="SAME",
                                     is_training=False, reuse=reuse)
    return first, {"second": second}


def test_vgg_reuse_shares_variables():
    model = slim.Model(_two_towers, reuse=True)
    first, end_points = _trace(model, [1, 32, 32, 3])
    assert first == end_points["second"] == [1, 3]
    assert len(model.variables_dict()) == 22
    assert all(name.startswith("vgg_a/") for name in model.variables_dict())
    with pytest.raises(SlimError, match="already exists"):
        _trace(slim.Model(_two_towers, reuse=None), [1, 32, 32, 3])
