"""Evaluating a net of the factory on a dataset split: the library behind slim-eval.

    config = EvalConfig(model_name='inception_v3', checkpoint_path='/tmp/train',
                        dataset_name='flowers', dataset_dir='/data/flowers')
    results = run_evaluation(config)          # {'eval/Accuracy': ..., 'eval/Recall_5': ...}

Every example of the split is seen exactly once (the final partial batch
included). With `eval_loop`, each new checkpoint of a training directory is
evaluated once, in order.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import sys
from typing import Any

import numpy as np
import tensorflow as tf

from slimcli import datasets, fileio, nets, quantization, slim
from slimcli import precision as precision_lib
from slimcli.config import option
from slimcli.distribute import local_strategy
from slimcli.nets import nets_factory
from slimcli.errors import SlimError
from slimcli.precision import PRECISION_HELP
from slimcli.slim import evaluation, metrics
from slimcli.slim.checkpoints import CheckpointMismatch
from slimcli.tflite_eval import TFLiteClassifier, make_tflite_step

log = logging.getLogger(__name__)

EMA_SUFFIX = "ExponentialMovingAverage"


@dataclasses.dataclass
class EvalConfig:
    """Everything slim-eval needs: the original eval_image_classifier flags, then slimcli's.

    Field names are the flag names; each field's help is its flag's `--help` text.
    `confusion_matrix` is a library-only setting (no flag).
    """
    batch_size: int = option(100, "Samples in each batch.")
    max_num_batches: int | None = option(None, "Max batches to evaluate (default: all).")
    master: str = option("", "Unused (TF1 session master); kept for old scripts.")
    checkpoint_path: str = option("/tmp/tfmodel/", "Checkpoint prefix, or a directory (its "
                                                   "latest checkpoint).")
    eval_dir: str = option("/tmp/tfmodel/", "Where results and summaries go.")
    num_preprocessing_threads: int = option(4, "Parallel preprocessing calls.")
    dataset_name: str = option("imagenet", "The dataset (see slim-download).")
    dataset_split_name: str = option("test", "The split to evaluate.")
    dataset_dir: str | None = option(None, "The directory of the TFRecords.")
    labels_offset: int = option(0, "Subtracted from the labels: 1 evaluates 1000-class "
                                   "VGG/ResNet-v1 checkpoints on 1001-class data.")
    model_name: str = option("inception_v3", "The net of the nets factory.")
    preprocessing_name: str | None = option(None, "Default: the net's preprocessing.")
    moving_average_decay: float | None = option(None, "Evaluate the EMA (shadow) weights.")
    eval_image_size: int | None = option(None, "Default: the net's image size.")
    quantize: bool = option(False, "Evaluate the quantized net: fake quantization with the "
                                   "checkpoint's learnt ranges (a --quantize_delay checkpoint), "
                                   "as the original's --quantize.")
    use_grayscale: bool = option(False, "Grayscale preprocessing (1 channel).")
    eval_loop: bool = option(False, "Evaluate each new checkpoint in --checkpoint_path (a "
                                    "training directory) once, in order.")
    eval_interval_secs: float = option(60.0, "With --eval_loop: at least this long between "
                                             "evaluations.")
    eval_timeout: float | None = option(None, "With --eval_loop: stop after this many seconds "
                                              "without a new checkpoint (default: wait forever).")
    max_number_of_evaluations: int | None = option(None, "With --eval_loop: stop after this "
                                                         "many evaluations.")
    num_clones: int = option(1, "Evaluate on this many GPUs (MirroredStrategy).")
    clone_on_cpu: bool = option(False, "Clones on logical CPU devices.")
    output_json: str | None = option(None, "Write every metric, the checkpoint and its step to "
                                           "this JSON file.")
    skip_corrupt: bool = option(False, "Skip corrupt records (each logged and counted in the "
                                       "results) instead of failing on the first.")
    progress: bool = option(True, "Show a progress bar (on a terminal).")
    precision: str = dataclasses.field(default="float32", metadata={"help": PRECISION_HELP})
    tflite_file: str = option("", "Evaluate this TFLite model (from slim-export --tflite_file: "
                                  "float, int8 or integer) through the TFLite interpreter "
                                  "instead of a checkpoint.")
    decode_side: str = option("full", "Shorter side photos are decoded down to: full = the "
                                      "stored pixels (exact: accuracies compare with published "
                                      "ones); auto = what the preprocessing needs for "
                                      "--eval_image_size (faster on large photos); or a number.")
    confusion_matrix: bool = True

    def validate(self) -> None:
        """Raises SlimError naming a bad value and the fix."""
        self._validate_quantize()
        if not self.dataset_dir:
            raise SlimError("--dataset_dir is required: the directory of the converted TFRecords "
                            "(see slim-download).")
        if self.batch_size < 1:
            raise SlimError(f"--batch_size must be >= 1. Received: --batch_size={self.batch_size}")
        if self.max_num_batches is not None and self.max_num_batches < 1:
            raise SlimError(f"--max_num_batches must be >= 1. Received: {self.max_num_batches}")
        if self.num_clones < 1:
            raise SlimError(f"--num_clones must be >= 1. Received: --num_clones={self.num_clones}")
        from slimcli.input.config import decode_side_pixels
        decode_side_pixels(self.decode_side, lambda size: 1, 1)
        precision_lib.validate(self.precision)


    def _validate_quantize(self) -> None:
        if self.quantize and self.tflite_file:
            raise SlimError("--tflite_file evaluates the model as it was exported; drop "
                            "--quantize (it quantizes a checkpoint's net).")
        if self.tflite_file and (self.eval_loop or self.num_clones > 1):
            raise SlimError("--tflite_file evaluates one TFLite model on the CPU; drop "
                            "--eval_loop and --num_clones.")
        if self.quantize and self.precision != "float32":
            raise SlimError(f"--quantize evaluates with fake quantization, which computes in "
                            f"float32; drop --precision={self.precision}.")


def _restore_names(net: nets.NetworkFn, reader: Any, use_ema: bool) -> dict[str, tf.Variable]:
    """`{checkpoint key: variable}`: EMA shadows when asked for and present."""
    names = {}
    keys = reader.get_variable_to_shape_map()
    for name, var in net.variables_dict().items():
        shadow = f"{name}/{EMA_SUFFIX}"
        names[shadow if use_ema and shadow in keys else name] = var
    if use_ema and not any(k.endswith(EMA_SUFFIX) for k in names):
        raise SlimError("--moving_average_decay was given but the checkpoint holds no "
                        f"'*/{EMA_SUFFIX}' variables; train with --moving_average_decay or "
                        "drop the flag.")
    return names


def _mismatch_hint(error: CheckpointMismatch, net: nets.NetworkFn, config: EvalConfig) -> str:
    hint = f"check --model_name={config.model_name}"
    for name, ckpt_shape, model_shape in error.mismatched:
        if ckpt_shape and model_shape and ckpt_shape[-1] + 1 == model_shape[-1]:
            return (f"the checkpoint has {ckpt_shape[-1]} classes and the dataset "
                    f"{model_shape[-1]}: pass --labels_offset=1 (1000-class VGG/ResNet-v1 "
                    f"checkpoints on 1001-class data)")
        if ckpt_shape and model_shape and ckpt_shape[-1] != model_shape[-1]:
            hint = (f"the checkpoint's classifier has {ckpt_shape[-1]} outputs, the net "
                    f"{model_shape[-1]}: check --dataset_name/--labels_offset")
    return hint


def _missing_hint(error: CheckpointMismatch, path: str, keys: Any, named: dict,
                  config: EvalConfig) -> str:
    """Why a checkpoint lacks variables: another net's checkpoint, or a part of one."""
    if len(error.missing) < len(named):
        return (f"{error.details} Likely fix: the checkpoint was made with other settings of "
                f"{config.model_name}; evaluate it with the --model_name (and variant) it was "
                f"trained as.")
    made_by, fix = nets_factory.checkpoint_owner(keys, config.model_name)
    return (f"checkpoint {path} holds none of the {len(named)} variables "
            f"of {config.model_name}: it is a checkpoint {made_by}. Evaluate it with {fix}, "
            f"or pass a checkpoint of {config.model_name}.")


