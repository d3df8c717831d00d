"""Streaming metrics: update with each batch, read the result, reset.

TF-Slim's `streaming_*` functions returned a (value op, update op) pair built
on local variables. Here each metric is a small `tf.Module` holding its
totals in variables that are summed across replicas when read
(`ON_READ`/`SUM`), so updates inside `strategy.run` aggregate correctly:

    accuracy = metrics.Accuracy()
    for images, labels in dataset:
        accuracy.update(tf.argmax(logits, 1), labels)
    accuracy.result()

TF-Slim's functions are here too, as `(value, update_op)` pairs of callables:

    value, update_op = metrics.streaming_accuracy(predictions, labels)
    update_op()          # adds the batch; returns the updated value (a tensor)
    value()              # the current value (a tensor); float(value) works too

`update_op()` adds the inputs given at creation: tensors (the same batch each
time, as a TF1 graph re-ran on constants) or zero-argument callables read at
every call. `update_op(predictions, labels)` adds another batch instead.
Both work inside `tf.function`. `names_to_values, names_to_updates =
aggregate_metric_map({...: (value, update_op)})` and `values, updates =
aggregate_metrics(pair, ...)` group them as TF-Slim did; `MetricMap` groups
metric objects for `slim.evaluation`.
"""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim.metric_classes import (AUC, Accuracy, ConfusionMatrix, FalseNegativeRate,
                                         FalseNegatives, FalsePositiveRate, FalsePositives, Mean,
                                         MeanAbsoluteError, MeanIoU, MeanRelativeError,
                                         MeanSquaredError, MetricMap, PercentageLess, Precision,
                                         Recall, RecallAtK, RootMeanSquaredError, StreamingMetric,
                                         TrueNegatives, TruePositives)

__all__ = [
    "StreamingMetric", "Accuracy", "RecallAtK", "Mean", "MeanAbsoluteError", "MeanSquaredError",
    "MeanRelativeError", "PercentageLess", "Precision", "Recall", "AUC", "MeanIoU",
    "ConfusionMatrix", "MetricMap", "aggregate_metrics", "aggregate_metric_map",
    "RootMeanSquaredError", "TruePositives", "FalsePositives", "FalseNegatives", "TrueNegatives",
    "FalsePositiveRate", "FalseNegativeRate", "MetricValue", "MetricUpdate",
    "streaming_accuracy", "streaming_mean", "streaming_mean_absolute_error",
    "streaming_mean_relative_error", "streaming_mean_squared_error",
    "streaming_root_mean_squared_error", "streaming_percentage_less", "streaming_precision",
    "streaming_recall", "streaming_true_positives", "streaming_false_positives",
    "streaming_false_negatives", "streaming_true_negatives", "streaming_false_positive_rate",
    "streaming_false_negative_rate", "streaming_auc", "streaming_recall_at_k",
    "streaming_mean_iou",
]


class MetricValue:
    """The value half of a `(value, update_op)` pair: `value()` is the current result."""

    def __init__(self, metric: StreamingMetric):
        self.metric = metric

    def __call__(self) -> tf.Tensor:
        return self.metric.result()

    def __float__(self) -> float:
        return float(self.metric.result())


class MetricUpdate:
    """The update half: `update_op()` adds the batch given at creation (callables are
    called first), `update_op(*batch)` adds another; either returns the new value."""

    def __init__(self, metric: StreamingMetric, args: tuple = (), kwargs: Mapping | None = None):
        self.metric = metric
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})

    def __call__(self, *args: Any, **kwargs: Any) -> tf.Tensor:
        if not args and not kwargs:
            if not self.args:
                raise SlimError(f"update_op of {self.metric.name}: no inputs were given at "
                                f"creation; call update_op(predictions, labels).")
            args = tuple(a() if callable(a) else a for a in self.args)
            kwargs = {k: v() if callable(v) else v for k, v in self.kwargs.items()}
        self.metric.update(*args, **kwargs)
        return self.metric.result()


