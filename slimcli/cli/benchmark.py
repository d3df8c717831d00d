"""`slim-benchmark`: how fast a net trains and infers on this machine, beside Keras 3.

    slim-benchmark --model_name=resnet_v1_50 --mode=train --batch_size=16 --compare_keras
    slim-benchmark --model_name=mobilenet_v1 --mode=all --data=/data/flowers --output_json=b.json
"""

from __future__ import annotations

import dataclasses
import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.precision import PRECISION_HELP

DESCRIPTION = """How fast a net trains and infers here (images/sec, step time, memory,
FLOPs), beside Keras 3 with --compare_keras.

  slim-benchmark --model_name=resnet_v1_50 --mode=train --batch_size=16 --compare_keras"""


def define_flags(fv: flags.FlagValues) -> None:
    from slimcli.benchmark import MODES
    d = dict(flag_values=fv)
    flags.DEFINE_string("model_name", "inception_v3", "The net of the nets factory.", **d)
    flags.DEFINE_enum("mode", "all", MODES, "train: the slim-train step; inference: the eval "
                      "forward pass; input: the training input pipeline alone (needs --data); "
                      "all: each that applies.", **d)
    flags.DEFINE_integer("batch_size", 32, "Images per step per replica.", **d)
    flags.DEFINE_integer("image_size", None, "Height and width (default: the net's).", **d)
    flags.DEFINE_integer("num_classes", None, "Logits of the net (default: its zoo checkpoint's; "
                         "with --data, the dataset's).", **d)
    flags.DEFINE_integer("num_clones", 1, "Replicas under MirroredStrategy (GPUs).", **d)
    flags.DEFINE_bool("clone_on_cpu", False, "Put the clones on logical CPU devices.", **d)
    flags.DEFINE_bool("mixed_precision", False, "Compute in --mixed_precision_dtype.", **d)
    flags.DEFINE_string("mixed_precision_dtype", "float16", "float16 (loss scaling) or "
                        "bfloat16.", **d)
    flags.DEFINE_string("precision", "float32", PRECISION_HELP, **d)
    flags.DEFINE_bool("jit_compile", False, "Compile the steps with XLA.", **d)
    flags.DEFINE_string("data", "synthetic", "synthetic (generated images), or a dataset_dir of "
                        "converted TFRecords (read through the real input pipeline).", **d)
    flags.DEFINE_string("dataset_name", None, "With --data=DIR: the dataset (default: from its "
                        "dataset.json).", **d)
    flags.DEFINE_string("dataset_split_name", "train", "With --data=DIR: the split read.", **d)
    flags.DEFINE_integer("decoded_cache_mb", 1024, "With --data=DIR: as slim-train's (decode "
                         "small data once into memory; 0 = stream the records).", **d)
    flags.DEFINE_integer("warmup_steps", 3, "Untimed steps first (tracing, autotuning).", **d)
    flags.DEFINE_integer("steps", 10, "Steps per timed run.", **d)
    flags.DEFINE_integer("repeats", 3, "Timed runs; the median is reported with min and max.", **d)
    flags.DEFINE_float("min_run_seconds", 1.0, "A timed run takes more than --steps steps when "
                       "they would last less than this (fast nets).", **d)
    flags.DEFINE_bool("compare_keras", False, "Also run the keras.applications model of the same "
                      "architecture (fit / predict) in this process and print the ratio.", **d)
    flags.DEFINE_bool("compare_synthetic", False, "With --data=DIR: also time the same training "
                      "step on generated data (taking turns) and print real / synthetic.", **d)
    flags.DEFINE_string("output_json", None, "Write every figure to this JSON file.", **d)


def main(fv: flags.FlagValues) -> int:
    from slimcli.benchmark import BenchmarkConfig, format_result, run_benchmark
    config = BenchmarkConfig(**{f.name: fv[f.name].value
                                for f in dataclasses.fields(BenchmarkConfig)})
    print(format_result(run_benchmark(config)))
    return 0


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-benchmark", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
