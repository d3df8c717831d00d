"""The README's main job, shrunk: the whole walkthrough through the installed console
commands as subprocesses (slim-download → slim-train → slim-eval → slim-export →
slim-freeze → the C++ label_image build → label_image and slim-predict), as a user runs it.
Where no C++ compiler exists, everything but the label_image build and run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from export_helpers import ROOT, cxx_available

WALKTHROUGH = os.path.join(ROOT, "scripts", "walkthrough.py")
CLASSES = ("circle", "square", "triangle", "cross")
COMMANDS = ("slim-download", "slim-train", "slim-eval", "slim-export", "slim-freeze",
            "slim-predict")
LABEL_IMAGE_COMMANDS = ("build_label_image.sh", "label_image --graph")


def test_quick_walkthrough_hands_off_between_every_command(tmp_path):
    with_cpp = cxx_available()
    summary_path = tmp_path / "summary.json"
    result = subprocess.run(
        [sys.executable, WALKTHROUGH, "--quick", f"--workdir={tmp_path / 'work'}",
         f"--summary_json={summary_path}"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    printed = [line for line in result.stdout.splitlines() if line.startswith("$ ")]
    for command in COMMANDS + LABEL_IMAGE_COMMANDS:
        ran = any(command in line for line in printed)
        assert ran == (with_cpp or command in COMMANDS), f"{command}: printed {ran}"
    summary = json.loads(summary_path.read_text())
    with open(tmp_path / "work" / "data" / "labels.txt") as f:
        names = [line.strip().split(":", 1)[1] for line in f if line.strip()]
    assert sorted(names) == sorted(CLASSES)
    # slim-predict reads the converter's labels.txt; label_image, where built, agrees with it.
    assert summary["slim_predict_top1"] in names
    if with_cpp:
        assert summary["label_image_top1"] == summary["slim_predict_top1"]
    else:
        assert summary["label_image_top1"] is None
        assert "skipping the C++ label_image build and run" in result.stdout
    assert 0.0 <= summary["accuracy"] <= 1.0
