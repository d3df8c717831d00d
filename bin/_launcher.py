"""Runs a slimcli command from the checkout this bin/ belongs to, with no `pip install`.

Each `bin/slim-*` file names the module of its command (as setup.cfg's console
script of the same name does) and calls `launch`. The checkout's root, found
from this file's own location through any symbolic links, goes first on
sys.path, so the slimcli beside bin/ is the one that runs even where another
is installed. The dependencies (TensorFlow, absl, ...) must be installed.
"""

from __future__ import annotations

import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def launch(module: str) -> None:
    """Imports `module` from this checkout and exits with what its `run()` returns."""
    sys.path.insert(0, ROOT)
    sys.exit(importlib.import_module(module).run())
