"""`slim-eval`: Evaluate a checkpoint on a dataset split."""

from __future__ import annotations

import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.errors import SlimError

DESCRIPTION = "Evaluate a checkpoint on a dataset split."


def define_flags(fv: flags.FlagValues) -> None:
    pass


def main(fv: flags.FlagValues) -> int:
    raise SlimError("slim-eval is not implemented yet in this version of slimcli.")


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-eval", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
