"""scripts/bench_table.py: the goal table's row, from real slim-benchmark runs, into its region."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import bench_table  # noqa: E402


def test_goal_row_has_keras_and_paired_real_data_figures(tmp_path):
    out = tmp_path / "bench.md"
    out.write_text("# Benchmarks\n\nhand-written text\n")
    assert bench_table.main([f"--output={out}", "--skip_registry", "--goal_nets=lenet",
                             "--real_data_scale=0.01",
                             "--goal_timing=--warmup_steps=1,--steps=2,--repeats=2,"
                             "--min_run_seconds=0"]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nhand-written text\n")
    rows = [line for line in text.splitlines() if line.startswith("| lenet |")]
    assert len(rows) == 1, text
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    header = [line for line in text.splitlines() if line.startswith("| net |")][0]
    columns = dict(zip([c.strip() for c in header.split("|")[1:-1]], cells))
    assert columns["batch"] == "64" and columns["original TF-Slim"] == "2427"
    assert columns["Keras % of peak"].endswith("%") and columns["% of peak"].endswith("%")
    assert float(columns["slimcli/Keras"]) > 0
    ratio, kind = columns["real/synthetic"].split()
    assert float(ratio) > 0 and kind == "(mnist_like)"
    assert "error" not in rows[0]
