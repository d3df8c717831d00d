"""TF-Slim's losses, collected without graph collections.

`with slim.losses.collect():` opens a loss collection for the block. Every loss
function adds its result to the innermost open collection (if any) and
returns it; model calls made inside the block note their variable store, so
`get_regularization_losses()` and `get_total_loss()` find the weight penalties
of the models used in the block:

    with slim.losses.collect():
        logits, _ = model(images)
        slim.losses.softmax_cross_entropy(logits, onehot_labels)
        total_loss = slim.losses.get_total_loss()

Weighted losses reduce as TF1 did: the sum of weighted losses divided by the
number of non-zero weights.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Any, Iterator

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import scopes
from slimcli.slim import variables as slim_variables

__all__ = [
    "collect", "add_loss", "get_losses", "get_regularization_losses", "get_total_loss",
    "compute_weighted_loss", "softmax_cross_entropy", "sparse_softmax_cross_entropy",
    "sigmoid_cross_entropy", "mean_squared_error", "sum_of_squares", "absolute_difference",
    "log_loss", "hinge_loss", "cosine_distance",
]


@dataclasses.dataclass
class LossCollection:
    """The losses added in a `collect()` block and the stores used in it."""
    losses: list = dataclasses.field(default_factory=list)
    stores: list = dataclasses.field(default_factory=list)


_COLLECTION: contextvars.ContextVar[LossCollection | None] = contextvars.ContextVar(
    "slim_losses", default=None)


@contextlib.contextmanager
def collect() -> Iterator[LossCollection]:
    """Opens a loss collection for the block; yields it."""
    collection = LossCollection()
    token = _COLLECTION.set(collection)
    try:
        yield collection
    finally:
        _COLLECTION.reset(token)


def note_store(store: Any) -> None:
    """Called when a variable store becomes active: remembers it for regularization."""
    collection = _COLLECTION.get()
    if collection is not None and not any(s is store for s in collection.stores):
        collection.stores.append(store)


slim_variables.add_store_listener(note_store)


def _active() -> LossCollection:
    collection = _COLLECTION.get()
    if collection is None:
        raise SlimError("no loss collection is open: compute losses inside "
                        "`with slimcli.slim.losses.collect():`.")
    return collection


def add_loss(loss: tf.Tensor, loss_collection: bool = True) -> tf.Tensor:
    """Adds `loss` to the open collection (when one is open and loss_collection)."""
    collection = _COLLECTION.get()
    if loss_collection and collection is not None:
        collection.losses.append(loss)
    return loss


def get_losses(scope: str | None = None) -> list[tf.Tensor]:
    """The losses added in the open collection.

    `scope` (graphs only) is a regular expression matched at the start of the
    loss's op name, as TF-Slim's `tf.get_collection(LOSSES, scope)`.
    """
    losses = _active().losses
    if scope is None or tf.executing_eagerly():
        return list(losses)
    matches = slim_variables.scope_matcher(scope)
    return [l for l in losses if matches(getattr(l, "name", ""))]


def get_regularization_losses(scope: str | None = None, store: Any = None) -> list[tf.Tensor]:
    """Weight penalties of the store given, or of the stores used in the open collection.

    Args:
      scope: only variables whose name it matches at the start (a regular
        expression, `re.match`, as TF-Slim).
      store: a slim Model or VariableStore.
    """
    if store is not None:
        stores = [slim_variables._store(store)]
    else:
        collection = _COLLECTION.get()
        stores = list(collection.stores) if collection is not None else []
        context = scopes.current_context()
        if context is not None and not any(s is context.store for s in stores):
            stores.append(context.store)
        if not stores:
            raise SlimError("no model was used in this loss collection: call the model inside "
                            "`with slim.losses.collect():` or pass store=model.")
    result = []
    matches = slim_variables.scope_matcher(scope)
    for st in stores:
        for name, var, reg in st.regularizers():
            if matches(name):
                value = reg(var)
                if value is not None:
                    result.append(value)
    return result


def get_total_loss(add_regularization_losses: bool = True, name: str = "total_loss",
                   store: Any = None) -> tf.Tensor:
    """The sum of the collected losses, plus the regularization losses by default.

    Raises:
      SlimError: nothing to sum.
    """
    losses = get_losses()
    if add_regularization_losses:
        losses += get_regularization_losses(store=store)
    if not losses:
        raise SlimError("get_total_loss: no losses were added; compute a loss first.")
    return tf.add_n([tf.cast(l, tf.float32) for l in losses], name=name)


def compute_weighted_loss(losses: tf.Tensor, weights: Any = 1.0, scope: str | None = None,
                          loss_collection: bool = True) -> tf.Tensor:
    """sum(losses * weights) / (number of non-zero weights, broadcast); 0 when none."""
    del scope
    losses = tf.cast(losses, tf.float32)
    weights = tf.cast(weights, tf.float32)
    weighted = losses * weights
    present = tf.reduce_sum(tf.cast(tf.not_equal(weights * tf.ones_like(losses), 0.0),
                                    tf.float32))
    total = tf.reduce_sum(weighted)
    loss = tf.math.divide_no_nan(total, present)
    return add_loss(loss, loss_collection)


def softmax_cross_entropy(logits, onehot_labels, weights=1.0, label_smoothing: float = 0.0,
                          scope: str | None = None, loss_collection: bool = True) -> tf.Tensor:
    """Cross entropy of softmax(logits) against one-hot labels.

    `label_smoothing` > 0 mixes the labels with the uniform distribution:
    `labels * (1 - ls) + ls / num_classes`. `weights` is a scalar or [batch].
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(onehot_labels, tf.float32)
    if label_smoothing > 0:
        num_classes = tf.cast(tf.shape(labels)[-1], tf.float32)
        labels = labels * (1.0 - label_smoothing) + label_smoothing / num_classes
    losses = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return compute_weighted_loss(losses, weights, scope, loss_collection)


