"""The training loop of `slim.learning.train`: resume, log, summarize, save, stop.

The loop is host-side Python around a compiled step. Only the chief writes
checkpoints and summaries; distributed variables are read from their first
local replica, so saving needs no collective op (for batch-norm moving
statistics that is the first clone's values, as TF-Slim's update ops were
taken from the first clone).
"""

from __future__ import annotations

import contextlib
import inspect
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
from slimcli.slim.time_budget import TrainClock, spent_seconds
from slimcli.slim.train_dir import TrainDirLock, dir_error

__all__ = ["TrainingDiverged", "CheckpointSaver", "Progress", "train", "host_values",
           "SessionPlaceholder", "call_init_fn"]

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

    def snapshot(self) -> dict[str, np.ndarray]:
        """The variables' values now, on the host (to write once they are known good)."""
        return host_values(self.variables, self.strategy)

    def check_finite(self, values: Mapping[str, np.ndarray], step: int) -> None:
        """Raises `TrainingDiverged` naming the first variable holding a NaN or Inf."""
        bad = [n for n, v in values.items() if np.issubdtype(v.dtype, np.floating)
               and not np.isfinite(v).all()]
        if bad:
            raise TrainingDiverged(
                f"variable {bad[0]} is not finite at global step {step}: not saved; "
                f"{_good_checkpoint_text(self.last_path)}. Lower --learning_rate (or clip "
                f"gradients), or check the input data.")

    def save(self, step: int, values: Mapping[str, np.ndarray] | None = None) -> str:
        """Saves `values` (default: the variables now) as step `step`; returns the prefix.

        Raises:
          TrainingDiverged: a value is NaN or Inf (nothing is written).
          SlimError: the disk is full or the directory not writable (one line;
            nothing half-written, the previous checkpoints untouched).
        """
        prefix = os.path.join(self.logdir, f"model.ckpt-{step}")
        values = self.snapshot() if values is None else values
        self.check_finite(values, step)
        try:
            checkpoints.save_checkpoint(values, prefix, self.max_to_keep,
                                        preserve=self._preserve)
        except (OSError, tf.errors.OpError) as e:
            error = dir_error(self.logdir, e, f"save {os.path.basename(prefix)} in")
            raise SlimError(f"{error} {_good_checkpoint_text(self.last_path)}.") from None
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


_UNREADABLE = (tf.errors.OpError, IndexError, ValueError, OSError)


class SessionPlaceholder:
    """What a one-argument `init_fn(sess)` receives: TF2 has no session.

    `sess.run(fetches)` evaluates at once what TF2 can: a zero-argument
    callable is called, a tensor or variable is read, lists/tuples/dicts are
    walked, None stays None. A `feed_dict` must be empty. Anything else
    (such as a variable name left over from unpacking TF-Slim's
    `(op, feed_dict)`) is a one-line error naming the TF2 way.
    """

    def run(self, fetches: Any, feed_dict: Any = None, **_unused: Any) -> Any:
        if feed_dict:
            raise SlimError("sess.run(..., feed_dict=...) in init_fn: TF2 has no feeds; slimcli's "
                            "assign_from_checkpoint/assign_from_values assign at once when called.")
        return self._fetch(fetches)

    def _fetch(self, fetches: Any) -> Any:
        if fetches is None:
            return None
        if isinstance(fetches, (list, tuple)):
            return type(fetches)(self._fetch(f) for f in fetches)
        if isinstance(fetches, Mapping):
            return {k: self._fetch(v) for k, v in fetches.items()}
        if isinstance(fetches, (tf.Tensor, tf.Variable)):
            return fetches.numpy()
        if callable(fetches):
            return fetches()
        raise SlimError(f"sess.run({fetches!r}) in init_fn: nothing to run. slimcli's "
                        f"assign_from_checkpoint(...) assigns when called and returns the names "
                        f"restored, not (op, feed_dict): call it inside init_fn instead.")


