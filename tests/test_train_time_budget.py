"""The time budget of training (--max_train_seconds, slimcli.slim.time_budget), the schedule
laid over it, and the warning about --opt_epsilon=1.0 with adam."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import tensorflow as tf

from slimcli import optimization
from slimcli import train as train_lib
from slimcli.errors import SlimError
from slimcli.slim import checkpoints, learning, time_budget


class FakeClock:
    """time.monotonic() for the loop: each training step takes `per_step` seconds."""

    def __init__(self, per_step: float):
        self.now, self.per_step = 1000.0, per_step

    def __call__(self) -> float:
        return self.now


def toy_run(logdir, clock: FakeClock, **kwargs) -> tuple[int, list[float], tf.Variable]:
    """learning.train of a step that only counts; returns (final step, the run fraction
    seen by each step, the weight)."""
    weight = tf.Variable(1.0)
    global_step = tf.Variable(0, dtype=tf.int64)
    fraction = tf.Variable(0.0)
    seen = []

    def step():
        seen.append(float(fraction.numpy()))
        global_step.assign_add(1)
        weight.assign_add(1.0)
        clock.now += clock.per_step
        return {"total_loss": tf.constant(0.25)}

    final = learning.train(step, str(logdir), variables_to_save={"w": weight,
                                                                  "global_step": global_step},
                           global_step=global_step, run_fraction=fraction, progress_bar=False,
                           save_summaries_secs=0, save_interval_secs=0, started=clock.now,
                           **kwargs)
    return final, seen, weight


def test_stops_saves_and_a_resumed_run_counts_the_time_spent(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, "slimcli.train")
    clock = FakeClock(per_step=1.5)
    monkeypatch.setattr(time_budget.time, "monotonic", clock)
    final, seen, _ = toy_run(tmp_path, clock, max_train_seconds=10)
    assert final == 7  # 7 steps of 1.5 s: 10.5 s >= 10
    np.testing.assert_allclose(seen, [i * 0.15 for i in range(7)], atol=1e-6)
    latest = checkpoints.latest_checkpoint(str(tmp_path))
    assert latest.endswith("model.ckpt-7")
    assert time_budget.spent_seconds(latest) == pytest.approx(10.5)
    assert ("Out of time: 10.5 s spent of --max_train_seconds=10; stopping at global step 7, "
            "loss = 0.2500") in caplog.messages
    # Resumed with 16 s: 10.5 are spent, 4 steps more; the weights come from the checkpoint.
    final, seen, weight = toy_run(tmp_path, clock, max_train_seconds=16)
    assert final == 11 and float(weight.numpy()) == 12.0
    np.testing.assert_allclose(seen[0], 10.5 / 16, atol=1e-6)
    assert time_budget.spent_seconds(checkpoints.latest_checkpoint(str(tmp_path))) == 16.5
    # Nothing left of 16 s; with 30 s but 13 steps, the steps end it first.
    assert toy_run(tmp_path, clock, max_train_seconds=16)[0] == 11
    assert "The run already spent 16 s of --max_train_seconds=16 (global step 11); nothing " \
           "to do." in caplog.messages
    final, seen, _ = toy_run(tmp_path, clock, max_train_seconds=30, number_of_steps=13)
    assert final == 13
    # The fraction is the further of steps (11/13) and seconds (16.5/30).
    np.testing.assert_allclose(seen[0], 11 / 13, atol=1e-6)


def test_a_checkpoint_without_train_seconds_counts_as_none_spent(tmp_path):
    path = checkpoints.save_checkpoint({"w": np.float32(2.0), "global_step": np.int64(3)},
                                       str(tmp_path / "model.ckpt-3"))
    assert time_budget.spent_seconds(path) == 0.0 and time_budget.spent_seconds(None) == 0.0


def test_cosine_over_the_run_reaches_the_end_rate_with_a_warm_up_ramp():
    fraction = tf.Variable(0.0)
    config = optimization.ScheduleConfig(learning_rate=0.4, end_learning_rate=0.0,
                                         decay_factor=0.94, decay_steps=10, total_steps=None,
                                         warmup_steps=4)
    schedule = optimization.learning_rate_fn("cosine", config, fraction)
    assert float(schedule(2)) == pytest.approx(0.2)  # half the ramp, nothing decayed yet
    fraction.assign(0.5)
    assert float(schedule(100)) == pytest.approx(0.2)
    fraction.assign(1.0)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-7)
    fraction.assign(0.25)
    assert float(schedule(100)) == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi / 4)))
    with pytest.raises(SlimError, match="set --max_number_of_steps or --max_train_seconds"):
        optimization.learning_rate_fn("cosine", config)


def test_slim_train_with_a_time_budget_resumes_from_the_time_recorded(tmp_path, caplog):
    caplog.set_level(logging.INFO, "slimcli.train")
    config = train_lib.TrainConfig(
        model_name="lenet", synthetic_data=True, synthetic_num_classes=3, train_image_size=28,
        train_dir=str(tmp_path), batch_size=4, optimizer="adam", learning_rate=0.01,
        learning_rate_decay_type="cosine", end_learning_rate=0.0, max_train_seconds=1e6,
        max_number_of_steps=3, save_summaries_secs=0, progress_bar=False, seed=1)
    assert train_lib.train(config) == 3  # the steps run out first
    warnings = [m for m in caplog.messages if "--opt_epsilon=1.0" in m]
    assert warnings == ["--optimizer=adam with --opt_epsilon=1.0 (the original's default, tuned "
                        "for rmsprop) throttles every update; pass --opt_epsilon=1e-8, the usual "
                        "value, unless 1.0 is meant."]
    spent = time_budget.spent_seconds(checkpoints.latest_checkpoint(str(tmp_path)))
    assert spent > 0
    caplog.clear()
    resumed = train_lib.TrainConfig(**{**config.__dict__, "max_train_seconds": spent,
                                       "max_number_of_steps": 10, "opt_epsilon": 1e-8})
    assert train_lib.train(resumed) == 3  # the time recorded is all the budget
    assert any(m.startswith("The run already spent ") and
               m.endswith(f"--max_train_seconds={spent:g} (global step 3); nothing to do.")
               for m in caplog.messages)
    assert not [m for m in caplog.messages if "--opt_epsilon" in m]


def test_epsilon_warning_only_where_one_throttles():
    assert "--opt_epsilon=1e-8" in optimization.epsilon_warning("adam", 1.0)
    for name, epsilon in (("adam", 1e-8), ("rmsprop", 1.0), ("adadelta", 1.0), ("sgd", 1.0)):
        assert optimization.epsilon_warning(name, epsilon) is None


def test_bad_time_budget_is_a_slim_error(tmp_path):
    with pytest.raises(SlimError, match="--max_train_seconds must be > 0"):
        train_lib.TrainConfig(synthetic_data=True, max_train_seconds=0).validate()
