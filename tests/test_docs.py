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
