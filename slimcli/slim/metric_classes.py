"""The metric objects behind `slim.metrics`: totals in variables, summed across replicas.

Each metric is a small `tf.Module` holding its totals in variables that are
summed across replicas when read (`ON_READ`/`SUM`), so updates inside
`strategy.run` aggregate correctly. `slimcli.slim.metrics` re-exports them
beside TF-Slim's `streaming_*` functions.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

from slimcli.errors import SlimError

__all__ = [
    "StreamingMetric", "Accuracy", "RecallAtK", "Mean", "MeanAbsoluteError", "MeanSquaredError",
    "RootMeanSquaredError", "MeanRelativeError", "PercentageLess", "Precision", "Recall",
    "TruePositives", "FalsePositives", "FalseNegatives", "TrueNegatives", "FalsePositiveRate",
    "FalseNegativeRate", "AUC", "MeanIoU", "ConfusionMatrix", "MetricMap",
]


def _flat(x: Any, dtype=tf.float32) -> tf.Tensor:
    return tf.reshape(tf.cast(x, dtype), [-1])


def _weights_like(weights: Any, values: tf.Tensor) -> tf.Tensor:
    if weights is None:
        return tf.ones_like(values, tf.float32)
    return tf.reshape(tf.broadcast_to(tf.cast(weights, tf.float32), tf.shape(values)), [-1])


class StreamingMetric(tf.Module):
    """A metric whose totals accumulate over `update` calls and across replicas."""

    def __init__(self, name: str, **shapes: Sequence[int]):
        super().__init__(name=name)
        self._totals = {}
        for key, shape in (shapes or {"total": [], "count": []}).items():
            self._totals[key] = tf.Variable(
                tf.zeros(shape, tf.float64), trainable=False, name=f"{name}/{key}",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.SUM)

    def _add(self, **amounts: tf.Tensor) -> None:
        for key, amount in amounts.items():
            self._totals[key].assign_add(tf.cast(amount, tf.float64))

    def _value(self, key: str) -> tf.Tensor:
        return tf.convert_to_tensor(self._totals[key])

    def reset(self) -> None:
        """Sets every total back to zero."""
        for var in self._totals.values():
            var.assign(tf.zeros_like(var))

    def update(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def result(self) -> tf.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _ratio(num: tf.Tensor, den: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.math.divide_no_nan(num, den), tf.float32)


class Mean(StreamingMetric):
    """The weighted mean of all values seen."""

    def __init__(self, name: str = "mean"):
        super().__init__(name)

    def update(self, values: Any, weights: Any = None) -> None:
        values = _flat(values)
        w = _weights_like(weights, values)
        self._add(total=tf.reduce_sum(values * w), count=tf.reduce_sum(w))

    def result(self) -> tf.Tensor:
        return _ratio(self._value("total"), self._value("count"))


class Accuracy(Mean):
    """The fraction of predictions equal to labels (TF-Slim's `streaming_accuracy`)."""

    def __init__(self, name: str = "accuracy"):
        super().__init__(name)

    def update(self, predictions: Any, labels: Any, weights: Any = None) -> None:
        correct = tf.equal(_flat(predictions, tf.int64), _flat(labels, tf.int64))
        super().update(tf.cast(correct, tf.float32), weights)


class RecallAtK(Mean):
    """Top-k accuracy: the label is among the k largest scores (`streaming_recall_at_k`)."""

    def __init__(self, k: int = 5, name: str | None = None):
        if k < 1:
            raise SlimError(f"RecallAtK: expected k >= 1. Received: k={k}")
        super().__init__(name or f"recall_at_{k}")
        self.k = k

    def update(self, logits: Any, labels: Any, weights: Any = None) -> None:
        logits = tf.cast(logits, tf.float32)
        k = min(self.k, int(logits.shape[-1])) if logits.shape[-1] is not None else self.k
        hits = tf.math.in_top_k(tf.cast(_flat(labels, tf.int64), tf.int32), logits, k)
        super().update(tf.cast(hits, tf.float32), weights)


class MeanAbsoluteError(Mean):
    def __init__(self, name: str = "mean_absolute_error"):
        super().__init__(name)

    def update(self, predictions: Any, labels: Any, weights: Any = None) -> None:
        super().update(tf.abs(_flat(predictions) - _flat(labels)), weights)


class MeanSquaredError(Mean):
    def __init__(self, name: str = "mean_squared_error"):
        super().__init__(name)

    def update(self, predictions: Any, labels: Any, weights: Any = None) -> None:
        super().update(tf.square(_flat(predictions) - _flat(labels)), weights)


class RootMeanSquaredError(MeanSquaredError):
    def __init__(self, name: str = "root_mean_squared_error"):
        super().__init__(name)

    def result(self) -> tf.Tensor:
        return tf.sqrt(super().result())


class MeanRelativeError(Mean):
    """mean(|predictions - labels| / normalizer); a zero normalizer counts as 0 error."""

    def __init__(self, name: str = "mean_relative_error"):
        super().__init__(name)

    def update(self, predictions: Any, labels: Any, normalizer: Any,
               weights: Any = None) -> None:
        p, y = _flat(predictions), _flat(labels)
        n = tf.reshape(tf.broadcast_to(tf.cast(normalizer, tf.float32), tf.shape(predictions)), [-1])
        super().update(tf.math.divide_no_nan(tf.abs(p - y), n), weights)


class PercentageLess(Mean):
    """The fraction of values below `threshold`."""

    def __init__(self, threshold: float, name: str = "percentage_less"):
        super().__init__(name)
        self.threshold = threshold

    def update(self, values: Any, weights: Any = None) -> None:
        super().update(tf.cast(_flat(values) < self.threshold, tf.float32), weights)


class _Binary(StreamingMetric):
    """Weighted counts of true/false positives/negatives of boolean predictions."""

    def __init__(self, name: str):
        super().__init__(name, tp=[], fp=[], fn=[], tn=[])

    def update(self, predictions: Any, labels: Any, weights: Any = None) -> None:
        p = tf.cast(_flat(predictions, tf.bool), tf.float32)
        y = tf.cast(_flat(labels, tf.bool), tf.float32)
        w = _weights_like(weights, p)
        self._add(tp=tf.reduce_sum(p * y * w), fp=tf.reduce_sum(p * (1 - y) * w),
                  fn=tf.reduce_sum((1 - p) * y * w), tn=tf.reduce_sum((1 - p) * (1 - y) * w))

    def _rate(self, part: str, other: str) -> tf.Tensor:
        value = self._value(part)
        return _ratio(value, value + self._value(other))


class _Count(_Binary):
    """One of the four counts (`key`: tp, fp, fn or tn)."""
    key = "tp"

    def __init__(self, name: str | None = None):
        super().__init__(name or type(self).__name__.lower())

    def result(self) -> tf.Tensor:
        return tf.cast(self._value(self.key), tf.float32)


class TruePositives(_Count):
    key = "tp"


class FalsePositives(_Count):
    key = "fp"


class FalseNegatives(_Count):
    key = "fn"


class TrueNegatives(_Count):
    key = "tn"


class FalsePositiveRate(_Binary):
    """fp / (fp + tn)."""

    def __init__(self, name: str = "false_positive_rate"):
        super().__init__(name)

    def result(self) -> tf.Tensor:
        return self._rate("fp", "tn")


class FalseNegativeRate(_Binary):
    """fn / (fn + tp)."""

    def __init__(self, name: str = "false_negative_rate"):
        super().__init__(name)

    def result(self) -> tf.Tensor:
        return self._rate("fn", "tp")


class Precision(_Binary):
    """tp / (tp + fp) of boolean predictions against boolean labels."""

    def __init__(self, name: str = "precision"):
        super().__init__(name)

    def result(self) -> tf.Tensor:
        return self._rate("tp", "fp")


class Recall(_Binary):
    """tp / (tp + fn) of boolean predictions against boolean labels."""

    def __init__(self, name: str = "recall"):
        super().__init__(name)

    def result(self) -> tf.Tensor:
        return self._rate("tp", "fn")


class AUC(StreamingMetric):
    """Area under the ROC (or PR) curve from counts at `num_thresholds` thresholds.

    Thresholds are evenly spaced in [0, 1] with the first just below 0 and the
    last just above 1, as TF1's `streaming_auc`; the area is a trapezoid sum.
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", name: str = "auc"):
        if curve not in ("ROC", "PR"):
            raise SlimError(f"AUC: curve must be 'ROC' or 'PR'. Received: curve={curve!r}")
        if num_thresholds < 2:
            raise SlimError(f"AUC: expected num_thresholds >= 2. Received: {num_thresholds}")
        super().__init__(name, tp=[num_thresholds], fp=[num_thresholds], tn=[num_thresholds],
                         fn=[num_thresholds])
        self.curve = curve
        eps = 1e-7
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.thresholds = np.array([-eps] + inner + [1.0 + eps], np.float32)

    def update(self, predictions: Any, labels: Any, weights: Any = None) -> None:
        p = _flat(predictions)
        y = tf.cast(_flat(labels, tf.bool), tf.float32)
        w = _weights_like(weights, p)
        above = tf.cast(p[None, :] > self.thresholds[:, None], tf.float32)  # [T, N]
        self._add(tp=tf.reduce_sum(above * (y * w)[None], 1),
                  fp=tf.reduce_sum(above * ((1 - y) * w)[None], 1),
                  fn=tf.reduce_sum((1 - above) * (y * w)[None], 1),
                  tn=tf.reduce_sum((1 - above) * ((1 - y) * w)[None], 1))

    def result(self) -> tf.Tensor:
        tp, fp = self._value("tp"), self._value("fp")
        tn, fn = self._value("tn"), self._value("fn")
        eps = 1e-6
        recall = (tp + eps) / (tp + fn + eps)
        if self.curve == "ROC":
            x, y = fp / (fp + tn + eps), recall
        else:
            x, y = recall, (tp + eps) / (tp + fp + eps)
        area = tf.reduce_sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2.0)
        return tf.cast(area, tf.float32)


class ConfusionMatrix(StreamingMetric):
    """Counts `[label, prediction]` pairs; rows are true classes."""

    def __init__(self, num_classes: int, name: str = "confusion_matrix"):
        if num_classes < 1:
            raise SlimError(f"ConfusionMatrix: expected num_classes >= 1. Received: {num_classes}")
        super().__init__(name, matrix=[num_classes, num_classes])
        self.num_classes = num_classes

    def update(self, predictions: Any, labels: Any, weights: Any = None) -> None:
        p = _flat(predictions, tf.int64)
        y = _flat(labels, tf.int64)
        w = _weights_like(weights, tf.cast(p, tf.float32))
        cm = tf.math.confusion_matrix(y, p, self.num_classes, weights=w, dtype=tf.float64)
        self._add(matrix=cm)

    def result(self) -> tf.Tensor:
        return self._value("matrix")

    def per_class_accuracy(self) -> tf.Tensor:
        """Recall of each true class (NaN-free: 0 for classes never seen)."""
        cm = self._value("matrix")
        return _ratio(tf.linalg.diag_part(cm), tf.reduce_sum(cm, 1))


class MeanIoU(ConfusionMatrix):
    """Mean over classes of intersection / union, classes with an empty union left out."""

    def __init__(self, num_classes: int, name: str = "mean_iou"):
        super().__init__(num_classes, name)

    def result(self) -> tf.Tensor:
        cm = self._value("matrix")
        inter = tf.linalg.diag_part(cm)
        union = tf.reduce_sum(cm, 0) + tf.reduce_sum(cm, 1) - inter
        present = tf.cast(union > 0, tf.float64)
        iou = tf.math.divide_no_nan(inter, union)
        return _ratio(tf.reduce_sum(iou * present), tf.reduce_sum(present))


class MetricMap:
    """Named metrics updated and read together (TF-Slim's names_to_values/updates)."""

    def __init__(self, metrics: Mapping[str, StreamingMetric]):
        self.metrics = dict(metrics)

    def results(self) -> dict[str, tf.Tensor]:
        return {name: m.result() for name, m in self.metrics.items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()

    def __getitem__(self, name: str) -> StreamingMetric:
        return self.metrics[name]

    def __iter__(self):
        return iter(self.metrics)
