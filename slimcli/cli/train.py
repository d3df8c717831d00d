"""`slim-train`: train or fine-tune a net of the nets factory on a dataset.

Every flag of the original `train_image_classifier.py`, same names and
defaults, plus the new ones at the end (see docs/train.md).
"""

from __future__ import annotations

import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.precision import PRECISION_HELP

DESCRIPTION = """Train or fine-tune a net of the nets factory.

  slim-train --model_name=inception_v3 --dataset_name=flowers --dataset_dir=/data/flowers \\
    --train_dir=/tmp/train --checkpoint_path=inception_v3.ckpt \\
    --checkpoint_exclude_scopes=InceptionV3/Logits,InceptionV3/AuxLogits"""

# (define function, name, default, help) in the original's order, then slimcli's own.
_S, _I, _F, _B = "string", "integer", "float", "bool"
FLAG_TABLE = (
    (_S, "master", "", "Ignored: TF2 has no session master (use TF_CONFIG)."),
    (_S, "train_dir", "/tmp/tfmodel/", "Checkpoints and event logs are written here."),
    (_I, "num_clones", 1, "Model replicas (one per GPU) under MirroredStrategy."),
    (_B, "clone_on_cpu", False, "Place the clones on logical CPU devices."),
    (_I, "worker_replicas", 1, "Number of worker replicas (informational; from the cluster)."),
    (_I, "num_ps_tasks", 0, "Parameter servers; only 0 is supported (all-reduce training)."),
    (_I, "num_readers", 4, "Parallel TFRecord readers."),
    (_I, "num_preprocessing_threads", 4, "Parallel preprocessing calls."),
    (_I, "log_every_n_steps", 10, "Log/progress frequency in steps."),
    (_I, "save_summaries_secs", 600, "Summary period in seconds."),
    (_I, "save_interval_secs", 600, "Checkpoint period in seconds."),
    (_I, "task", 0, "Task id of this worker (0 = chief), with --worker_hosts."),
    (_F, "weight_decay", 0.00004, "L2 weight decay through the net's arg scope."),
    (_S, "optimizer", "rmsprop",
     "One of adadelta, adagrad, adam, ftrl, momentum, sgd, rmsprop."),
    (_F, "adadelta_rho", 0.95, "Adadelta decay."),
    (_F, "adagrad_initial_accumulator_value", 0.1, "Adagrad accumulator start."),
    (_F, "adam_beta1", 0.9, "Adam first-moment decay."),
    (_F, "adam_beta2", 0.999, "Adam second-moment decay."),
    (_F, "opt_epsilon", 1.0, "Epsilon of adadelta, adam and rmsprop."),
    (_F, "ftrl_learning_rate_power", -0.5, "FTRL learning-rate power."),
    (_F, "ftrl_initial_accumulator_value", 0.1, "FTRL accumulator start."),
    (_F, "ftrl_l1", 0.0, "FTRL L1 strength."),
    (_F, "ftrl_l2", 0.0, "FTRL L2 strength."),
    (_F, "momentum", 0.9, "Momentum of the momentum optimizer."),
    (_F, "rmsprop_momentum", 0.9, "RMSProp momentum."),
    (_F, "rmsprop_decay", 0.9, "RMSProp decay."),
    (_I, "quantize_delay", -1, "Quantization-aware training start step; not supported yet."),
    (_S, "learning_rate_decay_type", "exponential",
     "fixed, exponential (staircase), polynomial or cosine."),
    (_F, "learning_rate", 0.01, "Initial learning rate."),
    (_F, "end_learning_rate", 0.0001, "Final rate of polynomial and cosine decay."),
    (_F, "label_smoothing", 0.0, "Label smoothing of the cross entropy."),
    (_F, "learning_rate_decay_factor", 0.94, "Exponential decay factor."),
    (_F, "num_epochs_per_decay", 2.0, "Epochs between decays."),
    (_B, "sync_replicas", False, "Divide decay steps by --replicas_to_aggregate (training is "
                                 "always synchronous)."),
    (_I, "replicas_to_aggregate", 1, "Replicas per update, for the decay steps."),
    (_F, "moving_average_decay", None, "Keep an exponential moving average of the model "
                                       "variables (<var>/ExponentialMovingAverage); None = off."),
    (_S, "dataset_name", "imagenet", "Dataset to train on."),
    (_S, "dataset_split_name", "train", "Split to train on."),
    (_S, "dataset_dir", None, "Folder of the converted TFRecords."),
    (_I, "labels_offset", 0, "Subtracted from the labels (1 for 1000-class VGG/ResNet-v1)."),
    (_S, "model_name", "inception_v3", "Net of the nets factory."),
    (_S, "preprocessing_name", None, "Preprocessing; defaults to the model's."),
    (_I, "batch_size", 32, "Images per step per clone."),
    (_I, "train_image_size", None, "Training size; defaults to the net's."),
    (_I, "max_number_of_steps", None, "Global step to stop at; None = forever."),
    (_B, "use_grayscale", False, "Train on grayscale (1-channel) images."),
    (_S, "checkpoint_path", None, "Checkpoint file or directory to fine-tune from."),
    (_S, "checkpoint_exclude_scopes", None, "Comma list of scopes not restored."),
    (_S, "trainable_scopes", None, "Comma list of scopes to train (default all)."),
    (_B, "ignore_missing_vars", False, "Skip variables the checkpoint lacks."),
    # New in slimcli.
    (_F, "warmup_epochs", 0.0, "Linear learning-rate warm-up length in epochs."),
    (_B, "mixed_precision", False, "Compute in --mixed_precision_dtype, keep float32 variables."),
    (_S, "mixed_precision_dtype", "float16", "float16 (with loss scaling) or bfloat16."),
    (_S, "precision", "float32", PRECISION_HELP),
    (_B, "jit_compile", False, "Compile the forward and backward pass with XLA."),
    (_I, "seed", None, "Random seed of initialization and input order."),
    (_F, "clip_gradient_norm", 0.0, "Clip each gradient to this norm (0 = off)."),
    (_I, "save_interval_steps", None, "Also save a checkpoint every this many steps."),
    (_I, "max_to_keep", 5, "Newest checkpoints kept."),
    (_F, "keep_checkpoint_every_n_hours", 10000.0, "Keep one checkpoint per this many hours."),
    (_S, "worker_hosts", None, "Comma list host:port of all workers (or set TF_CONFIG)."),
    (_S, "file_pattern", None, "File pattern of the split, overriding the dataset's."),
    (_B, "skip_corrupt", False, "Skip corrupt records (each logged and counted) instead of "
                                "failing on the first with its file and index."),
    (_I, "decoded_cache_mb", 1024, "Decode a dataset whose images fit in this many MiB (all "
                                   "one size: MNIST, CIFAR) once into memory; 0 = stream."),
    (_B, "synthetic_data", False, "Train on generated images instead of a dataset."),
    (_I, "synthetic_num_classes", 10, "Classes of --synthetic_data."),
)

_DEFINE = {_S: flags.DEFINE_string, _I: flags.DEFINE_integer, _F: flags.DEFINE_float,
           _B: flags.DEFINE_bool}


def define_flags(fv: flags.FlagValues) -> None:
    for kind, name, default, help_text in FLAG_TABLE:
        _DEFINE[kind](name, default, help_text, flag_values=fv)


def main(fv: flags.FlagValues) -> int:
    from slimcli import train as train_lib
    from slimcli.distribute import make_strategy
    values = {name: fv[name].value for _, name, _, _ in FLAG_TABLE}
    config = train_lib.TrainConfig.from_mapping(values)
    config.validate()
    info = make_strategy(config.num_clones, config.clone_on_cpu, config.num_ps_tasks,
                         config.worker_hosts, config.task)
    train_lib.train(config, info)
    return 0


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-train", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
