"""Batch-norm moving statistics after a short run (issue 20, finding 9).

A small batch-norm net trained a few hundred steps at the nets' usual decay (0.9997)
evaluates near chance: its moving statistics are still mostly their initial 0 and 1.
`--recompute_batch_norm_stats` makes them right, and slim-eval warns when they cannot be.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datasets_helpers import convert_folder
from slimcli import nets, slim
from slimcli import evaluate as eval_lib
from slimcli import train as train_lib
from slimcli.errors import SlimError
from slimcli.nets.registry import NetSpec

NUM_CLASSES = 3


def bnnet(images, num_classes=NUM_CLASSES, is_training=False, scope="BnNet"):
    end_points = {}
    with slim.variable_scope(scope, "BnNet"), \
            slim.arg_scope([slim.batch_norm], is_training=is_training):
        net = slim.conv2d(images, 8, [3, 3], scope="conv1")
        net = slim.max_pool2d(net, [2, 2], 2, scope="pool1")
        net = slim.conv2d(net, 8, [3, 3], scope="conv2")
        net = slim.conv2d(net, 8, [3, 3], scope="conv3")
        net = tf.reduce_mean(net, [1, 2], name="pool2")
        logits = end_points["Logits"] = slim.fully_connected(
            net, num_classes, activation_fn=None, normalizer_fn=None, scope="logits")
    end_points["Predictions"] = slim.softmax(logits, scope="Predictions")
    return logits, end_points


def bnnet_arg_scope(weight_decay=0.0, batch_norm_decay=0.9997):
    with slim.arg_scope([slim.conv2d, slim.fully_connected], activation_fn=tf.nn.relu,
                        normalizer_fn=slim.batch_norm,
                        normalizer_params={"decay": batch_norm_decay, "center": True}) as sc:
        return sc


@pytest.fixture(scope="module")
def bn_net():
    """`bnnet` in the nets registry for this module."""
    spec = NetSpec(name="bnnet", fn=bnnet, arg_scope=bnnet_arg_scope, default_image_size=16,
                   preprocessing="lenet", predictions_op="Predictions/Reshape_1",
                   logits_scopes=("BnNet/logits",))
    saved = dict(nets.NETS_REGISTRY._entries)
    nets.NETS_REGISTRY.register("bnnet", spec)
    yield spec
    nets.NETS_REGISTRY._entries = saved


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """Bright, low-contrast 16x16 photos whose tint is the class (3 x 30), folder-converted."""
    root = tmp_path_factory.mktemp("bn_data")
    rng = np.random.RandomState(0)
    for c in range(NUM_CLASSES):
        os.makedirs(root / "images" / f"c{c}")
        for i in range(30):
            pixels = rng.rand(16, 16, 3) * 16 + 200
            pixels[..., c] += 16
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
                root / "images" / f"c{c}" / f"{i}.png")
    return convert_folder(root / "images", root / "records", "--num_validation=30")


def _train_and_evaluate(bn_net, dataset_dir, train_dir, **kw):
    config = train_lib.TrainConfig(
        model_name="bnnet", dataset_name="folder", dataset_dir=dataset_dir,
        train_dir=str(train_dir), batch_size=30, max_number_of_steps=300, optimizer="adam",
        learning_rate=0.01, learning_rate_decay_type="fixed", weight_decay=0.0, seed=1,
        save_summaries_secs=0, save_interval_secs=0, log_every_n_steps=300, progress_bar=False,
        **kw)
    train_lib.train(config)
    return eval_lib.run_evaluation(eval_lib.EvalConfig(
        model_name="bnnet", dataset_name="folder", dataset_dir=dataset_dir,
        dataset_split_name="train", checkpoint_path=str(train_dir),
        eval_dir=str(train_dir / "eval"), batch_size=30, progress=False))["eval/Accuracy"]


def test_short_run_evaluates_at_chance_and_the_recomputed_statistics_fix_it(
        bn_net, dataset_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="slimcli.evaluate"):
        stale = _train_and_evaluate(bn_net, dataset_dir, tmp_path / "stale")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Batch-norm statistics of" in w and "global step 300 is small beside "
               "1/(1 - decay) = 3333 steps" in w and "--recompute_batch_norm_stats" in w
               for w in warnings), warnings
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="slimcli.evaluate"):
        fixed = _train_and_evaluate(bn_net, dataset_dir, tmp_path / "fixed",
                                    recompute_batch_norm_stats=5)
    assert not [r for r in caplog.records if "Batch-norm statistics" in r.getMessage()]
    assert stale <= 0.45, stale  # chance is 1/3
    assert fixed >= 0.9, fixed  # the net fits the training split


def test_batch_norm_decay_reaches_the_arg_scope(bn_net):
    net = nets.get_network_fn("bnnet", NUM_CLASSES, is_training=True, batch_norm_decay=0.5)
    net.build([None, 16, 16, 3])
    moving = net.variables_dict()["BnNet/conv1/BatchNorm/moving_mean"]
    images = tf.ones([2, 16, 16, 3])
    net(images)
    first = moving.numpy().copy()
    net(images)  # same batch mean m: moving goes 0 -> 0.5 m -> 0.75 m at decay 0.5
    np.testing.assert_allclose(moving.numpy(), 1.5 * first, rtol=1e-5)
    with pytest.raises(SlimError, match="lenet's arg scope has no batch-norm decay"):
        nets.get_network_fn("lenet", 10, batch_norm_decay=0.9)
