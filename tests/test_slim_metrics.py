"""Each streaming metric against a plain numpy computation on random data."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli.distribute import mirrored_strategy
from slimcli.errors import SlimError
from slimcli.slim import metrics

RNG = np.random.RandomState(7)
N, C = 50, 6
LOGITS = RNG.randn(N, C).astype(np.float32)
LABELS = RNG.randint(0, C, N)
PRED = LOGITS.argmax(1)
WEIGHTS = RNG.randint(0, 3, N).astype(np.float32)
VALUES = RNG.randn(N).astype(np.float32)
TARGETS = RNG.randn(N).astype(np.float32)


def stream(metric, *arrays, batch=7, **kwargs):
    """Feeds the arrays in batches (the last one partial) and returns the result."""
    for start in range(0, len(arrays[0]), batch):
        metric.update(*[a[start:start + batch] for a in arrays], **kwargs)
    return metric.result().numpy()


def test_accuracy_and_weights():
    assert stream(metrics.Accuracy(), PRED, LABELS) == pytest.approx(np.mean(PRED == LABELS))
    got = stream(metrics.Accuracy(), PRED, LABELS, WEIGHTS)
    assert got == pytest.approx(np.sum((PRED == LABELS) * WEIGHTS) / WEIGHTS.sum())


def test_recall_at_k_is_top_k_accuracy():
    top5 = np.argsort(-LOGITS, axis=1)[:, :5]
    expected = np.mean([LABELS[i] in top5[i] for i in range(N)])
    assert stream(metrics.RecallAtK(5), LOGITS, LABELS) == pytest.approx(expected)
    with pytest.raises(SlimError, match="expected k >= 1"):
        metrics.RecallAtK(0)


def test_means_and_errors():
    assert stream(metrics.Mean(), VALUES) == pytest.approx(VALUES.mean(), rel=1e-6)
    assert stream(metrics.MeanAbsoluteError(), VALUES, TARGETS) == pytest.approx(
        np.abs(VALUES - TARGETS).mean(), rel=1e-6)
    assert stream(metrics.MeanSquaredError(), VALUES, TARGETS) == pytest.approx(
        ((VALUES - TARGETS) ** 2).mean(), rel=1e-6)
    norm = np.abs(TARGETS) + 0.5
    m = metrics.MeanRelativeError()
    for s in range(0, N, 7):
        m.update(VALUES[s:s + 7], TARGETS[s:s + 7], norm[s:s + 7])
    assert m.result().numpy() == pytest.approx((np.abs(VALUES - TARGETS) / norm).mean(), rel=1e-6)
    assert stream(metrics.PercentageLess(0.3), VALUES) == pytest.approx(np.mean(VALUES < 0.3))


def test_precision_recall():
    p, y = VALUES > 0, TARGETS > 0
    tp = np.sum(p & y)
    assert stream(metrics.Precision(), p, y) == pytest.approx(tp / p.sum())
    assert stream(metrics.Recall(), p, y) == pytest.approx(tp / y.sum())


def np_auc(scores, labels, num_thresholds=200):
    eps = 1e-7
    thresholds = [-eps] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] \
        + [1 + eps]
    tp = np.array([np.sum((scores > t) & labels) for t in thresholds], np.float64)
    fp = np.array([np.sum((scores > t) & ~labels) for t in thresholds], np.float64)
    fn = np.array([np.sum((scores <= t) & labels) for t in thresholds], np.float64)
    tn = np.array([np.sum((scores <= t) & ~labels) for t in thresholds], np.float64)
    tpr = (tp + 1e-6) / (tp + fn + 1e-6)
    fpr = fp / (fp + tn + 1e-6)
    return np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2)


def test_auc_matches_threshold_counting_and_ranks_well():
    scores = 1 / (1 + np.exp(-VALUES))
    labels = (VALUES + 0.5 * TARGETS) > 0
    got = stream(metrics.AUC(), scores, labels)
    assert got == pytest.approx(np_auc(scores, labels), rel=1e-5)
    assert stream(metrics.AUC(), labels.astype(np.float32), labels) == pytest.approx(1.0, abs=1e-3)


def test_confusion_matrix_per_class_accuracy_and_mean_iou():
    cm = np.zeros([C, C])
    for y, p in zip(LABELS, PRED):
        cm[y, p] += 1
    metric = metrics.ConfusionMatrix(C)
    np.testing.assert_array_equal(stream(metric, PRED, LABELS), cm)
    np.testing.assert_allclose(metric.per_class_accuracy().numpy(),
                               np.diag(cm) / cm.sum(1), rtol=1e-6)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = np.diag(cm)[union > 0] / union[union > 0]
    assert stream(metrics.MeanIoU(C), PRED, LABELS) == pytest.approx(iou.mean(), rel=1e-6)


def test_metric_map_reset_and_function():
    names = metrics.MetricMap({"eval/Accuracy": metrics.Accuracy(),
                               "eval/Recall_5": metrics.RecallAtK(5)})

    @tf.function
    def update(logits, labels):
        names["eval/Accuracy"].update(tf.argmax(logits, 1), labels)
        names["eval/Recall_5"].update(logits, labels)

    update(LOGITS, LABELS)
    results = {k: float(v) for k, v in names.results().items()}
    assert results["eval/Accuracy"] == pytest.approx(np.mean(PRED == LABELS))
    names.reset()
    assert float(names.results()["eval/Accuracy"]) == 0.0
    with pytest.raises(SlimError, match="'x' is a int, not a \\(value, update_op\\) pair"):
        metrics.aggregate_metric_map({"x": 3})


def test_metrics_aggregate_across_replicas():
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        accuracy = metrics.Accuracy()
        confusion = metrics.ConfusionMatrix(C)
    dataset = tf.data.Dataset.from_tensor_slices((PRED, LABELS)).batch(8)
    dist = strategy.experimental_distribute_dataset(dataset)

    @tf.function
    def step(p, y):
        def replica(p, y):
            accuracy.update(p, y)
            confusion.update(p, y)
        strategy.run(replica, (p, y))

    for p, y in dist:
        step(p, y)
    assert float(accuracy.result()) == pytest.approx(np.mean(PRED == LABELS))
    assert float(tf.reduce_sum(confusion.result())) == N
