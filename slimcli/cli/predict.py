"""`slim-predict`: Classify images with a frozen graph or a checkpoint (label_image in Python).

    slim-predict --graph=/tmp/frozen.pb --labels=/data/flowers/labels.txt --image=x.jpg
    slim-predict --model_name=inception_v3 --checkpoint_path=/tmp/train --image=x.jpg
"""

from __future__ import annotations

import dataclasses
import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.precision import PRECISION_HELP
from slimcli.predict import PredictConfig, format_results, predict

DESCRIPTION = "Classify images with a frozen graph or a checkpoint (label_image in Python)."


def define_flags(fv: flags.FlagValues) -> None:
    """label_image's flags, plus the net/checkpoint route."""
    s = flags.DEFINE_string
    s("image", "", "Image file(s) (JPEG, PNG, GIF, BMP), comma-separated.", flag_values=fv)
    s("graph", "", "Frozen GraphDef (.pb).", flag_values=fv)
    s("labels", "", "Labels file: `id:name` lines or one label per line.", flag_values=fv)
    s("model_name", "", "The net (picks the preprocessing and output node).", flag_values=fv)
    s("checkpoint_path", "", "Run --model_name from this checkpoint instead of a graph.",
      flag_values=fv)
    s("input_layer", "input", "Input node of --graph.", flag_values=fv)
    s("output_layer", "", "Output node of --graph; default: the net's prediction op.",
      flag_values=fv)
    s("preprocessing_name", "", "Preprocessing family; default: the net's.", flag_values=fv)
    flags.DEFINE_integer("image_size", None, "Input size; default: the graph's or the net's.",
                         flag_values=fv)
    flags.DEFINE_integer("num_classes", None, "Classes of the checkpoint; default: read from it.",
                         flag_values=fv)
    flags.DEFINE_boolean("use_grayscale", False, "1-channel input.", flag_values=fv)
    flags.DEFINE_float("input_mean", None, "label_image normalization: (pixel - mean) / std.",
                       flag_values=fv)
    flags.DEFINE_float("input_std", None, "label_image normalization: (pixel - mean) / std.",
                       flag_values=fv)
    flags.DEFINE_integer("top_k", 5, "How many results to print.", lower_bound=1, flag_values=fv)
    s("precision", "float32", PRECISION_HELP, flag_values=fv)


def main(fv: flags.FlagValues) -> int:
    config = PredictConfig(**{f.name: fv[f.name].value for f in dataclasses.fields(PredictConfig)})
    print(format_results(predict(config), config.labels, config.top_k))
    return 0


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-predict", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