def call_init_fn(init_fn: Callable) -> Any:
    """Calls `init_fn()`, or `init_fn(SessionPlaceholder())` when it takes one argument
    (TF-Slim's `def InitAssignFn(sess)`)."""
    try:
        params = inspect.signature(init_fn).parameters.values()
    except (TypeError, ValueError):
        return init_fn()
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) > 1:
        raise SlimError(f"init_fn {getattr(init_fn, '__name__', init_fn)!r} takes "
                        f"{len(required)} arguments; it may take none, or one (the session).")
    return init_fn(SessionPlaceholder()) if required else init_fn()


def _restore_or_init(logdir: str, variables: Mapping[str, Any], init_fn: Callable | None,
                     is_chief: bool = True) -> str | None:
    """Resumes from the newest readable checkpoint of `logdir`, else runs `init_fn`.

    A checkpoint written completely but not yet listed in the state file (the
    writer was killed in between) is adopted. The chief sets an unreadable
    (truncated, bit-flipped) checkpoint aside in `logdir/corrupt/` and falls
    back to the next newest, with a warning naming both.
    """
    candidates = checkpoints.list_checkpoints(logdir) if tf.io.gfile.isdir(logdir) else []
    listed = {os.path.basename(p) for p in checkpoints.listed_checkpoints(logdir)} \
        if candidates else set()
    unreadable = []
    for path in candidates:
        try:
            checkpoints.assign_from_checkpoint(path, dict(variables))
        except checkpoints.CheckpointMismatch as e:
            raise SlimError(f"cannot resume from {path}: {e}. Use a new train_dir, or the "
                            f"settings (model, optimizer, moving_average_decay) it was made "
                            f"with.") from None
        except _UNREADABLE as e:
            unreadable.append((path, str(e).splitlines()[0] if str(e) else type(e).__name__))
            continue
        _report_unreadable(unreadable, path, is_chief)
        if is_chief and os.path.basename(path) not in listed:
            checkpoints.adopt_checkpoint(path)
            log.info("Adopted %s, written completely but not listed in the checkpoint file",
                     path)
        log.info("Resuming from %s", path)
        return path
    _report_unreadable(unreadable, None, is_chief)
    if init_fn is not None:
        call_init_fn(init_fn)
    return None


def _report_unreadable(unreadable: list, used: str | None, is_chief: bool) -> None:
    for path, why in unreadable:
        aside = checkpoints.set_aside(path, "corrupt") if is_chief else path
        instead = f"resuming from {used} instead" if used else "no readable checkpoint is left"
        log.warning("Checkpoint %s is unreadable (%s): %s; it was moved to %s.", path, why,
                    instead, aside)


def _write_summaries(writer: Any, step: int, metrics: Mapping[str, float],
                     summary_fn: Callable | None) -> None:
    with writer.as_default(step=step):
        for name, value in metrics.items():
            summaries.scalar(name, value)
        if summary_fn is not None:
            summary_fn(step)
    writer.flush()


def _good_checkpoint_text(path: str | None) -> str:
    if path:
        return f"the last good checkpoint {path} is intact, and a resume starts from it"
    return "no good checkpoint was written, so a rerun starts afresh"


def _check_finite(loss: float, step: int, logdir: str, is_chief: bool) -> None:
    """Stops on a non-finite loss at `step`, naming the last checkpoint known to be good.

    The loss of step `step` is computed on the weights of step `step - 1`; a
    checkpoint of those weights (or later) on disk, which a previous run saved
    before they could be checked, is moved to `logdir/diverged/` so that a
    resume starts from the good one.
    """
    if math.isfinite(loss):
        return
    aside = []
    if is_chief:
        for path in checkpoints.list_checkpoints(logdir):
            if checkpoints.checkpoint_step(path) >= step - 1:
                aside.append(checkpoints.set_aside(path, "diverged"))
    good = checkpoints.latest_checkpoint(logdir)
    moved = f" ({', '.join(aside)} set aside: its weights give this loss)" if aside else ""
    raise TrainingDiverged(f"loss is {loss} at global step {step}: training stopped and "
                           f"{_good_checkpoint_text(good)}{moved}. Lower --learning_rate (or "
                           f"clip gradients), or check the input data.")