def _warn_unconverged_batch_norm(path: str, reader: Any, net: nets.NetworkFn) -> None:
    """One warning when the batch-norm moving statistics cannot have converged.

    After `s` steps at decay `d` a moving statistic still holds `d**s` of its
    initial value (0 for the mean, 1 for the variance); beyond 5% the eval
    normalizes with wrong statistics (often near chance accuracy).
    """
    keys = reader.get_variable_to_shape_map()
    if "global_step" not in keys or not any(k.endswith("/moving_variance") for k in keys):
        return
    step = int(reader.get_tensor("global_step"))
    settings = _train_settings(path)
    decay = settings.get("batch_norm_decay") or nets_factory.default_batch_norm_decay(net.spec)
    # Recomputed before a run's final checkpoint: at its last step, or the newest of a run
    # with a time budget.
    final = settings.get("max_number_of_steps") == step or (
        settings.get("max_train_seconds")
        and slim.latest_checkpoint(os.path.dirname(path)) == path)
    recomputed = settings.get("recompute_batch_norm_stats") and final
    if decay is None or recomputed or decay ** step <= 0.05:
        return
    log.warning("Batch-norm statistics of %s cannot have converged: global step %d is small "
                "beside 1/(1 - decay) = %d steps at --batch_norm_decay=%g (%.0f%% of their "
                "initial values remain), so accuracy can be far below training's; retrain or "
                "resume with --recompute_batch_norm_stats=100 (or a lower --batch_norm_decay).",
                path, step, round(1 / (1 - decay)), decay, 100 * decay ** step)


