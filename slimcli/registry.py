"""One registry pattern for nets, preprocessing functions and datasets.

A `Registry` maps a name to an entry (any object, usually a small frozen
dataclass that carries everything about the thing). Lookups of unknown names
fail with a `SlimError` that lists the known names and the closest match.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from typing import Generic, Iterator, TypeVar

from slimcli.errors import SlimError

T = TypeVar("T")


def natural_key(name: str) -> list:
    """Sort key that orders `resnet_v1_50` before `resnet_v1_101`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class Registry(Generic[T]):
    """A name → entry table with helpful errors.

    Args:
      kind: what the entries are, used in messages (`net`, `dataset`, ...).
      flag: the command-line flag that selects an entry, used in messages.
    """

    def __init__(self, kind: str, flag: str):
        self.kind = kind
        self.flag = flag
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Adds `entry` under `name`; a second entry of the same name is an error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """Returns the entry of `name`.

        Raises:
          SlimError: the name is unknown; the message lists the known names
            and the closest match.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise SlimError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self._entries, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        known = ", ".join(self.names())
        return f"unknown {self.kind} {self.flag}={name!r}.{hint} Known: {known}."

    def names(self, pattern: str = "*") -> list[str]:
        """Names matching a shell-style wildcard, in natural order."""
        return sorted(fnmatch.filter(self._entries, pattern), key=natural_key)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
