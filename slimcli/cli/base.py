"""What every slimcli command shares: flag parsing, --help, one-line errors.

Each command defines its flags on its own `absl.flags.FlagValues` (never the
global FLAGS), so commands can be run in-process by tests and by each other.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable, Sequence

from absl import flags

from slimcli.errors import SlimError

DefineFlags = Callable[[flags.FlagValues], None]
Main = Callable[[flags.FlagValues], int | None]


def parse_flags(define_flags: DefineFlags, argv: Sequence[str], prog: str,
                description: str) -> flags.FlagValues | None:
    """Parses `argv` (program name first) into a fresh FlagValues.

    Returns None after printing help when `--help`/`-h` is given.

    Raises:
      SlimError: an unknown flag or a bad value, with the flag named.
    """
    fv = flags.FlagValues()
    define_flags(fv)
    args = list(argv)
    if any(a in ("-h", "--help", "--helpfull", "-?") for a in args[1:]):
        print(f"usage: {prog} [--flag=value ...]\n\n{description.strip()}\n")
        print(fv.get_help(include_special_flags=False))
        return None
    try:
        rest = fv(args)
    except flags.Error as e:
        raise SlimError(f"{e}. Run `{prog} --help` for the list of flags.") from None
    if len(rest) > 1:
        raise SlimError(f"unexpected argument {rest[1]!r}: {prog} takes only --flag=value "
                        f"arguments. Run `{prog} --help`.")
    return fv


def run_cli(define_flags: DefineFlags, main: Main, prog: str, description: str,
            argv: Sequence[str] | None = None) -> int:
    """Runs a command: returns its exit status (0 ok, 2 bad input)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = list(sys.argv if argv is None else argv)
    try:
        fv = parse_flags(define_flags, argv, prog, description)
        if fv is None:
            return 0
        status = main(fv)
        return int(status or 0)
    except SlimError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - only the input pipeline's own checks are caught
        message = _pipeline_error(e)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _pipeline_error(error: Exception) -> str | None:
    """The one-line message of a data error the input pipeline raised through TensorFlow."""
    if "tensorflow" not in type(error).__module__:
        return None
    from slimcli.input import pipeline_error_message
    return pipeline_error_message(error)


def exit_with(status: int) -> None:
    sys.exit(status)
