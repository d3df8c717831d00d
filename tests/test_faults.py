"""Faults a trainer meets in real use (issue 20): divergence, a second run, a read-only or
full disk, corrupt or half-written checkpoints, leftovers of killed runs.

Most tests drive `slim.learning.train` with one lenet step built once for the module (its
learning rate is a variable, so a test can make it explode); a few go through `train()`.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from slimcli import optimization, slim, train_data
from slimcli import train as train_lib
from slimcli.cli import train as train_cli
from slimcli.cli.base import run_cli
from slimcli.errors import SlimError
from slimcli.nets import nets_factory
from slimcli.slim import checkpoints, learning
from slimcli.slim import train_dir as train_dir_lib
from slimcli.slim.train_dir import TrainDirLock, TrainDirLocked
from slimcli.slim.training_loop import CheckpointSaver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Lenet:
    """A lenet train step on generated data; `reset` puts it back at the same start."""

    POISON = "LeNet/fc4/biases"  # a NaN here makes every logit, so the loss, NaN on any CPU

    def __init__(self):
        self.net = nets_factory.get_network_fn("lenet", 10, is_training=True)
        self.net.build([None, 28, 28, 3])
        self.lr = tf.Variable(0.01, trainable=False)
        self.iterator = iter(train_data.synthetic_dataset(8, 28, 10, seed=1).repeat())

        def loss_fn(batch):
            images, labels = batch
            logits, _ = self.net(images)
            return slim.losses.softmax_cross_entropy(logits, tf.one_hot(labels, 10))
        self.step = learning.create_train_op(loss_fn, optimization.make_optimizer("sgd", {}),
                                             self.net, learning_rate=lambda step: self.lr)
        self.variables = {**self.net.variables_dict(), "global_step": self.step.global_step}
        self.start = {n: v.numpy() for n, v in self.variables.items()}

    def reset(self) -> "Lenet":
        for name, var in self.variables.items():
            var.assign(self.start[name])
        self.lr.assign(0.01)
        return self

    def poison(self):
        """Sets one weight to NaN, as an update that diverged would."""
        var = self.variables[self.POISON]
        var.assign(tf.fill(var.shape, np.nan))

    def run(self, logdir, steps, nan_after=None, **kw):
        """Trains in `logdir` up to `steps` (resuming what is there); with `nan_after`, the
        weights turn NaN once the global step reaches it (its loss is still finite)."""
        self.reset()

        def train_step():
            metrics = self.step(self.iterator)
            if nan_after is not None and int(self.step.global_step) == nan_after:
                self.poison()
            return metrics
        kw.setdefault("save_interval_secs", 0)
        kw.setdefault("save_summaries_secs", 0)
        return learning.train(train_step, str(logdir), variables_to_save=self.variables,
                              global_step=self.step.global_step, number_of_steps=steps,
                              progress_bar=False, **kw)


@pytest.fixture(scope="module")
def lenet_module():
    return Lenet()


@pytest.fixture
def lenet(lenet_module):
    """The module's lenet, reset: no test sees the weights another test left."""
    return lenet_module.reset()


