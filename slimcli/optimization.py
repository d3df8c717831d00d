"""Optimizers and learning-rate policies of slim-train, as registry tables.

The seven optimizers of the original `train_image_classifier` run TensorFlow's
own TF1 update kernels (`ResourceApplyRMSProp`, `ResourceApplyAdam`, ...), so
an update here is the update TF-Slim made, bit for bit, epsilon placement and
slot initial values included (RMSProp's mean square starts at 1.0). Slot
variables carry the TF1 slot names (`<var>/RMSProp`, `<var>/RMSProp_1`,
`<var>/Adam`, ...), so a slimcli checkpoint looks like a TF-Slim one.

Learning-rate policies are functions `(step, config) -> rate` in a second
registry: `fixed`, `exponential` (staircase), `polynomial` (power 1, no
cycle), as the original computes them, plus `cosine`; `warmup_steps` ramps
any of them in linearly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.registry import Registry

__all__ = [
    "OptimizerDef", "SlotOptimizer", "OPTIMIZERS", "LEARNING_RATE_POLICIES", "ScheduleConfig",
    "make_optimizer", "learning_rate_fn", "cosine_over_the_run", "decay_steps_for",
    "epsilon_warning",
]

ApplyFn = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class OptimizerDef:
    """One optimizer of the table.

    Attributes:
      name: the `--optimizer` value.
      tf1_name: the TF1 optimizer name, the suffix of its slot variables.
      slots: initial value of each slot, by the hyper-parameter that sets it
        (`None` = zeros, a float = that constant, a str = that hyper-parameter).
      apply: `apply(var, slots, grad, lr, hyper, powers)` runs the TF1 kernel.
      hyper: hyper-parameter name → `--flag` it is read from.
      powers: non-slot accumulators `{name: hyper-parameter}` (Adam's
        `beta1_power`), started at the hyper-parameter, multiplied by it each step.
      usual_epsilon: where the original's `--opt_epsilon=1.0` throttles every
        update (it is added to a gradient scale far below 1), the value used
        instead; None where 1.0 is a fair value (RMSProp, tuned for it).
    """
    name: str
    tf1_name: str
    slots: tuple
    apply: ApplyFn
    hyper: Mapping[str, str]
    powers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    usual_epsilon: float | None = None


def _f(value: Any) -> tf.Tensor:
    return tf.cast(value, tf.float32)


def _sgd(var, slots, grad, lr, h, powers):
    return tf.raw_ops.ResourceApplyGradientDescent(var=var.handle, alpha=lr, delta=grad)


def _momentum(var, slots, grad, lr, h, powers):
    return tf.raw_ops.ResourceApplyMomentum(var=var.handle, accum=slots[0].handle, lr=lr,
                                            grad=grad, momentum=_f(h["momentum"]))


def _rmsprop(var, slots, grad, lr, h, powers):
    return tf.raw_ops.ResourceApplyRMSProp(
        var=var.handle, ms=slots[0].handle, mom=slots[1].handle, lr=lr, rho=_f(h["decay"]),
        momentum=_f(h["momentum"]), epsilon=_f(h["epsilon"]), grad=grad)


def _adam(var, slots, grad, lr, h, powers):
    return tf.raw_ops.ResourceApplyAdam(
        var=var.handle, m=slots[0].handle, v=slots[1].handle, beta1_power=powers["beta1_power"],
        beta2_power=powers["beta2_power"], lr=lr, beta1=_f(h["beta1"]), beta2=_f(h["beta2"]),
        epsilon=_f(h["epsilon"]), grad=grad)


def _adagrad(var, slots, grad, lr, h, powers):
    return tf.raw_ops.ResourceApplyAdagrad(var=var.handle, accum=slots[0].handle, lr=lr,
                                           grad=grad)


def _adadelta(var, slots, grad, lr, h, powers):
    return tf.raw_ops.ResourceApplyAdadelta(
        var=var.handle, accum=slots[0].handle, accum_update=slots[1].handle, lr=lr,
        rho=_f(h["rho"]), epsilon=_f(h["epsilon"]), grad=grad)


def _ftrl(var, slots, grad, lr, h, powers):
    return tf.raw_ops.ResourceApplyFtrl(
        var=var.handle, accum=slots[0].handle, linear=slots[1].handle, grad=grad, lr=lr,
        l1=_f(h["l1"]), l2=_f(h["l2"]), lr_power=_f(h["learning_rate_power"]))


OPTIMIZERS: Registry[OptimizerDef] = Registry("optimizer", "--optimizer")
for _def in (
    OptimizerDef("sgd", "GradientDescent", (), _sgd, {}),
    OptimizerDef("momentum", "Momentum", (None,), _momentum, {"momentum": "momentum"}),
    OptimizerDef("rmsprop", "RMSProp", (1.0, None), _rmsprop,
                 {"decay": "rmsprop_decay", "momentum": "rmsprop_momentum",
                  "epsilon": "opt_epsilon"}),
    OptimizerDef("adam", "Adam", (None, None), _adam,
                 {"beta1": "adam_beta1", "beta2": "adam_beta2", "epsilon": "opt_epsilon"},
                 powers={"beta1_power": "beta1", "beta2_power": "beta2"}, usual_epsilon=1e-8),
    OptimizerDef("adagrad", "Adagrad", ("initial_accumulator_value",), _adagrad,
                 {"initial_accumulator_value": "adagrad_initial_accumulator_value"}),
    OptimizerDef("adadelta", "Adadelta", (None, None), _adadelta,
                 {"rho": "adadelta_rho", "epsilon": "opt_epsilon"}),
    OptimizerDef("ftrl", "Ftrl", ("initial_accumulator_value", None), _ftrl,
                 {"learning_rate_power": "ftrl_learning_rate_power",
                  "initial_accumulator_value": "ftrl_initial_accumulator_value",
                  "l1": "ftrl_l1", "l2": "ftrl_l2"}),
):
    OPTIMIZERS.register(_def.name, _def)


class SlotOptimizer(tf.Module):
    """A TF1 optimizer: slot variables by TF1 name and the TF1 update kernel.

    `apply_gradients` runs in a cross-replica context (the train step calls it
    from `merge_call` after the gradients are all-reduced): each variable is
    updated on each of its devices by `strategy.extended.update`.
    """

    def __init__(self, definition: OptimizerDef, hyper: Mapping[str, float]):
        super().__init__(name=definition.tf1_name)
        self.definition = definition
        self.hyper = dict(hyper)
        self.slots: dict[str, list[tf.Variable]] = {}
        self.powers: dict[str, tf.Variable] = {}

    def _slot_value(self, spec: Any) -> float:
        if spec is None:
            return 0.0
        return float(self.hyper[spec]) if isinstance(spec, str) else float(spec)

    def build(self, named_vars: Mapping[str, tf.Variable]) -> None:
        """Creates the slots of `named_vars` (call under the strategy's scope)."""
        strategy = tf.distribute.get_strategy()
        suffix = self.definition.tf1_name
        for name, var in named_vars.items():
            if name in self.slots:
                continue
            made = []
            for i, spec in enumerate(self.definition.slots):
                slot_name = f"{name}/{suffix}" + (f"_{i}" if i else "")
                value = self._slot_value(spec)
                with strategy.extended.colocate_vars_with(var):
                    made.append(tf.Variable(tf.fill(var.shape, tf.constant(value, var.dtype)),
                                            name=slot_name, trainable=False))
            self.slots[name] = made
        for pname, hname in self.definition.powers.items():
            if pname not in self.powers:
                self.powers[pname] = tf.Variable(float(self.hyper[hname]), name=pname,
                                                 trainable=False)

    def variables_by_name(self) -> dict[str, tf.Variable]:
        """`{checkpoint name: variable}` of the slots and accumulators."""
        suffix = self.definition.tf1_name
        result = {}
        for name, slots in self.slots.items():
            for i, slot in enumerate(slots):
                result[f"{name}/{suffix}" + (f"_{i}" if i else "")] = slot
        result.update(self.powers)
        return result

    def apply_gradients(self, grads_and_names: Sequence[tuple[Any, str, tf.Variable]],
                        learning_rate: Any, apply_if: Any = None) -> None:
        """Applies already-reduced gradients (cross-replica context).

        Args:
          grads_and_names: `(gradient, store name, variable)` triples; the
            gradients may be per-replica values.
          learning_rate: a scalar (or per-replica scalars).
          apply_if: an optional boolean (per-replica) scalar; False skips the
            update, slots included (a loss-scale overflow).
        """
        strategy = tf.distribute.get_strategy()
        npowers = len(self.powers)
        names = list(self.powers)

        def update(var, grad, lr, ok, *slots_and_powers):
            nslots = len(slots_and_powers) - npowers
            slots = slots_and_powers[:nslots]
            powers = {k: tf.cast(p, var.dtype) for k, p in zip(names, slots_and_powers[nslots:])}
            grad = tf.cast(grad, var.dtype)
            lr = tf.cast(lr, var.dtype)

            def run():
                self.definition.apply(var, slots, grad, lr, self.hyper, powers)
                return tf.constant(True)
            if ok is None:
                return run()
            return tf.cond(ok, run, lambda: tf.constant(False))

        for grad, name, var in grads_and_names:
            args = (grad, learning_rate, apply_if, *self.slots[name], *self.powers.values())
            strategy.extended.update(var, update, args=args, group=False)
        for pname, hname in self.definition.powers.items():
            factor = float(self.hyper[hname])

            def scale(p, ok, f=factor):
                new = p * f if ok is None else tf.where(ok, p * f, p)
                return p.assign(new)
            strategy.extended.update(self.powers[pname], scale, args=(apply_if,), group=False)


def epsilon_warning(name: str, epsilon: float) -> str | None:
    """One line when `--opt_epsilon` is the original's 1.0 and throttles `name`'s updates
    (adam: the step is `lr m / (sqrt(v) + epsilon)`, and sqrt(v) is far below 1); else None.

    Raises:
      SlimError: unknown optimizer.
    """
    definition = OPTIMIZERS.get(name)
    if definition.usual_epsilon is None or epsilon != 1.0:
        return None
    usual = _short(definition.usual_epsilon)
    return (f"--optimizer={name} with --opt_epsilon=1.0 (the original's default, tuned for "
            f"rmsprop) throttles every update; pass --opt_epsilon={usual}, the usual value, "
            f"unless 1.0 is meant.")


def _short(value: float) -> str:
    """1e-08 → 1e-8."""
    return f"{value:g}".replace("e-0", "e-").replace("e+0", "e+")


def make_optimizer(name: str, flags: Mapping[str, Any]) -> SlotOptimizer:
    """The optimizer `name` with its hyper-parameters read from `flags` (flag name → value).

    Raises:
      SlimError: unknown name (lists the known ones).
    """
    definition = OPTIMIZERS.get(name)
    hyper = {key: flags[flag] for key, flag in definition.hyper.items()}
    return SlotOptimizer(definition, hyper)


# -- learning-rate policies ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """What a learning-rate policy needs; steps already computed as the original does."""
    learning_rate: float
    end_learning_rate: float
    decay_factor: float
    decay_steps: int
    total_steps: int | None
    warmup_steps: int = 0


def _fixed(step: tf.Tensor, c: ScheduleConfig) -> tf.Tensor:
    del step
    return tf.constant(c.learning_rate, tf.float32)


def _exponential(step: tf.Tensor, c: ScheduleConfig) -> tf.Tensor:
    exponent = tf.floor(step / float(max(c.decay_steps, 1)))
    return c.learning_rate * tf.pow(tf.constant(c.decay_factor, tf.float32), exponent)


def _polynomial(step: tf.Tensor, c: ScheduleConfig) -> tf.Tensor:
    steps = float(max(c.decay_steps, 1))
    frac = 1.0 - tf.minimum(step, steps) / steps
    return (c.learning_rate - c.end_learning_rate) * frac + c.end_learning_rate


def _cosine(step: tf.Tensor, c: ScheduleConfig) -> tf.Tensor:
    if not c.total_steps:
        raise SlimError("--learning_rate_decay_type=cosine decays over the whole run: set "
                        "--max_number_of_steps or --max_train_seconds (got neither).")
    steps = float(max(c.total_steps - c.warmup_steps, 1))
    frac = tf.minimum(step, steps) / steps
    cos = 0.5 * (1.0 + tf.cos(math.pi * frac))
    return c.end_learning_rate + (c.learning_rate - c.end_learning_rate) * cos


LEARNING_RATE_POLICIES: Registry[Callable] = Registry("learning-rate policy",
                                                      "--learning_rate_decay_type")
for _name, _fn in (("fixed", _fixed), ("exponential", _exponential),
                   ("polynomial", _polynomial), ("cosine", _cosine)):
    LEARNING_RATE_POLICIES.register(_name, _fn)


def decay_steps_for(num_samples: int, num_epochs_per_decay: float, batch_size: int,
                    replicas_to_aggregate: int = 1, sync_replicas: bool = False) -> int:
    """`int(num_samples * num_epochs_per_decay / batch_size)`, as the original computes it.

    With `sync_replicas` the original divides by `replicas_to_aggregate`.
    """
    steps = int(num_samples * num_epochs_per_decay / batch_size)
    if sync_replicas:
        steps = int(steps / replicas_to_aggregate)
    return steps


def cosine_over_the_run(config: ScheduleConfig,
                        run_fraction: tf.Variable) -> Callable[[tf.Tensor], tf.Tensor]:
    """`step -> learning rate`: cosine from `learning_rate` to `end_learning_rate` over the
    fraction of the run done (`run_fraction`, in [0, 1], set by the training loop from the
    steps or the seconds of a budget), times a linear ramp over `warmup_steps`."""
    warmup = config.warmup_steps

    def schedule(step: Any) -> tf.Tensor:
        done = tf.clip_by_value(tf.cast(run_fraction, tf.float32), 0.0, 1.0)
        cos = 0.5 * (1.0 + tf.cos(math.pi * done))
        rate = config.end_learning_rate + (config.learning_rate - config.end_learning_rate) * cos
        if warmup <= 0:
            return rate
        return rate * tf.minimum(tf.cast(step, tf.float32) / float(warmup), 1.0)
    return schedule


def learning_rate_fn(policy: str, config: ScheduleConfig,
                     run_fraction: tf.Variable | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """`step -> learning rate` for the policy, with linear warm-up over `warmup_steps`.

    With `run_fraction` (a time budget), cosine decays over the run's fraction
    instead of its steps (`cosine_over_the_run`); the other policies count
    epochs and are unchanged.

    Raises:
      SlimError: unknown policy, or cosine without a step count or a budget.
    """
    decay = LEARNING_RATE_POLICIES.get(policy)
    if run_fraction is not None and policy == "cosine":
        return cosine_over_the_run(config, run_fraction)
    decay(tf.constant(0.0), config)  # validates the config early (cosine needs total_steps)
    warmup = config.warmup_steps

    def schedule(step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        if warmup <= 0:
            return tf.cast(decay(step, config), tf.float32)
        ramp = config.learning_rate * step / float(warmup)
        after = tf.cast(decay(tf.maximum(step - warmup, 0.0), config), tf.float32)
        return tf.where(step < warmup, ramp, after)
    return schedule
