"""`slim-freeze`: Freeze a GraphDef with a checkpoint's values.

    slim-freeze --input_graph=/tmp/inf_graph.pb --input_binary=true \\
      --input_checkpoint=/tmp/train/model.ckpt-N --output_graph=/tmp/frozen.pb \\
      --output_node_names=InceptionV3/Predictions/Reshape_1

Flags: the fields of `slimcli.freeze.FreezeConfig` (TensorFlow freeze_graph's).
"""

from __future__ import annotations

from slimcli.cli.base import Command


def _freeze(config) -> None:
    from slimcli.freeze import freeze
    freeze(config)


COMMAND = Command("slim-freeze", "Freeze a GraphDef with a checkpoint's values.",
                  "slimcli.freeze:FreezeConfig", _freeze)
define_flags, main, run = COMMAND.define_flags, COMMAND.main, COMMAND.run

if __name__ == "__main__":
    run()
