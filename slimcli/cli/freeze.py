"""`slim-freeze`: Freeze a GraphDef with a checkpoint's values.

    slim-freeze --input_graph=/tmp/inf_graph.pb --input_binary=true \\
      --input_checkpoint=/tmp/train/model.ckpt-N --output_graph=/tmp/frozen.pb \\
      --output_node_names=InceptionV3/Predictions/Reshape_1

Flags are TensorFlow freeze_graph's; `input_saver`, `restore_op_name`,
`filename_tensor_name`, `input_meta_graph` and `checkpoint_version` are
accepted and unused (the checkpoint is read by variable name).
"""

from __future__ import annotations

import dataclasses
import logging
import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.errors import SlimError
from slimcli.freeze import FreezeConfig, freeze

DESCRIPTION = "Freeze a GraphDef with a checkpoint's values."
UNUSED_FLAGS = ("input_saver", "restore_op_name", "filename_tensor_name", "input_meta_graph")


def define_flags(fv: flags.FlagValues) -> None:
    """TensorFlow freeze_graph's flags."""
    s, b = flags.DEFINE_string, flags.DEFINE_boolean
    s("input_graph", "", "The GraphDef file to freeze.", flag_values=fv)
    s("input_saver", "", "Accepted for compatibility; unused.", flag_values=fv)
    s("input_checkpoint", "", "Checkpoint prefix (or directory) with the values.", flag_values=fv)
    flags.DEFINE_integer("checkpoint_version", 2, "Accepted for compatibility (V1 and V2 "
                         "checkpoints are both read).", flag_values=fv)
    s("output_graph", "", "Where to write the frozen GraphDef (binary).", flag_values=fv)
    b("input_binary", False, "Whether --input_graph is binary (the other format is tried too).",
      flag_values=fv)
    s("output_node_names", "", "Comma-separated output node names.", flag_values=fv)
    s("restore_op_name", "save/restore_all", "Accepted for compatibility; unused.", flag_values=fv)
    s("filename_tensor_name", "save/Const:0", "Accepted for compatibility; unused.",
      flag_values=fv)
    b("clear_devices", True, "Remove device placements.", flag_values=fv)
    s("initializer_nodes", "", "Comma-separated nodes kept next to the outputs.", flag_values=fv)
    s("variable_names_whitelist", "", "Only these variables become constants.", flag_values=fv)
    s("variable_names_blacklist", "", "These variables stay variables.", flag_values=fv)
    s("variable_names_denylist", "", "Newer TensorFlow's name for --variable_names_blacklist.",
      flag_values=fv)
    s("input_meta_graph", "", "Accepted for compatibility; unused.", flag_values=fv)
    s("input_saved_model_dir", "", "Freeze this SavedModel instead of --input_graph.",
      flag_values=fv)
    s("saved_model_tags", "serve", "Tags of the SavedModel's MetaGraph, comma-separated.",
      flag_values=fv)


def main(fv: flags.FlagValues) -> int:
    for name in UNUSED_FLAGS:
        if fv[name].present:
            logging.info("--%s is accepted for compatibility and not used.", name)
    if fv.checkpoint_version not in (1, 2):
        raise SlimError(f"--checkpoint_version={fv.checkpoint_version} must be 1 or 2.")
    values = {f.name: fv[f.name].value for f in dataclasses.fields(FreezeConfig)}
    denied = ",".join(v for v in (fv.variable_names_blacklist, fv.variable_names_denylist) if v)
    config = FreezeConfig(**{**values, "variable_names_blacklist": denied})
    freeze(config)
    return 0


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-freeze", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
