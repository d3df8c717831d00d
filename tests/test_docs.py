"""Runs every ```python block of the guides, in order, so the docs cannot drift from the code."""

from __future__ import annotations

import os
import re

import pytest

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs")
GUIDES = ["library.md"]


def python_blocks(path: str) -> list[tuple[int, str]]:
    text = open(path).read()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        line = text[:match.start()].count("\n") + 2
        blocks.append((line, match.group(1)))
    return blocks


@pytest.mark.parametrize("guide", GUIDES)
def test_guide_code_blocks_run(guide, tmp_path, monkeypatch):
    path = os.path.join(DOCS, guide)
    blocks = python_blocks(path)
    assert blocks, f"{guide} has no python blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for line, code in blocks:
        exec(compile(code, f"{path}:{line}", "exec"), namespace)  # noqa: S102


def _gen_docs():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "scripts", "gen_docs.py")
    spec = importlib.util.spec_from_file_location("gen_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_generated_sections_are_up_to_date():
    gen_docs = _gen_docs()
    with open(os.path.join(gen_docs.ROOT, "README.md")) as f:
        text = f.read()
    names = re.findall(r"<!-- generated:([\w:-]+) -->", text)
    assert sorted(names) == sorted(["nets", "flags:label_image",
                                    *(f"flags:{c}" for c in gen_docs.COMMANDS)])
    assert gen_docs.render(text) == text, "README.md is stale: run python scripts/gen_docs.py"


def test_readme_flag_tables_list_every_flag_of_every_command():
    from absl import flags
    gen_docs = _gen_docs()
    for command, module in gen_docs.COMMANDS.items():
        fv = flags.FlagValues()
        __import__(module, fromlist=["define_flags"]).define_flags(fv)
        table = gen_docs.flag_table(command)
        assert [f"--{name}" for name in fv] == re.findall(r"^\| `(--\w+)`", table, re.M)
    nets_rows = re.findall(r"^\| (\w+) \| \d+ \|", gen_docs.nets_table(), re.M)
    from slimcli.nets import list_nets
    assert sorted(nets_rows) == sorted(list_nets())
