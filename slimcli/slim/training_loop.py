"""The training loop of `slim.learning.train`: resume, log, summarize, save, stop.

The loop is host-side Python around a compiled step. Only the chief writes
checkpoints and summaries; distributed variables are read from their first
local replica, so saving needs no collective op (for batch-norm moving
statistics that is the first clone's values, as TF-Slim's update ops were
taken from the first clone).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import checkpoints, summaries

__all__ = ["TrainingDiverged", "CheckpointSaver", "Progress", "train", "host_values"]

log = logging.getLogger("slimcli.train")


class TrainingDiverged(SlimError):
    """The loss became NaN or Inf; the message names the step and the last good checkpoint."""


def host_values(variables: Mapping[str, Any], strategy: Any = None) -> dict[str, np.ndarray]:
    """`{name: numpy value}`, reading distributed variables from their first local replica."""
    strategy = strategy or tf.distribute.get_strategy()
    out = {}
    for name, var in variables.items():
        local = strategy.experimental_local_results(var)[0]
        out[name] = np.asarray(local.numpy() if hasattr(local, "numpy") else local)
    return out


class CheckpointSaver:
    """Writes `logdir/model.ckpt-<step>` atomically and prunes as TF1's Saver did.

    Args:
      logdir: the directory.
      variables: `{checkpoint name: variable}` to save.
      max_to_keep: newest checkpoints kept (None or 0: all).
      keep_checkpoint_every_n_hours: a checkpoint leaving the window is kept
        anyway when at least this many hours passed since the last one kept.
      strategy: the strategy owning the variables.
    """

    def __init__(self, logdir: str, variables: Mapping[str, Any], max_to_keep: int | None = 5,
                 keep_checkpoint_every_n_hours: float = 10000.0, strategy: Any = None):
        self.logdir = logdir
        self.variables = dict(variables)
        self.max_to_keep = max_to_keep or None
        self.keep_seconds = keep_checkpoint_every_n_hours * 3600.0
        self.strategy = strategy
        self._next_keep = time.time() + self.keep_seconds
        self.last_path: str | None = checkpoints.latest_checkpoint(logdir)

    def _preserve(self, prefix: str) -> bool:
        index = prefix + ".index"
        if not os.path.exists(index) or os.path.getmtime(index) < self._next_keep:
            return False
        self._next_keep += self.keep_seconds
        return True

    def save(self, step: int) -> str:
        """Saves at `step`; returns the prefix written."""
        prefix = os.path.join(self.logdir, f"model.ckpt-{step}")
        values = host_values(self.variables, self.strategy)
        checkpoints.save_checkpoint(values, prefix, self.max_to_keep, preserve=self._preserve)
        self.last_path = prefix
        log.info("Saved checkpoint %s", prefix)
        return prefix


class Progress:
    """A tqdm bar on a terminal, plain `global step N: loss = X (...)` lines otherwise."""

    def __init__(self, start: int, total: int | None, log_every_n_steps: int,
                 images_per_step: int | None, use_bar: bool | None = None):
        self.step = start
        self.start = start
        self.total = total
        self.every = max(int(log_every_n_steps), 1)
        self.images_per_step = images_per_step
        self.use_bar = sys.stderr.isatty() if use_bar is None else use_bar
        self._t0 = self._last_t = time.perf_counter()
        self._last_step = start
        self.bar = None
        if self.use_bar:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

    def rate(self) -> tuple[float, float]:
        """(seconds per step, images per second) since the last report."""
        now = time.perf_counter()
        steps = max(self.step - self._last_step, 1)
        sec = (now - self._last_t) / steps
        self._last_t, self._last_step = now, self.step
        ips = (self.images_per_step or 0) / sec if sec > 0 else 0.0
        return sec, ips

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        advanced = step - self.step
        self.step = step
        if self.bar is not None:
            self.bar.update(advanced)
        if step % self.every and step != self.total:
            return
        sec, ips = self.rate()
        loss, lr = metrics.get("total_loss", float("nan")), metrics.get("learning_rate")
        if self.bar is not None:
            post = {"loss": f"{loss:.4f}", "img/s": f"{ips:.1f}"}
            if lr is not None:
                post["lr"] = f"{lr:.3g}"
            self.bar.set_postfix(post, refresh=False)
        else:
            extra = f", {ips:.1f} images/sec" if self.images_per_step else ""
            extra += f", lr = {lr:.4g}" if lr is not None else ""
            log.info("global step %d: loss = %.4f (%.3f sec/step%s)", step, loss, sec, extra)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _restore_or_init(logdir: str, variables: Mapping[str, Any],
                     init_fn: Callable | None) -> str | None:
    """Resumes from the newest checkpoint of `logdir`, else runs `init_fn`."""
    latest = checkpoints.latest_checkpoint(logdir) if tf.io.gfile.isdir(logdir) else None
    if latest is not None:
        try:
            checkpoints.assign_from_checkpoint(latest, dict(variables))
        except checkpoints.CheckpointMismatch as e:
            raise SlimError(f"cannot resume from {latest}: {e}. Use a new train_dir, or the "
                            f"settings (model, optimizer, moving_average_decay) it was made "
                            f"with.") from None
        log.info("Resuming from %s", latest)
        return latest
    if init_fn is not None:
        init_fn()
    return None


def _write_summaries(writer: Any, step: int, metrics: Mapping[str, float],
                     summary_fn: Callable | None) -> None:
    with writer.as_default(step=step):
        for name, value in metrics.items():
            summaries.scalar(name, value)
        if summary_fn is not None:
            summary_fn(step)
    writer.flush()


def _check_finite(loss: float, step: int, saver: CheckpointSaver | None, logdir: str) -> None:
    if math.isfinite(loss):
        return
    last = saver.last_path if saver is not None else checkpoints.latest_checkpoint(logdir)
    kept = f"the last good checkpoint {last} is intact" if last else "no checkpoint was written"
    raise TrainingDiverged(f"loss is {loss} at global step {step}: training stopped and {kept}. "
                           f"Lower --learning_rate (or clip gradients), or check the input data.")


def train(train_step: Callable[[], Mapping[str, Any]], logdir: str, *,
          variables_to_save: Mapping[str, Any], global_step: tf.Variable,
          number_of_steps: int | None = None, log_every_n_steps: int = 1,
          save_summaries_secs: float = 600, save_interval_secs: float = 600,
          save_interval_steps: int | None = None, init_fn: Callable | None = None,
          max_to_keep: int | None = 5, keep_checkpoint_every_n_hours: float = 10000.0,
          startup_delay_steps: int = 0, is_chief: bool = True, task: int = 0,
          images_per_step: int | None = None, summary_fn: Callable | None = None,
          strategy: Any = None, progress_bar: bool | None = None) -> int:
    """Runs `train_step()` until `number_of_steps` (or forever), TF-Slim style.

    Args:
      train_step: a callable running one step and returning its metrics
        (`total_loss` at least), e.g. `lambda: step(iterator)`.
      logdir: where checkpoints and event files go; a checkpoint there is
        resumed from (then `init_fn` is not run).
      variables_to_save: `{checkpoint name: variable}`, `global_step` included.
      global_step: the step variable the train step advances.
      number_of_steps: the global step to stop at; None runs forever.
      log_every_n_steps: progress/log period in steps.
      save_summaries_secs: summary period (0 = never, except the last step).
      save_interval_secs: checkpoint period in seconds (0 = only at the end).
      save_interval_steps: also save every this many steps.
      init_fn: run once when there is no checkpoint to resume (warm start).
      max_to_keep, keep_checkpoint_every_n_hours: checkpoint retention.
      startup_delay_steps: a non-chief waits for the chief's checkpoint to
        reach `startup_delay_steps * task` first (asynchronous workers only:
        pass 0 when the workers step together, as MultiWorkerMirrored does).
      is_chief, task: this worker's role; only the chief writes files.
      images_per_step: the global batch, for images/sec.
      summary_fn: `fn(step)` writing extra summaries at summary time.
      strategy: the distribution strategy owning the variables.
      progress_bar: force the tqdm bar on or off (default: on a terminal).

    Returns:
      The final global step.

    Raises:
      TrainingDiverged: the loss became NaN/Inf (nothing more is saved).
    """
    tf.io.gfile.makedirs(logdir)
    _restore_or_init(logdir, variables_to_save, init_fn)
    step = int(host_values({"s": global_step}, strategy)["s"])
    if number_of_steps is not None and step >= number_of_steps:
        log.info("Global step %d already reached --max_number_of_steps=%d; nothing to do.",
                 step, number_of_steps)
        return step
    _wait_for_chief(logdir, startup_delay_steps * task, is_chief)
    saver = CheckpointSaver(logdir, variables_to_save, max_to_keep, keep_checkpoint_every_n_hours,
                            strategy) if is_chief else None
    writer = tf.summary.create_file_writer(logdir) if is_chief else None
    progress = Progress(step, number_of_steps, log_every_n_steps, images_per_step, progress_bar)
    last_save = last_summary = time.time()
    metrics: dict[str, float] = {}
    try:
        while number_of_steps is None or step < number_of_steps:
            metrics = {k: float(v) for k, v in train_step().items()}
            step += 1
            _check_finite(metrics["total_loss"], step, saver, logdir)
            progress.update(step, metrics)
            now = time.time()
            if writer is not None and save_summaries_secs and \
                    now - last_summary >= save_summaries_secs:
                _write_summaries(writer, step, metrics, summary_fn)
                last_summary = now
            due = (save_interval_secs and now - last_save >= save_interval_secs) or \
                (save_interval_steps and step % save_interval_steps == 0)
            if saver is not None and due and step != number_of_steps:
                saver.save(step)
                last_save = time.time()
    finally:
        progress.close()
    if writer is not None:
        _write_summaries(writer, step, metrics, summary_fn)
    if saver is not None:
        saver.save(step)
    return step


def _wait_for_chief(logdir: str, target: int, is_chief: bool, poll_secs: float = 1.0) -> None:
    if is_chief or target <= 0:
        return
    log.info("Waiting for the chief to reach global step %d", target)
    while True:
        latest = checkpoints.latest_checkpoint(logdir)
        if latest is not None:
            reached = int(tf.train.load_checkpoint(latest).get_tensor("global_step"))
            if reached >= target:
                return
        time.sleep(poll_secs)
