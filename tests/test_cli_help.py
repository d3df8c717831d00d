"""The installed console commands: each is declared, on PATH next to this Python, and answers
--help (and an unknown flag is a one-line error)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest

COMMANDS = ["slim-download", "slim-train", "slim-eval", "slim-export", "slim-freeze",
            "slim-predict", "slim-benchmark"]


def test_the_commands_are_declared_entry_points():
    scripts = {ep.name: ep for ep in metadata.entry_points(group="console_scripts")
               if ep.value.startswith("slimcli.")}
    assert sorted(scripts) == sorted(COMMANDS)
    for ep in scripts.values():
        assert callable(ep.load())


@pytest.mark.parametrize("command", COMMANDS)
def test_command_answers_help_and_rejects_unknown_flags(command):
    path = os.path.join(os.path.dirname(sys.executable), command)
    assert os.path.exists(path), f"{command} is not installed next to {sys.executable}"
    result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: {command} [--flag=value ...]")
    bad = subprocess.run([path, "--no_such_flag=1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith(f"{command}: error:")]
    assert len(errors) == 1 and "no_such_flag" in errors[0] and "--help" in errors[0]
