"""`slim-export`: Export an inference GraphDef (and SavedModel/TFLite).

    slim-export --model_name=inception_v3 --dataset_name=flowers --output_file=/tmp/inf_graph.pb

Prints the input/output node names and the preprocessing a client must apply.
Flags: the fields of `slimcli.export.ExportConfig`.
"""

from __future__ import annotations

from slimcli.cli.base import Command


def _export(config) -> None:
    from slimcli.export import describe, export
    print(describe(export(config)))


COMMAND = Command("slim-export", "Export an inference GraphDef (and SavedModel/TFLite).",
                  "slimcli.export:ExportConfig", _export)
define_flags, main, run = COMMAND.define_flags, COMMAND.main, COMMAND.run

if __name__ == "__main__":
    run()
