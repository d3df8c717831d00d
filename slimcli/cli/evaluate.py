"""`slim-eval`: evaluate a checkpoint (or each new one of a training directory) on a split.

    slim-eval --model_name=inception_v3 --checkpoint_path=/tmp/train \
        --dataset_name=flowers --dataset_dir=/data/flowers --dataset_split_name=validation
"""

from __future__ import annotations

import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.errors import SlimError
from slimcli.precision import PRECISION_HELP

DESCRIPTION = ("Evaluate a checkpoint on a dataset split: eval/Accuracy, eval/Recall_5, loss, "
               "per-class accuracy and a confusion matrix; --eval_loop evaluates each new "
               "checkpoint of a training directory.")


def define_flags(fv: flags.FlagValues) -> None:
    """The original eval_image_classifier flags, then slimcli's additions."""
    d = dict(flag_values=fv)
    flags.DEFINE_integer("batch_size", 100, "Samples in each batch.", **d)
    flags.DEFINE_integer("max_num_batches", None, "Max batches to evaluate (default: all).", **d)
    flags.DEFINE_string("master", "", "Unused (TF1 session master); kept for old scripts.", **d)
    flags.DEFINE_string("checkpoint_path", "/tmp/tfmodel/",
                        "Checkpoint prefix, or a directory (its latest checkpoint).", **d)
    flags.DEFINE_string("eval_dir", "/tmp/tfmodel/", "Where results and summaries go.", **d)
    flags.DEFINE_integer("num_preprocessing_threads", 4, "Parallel preprocessing calls.", **d)
    flags.DEFINE_string("dataset_name", "imagenet", "The dataset (see slim-download).", **d)
    flags.DEFINE_string("dataset_split_name", "test", "The split to evaluate.", **d)
    flags.DEFINE_string("dataset_dir", None, "The directory of the TFRecords.", **d)
    flags.DEFINE_integer("labels_offset", 0, "Subtracted from the labels: 1 evaluates "
                         "1000-class VGG/ResNet-v1 checkpoints on 1001-class data.", **d)
    flags.DEFINE_string("model_name", "inception_v3", "The net of the nets factory.", **d)
    flags.DEFINE_string("preprocessing_name", None, "Default: the net's preprocessing.", **d)
    flags.DEFINE_float("moving_average_decay", None, "Evaluate the EMA (shadow) weights.", **d)
    flags.DEFINE_integer("eval_image_size", None, "Default: the net's image size.", **d)
    flags.DEFINE_bool("quantize", False, "Quantized eval graph (not supported).", **d)
    flags.DEFINE_bool("use_grayscale", False, "Grayscale preprocessing (1 channel).", **d)
    flags.DEFINE_bool("eval_loop", False, "Evaluate each new checkpoint in --checkpoint_path "
                      "(a training directory) once, in order.", **d)
    flags.DEFINE_float("eval_interval_secs", 60, "With --eval_loop: at least this long between "
                       "evaluations.", **d)
    flags.DEFINE_float("eval_timeout", None, "With --eval_loop: stop after this many seconds "
                       "without a new checkpoint (default: wait forever).", **d)
    flags.DEFINE_integer("max_number_of_evaluations", None, "With --eval_loop: stop after this "
                         "many evaluations.", **d)
    flags.DEFINE_integer("num_clones", 1, "Evaluate on this many GPUs (MirroredStrategy).", **d)
    flags.DEFINE_bool("clone_on_cpu", False, "Clones on logical CPU devices.", **d)
    flags.DEFINE_string("output_json", None, "Write every metric, the checkpoint and its step "
                        "to this JSON file.", **d)
    flags.DEFINE_bool("skip_corrupt", False, "Skip corrupt records (each logged and counted "
                      "in the results) instead of failing on the first.", **d)
    flags.DEFINE_bool("progress", True, "Show a progress bar (on a terminal).", **d)
    flags.DEFINE_string("precision", "float32", PRECISION_HELP, **d)


def main(fv: flags.FlagValues) -> int:
    from slimcli.evaluate import EvalConfig, run_evaluation
    if fv.quantize:
        raise SlimError("--quantize (TF1 contrib quantized eval graphs) is not supported; "
                        "use slim-export --tflite_quantize for quantized models.")
    config = EvalConfig(**{f.name: getattr(fv, f.name) for f in _config_fields()
                           if f.name in fv})
    run_evaluation(config)
    return 0


def _config_fields():
    import dataclasses
    from slimcli.evaluate import EvalConfig
    return dataclasses.fields(EvalConfig)


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-eval", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
