"""ResNet v1/v2 and resnet_utils: the original's keyword arguments, on small nets.

The full-size nets are checked against the original in test_nets.py; here the
builders run with tiny block lists (or a small depth_multiplier) on small
inputs, so each test takes well under a second of compute.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli import nets, slim
from slimcli.errors import SlimError
from slimcli.nets import resnet_utils, resnet_v1, resnet_v2

VERSIONS = {"v1": (resnet_v1.resnet_v1, resnet_v1.resnet_v1_block),
            "v2": (resnet_v2.resnet_v2, resnet_v2.resnet_v2_block)}


def _small_blocks(block_fn):
    """Nominal stride 4 (root) x 8 (blocks) = 32, with depths 4..32."""
    return [block_fn("block1", base_depth=1, num_units=3, stride=2),
            block_fn("block2", base_depth=2, num_units=3, stride=2),
            block_fn("block3", base_depth=4, num_units=3, stride=2),
            block_fn("block4", base_depth=8, num_units=2, stride=1)]


def _small_net(version: str, **fixed) -> slim.Model:
    builder, block_fn = VERSIONS[version]
    blocks = _small_blocks(block_fn)

    def net(images, **kwargs):
        with slim.arg_scope(resnet_utils.resnet_arg_scope()):
            return builder(images, blocks, scope="resnet", **{**fixed, **kwargs})

    return slim.Model(net, name=f"small_resnet_{version}")


def _images(size: int = 81, batch: int = 2) -> tf.Tensor:
    return tf.random.stateless_uniform([batch, size, size, 3], seed=[3, 4])


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_output_stride_gives_the_same_values_densely(version):
    """Atrous evaluation at output_stride s, subsampled, equals the strided net."""
    model = _small_net(version, num_classes=None, global_pool=False, is_training=False)
    x = _images()
    expected, _ = model(x)                                          # 3 x 3 (stride 32)
    assert expected.shape == (2, 3, 3, 32)
    for output_stride, size in ((4, 21), (8, 11), (16, 6), (32, 3)):
        dense, _ = model(x, output_stride=output_stride)
        assert dense.shape == (2, size, size, 32)
        factor = 32 // output_stride
        np.testing.assert_allclose(dense[:, ::factor, ::factor, :], expected, rtol=1e-4,
                                   atol=1e-4 * float(tf.reduce_max(tf.abs(expected))))


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_unreachable_output_stride_names_the_valid_ones(version):
    model = _small_net(version, num_classes=None)
    for bad in (12, 64, 2):
        with pytest.raises(SlimError, match=rf"output_stride={bad} cannot be reached; "
                                            rf"use one of \[4, 8, 16, 32\]"):
            model(_images(33), output_stride=bad)
    assert not model.built and len(model.variables_dict()) == 0


def test_stack_blocks_dense_checks_output_stride_of_its_own_blocks():
    blocks = _small_blocks(resnet_v1.resnet_v1_block)
    assert resnet_utils.reachable_output_strides(blocks) == [1, 2, 4, 8]
    model = slim.Model(lambda x: resnet_utils.stack_blocks_dense(x, blocks, output_stride=3))
    with pytest.raises(SlimError, match=r"output_stride=3 cannot be reached.*\[1, 2, 4, 8\]"):
        model(_images(17))


def test_store_non_strided_activations():
    model = _small_net("v1", num_classes=5, is_training=False)
    x = _images()
    logits, strided = model(x)
    logits_ns, non_strided = model(x, store_non_strided_activations=True)
    assert strided["resnet/block1"].shape == (2, 11, 11, 4)
    assert non_strided["resnet/block1"].shape == (2, 21, 21, 4)      # before block1's stride
    assert non_strided["resnet/block4"].shape == (2, 3, 3, 32)       # block4 has stride 1
    np.testing.assert_allclose(logits_ns, logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_heads_global_pool_spatial_squeeze_and_features(version):
    model = _small_net(version, num_classes=7, is_training=False)
    x = _images(65)
    logits, end_points = model(x)
    assert logits.shape == (2, 7)
    assert end_points["global_pool"].shape == (2, 1, 1, 32)
    assert end_points["resnet/logits"].shape == (2, 1, 1, 7)
    assert end_points["resnet/spatial_squeeze"].shape == (2, 7)
    assert end_points["predictions"].shape == (2, 7)
    assert list(end_points)[-1] == "predictions"
    logits4, _ = model(x, spatial_squeeze=False)
    assert logits4.shape == (2, 1, 1, 7)
    dense, end_points = model(x, global_pool=False, spatial_squeeze=False)
    assert dense.shape == (2, 3, 3, 7) and "global_pool" not in end_points
    with pytest.raises(SlimError, match=r"spatial_squeeze=True needs 1x1 logits.*"
                                        r"spatial_squeeze=False"):
        model(x, global_pool=False)
    features, end_points = model(x, num_classes=None)
    assert features.shape == (2, 1, 1, 32)
    assert "predictions" not in end_points and "resnet/logits" not in end_points


def test_v2_has_postnorm_and_preact_and_v1_has_neither():
    for version, expect in (("v1", False), ("v2", True)):
        model = _small_net(version, num_classes=3)
        model.build([1, 33, 33, 3])
        names = list(model.variables_dict())
        assert any(n.startswith("resnet/postnorm/") for n in names) is expect
        assert any("/preact/" in n for n in names) is expect
        assert ("resnet/conv1/biases" in names) is expect               # v2's conv1 has no BN


def test_factory_depth_multiplier_and_min_base_depth():
    fn = nets.get_network_fn("resnet_v1_50", num_classes=0, depth_multiplier=0.125)
    features, end_points = fn(_images(64), is_training=False)
    assert features.shape == (2, 1, 1, 256)                            # 2048 / 8
    shapes = fn.variables_dict()
    assert shapes["resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/weights"].shape == (1, 1, 64, 8)
    fn16 = nets.get_network_fn("resnet_v1_50", num_classes=0, depth_multiplier=0.125,
                               min_base_depth=16)
    fn16.build([1, 64, 64, 3])
    weights = fn16.variables_dict()["resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/weights"]
    assert weights.shape == (1, 1, 64, 16)
    for bad in (0, -0.5):
        with pytest.raises(SlimError, match=rf"depth_multiplier={bad} must be greater than zero"):
            nets.get_network_fn("resnet_v1_50", num_classes=0, depth_multiplier=bad).build(
                [1, 64, 64, 3])


def test_unknown_depth_lists_the_known_ones():
    model = slim.Model(resnet_v1.resnet_v1_depth, depth=34)
    with pytest.raises(SlimError, match=r"resnet_v1: unknown depth=34; use one of "
                                        r"\[50, 101, 152, 200\]"):
        model(_images(33))


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_scope_and_reuse(version):
    builder, block_fn = VERSIONS[version]
    blocks = _small_blocks(block_fn)

    def twice(images):
        with slim.arg_scope(resnet_utils.resnet_arg_scope()):
            first, _ = builder(images, blocks, num_classes=4, scope="shared")
            second, _ = builder(images, blocks, num_classes=4, scope="shared", reuse=True)
        return first, second

    model = slim.Model(twice)
    first, second = model(_images(33))
    names = list(model.variables_dict())
    assert names and all(n.startswith("shared/") for n in names)
    single = _small_net(version, num_classes=4)
    single.build([1, 33, 33, 3])
    assert len(names) == len(single.variables_dict())                  # reuse made no copies
    np.testing.assert_allclose(first, second, rtol=1e-6)


def test_is_training_none_leaves_batch_norm_mode_to_the_arg_scope():
    model = _small_net("v1", num_classes=3, is_training=None)
    x = _images(33)
    model.build([2, 33, 33, 3])
    mean = model.variables_dict()["resnet/conv1/BatchNorm/moving_mean"]
    before = mean.numpy()
    with slim.arg_scope([slim.batch_norm], is_training=False):
        model(x)
    np.testing.assert_array_equal(mean.numpy(), before)
    model(x)                                    # batch_norm defaults to training
    assert not np.array_equal(mean.numpy(), before)


@pytest.mark.parametrize("size", [6, 7])
def test_conv2d_same_equals_same_conv_subsampled(size):
    """conv2d_same(stride 2) = 'SAME' stride-1 conv subsampled, even and odd sizes."""
    x = tf.reshape(tf.range(size * size, dtype=tf.float32), [1, size, size, 1])
    w = tf.reshape(tf.range(9, dtype=tf.float32) + 1.0, [3, 3, 1, 1])

    def net(images):
        with slim.arg_scope([slim.conv2d], weights_initializer=lambda shape, dtype=None, **_: w,
                            activation_fn=None):
            return (resnet_utils.conv2d_same(images, 1, 3, stride=2, scope="strided"),
                    resnet_utils.conv2d_same(images, 1, 3, stride=1, scope="dense"))

    strided, dense = slim.Model(net)(x)
    np.testing.assert_allclose(strided, dense[:, ::2, ::2, :])
    assert strided.shape[1] == (size + 1) // 2


@pytest.mark.parametrize("name", ["resnet_v1_50", "resnet_v1_200", "resnet_v2_101"])
def test_specs(name):
    spec = nets.get_net_spec(name)
    assert spec.default_image_size == 224 and spec.preprocessing == "vgg"
    assert spec.predictions_op == f"{name}/predictions/Reshape_1"
    assert spec.checkpoint_exclude_scopes == f"{name}/logits"
    assert spec.zoo_num_classes == (1000 if "v1" in name else 1001)
    assert spec.predictions_key == "predictions"
    module = resnet_v1 if "v1" in name else resnet_v2
    assert getattr(module, name).default_image_size == 224