def sparse_softmax_cross_entropy(logits, labels, weights=1.0, scope: str | None = None,
                                 loss_collection: bool = True) -> tf.Tensor:
    """Cross entropy of softmax(logits) against integer labels."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int64), logits=tf.cast(logits, tf.float32))
    return compute_weighted_loss(losses, weights, scope, loss_collection)


def sigmoid_cross_entropy(logits, multi_class_labels, weights=1.0, label_smoothing: float = 0.0,
                          scope: str | None = None, loss_collection: bool = True) -> tf.Tensor:
    """Element-wise sigmoid cross entropy; smoothing pulls labels towards 0.5."""
    labels = tf.cast(multi_class_labels, tf.float32)
    if label_smoothing > 0:
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels,
                                                     logits=tf.cast(logits, tf.float32))
    return compute_weighted_loss(losses, weights, scope, loss_collection)


def mean_squared_error(predictions, labels, weights=1.0, scope: str | None = None,
                       loss_collection: bool = True) -> tf.Tensor:
    """Weighted mean of (predictions - labels)**2."""
    diff = tf.cast(predictions, tf.float32) - tf.cast(labels, tf.float32)
    return compute_weighted_loss(tf.square(diff), weights, scope, loss_collection)


sum_of_squares = mean_squared_error


def absolute_difference(predictions, labels, weights=1.0, scope: str | None = None,
                        loss_collection: bool = True) -> tf.Tensor:
    """Weighted mean of |predictions - labels|."""
    diff = tf.cast(predictions, tf.float32) - tf.cast(labels, tf.float32)
    return compute_weighted_loss(tf.abs(diff), weights, scope, loss_collection)


def log_loss(predictions, labels, weights=1.0, epsilon: float = 1e-7, scope: str | None = None,
             loss_collection: bool = True) -> tf.Tensor:
    """-(labels * log(p + eps) + (1 - labels) * log(1 - p + eps))."""
    p = tf.cast(predictions, tf.float32)
    y = tf.cast(labels, tf.float32)
    losses = -y * tf.math.log(p + epsilon) - (1.0 - y) * tf.math.log(1.0 - p + epsilon)
    return compute_weighted_loss(losses, weights, scope, loss_collection)


def hinge_loss(logits, labels, weights=1.0, scope: str | None = None,
               loss_collection: bool = True) -> tf.Tensor:
    """max(0, 1 - (2 * labels - 1) * logits) for labels in {0, 1}."""
    signs = 2.0 * tf.cast(labels, tf.float32) - 1.0
    losses = tf.nn.relu(1.0 - signs * tf.cast(logits, tf.float32))
    return compute_weighted_loss(losses, weights, scope, loss_collection)


def cosine_distance(predictions, labels, axis: int = -1, weights=1.0, scope: str | None = None,
                    loss_collection: bool = True, dim: int | None = None) -> tf.Tensor:
    """1 - sum(predictions * labels, axis), for unit-normalized inputs."""
    if dim is not None:
        axis = dim
    products = tf.cast(predictions, tf.float32) * tf.cast(labels, tf.float32)
    losses = 1.0 - tf.reduce_sum(products, axis=axis, keepdims=True)
    return compute_weighted_loss(losses, weights, scope, loss_collection)
