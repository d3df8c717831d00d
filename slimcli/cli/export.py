"""`slim-export`: Export an inference GraphDef (and SavedModel/TFLite).

    slim-export --model_name=inception_v3 --dataset_name=flowers --output_file=/tmp/inf_graph.pb

Prints the input/output node names and the preprocessing a client must apply.
"""

from __future__ import annotations

import dataclasses
import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.export import TFLITE_QUANTIZE_MODES, ExportConfig, describe, export

DESCRIPTION = "Export an inference GraphDef (and SavedModel/TFLite)."


def define_flags(fv: flags.FlagValues) -> None:
    """The original export_inference_graph flags, then slimcli's additions."""
    flags.DEFINE_string("model_name", "inception_v3", "The name of the net to export.",
                        flag_values=fv)
    flags.DEFINE_boolean("is_training", False, "Export the training-mode graph.", flag_values=fv)
    flags.DEFINE_integer("image_size", None, "Input height and width; default: the net's size.",
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", None, "Batch size of the input; default: dynamic.",
                         flag_values=fv)
    flags.DEFINE_string("dataset_name", "imagenet", "The dataset, for its number of classes.",
                        flag_values=fv)
    flags.DEFINE_integer("labels_offset", 0, "Classes dropped from the dataset's count "
                         "(1 for 1000-class checkpoints on ImageNet's 1001).", flag_values=fv)
    flags.DEFINE_string("output_file", "", "Where to write the GraphDef.", flag_values=fv)
    flags.DEFINE_string("dataset_dir", "", "The dataset's TFRecords (int8 TFLite calibration).",
                        flag_values=fv)
    flags.DEFINE_boolean("write_text_graphdef", False, "Write the GraphDef as text (pbtxt).",
                         flag_values=fv)
    flags.DEFINE_boolean("use_grayscale", False, "A 1-channel (grayscale) input.", flag_values=fv)
    flags.DEFINE_integer("num_classes", None, "Overrides the dataset's number of classes.",
                         flag_values=fv)
    flags.DEFINE_string("checkpoint_path", "", "Freeze with this checkpoint (prefix or directory): "
                        "--output_file gets the frozen graph.", flag_values=fv)
    flags.DEFINE_string("saved_model_dir", "", "Also write a SavedModel (needs --checkpoint_path).",
                        flag_values=fv)
    flags.DEFINE_string("tflite_file", "", "Also write a TFLite model (needs --checkpoint_path).",
                        flag_values=fv)
    flags.DEFINE_enum("tflite_quantize", "none", TFLITE_QUANTIZE_MODES,
                      "TFLite quantization; int8 is calibrated on --dataset_dir.", flag_values=fv)
    flags.DEFINE_integer("calibration_steps", 20, "Images from --dataset_dir for int8 calibration.",
                         flag_values=fv)


def main(fv: flags.FlagValues) -> int:
    config = ExportConfig(**{f.name: fv[f.name].value for f in dataclasses.fields(ExportConfig)})
    print(describe(export(config)))
    return 0


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-export", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
