"""bin/: one launcher per console script of setup.cfg, runnable from a checkout with no install."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bin")

# Runs each launcher's code as `bin/<cmd> --help` would, in one process (one TensorFlow
# import for all), and prints {launcher: (exit code, first line of its output)} as JSON.
_HELP_DRIVER = """
import contextlib, io, json, runpy, sys
sys.path.insert(0, sys.argv[1])
seen = {}
for path in sys.argv[2:]:
    sys.argv, out = [path, "--help"], io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        code = "returned without exiting"
    except SystemExit as e:
        code = e.code or 0
    seen[path] = (code, out.getvalue().strip().splitlines()[:1])
print("RESULT " + json.dumps(seen))
"""


def _console_scripts() -> dict[str, str]:
    """{command: module} from setup.cfg's console_scripts."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip())
    return {name.strip(): target.strip().split(":")[0] for name, target in pairs}


def _env_with_this_python() -> dict[str, str]:
    """PATH led by this interpreter's directory, so `#!/usr/bin/env python3` finds it."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "PATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_every_console_script_has_an_executable_launcher_naming_its_module():
    scripts = _console_scripts()
    assert len(scripts) >= 7
    for name, module in scripts.items():
        path = os.path.join(BIN, name)
        assert os.path.isfile(path), f"bin/{name} missing for setup.cfg's console script"
        assert os.access(path, os.X_OK), f"bin/{name} is not executable"
        with open(path) as f:
            text = f.read()
        assert text.startswith("#!/usr/bin/env python3\n")
        assert f'launch("{module}")' in text, f"bin/{name} does not run {module}"


def test_every_launcher_help_exits_0():
    scripts = _console_scripts()
    paths = [os.path.join(BIN, name) for name in scripts]
    result = subprocess.run([sys.executable, "-c", _HELP_DRIVER, BIN, *paths],
                            capture_output=True, text=True, timeout=600,
                            env=_env_with_this_python(), cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    seen = json.loads(lines[-1][len("RESULT "):])
    for name, path in zip(scripts, paths):
        code, first_line = seen[path]
        assert code == 0, f"bin/{name} --help exited {code}"
        assert first_line == [f"usage: {name} [--flag=value ...]"], (name, first_line)


def test_launcher_runs_the_slimcli_of_its_own_checkout(tmp_path):
    """A launcher copied into another tree runs that tree's slimcli, not the installed one,
    from any working directory and through a symbolic link, and passes on the exit code."""
    checkout = tmp_path / "checkout"
    (checkout / "bin").mkdir(parents=True)
    for name in ("_launcher.py", "slim-train"):
        shutil.copy2(os.path.join(BIN, name), checkout / "bin" / name)
    cli = checkout / "slimcli" / "cli"
    cli.mkdir(parents=True)
    (checkout / "slimcli" / "__init__.py").write_text("")
    (cli / "__init__.py").write_text("")
    (cli / "train.py").write_text("import sys\n\n\ndef run():\n"
                                  "    print(__file__, sys.argv[1:])\n    return 3\n")
    link = tmp_path / "elsewhere" / "my-train"
    link.parent.mkdir()
    os.symlink(checkout / "bin" / "slim-train", link)
    for launcher in (checkout / "bin" / "slim-train", link):
        result = subprocess.run([str(launcher), "--x=1"], capture_output=True, text=True,
                                timeout=60, env=_env_with_this_python(), cwd=str(tmp_path))
        assert result.returncode == 3, result.stderr
        assert result.stdout.strip() == f"{cli / 'train.py'} ['--x=1']"