def _pair(metric: StreamingMetric, args: tuple, weights: Any = None,
          metrics_collections: Any = None, updates_collections: Any = None,
          **kwargs: Any) -> tuple[MetricValue, MetricUpdate]:
    if metrics_collections or updates_collections:
        raise SlimError(f"{metric.name}: metrics_collections/updates_collections are gone with "
                        f"TF1's graph collections; keep the returned (value, update_op) instead.")
    if weights is not None:
        kwargs["weights"] = weights
    return MetricValue(metric), MetricUpdate(metric, args, kwargs)


Pair = tuple  # (MetricValue, MetricUpdate)


def streaming_accuracy(predictions, labels, weights=None, metrics_collections=None,
                       updates_collections=None, name=None) -> Pair:
    """The fraction of `predictions == labels` (see `Accuracy`)."""
    return _pair(Accuracy(name or "accuracy"), (predictions, labels), weights,
                 metrics_collections, updates_collections)


def streaming_mean(values, weights=None, metrics_collections=None, updates_collections=None,
                   name=None) -> Pair:
    """The weighted mean of `values` (see `Mean`)."""
    return _pair(Mean(name or "mean"), (values,), weights, metrics_collections,
                 updates_collections)


def streaming_mean_absolute_error(predictions, labels, weights=None, metrics_collections=None,
                                  updates_collections=None, name=None) -> Pair:
    return _pair(MeanAbsoluteError(name or "mean_absolute_error"), (predictions, labels),
                 weights, metrics_collections, updates_collections)


def streaming_mean_relative_error(predictions, labels, normalizer, weights=None,
                                  metrics_collections=None, updates_collections=None,
                                  name=None) -> Pair:
    """mean(|predictions - labels| / normalizer) (see `MeanRelativeError`)."""
    return _pair(MeanRelativeError(name or "mean_relative_error"),
                 (predictions, labels, normalizer), weights, metrics_collections,
                 updates_collections)


def streaming_mean_squared_error(predictions, labels, weights=None, metrics_collections=None,
                                 updates_collections=None, name=None) -> Pair:
    return _pair(MeanSquaredError(name or "mean_squared_error"), (predictions, labels), weights,
                 metrics_collections, updates_collections)


def streaming_root_mean_squared_error(predictions, labels, weights=None,
                                      metrics_collections=None, updates_collections=None,
                                      name=None) -> Pair:
    return _pair(RootMeanSquaredError(name or "root_mean_squared_error"),
                 (predictions, labels), weights, metrics_collections, updates_collections)


def streaming_percentage_less(values, threshold, weights=None, metrics_collections=None,
                              updates_collections=None, name=None) -> Pair:
    """The fraction of `values` below `threshold`."""
    return _pair(PercentageLess(threshold, name or "percentage_less"), (values,), weights,
                 metrics_collections, updates_collections)


def _binary_pair(cls: type, default_name: str, predictions, labels, weights, metrics_collections,
                 updates_collections, name) -> Pair:
    return _pair(cls(name or default_name), (predictions, labels), weights, metrics_collections,
                 updates_collections)


def streaming_precision(predictions, labels, weights=None, metrics_collections=None,
                        updates_collections=None, name=None) -> Pair:
    """tp / (tp + fp) of boolean predictions and labels."""
    return _binary_pair(Precision, "precision", predictions, labels, weights,
                        metrics_collections, updates_collections, name)


def streaming_recall(predictions, labels, weights=None, metrics_collections=None,
                     updates_collections=None, name=None) -> Pair:
    """tp / (tp + fn) of boolean predictions and labels."""
    return _binary_pair(Recall, "recall", predictions, labels, weights, metrics_collections,
                        updates_collections, name)


def streaming_true_positives(predictions, labels, weights=None, metrics_collections=None,
                             updates_collections=None, name=None) -> Pair:
    return _binary_pair(TruePositives, "true_positives", predictions, labels, weights,
                        metrics_collections, updates_collections, name)


