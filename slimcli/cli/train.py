"""`slim-train`: Train or fine-tune a net of the nets factory."""

from __future__ import annotations

import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.errors import SlimError

DESCRIPTION = "Train or fine-tune a net of the nets factory."


def define_flags(fv: flags.FlagValues) -> None:
    pass


def main(fv: flags.FlagValues) -> int:
    raise SlimError("slim-train is not implemented yet in this version of slimcli.")


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-train", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