def _train_settings(path: str) -> dict:
    """The train_config.json slim-train wrote next to checkpoint `path` ({} if none)."""
    config = os.path.join(os.path.dirname(path), "train_config.json")
    try:
        with tf.io.gfile.GFile(config) as f:
            return json.load(f)
    except (tf.errors.OpError, OSError, ValueError):
        return {}


def make_restore_fn(net: nets.NetworkFn, config: EvalConfig):
    """restore(path): loads a checkpoint (EMA shadows with --moving_average_decay)."""
    def restore(path: str) -> None:
        reader = tf.train.load_checkpoint(path)
        if config.quantize:
            quantization.check_ranges(net.variables_dict(), config.model_name, path,
                                      reader.get_variable_to_shape_map())
        named = _restore_names(net, reader, config.moving_average_decay is not None)
        try:
            slim.assign_from_checkpoint(path, named)
        except CheckpointMismatch as e:
            if e.missing and not e.mismatched:
                raise SlimError(_missing_hint(e, path, reader.get_variable_to_shape_map(),
                                              named, config)) from None
            raise SlimError(f"{e}. Likely fix: {_mismatch_hint(e, net, config)}.") from None
        log.info("Restored %d variables from %s", len(named), path)
        _warn_unconverged_batch_norm(path, reader, net)
    return restore


def _build_dataset(config: EvalConfig, split: datasets.DatasetSplit, image_size: int,
                   strategy: tf.distribute.Strategy, stats: Any = None):
    from slimcli.input import build_input_pipeline
    from slimcli.input.config import DEFAULT_DECODED_CACHE_MB, decode_side_pixels
    from slimcli.preprocessing import preprocessing_for_net
    preprocess = preprocessing_for_net(config.model_name, config.preprocessing_name,
                                       is_training=False, use_grayscale=config.use_grayscale)
    channels = 1 if config.use_grayscale else 3
    dataset = build_input_pipeline(split.files, preprocess, config.batch_size, image_size,
                                   is_training=False, labels_offset=config.labels_offset,
                                   num_classes=split.num_classes - config.labels_offset,
                                   num_parallel_calls=config.num_preprocessing_threads,
                                   channels=channels, skip_corrupt=config.skip_corrupt,
                                   stats=stats, decode_side=decode_side_pixels(
                                       config.decode_side, preprocess.working_side, image_size))
    # --eval_loop reads the split once per checkpoint: its preprocessed images (the same every
    # time) are kept after the first evaluation when they fit, as slim-train keeps its own.
    held = split.num_samples * image_size * image_size * channels * 4
    if config.eval_loop and not config.skip_corrupt and config.max_num_batches is None \
            and held <= DEFAULT_DECODED_CACHE_MB * 2**20:
        dataset = dataset.cache()
    if strategy.num_replicas_in_sync > 1:
        dataset = strategy.experimental_distribute_dataset(dataset)
    return dataset


