"""slim-train as a library: `train(TrainConfig(...))` trains or fine-tunes a net.

    config = TrainConfig(model_name="lenet", dataset_name="mnist", dataset_dir="/data/mnist",
                         train_dir="/tmp/lenet", max_number_of_steps=1000)
    final_step = train(config)

The pieces follow the original `train_image_classifier`: the loss is softmax
cross entropy (plus 0.4 x the auxiliary logits' where the net has them, plus
the weight penalties), the optimizer and learning-rate policy come from the
tables of `slimcli.optimization`, fine-tuning restores `--checkpoint_path`
minus `--checkpoint_exclude_scopes` and trains `--trainable_scopes`, and a
checkpoint already in `train_dir` wins over `--checkpoint_path` (resume).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from typing import Any, Callable

import tensorflow as tf

from slimcli import fileio, optimization, quantization, slim
from slimcli import precision as precision_lib
from slimcli import config as config_lib
from slimcli.config import option
from slimcli.distribute import StrategyInfo, make_strategy
from slimcli.errors import SlimError
from slimcli.nets import nets_factory
from slimcli.precision import PRECISION_HELP
from slimcli.slim import learning, summaries
from slimcli.slim.train_dir import TrainDirLock
from slimcli.slim.moving_averages import ExponentialMovingAverage
from slimcli.train_data import TrainData, make_train_data

__all__ = ["TrainConfig", "TrainingRun", "train", "setup_training", "make_init_fn",
           "select_trainable", "suggest_exclude_scopes"]

log = logging.getLogger("slimcli.train")

AUX_LOGITS_WEIGHT = 0.4


@dataclasses.dataclass
class TrainConfig:
    """Every setting of slim-train: the original train_image_classifier flags, then
    slimcli's. Field names are the flag names; each field's help is its flag's
    `--help` text. `progress_bar` is a library-only setting (no flag)."""
    master: str = option("", "Ignored: TF2 has no session master (use TF_CONFIG).")
    train_dir: str = option("/tmp/tfmodel/", "Checkpoints and event logs are written here.")
    num_clones: int = option(1, "Model replicas (one per GPU) under MirroredStrategy.")
    clone_on_cpu: bool = option(False, "Place the clones on logical CPU devices.")
    worker_replicas: int = option(1, "Number of worker replicas (informational; from the "
                                     "cluster).")
    num_ps_tasks: int = option(0, "Parameter servers; only 0 is supported (all-reduce training).")
    num_readers: int = option(4, "Parallel TFRecord readers.")
    num_preprocessing_threads: int = option(4, "Parallel preprocessing calls.")
    log_every_n_steps: int = option(10, "Log/progress frequency in steps.")
    save_summaries_secs: int = option(600, "Summary period in seconds.")
    save_interval_secs: int = option(600, "Checkpoint period in seconds.")
    task: int = option(0, "Task id of this worker (0 = chief), with --worker_hosts.")
    weight_decay: float = option(0.00004, "L2 weight decay through the net's arg scope.")
    optimizer: str = option("rmsprop", "One of adadelta, adagrad, adam, ftrl, momentum, sgd, "
                                       "rmsprop.")
    adadelta_rho: float = option(0.95, "Adadelta decay.")
    adagrad_initial_accumulator_value: float = option(0.1, "Adagrad accumulator start.")
    adam_beta1: float = option(0.9, "Adam first-moment decay.")
    adam_beta2: float = option(0.999, "Adam second-moment decay.")
    opt_epsilon: float = option(1.0, "Epsilon of adadelta, adam and rmsprop.")
    ftrl_learning_rate_power: float = option(-0.5, "FTRL learning-rate power.")
    ftrl_initial_accumulator_value: float = option(0.1, "FTRL accumulator start.")
    ftrl_l1: float = option(0.0, "FTRL L1 strength.")
    ftrl_l2: float = option(0.0, "FTRL L2 strength.")
    momentum: float = option(0.9, "Momentum of the momentum optimizer.")
    rmsprop_momentum: float = option(0.9, "RMSProp momentum.")
    rmsprop_decay: float = option(0.9, "RMSProp decay.")
    quantize_delay: int = option(-1, "Quantization-aware training: from this global step on, "
                                     "simulate 8-bit quantization (the ranges learn from step "
                                     "0); -1 = off.")
    learning_rate_decay_type: str = option("exponential", "fixed, exponential (staircase), "
                                                          "polynomial or cosine.")
    learning_rate: float = option(0.01, "Initial learning rate.")
    end_learning_rate: float = option(0.0001, "Final rate of polynomial and cosine decay.")
    label_smoothing: float = option(0.0, "Label smoothing of the cross entropy.")
    learning_rate_decay_factor: float = option(0.94, "Exponential decay factor.")
    num_epochs_per_decay: float = option(2.0, "Epochs between decays.")
    sync_replicas: bool = option(False, "Divide decay steps by --replicas_to_aggregate (training "
                                        "is always synchronous).")
    replicas_to_aggregate: int = option(1, "Replicas per update, for the decay steps.")
    moving_average_decay: float | None = option(
        None, "Keep an exponential moving average of the model variables "
              "(<var>/ExponentialMovingAverage); None = off.")
    dataset_name: str = option("imagenet", "Dataset to train on.")
    dataset_split_name: str = option("train", "Split to train on.")
    dataset_dir: str | None = option(None, "Folder of the converted TFRecords.")
    labels_offset: int = option(0, "Subtracted from the labels (1 for 1000-class VGG/ResNet-v1).")
    model_name: str = option("inception_v3", "Net of the nets factory.")
    preprocessing_name: str | None = option(None, "Preprocessing; defaults to the model's.")
    batch_size: int = option(32, "Images per step per clone.")
    train_image_size: int | None = option(None, "Training size; defaults to the net's.")
    max_number_of_steps: int | None = option(None, "Global step to stop at; None = forever.")
    max_train_seconds: float | None = option(
        None, "Also stop after this many seconds from slim-train's start, resumed runs "
              "included (a last step, then the final checkpoint); cosine decay then reaches "
              "--end_learning_rate when the time runs out. None = no time limit.")
    use_grayscale: bool = option(False, "Train on grayscale (1-channel) images.")
    checkpoint_path: str | None = option(None, "Checkpoint file or directory to fine-tune from.")
    checkpoint_exclude_scopes: str | None = option(None, "Comma list of scopes not restored.")
    trainable_scopes: str | None = option(None, "Comma list of scopes to train (default all).")
    ignore_missing_vars: bool = option(False, "Skip variables the checkpoint lacks.")
    # New in slimcli.
    warmup_epochs: float = option(0.0, "Linear learning-rate warm-up length in epochs.")
    mixed_precision: bool = option(False, "Compute in --mixed_precision_dtype, keep float32 "
                                          "variables.")
    mixed_precision_dtype: str = option("float16", "float16 (with loss scaling) or bfloat16.")
    precision: str = dataclasses.field(default="float32", metadata={"help": PRECISION_HELP})
    jit_compile: bool = option(False, "Compile the forward and backward pass with XLA.")
    seed: int | None = option(None, "Random seed of initialization and input order.")
    clip_gradient_norm: float = option(0.0, "Clip each gradient to this norm (0 = off).")
    save_interval_steps: int | None = option(None, "Also save a checkpoint every this many steps.")
    max_to_keep: int = option(5, "Newest checkpoints kept.")
    keep_checkpoint_every_n_hours: float = option(10000.0, "Keep one checkpoint per this many "
                                                           "hours.")
    worker_hosts: str | None = option(None, "Comma list host:port of all workers (or set "
                                            "TF_CONFIG).")
    file_pattern: str | None = option(None, "File pattern of the split, overriding the "
                                            "dataset's.")
    skip_corrupt: bool = option(False, "Skip corrupt records (each logged and counted) instead "
                                       "of failing on the first with its file and index.")
    decoded_cache_mb: int = option(1024, "Decode the training images once into memory when "
                                         "they fit in this many MiB (at --decode_side); "
                                         "0 = decode every epoch (stream).")
    decode_side: str = option("auto", "Shorter side (pixels) training photos are decoded down "
                                      "to, once: auto = what the preprocessing needs for "
                                      "--train_image_size (inception: 1.41x it); full = the "
                                      "stored pixels (the original's exact path); or a number.")
    min_crop_area: float | None = option(
        None, "Smallest share of the image a random training crop covers (inception "
              "preprocessing; None = its own 0.05, the original's). Short runs learn faster with "
              "gentler crops (0.25).")
    randaugment: str = option("", "RandAugment N,M: N operations per image at magnitude M "
                                  "(0-10), e.g. 2,9; empty = off.")
    random_erasing: float = option(0.0, "Probability of erasing a random box of each image "
                                        "(e.g. 0.25); 0 = off.")
    mixup_alpha: float = option(0.0, "Mixup: blend image pairs with lam ~ Beta(alpha, alpha) "
                                     "and their labels alike (e.g. 0.8); 0 = off.")
    cutmix_alpha: float = option(0.0, "CutMix: paste a box of another image, labels mixed "
                                      "by area, lam ~ Beta(alpha, alpha) (e.g. 1.0); 0 = off.")
    decoded_cache_on_disk: bool = option(False, "Also keep the decoded training images in a "
                                                "file beside the records, for later runs "
                                                "(rebuilt when the records change).")
    synthetic_data: bool = option(False, "Train on generated images instead of a dataset.")
    synthetic_num_classes: int = option(10, "Classes of --synthetic_data.")
    progress_bar: bool | None = None
    batch_norm_decay: float | None = dataclasses.field(default=None, metadata={
        "help": "Decay of the batch-norm moving statistics, through the net's arg scope "
                "(None = the net's own, e.g. 0.9997); lower it (0.99) for short runs."})
    quantize_freeze_bn_delay: int = option(-1, "With --quantize_delay: from this global step "
                                               "on, folded batch norms use their moving "
                                               "statistics and stop updating them; -1 = never.")
    recompute_batch_norm_stats: int = dataclasses.field(default=0, metadata={
        "help": "Before the final checkpoint, set the batch-norm moving mean/variance to "
                "their average over this many training batches (0 = off); weights unchanged."})

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "TrainConfig":
        """A config from `{field: value}`; unknown keys are an error."""
        return config_lib.from_mapping(cls, values)

    def validate(self) -> None:
        """Checks the values that have a fixed range.

        Raises:
          SlimError: naming the bad value and the fix.
        """
        quantization.validate_train_flags(self)
        if self.batch_size < 1:
            raise SlimError(f"--batch_size must be at least 1; got {self.batch_size}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise SlimError(f"--label_smoothing must be in [0, 1); got {self.label_smoothing}.")
        precision_lib.effective(self.precision, self.mixed_precision, self.mixed_precision_dtype)
        if self.learning_rate < 0:
            raise SlimError(f"--learning_rate must be >= 0; got {self.learning_rate}.")
        if self.max_number_of_steps is not None and self.max_number_of_steps < 0:
            raise SlimError(f"--max_number_of_steps must be >= 0 (or unset to train forever); "
                            f"got {self.max_number_of_steps}.")
        if self.min_crop_area is not None and not 0.0 < self.min_crop_area <= 1.0:
            raise SlimError(f"--min_crop_area must be in (0, 1] (a share of the image); got "
                            f"{self.min_crop_area}.")
        if self.max_train_seconds is not None and not self.max_train_seconds > 0:
            raise SlimError(f"--max_train_seconds must be > 0 (or unset for no time limit); got "
                            f"{self.max_train_seconds}.")
        if self.batch_norm_decay is not None and not 0.0 <= self.batch_norm_decay < 1.0:
            raise SlimError(f"--batch_norm_decay must be in [0, 1) (e.g. 0.99); got "
                            f"{self.batch_norm_decay}.")
        if self.recompute_batch_norm_stats < 0:
            raise SlimError(f"--recompute_batch_norm_stats must be >= 0 batches; got "
                            f"{self.recompute_batch_norm_stats}.")
        from slimcli.input.config import decode_side_pixels
        from slimcli.preprocessing import augment
        augment.check_flags(self.randaugment, self.random_erasing, self.mixup_alpha,
                            self.cutmix_alpha)
        decode_side_pixels(self.decode_side, lambda size: 1, 1)
        if self.decoded_cache_mb < 0:
            raise SlimError(f"--decoded_cache_mb must be >= 0 (0 always streams the records); "
                            f"got {self.decoded_cache_mb}.")
        if not self.synthetic_data and not self.dataset_dir:
            raise SlimError("--dataset_dir is required (the folder of the converted TFRecords); "
                            "or pass --synthetic_data to train on generated images.")
        optimization.OPTIMIZERS.get(self.optimizer)
        optimization.LEARNING_RATE_POLICIES.get(self.learning_rate_decay_type)

    @property
    def quantize(self) -> Any:
        """The run's `QuantizeConfig` (None without --quantize_delay)."""
        return quantization.train_quantize_config(self)

    def resolved(self) -> "TrainConfig":
        """This config with `precision` made concrete (`auto` resolved and logged once)."""
        return dataclasses.replace(self, precision=precision_lib.resolve(
            self.precision, self.mixed_precision, self.mixed_precision_dtype))

    @property
    def compute_dtype(self) -> tf.DType:
        """The activations' dtype (call `resolved()` first where `precision` may be auto)."""
        return precision_lib.compute_dtype(precision_lib.resolve(
            self.precision, self.mixed_precision, self.mixed_precision_dtype))


