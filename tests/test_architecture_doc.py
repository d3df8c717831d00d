"""docs/ARCHITECTURE.md names only files and folders that exist.

Every path it writes in backticks (`slimcli/input/stream.py`, `bin/`, ...) must
exist in the checkout, and every bare module name in a package's table row
(`records.py` in the `slimcli/input/` row) must exist in that package, so the
map cannot drift from the house as modules move.
"""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
TOP_LEVEL = ("slimcli/", "bin/", "scripts/", "tests/", "cc/", "docs/")
CODE = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
GENERATED = ("bin/label_image",)  # built, not committed; its folder must exist
PLACEHOLDER = "<"  # `slimcli/nets/<family>.py` names a file to write


def _paths(text: str) -> list[str]:
    return [c for c in CODE.findall(text) if c.startswith(TOP_LEVEL) and " " not in c]


def test_every_named_path_exists():
    text = FENCE.sub("", DOC.read_text())
    paths = _paths(text)
    assert len(paths) > 30, "the map names the modules it describes"
    missing = []
    for path in paths:
        if PLACEHOLDER in path:  # a file to write: its siblings must exist
            path = path.split(PLACEHOLDER)[0] + "*"
        if path.startswith(GENERATED):
            path = "bin/"
        found = list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()
        if not found:
            missing.append(path)
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_module_of_a_package_row_exists():
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `slimcli/")]
    checked = 0
    for row in rows:
        package = CODE.findall(row)[0]
        if not package.endswith("/"):
            continue
        for name in CODE.findall(row):
            if re.fullmatch(r"\w+\.py", name):
                assert (ROOT / package / name).is_file(), f"{package}{name} is in the map only"
                checked += 1
    assert checked > 20


def test_every_package_of_slimcli_is_on_the_map():
    text = DOC.read_text()
    packages = sorted(p.parent.relative_to(ROOT).as_posix() + "/"
                      for p in (ROOT / "slimcli").glob("*/__init__.py"))
    assert packages
    unmapped = [p for p in packages if f"`{p}`" not in text]
    assert not unmapped, f"packages missing from docs/ARCHITECTURE.md: {unmapped}"
