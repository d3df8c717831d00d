"""The optimizers `create_train_op` takes: slimcli's, Keras's, and TF1's by their settings.

A train step drives an optimizer through one small interface (`build`,
`apply_gradients(triples, lr, apply_if)` in cross-replica context, and a
learning rate per step). Three kinds fit it:

- `slimcli.optimization` optimizers (TF1's update kernels and slot names);
- any Keras optimizer (`tf.keras.optimizers.SGD(0.1)`): its own learning rate
  (a float or a schedule) and its own update rules, applied in replica context
  as Keras expects (create it under the strategy's scope when distributing);
- a `tf.compat.v1.train` optimizer: its class and hyper-parameters are read and
  the same TF1 kernel runs through `slimcli.optimization`, so the update is
  TF-Slim's bit for bit. A TF1 setting with no equivalent is a one-line error.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import tensorflow as tf

from slimcli import optimization
from slimcli.errors import SlimError

__all__ = ["TrainOptimizer", "as_train_optimizer", "TF1_OPTIMIZERS"]


@dataclasses.dataclass(frozen=True)
class _Tf1Map:
    """How one `tf.compat.v1.train` optimizer maps onto an `optimization.OPTIMIZERS` entry."""
    name: str
    lr_attr: str
    hyper: Mapping[str, str]            # our hyper-parameter -> TF1 attribute
    unsupported: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # attr -> default


TF1_OPTIMIZERS: dict[str, _Tf1Map] = {
    "GradientDescentOptimizer": _Tf1Map("sgd", "_learning_rate", {}),
    "MomentumOptimizer": _Tf1Map("momentum", "_learning_rate", {"momentum": "_momentum"},
                                 {"_use_nesterov": False}),
    "RMSPropOptimizer": _Tf1Map("rmsprop", "_learning_rate",
                                {"decay": "_decay", "momentum": "_momentum",
                                 "epsilon": "_epsilon"}, {"_centered": False}),
    "AdamOptimizer": _Tf1Map("adam", "_lr", {"beta1": "_beta1", "beta2": "_beta2",
                                             "epsilon": "_epsilon"}),
    "AdagradOptimizer": _Tf1Map("adagrad", "_learning_rate",
                                {"initial_accumulator_value": "_initial_accumulator_value"}),
    "AdadeltaOptimizer": _Tf1Map("adadelta", "_lr", {"rho": "_rho", "epsilon": "_epsilon"}),
    "FtrlOptimizer": _Tf1Map("ftrl", "_learning_rate",
                             {"learning_rate_power": "_learning_rate_power",
                              "initial_accumulator_value": "_initial_accumulator_value",
                              "l1": "_l1_regularization_strength",
                              "l2": "_l2_regularization_strength"},
                             {"_l2_shrinkage_regularization_strength": 0.0, "_beta": 0.0}),
}


class TrainOptimizer:
    """The interface a train step uses; `in_replica` says where `apply_gradients` runs."""
    in_replica = False

    def __init__(self, optimizer: Any, schedule: Callable[[Any], tf.Tensor]):
        self.optimizer = optimizer
        self.learning_rate = schedule

    def build(self, named_vars: Mapping[str, tf.Variable]) -> None:
        self.optimizer.build(named_vars)

    def apply_gradients(self, triples: list, lr: Any, apply_if: Any = None) -> None:
        self.optimizer.apply_gradients(triples, lr, apply_if)


class _KerasOptimizer(TrainOptimizer):
    """A Keras optimizer: built on the variables, applied in replica context."""
    in_replica = True

    def build(self, named_vars: Mapping[str, tf.Variable]) -> None:
        self.optimizer.build(list(named_vars.values()))

    def apply_gradients(self, triples: list, lr: Any, apply_if: Any = None) -> None:
        # Keras sums the gradients of the replicas itself: hand it each replica's share.
        replicas = float(tf.distribute.get_strategy().num_replicas_in_sync)
        self.optimizer.apply_gradients([(g / replicas, v) for g, _, v in triples])


def _as_schedule(learning_rate: Any) -> Callable[[Any], tf.Tensor]:
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
        return lambda step: tf.cast(learning_rate, tf.float32)
    value = float(learning_rate)
    return lambda step: tf.constant(value, tf.float32)


def _keras_rate(optimizer: Any) -> Callable[[Any], tf.Tensor]:
    return lambda step: tf.cast(optimizer.learning_rate, tf.float32)


def _from_tf1(optimizer: Any, learning_rate: Any) -> TrainOptimizer:
    kind = type(optimizer).__name__
    mapping = TF1_OPTIMIZERS.get(kind)
    if mapping is None:
        raise SlimError(f"create_train_op: the TF1 optimizer {kind} has no TF2 equivalent here; "
                        f"use one of {sorted(TF1_OPTIMIZERS)} or a tf.keras.optimizers one.")
    for attr, default in mapping.unsupported.items():
        if getattr(optimizer, attr, default) != default:
            raise SlimError(f"create_train_op: {kind} with {attr.lstrip('_')}="
                            f"{getattr(optimizer, attr)!r} is not supported; use the matching "
                            f"tf.keras.optimizers optimizer instead.")
    hyper = {key: float(getattr(optimizer, attr)) for key, attr in mapping.hyper.items()}
    slot_optimizer = optimization.SlotOptimizer(optimization.OPTIMIZERS.get(mapping.name), hyper)
    rate = learning_rate if learning_rate is not None else getattr(optimizer, mapping.lr_attr)
    return TrainOptimizer(slot_optimizer, _as_schedule(rate))


def _is_keras(optimizer: Any) -> bool:
    bases = [f"{c.__module__}.{c.__name__}" for c in type(optimizer).__mro__]
    return any(b.startswith(("keras.", "tf_keras.")) and b.endswith("Optimizer") for b in bases)


def as_train_optimizer(optimizer: Any, learning_rate: Any = None) -> TrainOptimizer:
    """Wraps any supported optimizer for a train step.

    Args:
      optimizer: a `slimcli.optimization` optimizer (or an object with its
        `build`/`apply_gradients`), a Keras optimizer, or a
        `tf.compat.v1.train` optimizer.
      learning_rate: a float or `fn(global_step)`; required for slimcli's
        optimizers, optional for TF1 ones (default: the optimizer's), and not
        allowed for Keras ones (set it on the Keras optimizer).

    Raises:
      SlimError: the optimizer is of no supported kind, or the learning rate
        is missing or given twice.
    """
    if isinstance(optimizer, TrainOptimizer):
        return optimizer
    if isinstance(optimizer, tf.compat.v1.train.Optimizer):
        return _from_tf1(optimizer, learning_rate)
    if _is_keras(optimizer):
        if learning_rate is not None:
            raise SlimError(f"create_train_op: learning_rate={learning_rate!r} given with a Keras "
                            f"optimizer; set it on the optimizer instead "
                            f"(e.g. tf.keras.optimizers.SGD(learning_rate=...)).")
        return _KerasOptimizer(optimizer, _keras_rate(optimizer))
    if hasattr(optimizer, "build") and hasattr(optimizer, "apply_gradients"):
        if learning_rate is None:
            raise SlimError(f"create_train_op: a {type(optimizer).__name__} needs "
                            f"learning_rate= (a float or fn(global_step)).")
        return TrainOptimizer(optimizer, _as_schedule(learning_rate))
    raise SlimError(f"create_train_op: {type(optimizer).__name__} is not an optimizer; pass a "
                    f"tf.keras.optimizers optimizer, a tf.compat.v1.train one, or one from "
                    f"slimcli.optimization.make_optimizer.")
