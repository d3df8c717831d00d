"""Inception V4: the original's keyword arguments (final_endpoint, num_classes=0,
create_aux_logits, dropout_keep_prob, scope/reuse). Mostly symbolic traces;
the full-size outputs are checked against the original in test_nets.py."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli import slim
from slimcli.errors import SlimError
from slimcli.nets import inception_v4 as v4
from tests.nets_helpers import reference
from tests.net_trace import trace_net

ARG_SCOPE = v4.inception_v4_arg_scope()


@pytest.mark.parametrize("final_endpoint", ["Conv2d_1a_3x3", "Mixed_4a", "Mixed_5b", "Mixed_6a"])
def test_base_stops_at_final_endpoint(final_endpoint):
    original = reference("inception_v4")["end_points"]
    model, output, end_points = trace_net(v4.inception_v4_base, ARG_SCOPE, [2, 299, 299, 3],
                                          final_endpoint=final_endpoint)
    built = v4.BASE_END_POINTS[:v4.BASE_END_POINTS.index(final_endpoint) + 1]
    assert list(end_points) == list(built)
    assert output == original[final_endpoint]
    assert all(end_points[k] == original[k] for k in built)
    scopes = {name.split("/")[1] for name in model.variables_dict()}
    assert scopes <= set(built)


def test_unknown_final_endpoint_is_an_error_naming_the_known_ones():
    model = slim.Model(v4.inception_v4_base)
    with pytest.raises(SlimError, match=r"unknown final_endpoint='Mixed_8a'; use one of "
                                        r"Conv2d_1a_3x3, .*Mixed_7d"):
        model(tf.zeros([1, 299, 299, 3]), final_endpoint="Mixed_8a")
    assert len(model.variables_dict()) == 0


def test_num_classes_zero_gives_pooled_features_without_classifier_variables():
    model, output, end_points = trace_net(v4.inception_v4, ARG_SCOPE, [2, 299, 299, 3],
                                          num_classes=0, is_training=False)
    assert output == [2, 1, 1, 1536]
    assert end_points["global_pool"] == [2, 1, 1, 1536]
    assert not {"Logits", "AuxLogits", "Predictions"} & set(end_points)
    names = list(model.variables_dict())
    assert not [n for n in names if n.startswith(("InceptionV4/Logits", "InceptionV4/AuxLogits"))]


def test_scope_reuse_and_create_aux_logits_false():
    def twice(images):
        kwargs = dict(num_classes=10, is_training=False, create_aux_logits=False)
        first, end_points = v4.inception_v4(images, scope="Shared", **kwargs)
        second, _ = v4.inception_v4(images, scope="Shared", reuse=True, **kwargs)
        return first + second, end_points

    model, output, end_points = trace_net(twice, ARG_SCOPE, [1, 107, 107, 3])
    assert output == [1, 10] and "AuxLogits" not in end_points
    original = [n for n, _, _ in reference("inception_v4")["variables"]]
    assert sorted(model.variables_dict()) == sorted(
        n.replace("InceptionV4/", "Shared/", 1) for n in original if "/AuxLogits/" not in n)


def test_dropout_keep_prob_applies_only_in_training():
    model = slim.Model(v4.inception_v4, num_classes=3, create_aux_logits=False)
    x = tf.random.stateless_uniform([2, 75, 75, 3], seed=[5, 6])
    with slim.arg_scope(ARG_SCOPE):
        _, kept = model(x, is_training=True, dropout_keep_prob=1.0)
        _, train = model(x, is_training=True, dropout_keep_prob=0.5)
        _, evaluation = model(x, is_training=False, dropout_keep_prob=0.5)
    before = kept["PreLogitsFlatten"].numpy()        # same batch statistics, no dropout
    after = train["PreLogitsFlatten"].numpy()
    assert np.all((after == 0.0) | np.isclose(after, 2.0 * before, rtol=1e-5, atol=1e-6))
    dropped = np.mean(after[before != 0.0] == 0.0)
    assert 0.35 < dropped < 0.65
    np.testing.assert_array_equal(evaluation["PreLogitsFlatten"],
                                  tf.reshape(evaluation["global_pool"], [2, -1]))