def _values(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def _steps_on_disk(logdir):
    return sorted(checkpoints.checkpoint_step(p) for p in checkpoints.list_checkpoints(logdir))


def _config(train_dir, **kw):
    base = dict(model_name="lenet", synthetic_data=True, train_dir=str(train_dir),
                batch_size=8, max_number_of_steps=1, log_every_n_steps=100, weight_decay=0.0,
                optimizer="sgd", learning_rate=0.01, learning_rate_decay_type="fixed", seed=1,
                save_summaries_secs=0, save_interval_secs=0, progress_bar=False)
    base.update(kw)
    return train_lib.TrainConfig(**base)


# -- divergence --------------------------------------------------------------------------------

def test_exploded_checkpoint_is_set_aside_and_no_good_one_named(tmp_path):
    """A run saved finite but exploded weights (logits biases of +-3e38); the next run's loss
    is not finite at once. That checkpoint must not be resumed from again."""
    train_dir = tmp_path / "train"
    assert train_lib.train(_config(train_dir)) == 1
    values = _values(train_dir / "model.ckpt-1")
    values[Lenet.POISON] = np.where(np.arange(10) == 0, 3e38, -3e38).astype(np.float32)
    checkpoints.save_checkpoint(values, str(train_dir / "model.ckpt-1"))
    with pytest.raises(learning.TrainingDiverged) as err:
        train_lib.train(_config(train_dir, max_number_of_steps=3))
    message = str(err.value)
    assert "at global step 2" in message and "no good checkpoint" in message
    assert "diverged/model.ckpt-1" in message and "\n" not in message
    assert slim.latest_checkpoint(str(train_dir)) is None
    assert (train_dir / "diverged" / "model.ckpt-1.index").exists()


def test_divergence_names_the_good_checkpoint_and_a_resume_trains(lenet, tmp_path):
    assert lenet.run(tmp_path, 3) == 3
    with pytest.raises(learning.TrainingDiverged) as err:
        lenet.run(tmp_path, 20, nan_after=4, save_interval_steps=1)
    message = str(err.value)
    good = str(tmp_path / "model.ckpt-3")
    assert "loss is nan at global step 5" in message
    assert f"the last good checkpoint {good} is intact" in message
    assert _steps_on_disk(tmp_path) == [3]  # step 4's NaN weights were never written
    assert slim.latest_checkpoint(str(tmp_path)) == good
    assert all(np.isfinite(v).all() for v in _values(good).values())
    assert lenet.run(tmp_path, 6) == 6
    assert all(np.isfinite(v).all() for v in _values(tmp_path / "model.ckpt-6").values())


def test_nan_weights_when_summaries_are_due_end_with_the_divergence_error(lenet, tmp_path):
    """The last step leaves NaN weights; the final summaries (histograms of every weight)
    are due. The run ends with the divergence error, and the summaries written before are
    readable."""
    histograms = []

    def summary_fn(step):
        for name, value in learning.host_values(lenet.variables).items():
            histograms.append(name)
            slim.summaries.histogram(name, value)
    with pytest.raises(learning.TrainingDiverged) as err:
        lenet.run(tmp_path, 3, nan_after=3, summary_fn=summary_fn, save_summaries_secs=1e-9)
    assert str(err.value).startswith(f"variable {Lenet.POISON} is not finite at global step 3")
    assert _steps_on_disk(tmp_path) == []
    assert histograms and Lenet.POISON in histograms  # written before the weights went NaN


def test_slim_train_with_nan_weights_at_summary_time_exits_2_in_one_line(tmp_path, capsys):
    """slim-train, end of run: batch-norm moving means of NaN (training normalizes with the
    batch's statistics, so the loss stays finite) when the histograms are written."""
    net = nets_factory.get_network_fn("mobilenet_v1_025", 2, is_training=True)
    net.build([None, 32, 32, 3])
    values = {n: v.numpy() for n, v in net.variables_dict().items()}
    poisoned = "MobilenetV1/Conv2d_0/BatchNorm/moving_mean"
    values[poisoned] = np.full_like(values[poisoned], np.nan)
    checkpoints.save_checkpoint(values, str(tmp_path / "start" / "model.ckpt"))
    status = run_cli(train_cli.define_flags, train_cli.main, "slim-train", "", [
        "slim-train", "--model_name=mobilenet_v1_025", "--synthetic_data",
        "--synthetic_num_classes=2", "--train_image_size=32", "--batch_size=4",
        "--max_number_of_steps=1", "--save_summaries_secs=0",
        f"--train_dir={tmp_path / 'train'}", f"--checkpoint_path={tmp_path / 'start'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith(f"slim-train: error: variable {poisoned} is not finite at "
                              f"global step 1: not saved")
    assert "Traceback" not in "\n".join(err)
    assert not list((tmp_path / "train").glob("model.ckpt-*"))


# -- the writer's lock ---------------------------------------------------------------------------

def test_second_run_refuses_naming_the_holder(tmp_path):
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    started = time.time() - 3600
    holder = {"pid": 4242, "host": "node7", "started": started}
    with open(train_dir / ".lock", "w") as other:  # another process's lock, as it holds it
        other.write(json.dumps(holder))
        other.flush()
        import fcntl
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(TrainDirLocked) as err:
            train_lib.train(_config(train_dir))
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
    message = str(err.value)
    assert f"--train_dir={train_dir} is in use by another slim-train (pid 4242 on host " \
        f"node7, started {when})" in message and "\n" not in message
    assert not list(train_dir.glob("*.index"))


def test_lock_released_on_exit_and_stale_after_kill(tmp_path):
    train_dir = tmp_path / "train"
    with TrainDirLock(str(train_dir)):
        pass
    assert not (train_dir / ".lock").exists()
    code = ("import sys, time; from slimcli.slim.train_dir import TrainDirLock\n"
            f"with TrainDirLock({str(train_dir)!r}):\n"
            "    print('locked', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(TrainDirLocked, match=f"pid {proc.pid} "):
            with TrainDirLock(str(train_dir)):
                pass
    finally:
        proc.kill()
        proc.wait()
    assert json.loads((train_dir / ".lock").read_text())["pid"] == proc.pid  # left by the kill
    with TrainDirLock(str(train_dir)):  # stale: taken over
        assert json.loads((train_dir / ".lock").read_text())["pid"] == os.getpid()


# -- operational errors --------------------------------------------------------------------------

def test_train_dir_that_is_a_file(tmp_path):
    path = tmp_path / "train"
    path.write_text("not a folder")
    with pytest.raises(SlimError, match=f"--train_dir={path} is a file, not a directory"):
        train_lib.train(_config(path))


def test_read_only_train_dir_is_one_line(tmp_path, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))
    monkeypatch.setattr(train_dir_lib, "open", refuse, raising=False)
    with pytest.raises(SlimError) as err:
        train_lib.train(_config(tmp_path / "train"))
    message = str(err.value)
    assert f"cannot write to {tmp_path / 'train'}: permission denied or read-only" in message
    assert "choose a writable --train_dir" in message and "\n" not in message


def test_full_disk_while_saving_leaves_nothing_half_written(lenet, tmp_path, monkeypatch):
    real_save = tf.raw_ops.SaveV2
    calls = []

    def save_until_full(**kwargs):
        calls.append(kwargs["prefix"])
        if len(calls) > 1:
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return real_save(**kwargs)
    monkeypatch.setattr(tf.raw_ops, "SaveV2", save_until_full)
    with pytest.raises(SlimError) as err:
        lenet.run(tmp_path, 5, save_interval_steps=1)
    message = str(err.value)
    assert f"no space left on the device of {tmp_path}" in message and "\n" not in message
    assert f"the last good checkpoint {tmp_path / 'model.ckpt-1'} is intact" in message
    assert sorted(n for n in os.listdir(tmp_path) if not n.startswith("events.")) == \
        ["checkpoint", "model.ckpt-1.data-00000-of-00001", "model.ckpt-1.index"]


def test_corrupt_latest_checkpoints_fall_back_to_newest_readable(lenet, tmp_path, caplog):
    lenet.run(tmp_path, 4, save_interval_steps=1)
    index = tmp_path / "model.ckpt-4.index"
    index.write_bytes(index.read_bytes()[:-20])  # truncated
    data = tmp_path / "model.ckpt-3.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one bit-flipped byte
    data.write_bytes(bytes(raw))
    with caplog.at_level(logging.INFO, logger="slimcli.train"):
        assert lenet.run(tmp_path, 5) == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    good = tmp_path / "model.ckpt-2"
    for step in (4, 3):
        assert any(f"Checkpoint {tmp_path / f'model.ckpt-{step}'} is unreadable" in w and
                   f"resuming from {good} instead" in w and
                   str(tmp_path / "corrupt" / f"model.ckpt-{step}") in w for w in warnings)
    assert f"Resuming from {good}" in caplog.text
    assert _steps_on_disk(tmp_path) == [1, 2, 5]


# -- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,text", [
    ("learning_rate", -1.0, "--learning_rate must be >= 0; got -1.0"),
    ("max_number_of_steps", -5, "--max_number_of_steps must be >= 0"),
    ("batch_norm_decay", 1.5, "--batch_norm_decay must be in [0, 1)"),
    ("recompute_batch_norm_stats", -1, "--recompute_batch_norm_stats must be >= 0")])
