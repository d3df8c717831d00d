"""evaluate_once and evaluation_loop on a model whose answers are known exactly."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from slimcli import slim
from slimcli.slim import evaluation, metrics


def scale_net(x):
    """logits = x * w; with w = +1 the prediction is argmax(x), with w = -1 argmin(x)."""
    w = slim.model_variable("scale", shape=[], initializer=slim.ones_initializer())
    return x * w


def make_eval(model):
    names = metrics.MetricMap({"eval/Accuracy": metrics.Accuracy(),
                               "eval/Recall_5": metrics.RecallAtK(2)})

    @tf.function
    def eval_step(batch):
        x, y = batch
        logits = model(x)
        names["eval/Accuracy"].update(tf.argmax(logits, 1), y)
        names["eval/Recall_5"].update(logits, y)

    def restore(path):
        slim.assign_from_checkpoint(path, model.variables_dict())

    return names, eval_step, restore


X = np.random.RandomState(3).randn(23, 4).astype(np.float32)
Y = X.argmax(1)
Y[:5] = X[:5].argmin(1)  # five examples only a negated model gets right
DATASET = tf.data.Dataset.from_tensor_slices((X, Y)).batch(5)  # last batch partial (3)


def test_evaluate_once_sees_every_example_once(tmp_path):
    model = slim.Model(scale_net)
    model(X)
    names, eval_step, restore = make_eval(model)
    slim.save_checkpoint({"scale": np.float32(1.0), "global_step": np.int64(12)},
                         str(tmp_path / "model.ckpt-12"))
    results = evaluation.evaluate_once(str(tmp_path / "model.ckpt-12"), restore, eval_step,
                                       DATASET, names, summary_dir=str(tmp_path / "eval"))
    assert results["eval/Accuracy"] == pytest.approx(18 / 23)
    assert results["global_step"] == 12 and results["num_batches"] == 5
    assert tf.io.gfile.glob(str(tmp_path / "eval" / "events.out.tfevents.*"))
    limited = evaluation.evaluate_once(str(tmp_path / "model.ckpt-12"), restore, eval_step,
                                       DATASET, names, num_batches=1)
    assert limited["num_batches"] == 1
    assert limited["eval/Accuracy"] == pytest.approx(0.0)  # the first five are the negated ones


def test_loop_evaluates_each_new_checkpoint_once_then_times_out(tmp_path):
    model = slim.Model(scale_net)
    model(X)
    names, eval_step, restore = make_eval(model)
    train_dir = str(tmp_path)

    def writer():
        for step, scale in ((1, 1.0), (2, -1.0), (3, 1.0)):
            time.sleep(0.4)
            slim.save_checkpoint({"scale": np.float32(scale)},
                                 f"{train_dir}/model.ckpt-{step}")

    thread = threading.Thread(target=writer)
    thread.start()
    results = evaluation.evaluation_loop(train_dir, restore, eval_step, DATASET, names,
                                         eval_interval_secs=0, timeout=2.5)
    thread.join()
    assert [r["global_step"] for r in results] == [1, 2, 3]
    assert [r["eval/Accuracy"] for r in results] == pytest.approx([18 / 23, 5 / 23, 18 / 23])


def test_loop_stops_after_max_number_of_evaluations(tmp_path):
    model = slim.Model(scale_net)
    model(X)
    names, eval_step, restore = make_eval(model)
    for step in (5, 10):
        slim.save_checkpoint({"scale": np.float32(1.0)}, str(tmp_path / f"model.ckpt-{step}"))
    results = evaluation.evaluation_loop(str(tmp_path), restore, eval_step, DATASET, names,
                                         eval_interval_secs=0, timeout=30,
                                         max_number_of_evaluations=1)
    assert [r["global_step"] for r in results] == [5]