def streaming_false_positives(predictions, labels, weights=None, metrics_collections=None,
                              updates_collections=None, name=None) -> Pair:
    return _binary_pair(FalsePositives, "false_positives", predictions, labels, weights,
                        metrics_collections, updates_collections, name)


def streaming_false_negatives(predictions, labels, weights=None, metrics_collections=None,
                              updates_collections=None, name=None) -> Pair:
    return _binary_pair(FalseNegatives, "false_negatives", predictions, labels, weights,
                        metrics_collections, updates_collections, name)


def streaming_true_negatives(predictions, labels, weights=None, metrics_collections=None,
                             updates_collections=None, name=None) -> Pair:
    return _binary_pair(TrueNegatives, "true_negatives", predictions, labels, weights,
                        metrics_collections, updates_collections, name)


def streaming_false_positive_rate(predictions, labels, weights=None, metrics_collections=None,
                                  updates_collections=None, name=None) -> Pair:
    return _binary_pair(FalsePositiveRate, "false_positive_rate", predictions, labels, weights,
                        metrics_collections, updates_collections, name)


def streaming_false_negative_rate(predictions, labels, weights=None, metrics_collections=None,
                                  updates_collections=None, name=None) -> Pair:
    return _binary_pair(FalseNegativeRate, "false_negative_rate", predictions, labels, weights,
                        metrics_collections, updates_collections, name)


def streaming_auc(predictions, labels, weights=None, num_thresholds=200,
                  metrics_collections=None, updates_collections=None, curve="ROC",
                  name=None) -> Pair:
    """Area under the ROC or PR curve (see `AUC`)."""
    return _pair(AUC(num_thresholds, curve, name or "auc"), (predictions, labels), weights,
                 metrics_collections, updates_collections)


def streaming_recall_at_k(predictions, labels, k, weights=None, metrics_collections=None,
                          updates_collections=None, name=None) -> Pair:
    """The fraction of labels among the `k` largest of `predictions` (logits)."""
    return _pair(RecallAtK(k, name), (predictions, labels), weights, metrics_collections,
                 updates_collections)


def streaming_mean_iou(predictions, labels, num_classes, weights=None, metrics_collections=None,
                       updates_collections=None, name=None) -> Pair:
    """Mean intersection over union of class predictions (see `MeanIoU`)."""
    return _pair(MeanIoU(num_classes, name or "mean_iou"), (predictions, labels), weights,
                 metrics_collections, updates_collections)


def _as_pair(name: str, item: Any) -> Pair:
    if isinstance(item, StreamingMetric):
        return MetricValue(item), MetricUpdate(item)
    if isinstance(item, (tuple, list)) and len(item) == 2 and all(callable(x) for x in item):
        return tuple(item)
    raise SlimError(f"aggregate_metric_map: {name!r} is a {type(item).__name__}, not a "
                    f"(value, update_op) pair of a streaming_* function or a streaming metric.")


def aggregate_metric_map(names_to_tuples: Mapping[str, Any]) -> tuple[dict, dict]:
    """Splits `{name: (value, update_op)}` into `(names_to_values, names_to_updates)`.

    A metric object (`metrics.Accuracy()`) counts as its own pair. To keep
    metric objects together for `slim.evaluation`, use `MetricMap`.
    """
    pairs = {name: _as_pair(name, item) for name, item in names_to_tuples.items()}
    return ({n: p[0] for n, p in pairs.items()}, {n: p[1] for n, p in pairs.items()})


def aggregate_metrics(*value_update_tuples: Any) -> tuple[list, list]:
    """Splits `(value, update_op)` pairs into `(values, update_ops)` lists."""
    pairs = [_as_pair(f"#{i}", item) for i, item in enumerate(value_update_tuples)]
    return [p[0] for p in pairs], [p[1] for p in pairs]
