"""Inception-ResNet-v2: the original's keyword arguments (final_endpoint,
output_stride, align_feature_maps, num_classes=0, create_aux_logits,
dropout_keep_prob, activation_fn, scope/reuse). Mostly symbolic traces; the
full-size outputs are checked against the original in test_nets.py."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets import inception_resnet_v2 as irv2
from tests.nets_helpers import reference
from tests.net_trace import trace_net

ARG_SCOPE = irv2.inception_resnet_v2_arg_scope()


@pytest.mark.parametrize("final_endpoint", ["Conv2d_1a_3x3", "MaxPool_5a_3x3", "Mixed_5b"])
def test_base_stops_at_final_endpoint(final_endpoint):
    original = reference("inception_resnet_v2")["end_points"]
    model, output, end_points = trace_net(irv2.inception_resnet_v2_base, ARG_SCOPE,
                                          [2, 299, 299, 3], final_endpoint=final_endpoint)
    built = irv2.BASE_END_POINTS[:irv2.BASE_END_POINTS.index(final_endpoint) + 1]
    assert list(end_points) == list(built)
    assert output == original[final_endpoint]
    assert all(end_points[k] == original[k] for k in built)
    scopes = {name.split("/")[1] for name in model.variables_dict()}
    assert scopes <= set(built)


@pytest.mark.parametrize("kwargs, message", [
    ({"final_endpoint": "Mixed_8a"},
     r"unknown final_endpoint='Mixed_8a'; use one of Conv2d_1a_3x3, .*Conv2d_7b_1x1"),
    ({"output_stride": 32}, r"output_stride=32 is not supported; use 16 \(or 8"),
    ({"output_stride": 8},
     r"output_stride=8 is supported only up to the PreAuxLogits end point, got "
     r"final_endpoint='Conv2d_7b_1x1'"),
])
def test_bad_base_arguments_are_errors(kwargs, message):
    model = slim.Model(irv2.inception_resnet_v2_base)
    with pytest.raises(SlimError, match=message):
        model(tf.zeros([1, 299, 299, 3]), **kwargs)
    assert len(model.variables_dict()) == 0


@pytest.mark.parametrize("align_feature_maps, sizes", [
    (False, {"Conv2d_1a_3x3": 149, "MaxPool_5a_3x3": 35, "PreAuxLogits": 33}),
    (True, {"Conv2d_1a_3x3": 150, "MaxPool_5a_3x3": 38, "PreAuxLogits": 38}),
])
def test_output_stride_8_and_align_feature_maps(align_feature_maps, sizes):
    model, output, end_points = trace_net(
        irv2.inception_resnet_v2_base, ARG_SCOPE, [1, 299, 299, 3], output_stride=8,
        final_endpoint="PreAuxLogits", align_feature_maps=align_feature_maps)
    assert output == [1, sizes["PreAuxLogits"], sizes["PreAuxLogits"], 1088]
    assert {k: end_points[k][1] for k in sizes} == sizes
    original = {n: s for n, s, _ in reference("inception_resnet_v2")["variables"]}
    ours = {n: v.shape.as_list() for n, v in model.variables_dict().items()}
    assert all(original[n] == s for n, s in ours.items())   # same variables as stride 16
    assert "InceptionResnetV2/Repeat_1/block17_20/Conv2d_1x1/weights" in ours


def test_num_classes_zero_gives_pooled_features_without_classifier_variables():
    model, output, end_points = trace_net(irv2.inception_resnet_v2, ARG_SCOPE, [2, 299, 299, 3],
                                          num_classes=0, is_training=False)
    assert output == [2, 1, 1, 1536] and end_points["global_pool"] == [2, 1, 1, 1536]
    assert not {"Logits", "AuxLogits", "Predictions"} & set(end_points)
    names = set(model.variables_dict())
    original = [n for n, _, _ in reference("inception_resnet_v2")["variables"]]
    assert names == {n for n in original if "/Logits/" not in n and "/AuxLogits/" not in n}


def test_scope_reuse_and_create_aux_logits_false():
    def twice(images):
        kwargs = dict(num_classes=10, is_training=False, create_aux_logits=False)
        first, end_points = irv2.inception_resnet_v2(images, scope="Shared", **kwargs)
        second, _ = irv2.inception_resnet_v2(images, scope="Shared", reuse=True, **kwargs)
        return first + second, end_points

    model, output, end_points = trace_net(twice, ARG_SCOPE, [1, 299, 299, 3])
    assert output == [1, 10] and "AuxLogits" not in end_points
    original = [n for n, _, _ in reference("inception_resnet_v2")["variables"]]
    assert sorted(model.variables_dict()) == sorted(
        n.replace("InceptionResnetV2/", "Shared/", 1) for n in original if "/AuxLogits/" not in n)


def test_dropout_keep_prob_applies_only_in_training():
    model = slim.Model(irv2.inception_resnet_v2, num_classes=3, create_aux_logits=False)
    x = tf.random.stateless_uniform([2, 75, 75, 3], seed=[7, 8])
    with slim.arg_scope(ARG_SCOPE):
        _, kept = model(x, is_training=True, dropout_keep_prob=1.0)
        _, train = model(x, is_training=True, dropout_keep_prob=0.5)
        _, evaluation = model(x, is_training=False, dropout_keep_prob=0.5)
    before = kept["PreLogitsFlatten"].numpy()        # same batch statistics, no dropout
    after = train["PreLogitsFlatten"].numpy()
    assert np.all((after == 0.0) | np.isclose(after, 2.0 * before, rtol=1e-5, atol=1e-6))
    assert 0.35 < np.mean(after[before != 0.0] == 0.0) < 0.65
    np.testing.assert_array_equal(evaluation["PreLogitsFlatten"],
                                  tf.reshape(evaluation["global_pool"], [2, -1]))


def test_activation_fn_of_the_residual_blocks():
    model = slim.Model(irv2.inception_resnet_v2_base, final_endpoint="PreAuxLogits")
    # Large inputs: in eval mode with fresh statistics the net is positively homogeneous.
    x = 1e4 * tf.random.stateless_uniform([1, 75, 75, 3], seed=[7, 8])
    with slim.arg_scope(ARG_SCOPE), slim.arg_scope([slim.batch_norm], is_training=False):
        relu, _ = model(x)
        relu6, _ = model(x, activation_fn=tf.nn.relu6)
    assert float(tf.reduce_max(relu)) > 6.0
    assert 0.0 <= float(tf.reduce_min(relu6)) and float(tf.reduce_max(relu6)) <= 6.0
