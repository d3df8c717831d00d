"""A training run's clock: seconds spent (across resumes), the time budget, the run fraction.

    clock = TrainClock.resumed(checkpoint_path, max_seconds=600, max_steps=None)
    while not clock.done(step): ...; progress.assign(clock.fraction(step))

Every checkpoint the training loop writes holds `train_seconds`, the seconds
the run had spent when it was written (float64); a resumed run starts its
clock there, so a budget counts the time of every run of one `train_dir`.
Checkpoints from before (or from elsewhere) lack it and count as 0. The
clock starts when the run started (`started`, e.g. when slim-train began), so
building the input and the first step count too.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow as tf

TRAIN_SECONDS_KEY = "train_seconds"


def spent_seconds(checkpoint_path: str | None) -> float:
    """The `train_seconds` a checkpoint recorded (0 when none, or no checkpoint)."""
    if not checkpoint_path:
        return 0.0
    reader = tf.train.load_checkpoint(checkpoint_path)
    if TRAIN_SECONDS_KEY not in reader.get_variable_to_shape_map():
        return 0.0
    return float(reader.get_tensor(TRAIN_SECONDS_KEY))


@dataclasses.dataclass
class TrainClock:
    """The seconds a run has spent, and whether its steps or its time are used up.

    Attributes:
      spent_before: seconds spent by earlier runs (from the resumed checkpoint).
      max_seconds: the time budget (None: no budget).
      max_steps: the step budget (None: no budget).
      started: `time.monotonic()` when this run's clock started.
    """
    spent_before: float = 0.0
    max_seconds: float | None = None
    max_steps: int | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)

    def seconds(self) -> float:
        """Seconds spent, earlier runs included."""
        return self.spent_before + time.monotonic() - self.started

    def out_of_time(self) -> bool:
        return self.max_seconds is not None and self.seconds() >= self.max_seconds

    def done(self, step: int, time_counts: bool = True) -> bool:
        """Whether the run ends before step `step + 1`: its steps used up, or its time
        (unless `time_counts` is False: a fresh run makes one step, to leave a checkpoint)."""
        return (self.max_steps is not None and step >= self.max_steps) or \
            (time_counts and self.out_of_time())

    def fraction(self, step: int) -> float:
        """How much of the run is done, in [0, 1]: of the steps or of the time, whichever
        is further (0 without a budget)."""
        parts = [0.0]
        if self.max_steps:
            parts.append(step / self.max_steps)
        if self.max_seconds:
            parts.append(self.seconds() / self.max_seconds)
        return min(max(parts), 1.0)

    def record(self) -> dict[str, np.ndarray]:
        """What a checkpoint saved now holds about the clock."""
        return {TRAIN_SECONDS_KEY: np.array(self.seconds(), np.float64)}


__all__ = ["TRAIN_SECONDS_KEY", "TrainClock", "spent_seconds"]
