"""The README's main job, shrunk: the whole walkthrough through the installed console
commands as subprocesses (slim-download → slim-train → slim-eval → slim-export →
slim-freeze → the C++ label_image build → label_image and slim-predict), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from export_helpers import ROOT, cxx_available

WALKTHROUGH = os.path.join(ROOT, "scripts", "walkthrough.py")
CLASSES = ("circle", "square", "triangle", "cross")


def test_quick_walkthrough_hands_off_between_every_command(tmp_path):
    if not cxx_available():
        pytest.skip("no C++ compiler (g++ or $CXX): the label_image build cannot run")
    summary_path = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, WALKTHROUGH, "--quick", f"--workdir={tmp_path / 'work'}",
         f"--bin_dir={os.path.join(ROOT, 'build')}", f"--summary_json={summary_path}"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    printed = [line for line in result.stdout.splitlines() if line.startswith("$ ")]
    for command in ("slim-download", "slim-train", "slim-eval", "slim-export", "slim-freeze",
                    "build_label_image.sh", "label_image --graph", "slim-predict"):
        assert any(command in line for line in printed), f"{command} not printed"
    summary = json.loads(summary_path.read_text())
    with open(tmp_path / "work" / "data" / "labels.txt") as f:
        names = [line.strip().split(":", 1)[1] for line in f if line.strip()]
    assert sorted(names) == sorted(CLASSES)
    # label_image reads the converter's labels.txt and agrees with slim-predict.
    assert summary["label_image_top1"] in names
    assert summary["label_image_top1"] == summary["slim_predict_top1"]
    assert 0.0 <= summary["accuracy"] <= 1.0
