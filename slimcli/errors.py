"""The one exception type the command-line tools turn into a one-line error."""


class SlimError(ValueError):
    """A user-facing error: the message names the bad value and the fix.

    Command-line entry points print `error: <message>` and exit with status 2.
    Library callers can catch it as a `ValueError`.
    """