def _metric_map(num_classes: int, with_confusion: bool) -> metrics.MetricMap:
    named = {"eval/Accuracy": metrics.Accuracy(), "eval/Recall_5": metrics.RecallAtK(5),
             "eval/Loss": metrics.Mean("loss")}
    if with_confusion:
        named["eval/ConfusionMatrix"] = metrics.ConfusionMatrix(num_classes)
    return metrics.MetricMap(named)


def make_eval_step(net: nets.NetworkFn, metric_map: metrics.MetricMap, num_classes: int,
                   strategy: tf.distribute.Strategy, dtype: tf.DType = tf.float32):
    """A tf.function that runs the net on a batch (computing in `dtype`) and updates every
    metric (in float32)."""
    def forward(images):
        logits, _ = net(tf.cast(images, dtype), is_training=False)
        return tf.reshape(tf.cast(logits, tf.float32), [-1, num_classes])

    def replica_step(images, labels):
        # The final partial batch, split across replicas, can leave a replica with no
        # example; TensorFlow's fused convolutions fail on an empty batch, so skip the net.
        logits = tf.cond(tf.shape(images)[0] > 0, lambda: forward(images),
                         lambda: tf.zeros([0, num_classes], tf.float32))
        predictions = tf.argmax(logits, 1)
        metric_map["eval/Accuracy"].update(predictions, labels)
        metric_map["eval/Recall_5"].update(logits, labels)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        metric_map["eval/Loss"].update(losses)
        if "eval/ConfusionMatrix" in metric_map.metrics:
            metric_map["eval/ConfusionMatrix"].update(predictions, labels)

    @tf.function(autograph=False)  # graph code already; see learning.TrainStep
    def step(batch):
        images, labels = batch
        strategy.run(replica_step, (images, labels))
    return step


