"""slim-benchmark: the modes on tiny runs, the Keras comparison, FLOPs, the timing arithmetic."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datasets_helpers import convert_folder
from slimcli import benchmark, precision
from slimcli.benchmark import BenchmarkConfig, run_benchmark
from slimcli.cli import benchmark as benchmark_cli
from slimcli.cli.base import run_cli
from slimcli.errors import SlimError

TINY = dict(warmup_steps=1, steps=2, repeats=2, min_run_seconds=0.0)


def _cli(argv: list[str]) -> int:
    return run_cli(benchmark_cli.define_flags, benchmark_cli.main, "slim-benchmark", "",
                   ["slim-benchmark", *argv])


def test_all_modes_on_synthetic_data_print_and_write_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert _cli(["--model_name=lenet", "--batch_size=4", "--warmup_steps=1", "--steps=2",
                 "--repeats=2", "--min_run_seconds=0", f"--output_json={out}"]) == 0
    printed = capsys.readouterr().out
    assert "lenet at 28x28, batch 4 x 1 replica(s), float32, data synthetic" in printed
    assert "GFLOPs per image" in printed and "% of peak" in printed
    result = json.loads(out.read_text())
    assert set(result) >= {"train", "inference", "gflops_per_image", "machine_peak_gflops"}
    assert "input" not in result  # synthetic data: no pipeline to time
    for mode in ("train", "inference"):
        figures = result[mode]
        assert len(figures["rates"]) == 2
        assert figures["min"] <= figures["images_per_sec"] <= figures["max"]
        assert figures["step_time_ms"] == pytest.approx(4000.0 / figures["images_per_sec"])
        assert figures["peak_host_memory_mb"] > 0 and figures["peak_device_memory_mb"] is None
    # LeNet's forward pass, counted from its layers (a multiply-add is 2 FLOPs).
    macs = 28 * 28 * 5 * 5 * 3 * 32 + 14 * 14 * 5 * 5 * 32 * 64 + 7 * 7 * 64 * 1024 + 1024 * 10
    assert result["gflops_per_image"] == pytest.approx(2 * macs / 1e9, rel=0.02)


def test_compare_keras_reports_the_ratio_in_the_same_run():
    result = run_benchmark(BenchmarkConfig(model_name="cifarnet", mode="all", batch_size=4,
                                           compare_keras=True, **TINY))
    for mode in ("train", "inference"):
        keras = result[mode]["keras"]
        assert keras["images_per_sec"] > 0 and 0 < keras["peak_fraction"]
        # Paired: the median of ours / Keras's, repeat by repeat.
        ours = result[mode]["rates"]
        assert result[mode]["ratio_to_keras"] == pytest.approx(
            float(np.median([a / b for a, b in zip(ours, keras["rates"])])))
    # The Sequential twin has our layers, so the same forward FLOPs.
    assert result["keras_gflops_per_image"] == pytest.approx(result["gflops_per_image"], rel=0.02)
    text = benchmark.format_result(result)
    assert "keras 3 fit:" in text and "keras 3 predict:" in text


def test_keras_twin_lookup_covers_lenet_and_not_alexnet():
    result = run_benchmark(BenchmarkConfig(model_name="lenet", mode="inference", batch_size=2,
                                           compare_keras=True, image_size=28, **TINY))
    assert "keras" in result["inference"]  # lenet has a same-shape Sequential twin
    assert benchmark.keras_model("alexnet_v2", 224, 3, 10) is None


def test_keras_twins_have_our_parameter_counts():
    for name, size, classes in (("lenet", 28, 10), ("cifarnet", 32, 10)):
        from slimcli.nets import get_network_fn
        net = get_network_fn(name, classes)
        net.build([1, size, size, 3])
        ours = sum(int(np.prod(v.shape)) for v in net.trainable_variables)
        assert benchmark.keras_model(name, size, 3, classes).count_params() == ours, name


def test_keras_equivalents_exist_in_keras_applications():
    keras = pytest.importorskip("keras")
    for name, (cls_name, _) in benchmark.KERAS_EQUIVALENTS.items():
        assert cls_name == "Sequential" or hasattr(keras.applications, cls_name), name


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_data")
    rng = np.random.RandomState(0)
    for c in range(2):
        os.makedirs(root / "images" / f"class{c}")
        for i in range(12):
            Image.fromarray((rng.rand(30, 30, 3) * 255).astype(np.uint8)).save(
                root / "images" / f"class{c}" / f"{i}.png")
    return convert_folder(root / "images", root / "data", "--noprogress")


def test_real_data_times_the_input_pipeline_and_reads_the_descriptor(folder_dataset):
    result = run_benchmark(BenchmarkConfig(model_name="lenet", mode="all", batch_size=4,
                                           data=folder_dataset, **TINY))
    assert set(result) >= {"train", "inference", "input"}
    assert result["num_classes"] == 2  # from the dataset, not the net's default
    assert result["input"]["images_per_sec"] > 0
    only_input = run_benchmark(BenchmarkConfig(model_name="lenet", mode="input", batch_size=4,
                                               data=folder_dataset, **TINY))
    assert set(only_input) & {"train", "inference"} == set()


def test_compare_synthetic_times_both_inputs_in_one_run(folder_dataset, capsys):
    result = run_benchmark(BenchmarkConfig(model_name="lenet", mode="train", batch_size=4,
                                           data=folder_dataset, compare_synthetic=True, **TINY))
    train = result["train"]
    assert len(train["synthetic"]["rates"]) == len(train["rates"]) == 2
    assert train["ratio_to_synthetic"] == pytest.approx(
        float(np.median([a / b for a, b in zip(train["rates"], train["synthetic"]["rates"])])))
    assert "real / synthetic = " in benchmark.format_result(result)
    assert _cli(["--model_name=lenet", "--compare_synthetic"]) == 2
    assert "--compare_synthetic times real data beside generated data and needs " \
        "--data=DATASET_DIR" in capsys.readouterr().err


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    assert _cli(["--model_name=lenet", "--mode=input"]) == 2
    assert "--mode=input times the input pipeline and needs --data=DATASET_DIR" in \
        capsys.readouterr().err
    assert _cli(["--model_name=lenet", "--steps=0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
    assert _cli(["--model_name=lenett"]) == 2
    assert "lenet" in capsys.readouterr().err
    assert _cli(["--model_name=lenet", f"--data={tmp_path / 'none'}"]) == 2
    assert "is neither 'synthetic' nor a directory" in capsys.readouterr().err
    with pytest.raises(SlimError, match="'int8' is not one of float16, bfloat16"):
        BenchmarkConfig(mixed_precision_dtype="int8").validate()
    assert _cli(["--model_name=lenet", "--precision=fp8"]) == 2
    assert "--precision='fp8' is not one of float32, bfloat16, float16, auto" in \
        capsys.readouterr().err


def test_bfloat16_run_times_float32_beside_it_and_prints_the_whole_picture(capsys):
    assert _cli(["--model_name=lenet", "--batch_size=4", "--precision=bfloat16",
                 "--compare_keras", "--warmup_steps=1", "--steps=2", "--repeats=2",
                 "--min_run_seconds=0"]) == 0
    text = capsys.readouterr().out
    units = precision.describe_units()
    assert f"matrix units: {units}" in text and "CPU flags" in units  # no GPU here
    assert "lenet at 28x28, batch 4 x 1 replica(s), bfloat16" in text
    assert "GFLOP/s in bfloat16 (measured matmul), " in text and " in float32 = " in text
    for mode in ("train", "inference"):
        line = next(t for t in text.splitlines() if t.startswith(mode))
        after = text.splitlines()[text.splitlines().index(line) + 1:]
        gain = next(t for t in after if "same step in float32:" in t)
        assert "bfloat16 gain over float32 = " in gain and "% of the bfloat16 peak" in gain


def test_reduced_precision_figures_pair_float32_and_keras_runs_the_same_policy(monkeypatch):
    policies = []
    original = benchmark.keras_model

    def spy(*args):
        import keras
        policies.append(keras.mixed_precision.global_policy().name)
        return original(*args)
    monkeypatch.setattr(benchmark, "keras_model", spy)
    result = run_benchmark(BenchmarkConfig(model_name="lenet", mode="all", batch_size=4,
                                           mixed_precision=True, mixed_precision_dtype="bfloat16",
                                           compare_keras=True, **TINY))
    assert policies == ["mixed_bfloat16", "mixed_bfloat16"]  # fit and predict
    assert result["config"]["precision"] == "bfloat16" and result["peak_dtype"] == "bfloat16"
    assert result["float32_peak_gflops"] > 0 and result["machine_peak_gflops"] > 0
    assert result["machine"]["cpu_flags"] == list(precision.detect_matrix_units().cpu_flags)
    for mode in ("train", "inference"):
        figures, f32 = result[mode], result[mode]["float32"]
        assert f32["images_per_sec"] > 0 and len(f32["rates"]) == 2
        assert figures["ratio_to_float32"] == pytest.approx(float(np.median(
            [a / b for a, b in zip(figures["rates"], f32["rates"])])))
        assert f32["peak_fraction"] == pytest.approx(
            f32["gflops_per_sec"] / result["float32_peak_gflops"])
        assert figures["peak_fraction"] == pytest.approx(
            figures["gflops_per_sec"] / result["machine_peak_gflops"])
    # float32 itself: no second float32 run, one peak.
    plain = run_benchmark(BenchmarkConfig(model_name="lenet", mode="inference", batch_size=2,
                                          **TINY))
    assert "float32" not in plain["inference"]
    assert plain["float32_peak_gflops"] == plain["machine_peak_gflops"]


def test_time_steps_arithmetic(monkeypatch):
    clock = iter([0.0, 2.0, 10.0, 11.0])  # start and end of each timed run
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(clock))
    times = iter([0.0, 1.0, 0.0, 0.5])
    monkeypatch.setattr(benchmark.time, "process_time", lambda: next(times))
    calls = []
    figures = benchmark.time_steps(lambda: calls.append(1) or tf.constant(1.0), lambda x: x,
                                   images_per_step=8, warmup=1, steps=4, repeats=2)
    assert len(calls) == 1 + 2 * 4
    assert figures["rates"] == [16.0, 32.0]  # 32 images in 2 s, then in 1 s
    assert figures["images_per_sec"] == 24.0 and figures["min"] == 16.0
    assert figures["images_per_cpu_sec"] == pytest.approx(48.0)  # 32/1 and 32/0.5
    assert figures["steps"] == 4


def test_sides_take_turns_and_ratios_pair_repeats(monkeypatch):
    order = []
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(clock))
    sides = {name: (lambda n, name=name: order.append((name, n)), 1) for name in ("a", "b")}
    figures = benchmark.time_interleaved(sides, steps=5, repeats=3)
    assert order == [("a", 5), ("b", 5), ("b", 5), ("a", 5), ("a", 5), ("b", 5)]
    assert figures["a"]["rates"] == [5.0] * 3 and figures["b"]["steps"] == 5
    ours, theirs = {"rates": [10.0, 20.0, 30.0]}, {"rates": [5.0, 20.0, 10.0]}
    assert benchmark.paired_ratio(ours, theirs) == 2.0  # median of 2, 1 and 3


def test_prepare_runs_untimed_before_each_timed_run(monkeypatch):
    order = []
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(clock))
    sides = {name: (lambda n, name=name: order.append(("run", name)), 1) for name in ("a", "b")}
    figures = benchmark.time_interleaved(sides, steps=4, repeats=2,
                                         prepare=lambda name: order.append(("prepare", name)))
    assert order == [("prepare", "a"), ("run", "a"), ("prepare", "b"), ("run", "b"),
                     ("prepare", "b"), ("run", "b"), ("prepare", "a"), ("run", "a")]
    assert figures["a"]["rates"] == [4.0, 4.0]  # the clock ticks once per start and stop


def test_short_steps_are_timed_over_at_least_min_run_seconds(monkeypatch):
    clock = iter([0.0, 0.1] + [0.0, 1.0] * 2)  # the probe step takes 0.1 s
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(benchmark.time, "process_time", lambda: 0.0)
    figures = benchmark.time_steps(lambda: 1, lambda x: x, images_per_step=2, warmup=0,
                                   steps=3, repeats=2, min_run_seconds=1.0)
    assert figures["steps"] == 10 and figures["images_per_sec"] == 20.0


def test_flop_count_logs_no_deprecation_warning(caplog):
    """The profiler's FLOP rules call a deprecated TF1 helper; its warning stays off the log."""
    from tensorflow.python.util import deprecation
    deprecation._PRINTED_WARNING.clear()  # TensorFlow warns once per process: make it due
    forward = lambda x: tf.nn.conv2d(x, tf.ones([3, 3, 3, 4]), 1, "SAME")  # noqa: E731
    with caplog.at_level("WARNING", logger="tensorflow"):
        flops = benchmark.model_flops(forward, [1, 8, 8, 3])
    assert flops == 2 * 8 * 8 * 4 * 3 * 3 * 3
    assert "deprecated" not in caplog.text