def _scopes(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def select_trainable(network_fn: Any, trainable_scopes: str | None) -> dict[str, tf.Variable]:
    """The trainable variables under `--trainable_scopes` (all when unset).

    Raises:
      SlimError: the scopes select nothing (lists a few variable names).
    """
    trainable = network_fn.variables_dict(slim.variables.TRAINABLE_VARIABLES)
    scopes = _scopes(trainable_scopes)
    if not scopes:
        return trainable
    chosen = {n: v for n, v in trainable.items() if any(n.startswith(s) for s in scopes)}
    if not chosen:
        raise SlimError(f"--trainable_scopes={trainable_scopes} selects no trainable variable "
                        f"of {network_fn.spec.name}; its variables start like "
                        f"{sorted({n.rsplit('/', 2)[0] for n in trainable})[:6]}.")
    return chosen


def suggest_exclude_scopes(mismatched: list[str], spec: Any, current: list[str]) -> str:
    """The `--checkpoint_exclude_scopes` value that would skip the mismatched variables."""
    logits = list(spec.logits_scopes)
    if all(any(n.startswith(s) for s in logits) for n in mismatched):
        needed = logits
    else:
        needed = []
        for name in mismatched:
            layer = name.rsplit("/", 1)[0]
            layer = layer[:-len("/BatchNorm")] if layer.endswith("/BatchNorm") else layer
            if layer not in needed:
                needed.append(layer)
    return ",".join(dict.fromkeys([*current, *needed]))


def make_init_fn(config: TrainConfig, network_fn: Any) -> Callable[[], None] | None:
    """The warm start from `--checkpoint_path`, minus `--checkpoint_exclude_scopes`.

    Returns None without a checkpoint path, or when `train_dir` already holds
    a checkpoint (that one is resumed instead, as the original did).

    Raises:
      SlimError: the checkpoint does not exist; when called, a checkpoint that
        does not fit (lists the variables and suggests the exclude scopes).
    """
    if not config.checkpoint_path:
        return None
    if slim.latest_checkpoint(config.train_dir) if tf.io.gfile.isdir(config.train_dir) else None:
        log.info("Ignoring --checkpoint_path because a checkpoint already exists in %s",
                 config.train_dir)
        return None
    path = slim.resolve_checkpoint_path(config.checkpoint_path)
    exclude = _scopes(config.checkpoint_exclude_scopes)
    model_vars = network_fn.variables_dict(slim.variables.MODEL_VARIABLES) or \
        network_fn.variables_dict()
    to_restore = {n: v for n, v in model_vars.items() if not any(n.startswith(s) for s in exclude)}
    if network_fn.quantizer is not None:
        to_restore.update(quantization.restorable_ranges(network_fn, path, exclude))

    def init_fn() -> None:
        try:
            restored = slim.assign_from_checkpoint(path, to_restore, config.ignore_missing_vars)
        except slim.checkpoints.CheckpointMismatch as e:
            if not e.mismatched and len(e.missing) == len(to_restore):
                raise SlimError(_foreign_checkpoint(path, config, len(to_restore))) from None
            names = [m[0] for m in e.mismatched] or list(e.missing)
            hint = suggest_exclude_scopes(names, network_fn.spec, exclude)
            raise SlimError(f"{e} Fine-tune with --checkpoint_exclude_scopes={hint}"
                            + ("" if e.mismatched else " or --ignore_missing_vars") + ".") from None
        log.info("Fine-tuning from %s: restored %d of %d variables", path, len(restored),
                 len(model_vars))
    return init_fn


def _foreign_checkpoint(path: str, config: TrainConfig, num_vars: int) -> str:
    """The error for a checkpoint that holds none of the net's variables (another net's)."""
    keys = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    made_by, fix = nets_factory.checkpoint_owner(keys, config.model_name)
    return (f"--checkpoint_path={path} holds none of the {num_vars} variables of "
            f"{config.model_name}: it is a checkpoint {made_by}. Fine-tune it with {fix}, or "
            f"pass a checkpoint of {config.model_name} (excluding scopes cannot help here).")


def _loss_fn(network_fn: Any, config: TrainConfig, num_classes: int) -> Callable:
    dtype = config.compute_dtype

    def loss_fn(batch):
        images, labels = batch
        logits, end_points = network_fn(tf.cast(images, dtype))
        # Mixup and cutmix give soft labels [B, num_classes]; others are class ids.
        onehot = labels if labels.shape.rank == 2 else tf.one_hot(labels, num_classes)
        if "AuxLogits" in end_points:
            slim.losses.softmax_cross_entropy(end_points["AuxLogits"], onehot,
                                              weights=AUX_LOGITS_WEIGHT,
                                              label_smoothing=config.label_smoothing)
        slim.losses.softmax_cross_entropy(logits, onehot, label_smoothing=config.label_smoothing)
        correct = tf.equal(tf.argmax(logits, -1), tf.argmax(onehot, -1))
        metrics = {"accuracy": tf.reduce_mean(tf.cast(correct, tf.float32)),
                   "losses/cross_entropy": tf.add_n(slim.losses.get_losses())}
        regularization = slim.losses.get_regularization_losses()
        if regularization:
            metrics["losses/regularization"] = tf.add_n(regularization)
        return slim.losses.get_total_loss(), metrics
    return loss_fn


def _schedule(config: TrainConfig, data: TrainData,
              run_fraction: tf.Variable | None = None) -> Callable:
    steps = optimization.decay_steps_for(data.num_samples, config.num_epochs_per_decay,
                                         config.batch_size, config.replicas_to_aggregate,
                                         config.sync_replicas)
    warmup = int(config.warmup_epochs * data.num_samples / config.batch_size)
    schedule = optimization.ScheduleConfig(
        learning_rate=config.learning_rate, end_learning_rate=config.end_learning_rate,
        decay_factor=config.learning_rate_decay_factor, decay_steps=steps,
        total_steps=config.max_number_of_steps, warmup_steps=warmup)
    return optimization.learning_rate_fn(config.learning_rate_decay_type, schedule,
                                         run_fraction)


def _write_config(config: TrainConfig, info: StrategyInfo, data: TrainData) -> None:
    resolved = dataclasses.asdict(config)
    resolved.update(num_classes=data.num_classes, num_samples=data.num_samples,
                    image_size=data.image_size, num_replicas=info.num_replicas,
                    num_workers=info.num_workers)
    fileio.write_json(os.path.join(config.train_dir, "train_config.json"), resolved,
                      indent=2, sort_keys=True)


def _histograms(network_fn: Any, info: StrategyInfo, sample_images: Any) -> Callable:
    def summary_fn(step: int) -> None:
        values = learning.host_values(network_fn.variables_dict(), info.strategy)
        for name, value in values.items():
            summaries.histogram(name, value)
        if sample_images is not None:
            summaries.image("input_images", _displayable(sample_images), max_outputs=3)
    return summary_fn


def _displayable(images: tf.Tensor) -> tf.Tensor:
    lo = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
    hi = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    return (images - lo) / tf.maximum(hi - lo, 1e-6)


@dataclasses.dataclass
class TrainingRun:
    """What `setup_training` builds: the net, its train step and its input."""
    network_fn: Any
    step: learning.TrainStep
    ema: ExponentialMovingAverage | None
    data: TrainData
    strategy: Any
    run_fraction: tf.Variable | None = None  # the run done, for cosine over a time budget

    def iterator(self) -> Any:
        """A distributed iterator over the training batches (one per replica a step)."""
        return iter(self.strategy.distribute_datasets_from_function(self.data.dataset_fn))


def setup_training(config: TrainConfig, info: StrategyInfo) -> TrainingRun:
    """The net, the slim-train step and the input of `config`, built under `info`'s strategy.

    `train` runs this step in its loop; slim-benchmark times it.

    Raises:
      SlimError: unknown net or dataset, bad settings.
    """
    config = config.resolved()
    if config.seed is not None:
        tf.random.set_seed(config.seed)
    data = make_train_data(config, nets_factory.get_net_spec(config.model_name), info)
    if config.quantize is not None and config.compute_dtype != tf.float32:
        raise SlimError(f"--quantize_delay trains with fake quantization, which computes in "
                        f"float32; --precision={config.precision} resolved to "
                        f"{config.compute_dtype.name}: pass --precision=float32.")
    network_fn = nets_factory.get_network_fn(config.model_name, data.num_classes,
                                             weight_decay=config.weight_decay, is_training=True,
                                             batch_norm_decay=config.batch_norm_decay,
                                             quantize=config.quantize)
    with info.strategy.scope():
        network_fn.build([None, data.image_size, data.image_size, data.channels],
                         dtype=config.compute_dtype)
        over_time = config.max_train_seconds and config.learning_rate_decay_type == "cosine"
        run_fraction = tf.Variable(0.0, trainable=False, name="run_fraction") \
            if over_time else None
        step, ema = _make_step(config, network_fn, data, run_fraction)
    return TrainingRun(network_fn, step, ema, data, info.strategy, run_fraction)


def train(config: TrainConfig, info: StrategyInfo | None = None) -> int:
    """Trains as `config` says; returns the final global step.

    Args:
      config: the settings.
      info: the distribution strategy (made from the config when None; make
        it first thing in the process for multi-worker training).

    Raises:
      SlimError: bad settings, data or checkpoint (one line naming the fix);
        `TrainingDiverged` when the loss becomes NaN/Inf.
    """
    started = time.monotonic()  # a time budget counts from here
    config.validate()
    config = config.resolved()
    warning = optimization.epsilon_warning(config.optimizer, config.opt_epsilon)
    if warning:
        log.warning(warning)
    if config.master:
        log.info("--master=%s is ignored: TensorFlow 2 has no session master; "
                 "use TF_CONFIG or --worker_hosts for several machines.", config.master)
    info = info or make_strategy(config.num_clones, config.clone_on_cpu, config.num_ps_tasks,
                                 config.worker_hosts, config.task)
    if config.max_train_seconds and info.num_workers > 1:
        raise SlimError(f"--max_train_seconds={config.max_train_seconds:g} cannot stop "
                        f"{info.num_workers} workers at the same step; use "
                        f"--max_number_of_steps with several workers.")
    with TrainDirLock(config.train_dir) if info.is_chief else contextlib.nullcontext():
        return _train_locked(config, info, started)


def _train_locked(config: TrainConfig, info: StrategyInfo, started: float) -> int:
    """`train` past the settings, with the chief holding `train_dir`'s writer lock."""
    run = setup_training(config, info)
    network_fn, step, ema, data = run.network_fn, run.step, run.ema, run.data
    if info.is_chief:
        _write_config(config, info, data)
    to_save = {**network_fn.variables_dict(), **step.optimizer.variables_by_name(),
               "global_step": step.global_step}
    if ema is not None:
        to_save.update(ema.variables_by_name())
    iterator = run.iterator()
    summary_fn = _histograms(network_fn, info, data.sample_images() if info.is_chief else None)
    if config.compute_dtype == tf.float16 and not tf.config.list_logical_devices("GPU"):
        log.warning("float16 is very slow on CPUs (emulated); use --precision=bfloat16 there.")
    try:
        final = _run_loop(config, info, run, iterator, summary_fn, to_save,
                          _recompute_fn(config, run, iterator), started)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
        if config.compute_dtype != tf.float32 and "OpKernel" in str(e):
            raise SlimError(f"{config.model_name} uses an op with no {config.compute_dtype.name}"
                            f" kernel on this device ({e.message.splitlines()[0]}); train it "
                            f"with --precision=float32 or another --precision.") from None
        raise
    _log_fingerprint(network_fn, info, final)
    return final


def _run_loop(config: TrainConfig, info: StrategyInfo, run: TrainingRun, iterator: Any,
              summary_fn: Callable, to_save: dict, final_fn: Callable | None,
              started: float) -> int:
    network_fn, step = run.network_fn, run.step
    return learning.train(
        lambda: step(iterator), config.train_dir, variables_to_save=to_save,
        global_step=step.global_step, number_of_steps=config.max_number_of_steps,
        log_every_n_steps=config.log_every_n_steps,
        save_summaries_secs=config.save_summaries_secs,
        save_interval_secs=config.save_interval_secs,
        save_interval_steps=config.save_interval_steps,
        init_fn=make_init_fn(config, network_fn), max_to_keep=config.max_to_keep,
        keep_checkpoint_every_n_hours=config.keep_checkpoint_every_n_hours,
        is_chief=info.is_chief, task=info.task,
        images_per_step=config.batch_size * info.num_replicas, summary_fn=summary_fn,
        strategy=info.strategy, progress_bar=config.progress_bar, final_fn=final_fn,
        max_train_seconds=config.max_train_seconds, run_fraction=run.run_fraction,
        started=started)


def _recompute_fn(config: TrainConfig, run: TrainingRun, iterator: Any) -> Callable | None:
    """`final_fn(step)` recomputing the batch-norm moving statistics (None when off)."""
    if not config.recompute_batch_norm_stats:
        return None
    return lambda step: recompute_batch_norm_stats(run, iterator,
                                                   config.recompute_batch_norm_stats,
                                                   config.compute_dtype)


def recompute_batch_norm_stats(run: TrainingRun, iterator: Any, num_batches: int,
                               dtype: tf.DType = tf.float32) -> int:
    """Sets every batch-norm moving mean/variance to its average over `num_batches` batches.

    Each batch runs the net forward in training mode with a moving-average
    decay of 0, so a moving statistic holds that batch's statistic; the
    average over the batches (a cumulative average) is assigned at the end.
    Weights are not updated. This is what the moving averages approximate
    after many steps, without the bias of a short run towards their initial
    values (0 and 1) or towards early weights.

    Returns:
      The number of statistics recomputed (0 when the net has no batch norm).
    """
    net = run.network_fn
    moving = {n: v for n, v in net.variables_dict().items()
              if n.endswith(("/moving_mean", "/moving_variance"))}
    if not moving:
        log.warning("--recompute_batch_norm_stats: %s has no batch-norm statistics; nothing "
                    "to recompute.", net.spec.name)
        return 0
    saved_decay, net.batch_norm_decay = net.batch_norm_decay, 0.0

    def forward(batch):
        net(tf.cast(batch[0], dtype), is_training=True)

    @tf.function(autograph=False)
    def one_batch(it):
        run.strategy.run(forward, args=(next(it),))
    sums = {n: 0.0 for n in moving}
    try:
        for _ in range(num_batches):
            one_batch(iterator)
            for name, value in learning.host_values(moving, run.strategy).items():
                sums[name] = sums[name] + value.astype("float64")
    finally:
        net.batch_norm_decay = saved_decay
    for name, var in moving.items():
        var.assign(tf.cast(sums[name] / num_batches, var.dtype))
    log.info("Recomputed %d batch-norm statistics over %d training batches", len(moving),
             num_batches)
    return len(moving)


def _make_step(config: TrainConfig, network_fn: Any, data: TrainData,
               run_fraction: tf.Variable | None = None,
               ) -> tuple[learning.TrainStep, ExponentialMovingAverage | None]:
    """The train step (optimizer, schedule, loss scaling) and the EMA, under strategy scope."""
    optimizer = optimization.make_optimizer(config.optimizer, dataclasses.asdict(config))
    global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    if network_fn.quantizer is not None:
        network_fn.quantizer.step = global_step  # the delays count training steps
    ema = None
    if config.moving_average_decay:
        ema = ExponentialMovingAverage(config.moving_average_decay,
                                       network_fn.variables_dict(slim.variables.MODEL_VARIABLES),
                                       num_updates=global_step)
    float16 = config.compute_dtype == tf.float16
    step = learning.create_train_op(
        _loss_fn(network_fn, config, data.num_classes), optimizer, network_fn,
        learning_rate=_schedule(config, data, run_fraction), global_step=global_step,
        variables_to_train=select_trainable(network_fn, config.trainable_scopes),
        clip_gradient_norm=config.clip_gradient_norm,
        loss_scale=learning.DynamicLossScale() if float16 else None,
        jit_compile=config.jit_compile, post_update=ema.apply if ema is not None else None)
    return step, ema


def _log_fingerprint(network_fn: Any, info: StrategyInfo, step: int) -> None:
    values = learning.host_values(network_fn.variables_dict(), info.strategy)
    total = sum(float(abs(v).astype("float64").sum()) for v in values.values())
    log.info("Finished training at global step %d (worker %d); variables fingerprint %.10e",
             step, info.task, total)