def confusion_png(matrix: np.ndarray) -> bytes:
    """The row-normalised confusion matrix as a PNG (rows: true class), one square per cell."""
    from PIL import Image
    matrix = np.asarray(matrix, np.float64)
    n = matrix.shape[0]
    cell = confusion_cell_size(n)
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    shade = (255 * (1 - share)).astype(np.uint8)
    rgb = np.stack([shade, shade, np.full_like(shade, 255)], axis=-1)
    image = Image.fromarray(np.kron(rgb, np.ones((cell, cell, 1), np.uint8)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def confusion_cell_size(num_classes: int) -> int:
    """Pixels per confusion-matrix cell: about 800 px wide, 4 to 40 px a cell."""
    return max(4, min(40, 800 // max(num_classes, 1)))


def _report(results: dict, split: datasets.DatasetSplit, config: EvalConfig,
            stats: Any = None) -> dict:
    """Adds per-class accuracy, writes the confusion PNG/summary and prints the results."""
    matrix = results.pop("eval/ConfusionMatrix", None)
    if matrix is not None:
        matrix = np.asarray(matrix)
        rows = matrix.sum(1)
        names = split.labels_to_names or {}
        results["per_class_accuracy"] = {
            names.get(i + config.labels_offset, str(i)): (float(matrix[i, i] / rows[i])
                                                          if rows[i] else None)
            for i in range(len(rows))}
        results["confusion_matrix"] = matrix.astype(int).tolist()
        png = confusion_png(matrix)
        os.makedirs(config.eval_dir, exist_ok=True)
        path = os.path.join(config.eval_dir, "confusion_matrix.png")
        with open(path, "wb") as f:
            f.write(png)
        results["confusion_matrix_png"] = path
        writer = tf.summary.create_file_writer(config.eval_dir)
        with writer.as_default():
            tf.summary.image("eval/ConfusionMatrix", tf.image.decode_png(png)[None],
                             step=results.get("global_step") or 0)
        writer.flush()
    results["num_examples"] = int(matrix.sum()) if matrix is not None else None
    step = results.get("global_step")
    what = "TFLite interpreter" if config.tflite_file else f"step {step}"
    if config.tflite_file:
        results["global_step"] = None
    print(f"Evaluated {results['checkpoint']} ({what}) on {split.name}/{split.split_name}:")
    for key in ("eval/Accuracy", "eval/Recall_5", "eval/Loss"):
        print(f"  {key} = {results[key]:.4f}")
    if stats is not None:
        results["skipped_records"] = stats.take_skipped()
        print(f"  skipped {results['skipped_records']} corrupt records (--skip_corrupt)")
    sys.stdout.flush()
    return results


def _evaluator(config: EvalConfig, num_classes: int, strategy: tf.distribute.Strategy):
    """(image size, metrics, step, restore) of the net of a checkpoint, or of a TFLite model."""
    if config.tflite_file:
        classifier = TFLiteClassifier(config.tflite_file)
        metric_map = _metric_map(num_classes, config.confusion_matrix)
        return (_tflite_image_size(config, classifier), metric_map,
                make_tflite_step(classifier, metric_map, num_classes), lambda path: None)
    image_size = config.eval_image_size or nets.get_net_spec(config.model_name).default_image_size
    channels = 1 if config.use_grayscale else 3
    dtype = precision_lib.compute_dtype(precision_lib.resolve(config.precision))
    with strategy.scope():
        net = nets.get_network_fn(config.model_name, num_classes, is_training=False,
                                  quantize=quantization.eval_quantize_config(config))
        net.build([None, image_size, image_size, channels], dtype=dtype)
        metric_map = _metric_map(num_classes, config.confusion_matrix)
    return (image_size, metric_map, make_eval_step(net, metric_map, num_classes, strategy, dtype),
            make_restore_fn(net, config))


def run_evaluation(config: EvalConfig) -> dict | list[dict]:
    """Evaluates once (a dict of results) or, with `eval_loop`, each new checkpoint (a list)."""
    config.validate()
    split = datasets.get_dataset(config.dataset_name, config.dataset_split_name,
                                 config.dataset_dir)
    if split.num_samples == 0:
        raise SlimError(f"split {split.split_name!r} of {config.dataset_dir} is empty; "
                        f"choose another --dataset_split_name.")
    num_classes = split.num_classes - config.labels_offset
    strategy = local_strategy(config.num_clones, config.clone_on_cpu)
    image_size, metric_map, step, restore = _evaluator(config, num_classes, strategy)
    from slimcli.input import PipelineStats
    stats = PipelineStats() if config.skip_corrupt else None
    dataset = _build_dataset(config, split, image_size, strategy, stats)
    num_batches = config.max_num_batches or math.ceil(split.num_samples / config.batch_size)
    progress = _progress_bar(num_batches) if config.progress else None
    if config.eval_loop:
        if not tf.io.gfile.isdir(config.checkpoint_path):
            raise SlimError(f"--eval_loop watches a training directory; --checkpoint_path="
                            f"{config.checkpoint_path!r} is not a directory.")
        results = evaluation.evaluation_loop(
            config.checkpoint_path, restore, step, dataset, metric_map, num_batches,
            config.eval_interval_secs, config.eval_timeout, config.max_number_of_evaluations,
            config.eval_dir, progress=progress,
            on_result=lambda r: _report(r, split, config, stats))
    else:
        path = config.tflite_file or slim.resolve_checkpoint_path(config.checkpoint_path)
        results = _report(evaluation.evaluate_once(path, restore, step, dataset, metric_map,
                                                   num_batches, config.eval_dir, progress),
                          split, config, stats)
    if config.output_json:
        fileio.write_json(config.output_json, results)
    return results


def _tflite_image_size(config: EvalConfig, classifier: TFLiteClassifier) -> int:
    size = classifier.image_size
    if config.eval_image_size not in (None, size):
        raise SlimError(f"--tflite_file={config.tflite_file} takes {size}x{size} images; drop "
                        f"--eval_image_size={config.eval_image_size} or export at that size.")
    return size


def _progress_bar(total: int):
    def wrap(batches):
        from tqdm import tqdm
        return tqdm(batches, total=total, desc="eval", unit="batch", leave=False,
                    disable=not sys.stderr.isatty())
    return wrap