def train(train_step: Callable[[], Mapping[str, Any]], logdir: str, *,
          variables_to_save: Mapping[str, Any], global_step: tf.Variable,
          number_of_steps: int | None = None, log_every_n_steps: int = 1,
          save_summaries_secs: float = 600, save_interval_secs: float = 600,
          save_interval_steps: int | None = None, init_fn: Callable | None = None,
          max_to_keep: int | None = 5, keep_checkpoint_every_n_hours: float = 10000.0,
          startup_delay_steps: int = 0, is_chief: bool = True, task: int = 0,
          images_per_step: int | None = None, summary_fn: Callable | None = None,
          strategy: Any = None, progress_bar: bool | None = None,
          final_fn: Callable[[int], None] | None = None, max_train_seconds: float | None = None,
          run_fraction: tf.Variable | None = None, started: float | None = None) -> int:
    """Runs `train_step()` until `number_of_steps` (or forever), TF-Slim style.

    The chief holds the writer lock of `logdir` (see `slim.train_dir`) and
    first removes what killed runs left there. A periodic checkpoint is
    written one step late, once the loss computed on its weights is known to
    be finite, so no saved checkpoint holds weights that diverged.

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
      init_fn: run once when there is no checkpoint to resume (warm start);
        `init_fn()`, or `init_fn(sess)` with a `SessionPlaceholder` as `sess`.
      max_to_keep, keep_checkpoint_every_n_hours: checkpoint retention.
      startup_delay_steps: a non-chief waits for the chief's checkpoint to
        reach `startup_delay_steps * task` first (asynchronous workers only:
        pass 0 when the workers step together, as MultiWorkerMirrored does).
      is_chief, task: this worker's role; only the chief writes files.
      images_per_step: the global batch, for images/sec.
      summary_fn: `fn(step)` writing extra summaries at summary time.
      strategy: the distribution strategy owning the variables.
      progress_bar: force the tqdm bar on or off (default: on a terminal).
      final_fn: `fn(step)` run once `number_of_steps` is reached, before the
        final checkpoint (e.g. recomputing batch-norm statistics).
      max_train_seconds: also stop, after the step under way, once the run has
        spent this many seconds (earlier runs of `logdir` included: each
        checkpoint records `train_seconds`; see `slim.time_budget`). A run
        that resumes nothing makes one step at least.
      run_fraction: a float variable set before each step to the fraction of
        the run done (of the steps or of the seconds, whichever is further),
        for a learning-rate schedule laid over the run.
      started: `time.monotonic()` when the run began (default: now), so that
        what came before the loop counts towards `max_train_seconds`.

    Returns:
      The final global step.

    Raises:
      TrainingDiverged: the loss became NaN/Inf (nothing more is saved; the
        message names the last good checkpoint).
      SlimError: `logdir` is locked by another run, not writable or full.
    """
    with TrainDirLock(logdir) if is_chief else contextlib.nullcontext():
        if is_chief:
            _remove_leftovers(logdir)
        else:
            tf.io.gfile.makedirs(logdir)
        clock = TrainClock(max_seconds=max_train_seconds, max_steps=number_of_steps,
                           started=time.monotonic() if started is None else started)
        return _train(train_step, logdir, variables_to_save, global_step, number_of_steps,
                      log_every_n_steps, save_summaries_secs, save_interval_secs,
                      save_interval_steps, init_fn, max_to_keep, keep_checkpoint_every_n_hours,
                      startup_delay_steps, is_chief, task, images_per_step, summary_fn,
                      strategy, progress_bar, final_fn, clock, run_fraction)


