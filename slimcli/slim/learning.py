"""Training: TF-Slim's `create_train_op` and `train`, in TensorFlow 2 form.

`create_train_op(loss_fn, optimizer, model, ...)` builds one training step:
the loss is computed on each replica inside `slim.losses.collect()`, the
gradients are all-reduced, multiplied (`gradient_multipliers`), clipped
(`clip_gradient_norm`, per gradient as TF-Slim did) and applied by the
optimizer, and the global step advances. Batch-norm moving statistics update
inside the forward pass (TF-Slim's default update ops); `update_ops=[]` undoes
those updates and a list of callables runs exactly those instead. The
optimizer may be a Keras, a `tf.compat.v1.train` or a `slimcli.optimization`
one (see `slim.optimizers`). The step runs under any `tf.distribute` strategy.

`train(step, logdir, ...)` is the loop around it: resume from the newest
checkpoint of `logdir` (else `init_fn`), log, write summaries, save atomic
checkpoints, stop on a NaN/Inf loss with the step named. The loop pieces
(progress, saver, summaries) live in `slimcli.slim.training_loop`.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import losses as slim_losses
from slimcli.slim import variables as slim_variables
from slimcli.slim.optimizers import as_train_optimizer
from slimcli.slim.training_loop import TrainingDiverged, host_values, train

__all__ = [
    "clip_gradient_norms", "multiply_gradients", "multiply_gradients_matching_regex",
    "freeze_gradients_matching_regex", "add_gradients_summaries", "create_train_op", "TrainStep",
    "DynamicLossScale", "train", "TrainingDiverged", "host_values",
]

GradsAndVars = list


def _name(var: Any, store: Any = None) -> str:
    if store is not None:
        return slim_variables._store(store).name_of(var)
    return slim_variables.strip_name(var.name)


def clip_gradient_norms(gradients_to_variables: Sequence[tuple], max_norm: float) -> GradsAndVars:
    """Clips each gradient to L2 norm `max_norm` on its own (not a global norm).

    Args:
      gradients_to_variables: `(gradient, variable)` pairs; None gradients pass.
      max_norm: the largest norm a gradient may keep.

    Returns:
      The clipped pairs.
    """
    return [(None if g is None else tf.clip_by_norm(g, max_norm), v)
            for g, v in gradients_to_variables]


def multiply_gradients(grads_and_vars: Sequence[tuple], gradient_multipliers: Mapping,
                       store: Any = None) -> GradsAndVars:
    """Scales the gradients of chosen variables.

    Args:
      grads_and_vars: `(gradient, variable)` pairs.
      gradient_multipliers: `{variable name or variable.ref(): factor}` (TF2
        variables are not hashable: key them by name or by `.ref()`).
      store: the model (or store) naming the variables; their own names if None.

    Returns:
      The pairs with multiplied gradients.

    Raises:
      SlimError: a key matches no variable of `grads_and_vars`.
    """
    by_name = {_key_name(k, store): float(f) for k, f in gradient_multipliers.items()}
    names = [_name(v, store) for _, v in grads_and_vars]
    unknown = sorted(set(by_name) - set(names))
    if unknown:
        raise SlimError(f"gradient_multipliers names variables that are not trained: {unknown}; "
                        f"use names of trainable variables such as {names[:3]}.")
    return [(g if g is None or n not in by_name else g * by_name[n], v)
            for (g, v), n in zip(grads_and_vars, names)]


def _key_name(key: Any, store: Any) -> str:
    if isinstance(key, str):
        return key
    return _name(key.deref() if hasattr(key, "deref") else key, store)


def multiply_gradients_matching_regex(grads_and_vars: Sequence[tuple], regex_list: Any,
                                      multiplier: float, store: Any = None) -> GradsAndVars:
    """Scales by `multiplier` the gradients of variables whose name matches any regex."""
    patterns = [regex_list] if isinstance(regex_list, str) else list(regex_list)
    names = [_name(v, store) for _, v in grads_and_vars]
    chosen = {n: multiplier for n in names if any(re.search(p, n) for p in patterns)}
    if not chosen:
        return list(grads_and_vars)
    return multiply_gradients(grads_and_vars, chosen, store)


def freeze_gradients_matching_regex(grads_and_vars: Sequence[tuple], regex_list: Any,
                                    store: Any = None) -> GradsAndVars:
    """Drops the pairs of variables whose name matches any regex (they stay unchanged)."""
    patterns = [regex_list] if isinstance(regex_list, str) else list(regex_list)
    return [(g, v) for g, v in grads_and_vars
            if not any(re.search(p, _name(v, store)) for p in patterns)]


def add_gradients_summaries(grads_and_vars: Sequence[tuple], store: Any = None,
                            step: Any = None) -> dict[str, tf.Tensor]:
    """Gradient norms by variable name (`gradient_norm/<name>`), written as summaries if a
    default summary writer is set."""
    norms = {}
    for g, v in grads_and_vars:
        if g is None:
            continue
        name = f"gradient_norm/{_name(v, store)}"
        norms[name] = tf.norm(g)
        if step is not None:
            tf.summary.write(name, norms[name], step=step)
    return norms


class DynamicLossScale(tf.Module):
    """Loss scaling for float16: halve on overflow (the step is skipped), double after
    `growth_steps` good steps."""

    def __init__(self, initial_scale: float = 2.0 ** 15, growth_steps: int = 2000):
        super().__init__(name="loss_scale")
        self.scale = tf.Variable(initial_scale, trainable=False, name="loss_scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")
        self.growth_steps = growth_steps

    def update(self, finite: Any) -> None:
        """Cross-replica: adjusts the scale by `finite` (per-replica bool)."""
        strategy = tf.distribute.get_strategy()
        growth = self.growth_steps

        def set_steps(var, ok):
            grown = tf.logical_and(ok, var + 1 >= growth)
            return var.assign(tf.where(tf.logical_and(ok, tf.logical_not(grown)), var + 1,
                                       tf.zeros_like(var)))

        def set_scale(var, ok, good):
            grow = tf.logical_and(ok, good + 1 >= growth)
            new = tf.where(ok, tf.where(grow, var * 2.0, var), tf.maximum(var / 2.0, 1.0))
            return var.assign(new)
        strategy.extended.update(self.scale, set_scale, args=(finite, self.good_steps),
                                 group=False)
        strategy.extended.update(self.good_steps, set_steps, args=(finite,), group=False)



def _resolve_trainable(model: Any, variables_to_train: Any) -> dict[str, tf.Variable]:
    store = slim_variables._store(model)
    if variables_to_train is None:
        return store.as_dict(slim_variables.TRAINABLE_VARIABLES)
    if isinstance(variables_to_train, Mapping):
        return dict(variables_to_train)
    named = {}
    for item in variables_to_train:
        name = item if isinstance(item, str) else store.name_of(item)
        named[name] = store.get(name)
    return named


def _resolve_update_ops(update_ops: Any) -> tuple[bool, list[Callable]]:
    """(keep the batch-norm updates of the forward pass?, extra callables run each step).

    TF-Slim's meaning: None runs the batch-norm updates; a list runs exactly
    those updates (here zero-argument callables) and no others; [] runs none.
    True/False are slimcli's older spelling of None/[].
    """
    if update_ops is None or update_ops is True:
        return True, []
    if update_ops is False:
        return False, []
    if callable(update_ops):
        update_ops = [update_ops]
    updates = list(update_ops)
    for op in updates:
        if not callable(op):
            raise SlimError(f"update_ops: {op!r} is not callable; in TF2 an update op is a "
                            f"zero-argument function, e.g. lambda: counter.assign_add(1).")
    return False, updates


class TrainStep:
    """One training step under a distribution strategy; call it with an iterator.

    `step(iterator)` takes the next batch (per replica when the iterator is a
    distributed one), runs `loss_fn(batch)` on each replica, updates the
    variables, advances `global_step` and returns the replica-averaged
    metrics: `total_loss`, `learning_rate`, and whatever `loss_fn` adds.
    """

    def __init__(self, loss_fn: Callable, optimizer: Any, model: Any, *, learning_rate: Any = None,
                 global_step: tf.Variable | None = None, strategy: Any = None,
                 clip_gradient_norm: float = 0.0, gradient_multipliers: Mapping | None = None,
                 variables_to_train: Any = None, update_ops: Any = None,
                 summarize_gradients: bool = False, loss_scale: DynamicLossScale | None = None,
                 jit_compile: bool = False, post_update: Callable | None = None,
                 autograph: bool = False):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.train_optimizer = as_train_optimizer(optimizer, learning_rate)
        self.model = model
        self.store = slim_variables._store(model)
        self.learning_rate = self.train_optimizer.learning_rate
        self.clip_gradient_norm = float(clip_gradient_norm or 0.0)
        self.gradient_multipliers = dict(gradient_multipliers or {})
        self.keep_batch_norm_updates, self.extra_updates = _resolve_update_ops(update_ops)
        self.summarize_gradients = summarize_gradients
        if loss_scale is not None and self.train_optimizer.in_replica:
            raise SlimError("create_train_op: loss_scale works with slimcli.optimization "
                            "optimizers; wrap a Keras one in keras.mixed_precision."
                            "LossScaleOptimizer instead.")
        self.loss_scale = loss_scale
        self.post_update = post_update
        self.trainable = _resolve_trainable(model, variables_to_train)
        if not self.trainable:
            raise SlimError("nothing to train: variables_to_train selects no variable; check "
                            "--trainable_scopes against the model's variable names.")
        trainable_ids = {id(v) for v in self.store.as_dict().values() if v.trainable}
        self.moving = [v for v in self.store.as_dict().values() if id(v) not in trainable_ids]
        with self.strategy.scope():
            if global_step is None:
                global_step = slim_variables.get_or_create_global_step(self.store)
            self.train_optimizer.build(self.trainable)
        self.global_step = global_step
        # No autograph by default: the step, the nets and the slim layers are graph code
        # already (TF-Slim's style: tf.cond, not Python `if` on tensors), and converting every
        # function of a big net's call tree costs seconds of tracing, most of a small net's
        # start-up.
        self._grads = tf.function(self._compute_gradients, jit_compile=True,
                                  autograph=autograph) if jit_compile else self._compute_gradients
        self._step = tf.function(self._distributed_step, autograph=autograph)

    def __call__(self, iterator: Any) -> dict[str, tf.Tensor]:
        return self._step(iterator)

    # -- replica side -------------------------------------------------------------------
    def _compute_gradients(self, batch: Any):
        names = list(self.trainable)
        with tf.GradientTape() as tape:
            with slim_losses.collect():
                out = self.loss_fn(batch)
                if out is None:
                    out = slim_losses.get_total_loss()
            loss, metrics = (out if isinstance(out, tuple) else (out, {}))
            loss = tf.cast(loss, tf.float32)
            scaled = loss / float(self.strategy.num_replicas_in_sync)
            if self.loss_scale is not None:
                scaled = scaled * self.loss_scale.scale
        grads = tape.gradient(scaled, [self.trainable[n] for n in names])
        return loss, dict(metrics), grads

    def _transform(self, pairs: list) -> list:
        if self.gradient_multipliers:
            pairs = multiply_gradients(pairs, self.gradient_multipliers, self.store)
        if self.clip_gradient_norm > 0:
            pairs = clip_gradient_norms(pairs, self.clip_gradient_norm)
        return pairs

    def _replica_step(self, batch: Any) -> dict[str, tf.Tensor]:
        snapshot = [] if self.keep_batch_norm_updates else [tf.identity(v) for v in self.moving]
        loss, metrics, grads = self._grads(batch)
        for var, value in zip(self.moving, snapshot):
            var.assign(value)
        ctx = tf.distribute.get_replica_context()
        kept = [(g, n) for g, n in zip(grads, self.trainable) if g is not None]
        if not kept:
            raise SlimError("the loss does not depend on any variable to train.")
        reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                 [tf.convert_to_tensor(g) for g, _ in kept])
        finite = None
        if self.loss_scale is not None:
            reduced = [g / self.loss_scale.scale for g in reduced]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in reduced])
            metrics["loss_scale"] = self.loss_scale.scale
        pairs = self._transform([(g, self.trainable[n]) for g, (_, n) in zip(reduced, kept)])
        if self.summarize_gradients:
            metrics.update(add_gradients_summaries(pairs, self.store))
        lr = self.learning_rate(self.global_step)
        triples = [(g, n, v) for (g, v), (_, n) in zip(pairs, kept)]
        if self.train_optimizer.in_replica:
            self.train_optimizer.apply_gradients(triples, lr)
            triples = []
        ctx.merge_call(self._apply, args=(triples, lr, finite))
        metrics.update(total_loss=loss, learning_rate=tf.cast(lr, tf.float32))
        return metrics

    # -- cross-replica side -------------------------------------------------------------
    def _apply(self, strategy: Any, triples: list, lr: Any, finite: Any) -> None:
        for update in self.extra_updates:
            update()
        if triples:
            self.train_optimizer.apply_gradients(triples, lr, finite)
        if self.loss_scale is not None:
            self.loss_scale.update(finite)
        strategy.extended.update(self.global_step, lambda v: v.assign_add(1), group=False)
        if self.post_update is not None:
            self.post_update(strategy)

    def _distributed_step(self, iterator: Any) -> dict[str, tf.Tensor]:
        batch = next(iterator)
        out = self.strategy.run(self._replica_step, args=(batch,))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in out.items()}


def create_train_op(loss_fn: Callable, optimizer: Any, model: Any, *, learning_rate: Any = None,
                    global_step: tf.Variable | None = None, update_ops: Any = None,
                    variables_to_train: Any = None, clip_gradient_norm: float = 0.0,
                    summarize_gradients: bool = False, gradient_multipliers: Mapping | None = None,
                    strategy: Any = None, loss_scale: DynamicLossScale | None = None,
                    jit_compile: bool = False, post_update: Callable | None = None,
                    autograph: bool = False) -> TrainStep:
    """Builds a training step (TF-Slim's `create_train_op`, as a callable).

    Args:
      loss_fn: `loss_fn(batch)` → total loss, `(loss, metrics dict)`, or None
        (then the total of the slim losses it added, regularization included).
        It runs per replica inside `slim.losses.collect()`.
      optimizer: any Keras optimizer (`tf.keras.optimizers.SGD(0.1)`), a
        `tf.compat.v1.train` optimizer (run as the same TF1 kernel, see
        `slim.optimizers`), or a `slimcli.optimization` one.
      model: the built `slim.Model` whose variables are trained.
      learning_rate: a float or `fn(global_step) -> rate`; needed for
        slimcli's optimizers, optional for TF1 ones, not taken for Keras ones.
      global_step: an int64 variable; default `get_or_create_global_step(model)`.
      update_ops: as TF-Slim: None keeps the batch-norm moving-average updates
        of the forward pass; a list of zero-argument callables runs exactly
        those each step (and undoes the batch-norm updates); [] runs none.
      variables_to_train: variables or names (default: all trainable ones).
      clip_gradient_norm: > 0 clips each gradient to this norm.
      summarize_gradients: adds `gradient_norm/<name>` to the metrics.
      gradient_multipliers: `{variable or name: factor}`.
      strategy: the distribution strategy (default: the current one).
      loss_scale: a `DynamicLossScale` for float16 training.
      jit_compile: compiles the forward and backward pass with XLA.
      post_update: `fn(strategy)` run in cross-replica context after each
        update (e.g. an exponential moving average).
      autograph: convert Python control flow on tensors in `loss_fn` (an `if`
        on a tensor) to graph ops; off by default, since TF-Slim code uses
        `tf.cond` and converting a big net's every function slows tracing.

    Returns:
      A `TrainStep`: `metrics = step(iterator)`.
    """
    return TrainStep(loss_fn, optimizer, model, learning_rate=learning_rate,
                     global_step=global_step, strategy=strategy,
                     clip_gradient_norm=clip_gradient_norm,
                     gradient_multipliers=gradient_multipliers,
                     variables_to_train=variables_to_train, update_ops=update_ops,
                     summarize_gradients=summarize_gradients, loss_scale=loss_scale,
                     jit_compile=jit_compile, post_update=post_update, autograph=autograph)
