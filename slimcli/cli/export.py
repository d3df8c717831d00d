"""`slim-export`: Export an inference GraphDef (and SavedModel/TFLite)."""

from __future__ import annotations

import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.errors import SlimError

DESCRIPTION = "Export an inference GraphDef (and SavedModel/TFLite)."


def define_flags(fv: flags.FlagValues) -> None:
    pass


def main(fv: flags.FlagValues) -> int:
    raise SlimError("slim-export is not implemented yet in this version of slimcli.")


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-export", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