def _nothing_to_do(step: int, clock: TrainClock, resumed: bool) -> bool:
    if clock.max_steps is not None and step >= clock.max_steps:
        log.info("Global step %d already reached --max_number_of_steps=%d; nothing to do.",
                 step, clock.max_steps)
        return True
    if resumed and clock.out_of_time():
        log.info("The run already spent %.0f s of --max_train_seconds=%g (global step %d); "
                 "nothing to do.", clock.seconds(), clock.max_seconds, step)
        return True
    return False


def _train(train_step, logdir, variables_to_save, global_step, number_of_steps,
           log_every_n_steps, save_summaries_secs, save_interval_secs, save_interval_steps,
           init_fn, max_to_keep, keep_checkpoint_every_n_hours, startup_delay_steps, is_chief,
           task, images_per_step, summary_fn, strategy, progress_bar, final_fn, clock,
           run_fraction) -> int:
    """The loop of `train`, run with the lock held (chief)."""
    resumed = _restore_or_init(logdir, variables_to_save, init_fn, is_chief)
    clock.spent_before = spent_seconds(resumed)
    step = int(host_values({"s": global_step}, strategy)["s"])
    if _nothing_to_do(step, clock, resumed is not None):
        return step
    _wait_for_chief(logdir, startup_delay_steps * task, is_chief)
    saver = CheckpointSaver(logdir, variables_to_save, max_to_keep, keep_checkpoint_every_n_hours,
                            strategy) if is_chief else None
    writer = tf.summary.create_file_writer(logdir) if is_chief else None
    progress = Progress(step, number_of_steps, log_every_n_steps, images_per_step, progress_bar)
    last_save = last_summary = time.time()
    metrics: dict[str, float] = {}
    pending: tuple[int, dict] | None = None  # a due checkpoint, written once shown good
    must_step = resumed is None  # a fresh run steps once at least: it leaves a checkpoint
    try:
        while not clock.done(step, time_counts=not must_step):
            must_step = False
            if run_fraction is not None:
                run_fraction.assign(clock.fraction(step))
            metrics = {k: float(v) for k, v in train_step().items()}
            step += 1
            _check_finite(metrics["total_loss"], step, logdir, is_chief)
            if pending is not None:
                saver.save(*pending)
                pending = None
            progress.update(step, metrics)
            now = time.time()
            if writer is not None and save_summaries_secs and \
                    now - last_summary >= save_summaries_secs:
                _write_summaries(writer, step, metrics, summary_fn)
                last_summary = now
            due = (save_interval_secs and now - last_save >= save_interval_secs) or \
                (save_interval_steps and step % save_interval_steps == 0)
            if saver is not None and due and step != number_of_steps:
                pending = (step, {**saver.snapshot(), **clock.record()})
                last_save = time.time()
    finally:
        progress.close()
    if clock.out_of_time():
        log.info("Out of time: %.1f s spent of --max_train_seconds=%g; stopping at global step "
                 "%d, loss = %.4f", clock.seconds(), clock.max_seconds, step,
                 metrics.get("total_loss", float("nan")))
    if final_fn is not None:
        final_fn(step)
    final = None
    if saver is not None:  # weights gone NaN: the divergence error, before any summary
        final = saver.snapshot()
        saver.check_finite(final, step)
    if writer is not None:
        _write_summaries(writer, step, metrics, summary_fn)
    if saver is not None:
        saver.save(step, {**final, **clock.record()})
    return step


def _remove_leftovers(logdir: str) -> None:
    if "://" in logdir:
        return
    try:
        removed = checkpoints.remove_stale_temporaries(logdir)
    except OSError as e:
        raise dir_error(logdir, e, "clean up") from None
    if removed:
        log.info("Removed %d leftover(s) of killed runs from %s: %s", len(removed), logdir,
                 ", ".join(removed))


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
