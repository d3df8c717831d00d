"""slim-train as a command: flags and defaults, SIGKILL + resume, two local workers."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

from slimcli.cli import train as train_cli
from slimcli.cli.base import parse_flags, run_cli

ROOT = Path(__file__).resolve().parents[1]

# The original train_image_classifier flags and defaults (shared/reference/FLAGS.md §1.1).
ORIGINAL_FLAGS = {
    "master": "", "train_dir": "/tmp/tfmodel/", "num_clones": 1, "clone_on_cpu": False,
    "worker_replicas": 1, "num_ps_tasks": 0, "num_readers": 4, "num_preprocessing_threads": 4,
    "log_every_n_steps": 10, "save_summaries_secs": 600, "save_interval_secs": 600, "task": 0,
    "weight_decay": 0.00004, "optimizer": "rmsprop", "adadelta_rho": 0.95,
    "adagrad_initial_accumulator_value": 0.1, "adam_beta1": 0.9, "adam_beta2": 0.999,
    "opt_epsilon": 1.0, "ftrl_learning_rate_power": -0.5, "ftrl_initial_accumulator_value": 0.1,
    "ftrl_l1": 0.0, "ftrl_l2": 0.0, "momentum": 0.9, "rmsprop_momentum": 0.9,
    "rmsprop_decay": 0.9, "quantize_delay": -1, "learning_rate_decay_type": "exponential",
    "learning_rate": 0.01, "end_learning_rate": 0.0001, "label_smoothing": 0.0,
    "learning_rate_decay_factor": 0.94, "num_epochs_per_decay": 2.0, "sync_replicas": False,
    "replicas_to_aggregate": 1, "moving_average_decay": None, "dataset_name": "imagenet",
    "dataset_split_name": "train", "dataset_dir": None, "labels_offset": 0,
    "model_name": "inception_v3", "preprocessing_name": None, "batch_size": 32,
    "train_image_size": None, "max_number_of_steps": None, "use_grayscale": False,
    "checkpoint_path": None, "checkpoint_exclude_scopes": None, "trainable_scopes": None,
    "ignore_missing_vars": False,
}


def test_every_original_flag_parses_with_its_default():
    fv = parse_flags(train_cli.define_flags, ["slim-train"], "slim-train", "")
    for name, default in ORIGINAL_FLAGS.items():
        assert fv[name].value == default, name
    from slimcli.config import from_flags
    from slimcli.train import TrainConfig
    assert from_flags(TrainConfig, fv) == TrainConfig()


def test_bad_flags_are_one_line_errors(capsys):
    status = run_cli(train_cli.define_flags, train_cli.main, "slim-train", "",
                     ["slim-train", "--optimizer=adamw", "--dataset_dir=/x"])
    err = capsys.readouterr().err
    assert status == 2 and "unknown optimizer --optimizer='adamw'" in err and "adam" in err
    status = run_cli(train_cli.define_flags, train_cli.main, "slim-train", "",
                     ["slim-train", "--quantize_delay=5", "--precision=bfloat16",
                      "--dataset_dir=/x"])
    assert status == 2 and "computes in float32" in capsys.readouterr().err
    status = run_cli(train_cli.define_flags, train_cli.main, "slim-train", "",
                     ["slim-train", "--model_name=lenet"])
    assert status == 2 and "--dataset_dir is required" in capsys.readouterr().err


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _cmd(train_dir, *extra):
    return [sys.executable, "-m", "slimcli.cli.train", "--model_name=lenet", "--synthetic_data",
            f"--train_dir={train_dir}", "--batch_size=8", "--optimizer=sgd",
            "--learning_rate_decay_type=fixed", "--weight_decay=0", "--log_every_n_steps=1",
            "--save_summaries_secs=0", *extra]


def _step_of(prefix: str) -> int:
    return int(prefix.rsplit("-", 1)[-1])


def test_one_run_validates_and_makes_its_strategy_once(tmp_path, monkeypatch):
    from slimcli import train as train_lib
    calls = []
    validate, make_strategy = train_lib.TrainConfig.validate, train_lib.make_strategy
    monkeypatch.setattr(train_lib.TrainConfig, "validate",
                        lambda self: calls.append("validate") or validate(self))
    monkeypatch.setattr(train_lib, "make_strategy",
                        lambda *a, **k: calls.append("strategy") or make_strategy(*a, **k))
    argv = ["slim-train", "--model", "lenet", "--synthetic_data", f"--train_dir={tmp_path}",
            "--batch_size=4", "--max_number_of_steps=1", "--save_summaries_secs=0",
            "--alsologtostderr"]
    assert run_cli(train_cli.define_flags, train_cli.main, "slim-train", "", argv) == 0
    assert sorted(calls) == ["strategy", "validate"]


def test_sigkill_then_resume_from_last_checkpoint(tmp_path):
    train_dir = tmp_path / "train"
    proc = subprocess.Popen(_cmd(train_dir, "--max_number_of_steps=100000",
                                 "--save_interval_steps=3", "--save_interval_secs=0"),
                            env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            latest = tf.train.latest_checkpoint(str(train_dir)) if train_dir.exists() else None
            if latest and _step_of(latest) >= 6:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint at step >= 6 within the time limit")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    last = tf.train.latest_checkpoint(str(train_dir))
    saved = _step_of(last)
    assert int(tf.train.load_checkpoint(last).get_tensor("global_step")) == saved
    out = subprocess.run(_cmd(train_dir, f"--max_number_of_steps={saved + 2}"), env=_env(),
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"Resuming from {last}" in out.stderr
    steps = [int(m) for m in re.findall(r"global step (\d+): loss", out.stderr)]
    assert steps == [saved + 1, saved + 2]
    final = tf.train.latest_checkpoint(str(train_dir))
    assert _step_of(final) == saved + 2
    assert int(tf.train.load_checkpoint(final).get_tensor("global_step")) == saved + 2


def _free_ports(count):
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multi_worker_mirrored_two_local_workers(tmp_path):
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    train_dir = tmp_path / "train"
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            _cmd(train_dir, "--max_number_of_steps=3", "--seed=3"),
            env=_env(TF_CONFIG=json.dumps(tf_config)), cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=300)[0])
    finally:
        for proc in procs:
            proc.kill()
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out[-3000:]
    prints = [re.search(r"Finished training at global step 3 \(worker (\d)\); variables "
                        r"fingerprint (\S+)", out) for out in outputs]
    assert all(prints), outputs
    assert prints[0].group(2) == prints[1].group(2)
    assert sorted(p.name for p in train_dir.glob("*.index")) == ["model.ckpt-3.index"]
    assert "Saved checkpoint" in outputs[0] and "Saved checkpoint" not in outputs[1]
    config = json.loads((train_dir / "train_config.json").read_text())
    assert config["num_workers"] == 2 and config["num_replicas"] == 2


def _write_flowers_records(directory: Path, count: int = 40):
    """A tiny flowers-format split: PNG images whose colour tells the class."""
    directory.mkdir(parents=True)
    colors = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]
    path = directory / "flowers_train_00000-of-00005.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            label = i % 5
            image = tf.fill([40, 36, 3], 0) + tf.constant(colors[label], tf.int32)
            png = tf.io.encode_png(tf.cast(image, tf.uint8)).numpy()
            feature = {
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
                "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(
                    value=[label])),
                "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[40])),
                "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[36])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    (directory / "labels.txt").write_text("".join(f"{i}:c{i}\n" for i in range(5)))


def test_trains_on_flowers_records_through_the_input_pipeline(tmp_path, capsys):
    pytest.importorskip("slimcli.input")
    _write_flowers_records(tmp_path / "flowers")
    argv = ["slim-train", "--model_name=lenet", "--dataset_name=flowers",
            f"--dataset_dir={tmp_path / 'flowers'}", f"--train_dir={tmp_path / 'train'}",
            "--batch_size=8", "--max_number_of_steps=2", "--optimizer=sgd",
            "--save_summaries_secs=0", "--seed=1", "--use_grayscale"]
    assert run_cli(train_cli.define_flags, train_cli.main, "slim-train", "", argv) == 0
    reader = tf.train.load_checkpoint(str(tmp_path / "train"))
    assert int(reader.get_tensor("global_step")) == 2
    assert reader.get_variable_to_shape_map()["LeNet/conv1/weights"] == [5, 5, 1, 32]
    assert reader.get_variable_to_shape_map()["LeNet/fc4/weights"] == [1024, 5]
    config = json.loads((tmp_path / "train" / "train_config.json").read_text())
    assert config["num_classes"] == 5 and config["num_samples"] == 3320


def test_corrupt_record_stops_training_with_its_place_unless_skipped(tmp_path, capsys):
    _write_flowers_records(tmp_path / "flowers", count=12)
    path = tmp_path / "flowers" / "flowers_train_00000-of-00005.tfrecord"
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    bad = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x89PNG bad"])),
        "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}))
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records[:3] + [bad.SerializeToString()] + records[3:]:
            writer.write(record)
    argv = ["slim-train", "--model_name=lenet", "--dataset_name=flowers",
            f"--dataset_dir={tmp_path / 'flowers'}", "--batch_size=4", "--max_number_of_steps=8",
            "--optimizer=sgd", "--save_summaries_secs=0", "--seed=1"]
    assert run_cli(train_cli.define_flags, train_cli.main, "slim-train", "",
                   [*argv, f"--train_dir={tmp_path / 'failed'}"]) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("slim-train: error:")]
    assert f"corrupt record 3 of {path}" in error and "--skip_corrupt" in error
    assert run_cli(train_cli.define_flags, train_cli.main, "slim-train", "",
                   [*argv, f"--train_dir={tmp_path / 'train'}", "--skip_corrupt"]) == 0
    assert int(tf.train.load_checkpoint(str(tmp_path / "train")).get_tensor("global_step")) == 8