def test_nonsense_settings_are_rejected(tmp_path, field, value, text):
    with pytest.raises(SlimError, match=text.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        _config(tmp_path, **{field: value}).validate()


# -- leftovers of killed runs --------------------------------------------------------------------

def test_leftovers_removed_and_unlisted_checkpoint_adopted(lenet, tmp_path, caplog):
    lenet.run(tmp_path, 4, save_interval_steps=2)
    # Killed after writing model.ckpt-4 but before listing it; and inside other writes.
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-2"\n'
                                         'all_model_checkpoint_paths: "model.ckpt-2"\n')
    (tmp_path / ".tmp-model.ckpt-6.incomplete").mkdir()
    (tmp_path / ".tmp-model.ckpt-6.incomplete" / "model.ckpt-6.index").write_bytes(b"x")
    (tmp_path / ".tmp-ckpt-k2j3").mkdir()
    (tmp_path / ".tmp-checkpoint.incomplete").write_text("half")
    (tmp_path / "model.ckpt-5.data-00000-of-00001").write_bytes(b"no index came")
    with caplog.at_level(logging.INFO, logger="slimcli.train"):
        assert lenet.run(tmp_path, 5) == 5
    assert f"Adopted {tmp_path / 'model.ckpt-4'}" in caplog.text
    assert f"Resuming from {tmp_path / 'model.ckpt-4'}" in caplog.text
    assert "Removed 4 leftover(s)" in caplog.text
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]
    assert _steps_on_disk(tmp_path) == [2, 4, 5]
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == \
        ["model.ckpt-2", "model.ckpt-4", "model.ckpt-5"]
