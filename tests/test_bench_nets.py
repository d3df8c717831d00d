"""scripts/bench_nets.py: a one-step run on LeNet, the table."""

from __future__ import annotations

import importlib.util
import os

import pytest

from slimcli import nets

_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", "bench_nets.py")
_spec = importlib.util.spec_from_file_location("bench_nets", _PATH)
bench_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_nets)


def test_one_step_run_gives_positive_rates_and_a_table(capsys):
    rows = bench_nets.main(["--models=lenet", "--batch_size=2", "--warmup=1", "--steps=1",
                            "--repeats=1"])
    assert [r["net"] for r in rows] == ["lenet"]
    assert rows[0]["ours_fwd"] > 0 and rows[0]["ours_train"] > 0
    assert rows[0]["keras_fwd"] > 0 and rows[0]["keras_train"] > 0  # its Sequential twin
    out = capsys.readouterr().out
    assert "| net | size | ours fwd | keras fwd |" in out and "| lenet | 28 |" in out


def test_unknown_model_and_bad_flags_exit_with_the_fix():
    with pytest.raises(SystemExit, match=r"unknown net --model_name='vgg_17'.*vgg_1"):
        bench_nets.main(["--models=vgg_17"])
    with pytest.raises(SystemExit):
        bench_nets.parse_args(["--steps=0"])


def test_table_shows_ratios_and_dashes():
    table = bench_nets.format_table([
        {"net": "vgg_16", "size": 224, "ours_fwd": 10.0, "keras_fwd": 5.0, "ours_train": 3.0,
         "keras_train": 4.0},
        {"net": "cifarnet", "size": 32, "ours_fwd": 100.0, "ours_train": 50.0}])
    assert "| vgg_16 | 224 | 10.0 | 5.0 | 3.0 | 4.0 | 2.00 | 0.75 |" in table
    assert "| cifarnet | 32 | 100.0 | — | 50.0 | — | — | — |" in table
    assert set(nets.list_nets()) >= {"lenet", "vgg_16"}
