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
def test_installed_command_rejects_an_unknown_flag_in_one_line_with_exit_2(command):
    """The console script itself, as a user runs it (one process per command)."""
    path = os.path.join(os.path.dirname(sys.executable), command)
    assert os.path.exists(path), f"{command} is not installed next to {sys.executable}"
    bad = subprocess.run([path, "--no_such_flag=1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith(f"{command}: error:")]
    assert len(errors) == 1 and "no_such_flag" in errors[0] and "--help" in errors[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_answers_help(command, capsys):
    """--help, in-process (test_bin.py runs every launcher's --help in a process of its own)."""
    import importlib

    from slimcli.cli.base import run_cli
    module = importlib.import_module(f"slimcli.cli.{MODULES[command]}")
    assert run_cli(module.define_flags, module.main, command, "", [command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {command} [--flag=value ...]")
    assert "--alsologtostderr" in out or "logging flags" in out


MODULES = {"slim-download": "download", "slim-train": "train", "slim-eval": "evaluate",
           "slim-export": "export", "slim-freeze": "freeze", "slim-predict": "predict",
           "slim-benchmark": "benchmark"}


@pytest.mark.parametrize("command", COMMANDS)
def test_aliases_and_absl_logging_flags_parse(command):
    import importlib

    from slimcli.cli.base import parse_flags
    module = importlib.import_module(f"slimcli.cli.{MODULES[command]}")
    fv = parse_flags(module.define_flags, [command, "--alsologtostderr", "--logtostderr",
                                           "-v", "1", "--stderrthreshold=error"], command, "")
    assert fv.alsologtostderr and fv.verbosity == 1
    fv = parse_flags(module.define_flags, [command, "--verbosity=0"], command, "")
    for alias, target in (("dataset", "dataset_name"), ("model", "model_name")):
        if target not in fv:
            continue
        fv = parse_flags(module.define_flags, [command, f"--{alias}", "flowers"], command, "")
        assert fv[target].value == "flowers", (command, alias)
        fv = parse_flags(module.define_flags, [command, f"--{alias}=lenet"], command, "")
        assert fv[target].value == "lenet", (command, alias)


def test_every_command_with_a_dataset_or_model_takes_the_aliases():
    import importlib

    from absl import flags
    with_aliases = set()
    for command, module_name in MODULES.items():
        fv = flags.FlagValues()
        importlib.import_module(f"slimcli.cli.{module_name}").define_flags(fv)
        with_aliases |= {(command, a) for a in ("dataset", "model") if a in fv}
        assert ("dataset" in fv) == ("dataset_name" in fv) and ("model" in fv) == \
            ("model_name" in fv), command
    assert ("slim-download", "dataset") in with_aliases and ("slim-train", "model") in with_aliases


def test_a_command_keeps_tensorflows_start_up_lines_off_the_terminal(tmp_path):
    """No `cuInit` or "cuda drivers" lines (a machine without a GPU prints both otherwise)."""
    path = os.path.join(os.path.dirname(sys.executable), "slim-export")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([path, "--model", "lenet", "--dataset_name=mnist",
                             f"--output_file={tmp_path / 'g.pb'}"],
                            capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "input" in result.stdout and (tmp_path / "g.pb").exists()
    for line in (result.stdout + result.stderr).splitlines():
        assert "cuInit" not in line and "cuda drivers" not in line, line
