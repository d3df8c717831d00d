"""What every slimcli command shares: flags from its config, --help, one-line errors,
absl's logging flags, and a quiet terminal.

A command is one `Command`: its config dataclass (whose fields are its flags, see
`slimcli.config`) and its library call. Running it goes the same way for every
command: generated flags → parsed → config → the library call, which validates the
config first. Flags live on a fresh `absl.flags.FlagValues` per run (never the
global FLAGS), so commands can be run in-process by tests and by each other.

TensorFlow's C++ start-up lines (`Could not find cuda drivers`, `failed call to
cuInit`, CPU-feature notes) are kept off the terminal: before TensorFlow is first
imported, `TF_CPP_MIN_LOG_LEVEL` is set to 3 unless the user set it, and what the
import itself prints is held back (shown only if the import fails). `--verbosity=1`
(`-v 1`) or a `TF_CPP_MIN_LOG_LEVEL` of one's own brings the lines back.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import logging
import os
import sys
import tempfile
from typing import Any, Callable, Iterator, NoReturn, Sequence

from absl import flags

from slimcli import config as config_lib
from slimcli.errors import SlimError

DefineFlags = Callable[[flags.FlagValues], None]
Main = Callable[[flags.FlagValues], int | None]

# absl's logging flags, taken by every command as absl programs take them.
LOGGING_FLAGS = ("logtostderr", "alsologtostderr", "log_dir", "verbosity", "logger_levels",
                 "stderrthreshold", "showprefixforinfo")
# TF_CPP_MIN_LOG_LEVEL while --verbosity is below 1: FATAL only (3 also hides cuInit's E line).
QUIET_TF_LOG_LEVEL = "3"


@dataclasses.dataclass(frozen=True)
class Command:
    """One slimcli command.

    Attributes:
      prog: the command's name (`slim-train`).
      description: the text `--help` prints above the flags.
      config: `"module:ConfigClass"`, imported only once TensorFlow's log level is set.
      call: the library call, `call(config) -> exit status or None`; it validates the
        config and prints what the command prints.
    """
    prog: str
    description: str
    config: str
    call: Callable[[Any], int | None]

    def config_class(self) -> type:
        module, name = self.config.split(":")
        return getattr(importlib.import_module(module), name)

    def define_flags(self, fv: flags.FlagValues) -> None:
        """The command's flags: one per flag field of its config, in field order."""
        config_lib.define_flags(self.config_class(), fv)

    def main(self, fv: flags.FlagValues) -> int | None:
        """Parsed flags → config → the library call."""
        return self.call(config_lib.from_flags(self.config_class(), fv))

    def run(self, argv: Sequence[str] | None = None) -> NoReturn:
        """The console-script entry point: runs the command and exits with its status."""
        sys.exit(run_cli(self.define_flags, self.main, self.prog, self.description, argv))


def define_logging_flags(fv: flags.FlagValues) -> None:
    """absl's logging flags (`--alsologtostderr`, `--verbosity`/`-v`, ...) on `fv`, as copies."""
    from absl import logging as _absl_logging  # noqa: F401 - defines them on flags.FLAGS
    for name in LOGGING_FLAGS:
        if name in flags.FLAGS and name not in fv:
            fv[name] = copy.deepcopy(flags.FLAGS[name])


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
        print("\nabsl's logging flags are taken too: --verbosity/-v (1 shows TensorFlow's "
              "start-up lines), --alsologtostderr, --logtostderr, --log_dir, ...")
        return None
    define_logging_flags(fv)
    try:
        rest = fv(args)
    except flags.Error as e:
        raise SlimError(f"{e}. Run `{prog} --help` for the list of flags.") from None
    if len(rest) > 1:
        raise SlimError(f"unexpected argument {rest[1]!r}: {prog} takes only --flag=value "
                        f"arguments. Run `{prog} --help`.")
    return fv


def requested_verbosity(argv: Sequence[str]) -> int:
    """The `--verbosity`/`-v` in `argv`, read before the command's own flags exist."""
    fv = flags.FlagValues()
    define_logging_flags(fv)
    try:
        fv(list(argv), known_only=True)
    except flags.Error:
        return 0  # the full parse reports it
    return fv.verbosity


def import_tensorflow_quietly(verbosity: int) -> None:
    """Imports TensorFlow with its C++ start-up lines kept off the terminal (see module doc).

    Does nothing when TensorFlow is already imported; imports it unchanged when
    `TF_CPP_MIN_LOG_LEVEL` is already set or `verbosity` is 1 or more.
    """
    if "tensorflow" in sys.modules:
        return
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or verbosity >= 1:
        import tensorflow  # noqa: F401
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_TF_LOG_LEVEL
    with _stderr_held() as held:
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            held.release()
            raise


class _Held:
    def __init__(self, file: Any, fd: int):
        self.file, self.fd = file, fd

    def release(self) -> None:
        """Writes what was held to the real stderr."""
        self.file.seek(0)
        os.write(self.fd, self.file.read())


@contextlib.contextmanager
def _stderr_held() -> Iterator[_Held]:
    """Sends file descriptor 2 (C++ logs write there directly) to a temporary file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield _Held(held, saved)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _configure_logging(fv: flags.FlagValues, prog: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger().setLevel(logging.DEBUG if fv.verbosity >= 1 else logging.INFO)
    if fv.log_dir:
        os.makedirs(fv.log_dir, exist_ok=True)
        handler = logging.FileHandler(os.path.join(fv.log_dir, f"{prog}.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(handler)


def run_cli(define_flags: DefineFlags, main: Main, prog: str, description: str,
            argv: Sequence[str] | None = None) -> int:
    """Runs a command: returns its exit status (0 ok, 2 bad input)."""
    argv = list(sys.argv if argv is None else argv)
    try:
        import_tensorflow_quietly(requested_verbosity(argv))
        fv = parse_flags(define_flags, argv, prog, description)
        if fv is None:
            return 0
        _configure_logging(fv, prog)
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
