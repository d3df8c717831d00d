"""--precision: parsing, `auto` from mocked host units, and bf16 accuracy parity with float32.

The parity tests fine-tune lenet from one float32 checkpoint in float32 and in
bfloat16 on the same generated, learnable data (the same batches in the same
order), then evaluate with slim-eval. Tolerances, stated once:
  - loss curves: over the first LOSS_STEPS steps each bf16 loss is within
    LOSS_TOLERANCE (relative) of the float32 loss of the same step;
  - accuracy: the bf16 run's top-1 is at least the float32 run's minus 1 point.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from datasets_helpers import convert_folder
from slimcli import evaluate, precision, slim
from slimcli import train as train_lib
from slimcli.cli import train as train_cli
from slimcli.cli.base import run_cli
from slimcli.distribute import make_strategy
from slimcli.errors import SlimError
from slimcli.nets import nets_factory
from slimcli.precision import GpuUnit, MatrixUnits
from slimcli.slim.time_budget import TRAIN_SECONDS_KEY

LOSS_STEPS = 10
LOSS_TOLERANCE = 0.05  # bf16 keeps 8 significant bits: ~0.4% a rounding, a few % through a net

SAPPHIRE_RAPIDS = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: "
                   "fpu sse2 avx avx2 fma f16c avx512f avx512_bf16 avx512_fp16 amx_bf16 amx_tile "
                   "amx_int8\n\nprocessor\t: 1\nflags\t\t: fpu\n")
ZEN4 = "model name\t: AMD EPYC 9654\nflags\t\t: fpu avx avx2 fma f16c avx512f avx512_bf16\n"
ZEN2 = "model name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx f16c avx2 fma\n"
SKYLAKE = "flags\t\t: fpu avx avx2 fma avx512f avx512bw\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd bf16 sve\n"


# ---------------------------------------------------------------- choosing
@pytest.mark.parametrize("cpuinfo,flags", [
    (SAPPHIRE_RAPIDS, ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_fp16",
                       "avx512f", "avx2", "fma", "f16c", "avx")),
    (ZEN2, ("avx2", "fma", "f16c", "avx")),
    (GRAVITON, ()),
    ("", ()),
])
def test_cpu_flags_come_from_the_first_flags_line(cpuinfo, flags):
    assert precision.parse_cpu_flags(cpuinfo) == flags


@pytest.mark.parametrize("cpuinfo,gpus,expected", [
    (SAPPHIRE_RAPIDS, (), "bfloat16"),                                   # AMX
    (ZEN4, (), "bfloat16"),                                              # AVX512-BF16 only
    (ZEN2, (), "float32"),                                               # this host's kind
    (SKYLAKE, (), "float32"),                                            # AVX-512, no bf16
    (ZEN2, (GpuUnit("NVIDIA H100 80GB HBM3", (9, 0)),), "bfloat16"),
    (ZEN2, (GpuUnit("NVIDIA A100-SXM4-40GB", (8, 0)),), "bfloat16"),
    (SAPPHIRE_RAPIDS, (GpuUnit("Tesla T4", (7, 5)),), "float32"),        # the GPU computes
    (ZEN2, (GpuUnit("AMD Instinct MI250", None),), "float32"),
])
def test_auto_resolves_from_the_host_units_and_says_so(cpuinfo, gpus, expected, caplog):
    units = precision.detect_matrix_units(cpuinfo=cpuinfo, gpus=gpus)
    with caplog.at_level(logging.INFO, logger="slimcli.precision"):
        assert precision.resolve("auto", units=units) == expected
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and f"--precision=auto: {expected}" in lines[0], lines
    assert (gpus[0].name if gpus else "CPU flags") in lines[0]


def test_gpu_names_and_compute_capability_come_from_tf_config(monkeypatch):
    devices = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: devices)
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda d: {
        "device_name": "NVIDIA H100 80GB HBM3", "compute_capability": (9, 0)})
    units = precision.detect_matrix_units(cpuinfo=ZEN2)
    assert units.gpus == (GpuUnit("NVIDIA H100 80GB HBM3", (9, 0)),) and units.has_bf16
    assert precision.describe_units(units) == \
        "GPU NVIDIA H100 80GB HBM3 (compute capability 9.0)"
    assert "no bf16 matrix unit" in str(MatrixUnits(precision.parse_cpu_flags(ZEN2)))


def test_explicit_precisions_map_to_dtypes_and_keras_policies():
    for name, dtype, policy in (("float32", tf.float32, "float32"),
                                ("bfloat16", tf.bfloat16, "mixed_bfloat16"),
                                ("float16", tf.float16, "mixed_float16")):
        assert precision.resolve(name) == name
        assert precision.compute_dtype(name) == dtype and precision.keras_policy(name) == policy


def test_mixed_precision_flags_map_onto_the_same_setting():
    cfg = train_lib.TrainConfig(mixed_precision=True, mixed_precision_dtype="bfloat16")
    assert cfg.compute_dtype == tf.bfloat16 and cfg.resolved().precision == "bfloat16"
    assert train_lib.TrainConfig(mixed_precision_dtype="bfloat16").compute_dtype == tf.float32
    agree = train_lib.TrainConfig(precision="float16", mixed_precision=True,
                                  mixed_precision_dtype="float16")
    assert agree.compute_dtype == tf.float16
    with pytest.raises(SlimError, match="disagree; pass only --precision"):
        precision.effective("bfloat16", True, "float16")


def _train_cli(argv):
    return run_cli(train_cli.define_flags, train_cli.main, "slim-train", "",
                   ["slim-train", *argv])


@pytest.mark.parametrize("bad", ["int8", "bf16", "Float32", ""])
def test_a_bad_precision_is_a_one_line_error_naming_it_and_the_choices(bad, capsys):
    with pytest.raises(SlimError) as error:
        precision.validate(bad)
    message = str(error.value)
    assert "\n" not in message and repr(bad) in message
    assert all(choice in message for choice in precision.PRECISIONS)
    for config in (train_lib.TrainConfig(precision=bad, synthetic_data=True),
                   evaluate.EvalConfig(precision=bad, dataset_dir="/data")):
        with pytest.raises(SlimError, match="float32, bfloat16, float16, auto"):
            config.validate()
    assert _train_cli([f"--precision={bad}", "--synthetic_data"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"--precision={bad!r}" in err


# ---------------------------------------------------------------- parity
CLASSES = 4


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """4 classes of 28x28 PNGs (a class = a fixed pattern + heavy noise), converted for real:
    60 training and 80 validation images."""
    root = tmp_path_factory.mktemp("precision_data")
    rng = np.random.RandomState(0)
    patterns = rng.uniform(0, 255, (CLASSES, 28, 28, 3))
    for c in range(CLASSES):
        os.makedirs(root / "images" / f"class{c}")
        for i in range(35):
            pixels = np.clip(patterns[c] * 0.5 + rng.uniform(0, 128, (28, 28, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / "images" / f"class{c}" /
                                                          f"{i}.png")
    return convert_folder(root / "images", root / "records", "--num_validation=80")


@pytest.fixture(scope="module")
def init_checkpoint(tmp_path_factory):
    """One float32 starting point both fine-tunes restore."""
    net = nets_factory.get_network_fn("lenet", CLASSES)
    net.build([None, 28, 28, 3])
    rng = np.random.RandomState(7)
    values = {n: (rng.randn(*v.shape) * 0.05).astype(np.float32)
              for n, v in net.variables_dict().items()}
    prefix = str(tmp_path_factory.mktemp("init") / "model.ckpt")
    slim.save_checkpoint(values, prefix)
    return prefix


def _fine_tune_config(dataset_dir, init_checkpoint, train_dir, precision_name, steps):
    return train_lib.TrainConfig(
        model_name="lenet", dataset_name="folder", dataset_dir=dataset_dir,
        train_dir=str(train_dir), checkpoint_path=init_checkpoint, precision=precision_name,
        batch_size=20, max_number_of_steps=steps, optimizer="momentum", learning_rate=0.01,
        learning_rate_decay_type="fixed", weight_decay=0.0, seed=3, save_summaries_secs=0,
        log_every_n_steps=1000, progress_bar=False, num_preprocessing_threads=1)


def _loss_curve(config, steps):
    run = train_lib.setup_training(config, make_strategy())
    train_lib.make_init_fn(config, run.network_fn)()
    iterator = run.iterator()
    return [float(run.step(iterator)["total_loss"]) for _ in range(steps)]


def test_bf16_loss_curve_follows_float32_over_the_first_steps(dataset_dir, init_checkpoint,
                                                              tmp_path, monkeypatch):
    # Dropout off: its random masks are drawn in the compute dtype, so they would differ.
    monkeypatch.setattr(nets_factory, "get_network_fn", functools.partial(
        nets_factory.get_network_fn, dropout_keep_prob=1.0))
    curves = {name: _loss_curve(_fine_tune_config(dataset_dir, init_checkpoint,
                                                  tmp_path / name, name, LOSS_STEPS),
                                LOSS_STEPS)
              for name in ("float32", "bfloat16")}
    f32, bf16 = np.array(curves["float32"]), np.array(curves["bfloat16"])
    assert f32[-1] < 0.8 * f32[0], f32  # it learns, so the curves say something
    np.testing.assert_allclose(bf16, f32, rtol=LOSS_TOLERANCE)


def _eval(dataset_dir, checkpoint, eval_dir, precision_name):
    config = evaluate.EvalConfig(
        model_name="lenet", dataset_name="folder", dataset_dir=dataset_dir,
        dataset_split_name="validation", checkpoint_path=str(checkpoint), eval_dir=str(eval_dir),
        batch_size=80, precision=precision_name, progress=False, confusion_matrix=False)
    return evaluate.run_evaluation(config)["eval/Accuracy"]


def test_bf16_fine_tune_matches_float32_accuracy_and_saves_float32_variables(
        dataset_dir, init_checkpoint, tmp_path):
    steps = 30
    accuracy, keys = {}, {}
    for name in ("float32", "bfloat16"):
        train_dir = tmp_path / name
        assert train_lib.train(_fine_tune_config(dataset_dir, init_checkpoint, train_dir, name,
                                                 steps)) == steps
        accuracy[name] = _eval(dataset_dir, train_dir, tmp_path / f"eval_{name}", "float32")
        reader = tf.train.load_checkpoint(str(train_dir))
        keys[name] = reader.get_variable_to_dtype_map()
    assert accuracy["float32"] >= 0.6, accuracy  # learnt well above chance (0.25)
    assert accuracy["bfloat16"] >= accuracy["float32"] - 0.01, accuracy
    # The bf16 run's checkpoint: the original names, every float variable float32.
    assert keys["bfloat16"] == keys["float32"]
    net = nets_factory.get_network_fn("lenet", CLASSES)
    net.build([None, 28, 28, 3])
    assert set(net.variables_dict()) <= set(keys["bfloat16"])
    assert {d for k, d in keys["bfloat16"].items()
            if d.is_floating and k != TRAIN_SECONDS_KEY} == {tf.float32}  # float64 seconds aside
    # Restored into float32 and evaluated in bf16: the same top-1 on the evaluation set.
    assert _eval(dataset_dir, tmp_path / "bfloat16", tmp_path / "eval_bf16_in_bf16",
                 "bfloat16") == accuracy["bfloat16"]
