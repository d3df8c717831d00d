"""Evaluating checkpoints: once, or each new one as training writes it.

`evaluate_once` restores a checkpoint, streams a dataset through an
evaluation step that updates metrics, and returns (and writes as TensorBoard
summaries) the results. `evaluation_loop` watches a directory and evaluates
every new checkpoint exactly once, oldest first, until no new one appears
within `timeout` seconds or `max_number_of_evaluations` is reached.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Iterable, Iterator

import tensorflow as tf

from slimcli.slim.metrics import MetricMap

log = logging.getLogger(__name__)

__all__ = ["checkpoint_step", "list_checkpoints", "checkpoints_iterator", "evaluate_once",
           "evaluation_loop"]


def checkpoint_step(path: str) -> int | None:
    """The global step of a checkpoint: its `global_step` tensor, else the `-N` suffix."""
    try:
        reader = tf.train.load_checkpoint(path)
        if reader.has_tensor("global_step"):
            return int(reader.get_tensor("global_step"))
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError):
        pass
    tail = path.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def list_checkpoints(checkpoint_dir: str) -> list[str]:
    """Complete checkpoints of a directory (those with an index file), oldest first."""
    prefixes = [p[:-len(".index")] for p in tf.io.gfile.glob(os.path.join(checkpoint_dir,
                                                                           "*.index"))]

    def order(prefix: str):
        tail = prefix.rsplit("-", 1)[-1]
        return (int(tail) if tail.isdigit() else -1, os.path.getmtime(prefix + ".index"))
    return sorted(prefixes, key=order)


def checkpoints_iterator(checkpoint_dir: str, min_interval_secs: float = 0,
                         timeout: float | None = None,
                         poll_secs: float = 1.0) -> Iterator[str]:
    """Yields each new checkpoint of `checkpoint_dir` once, oldest first.

    Args:
      checkpoint_dir: the directory training writes to.
      min_interval_secs: at least this long between two yields.
      timeout: stop when no new checkpoint appears for this many seconds
        (None waits forever).
      poll_secs: how often to look.
    """
    seen: set[str] = set()
    last_new = time.monotonic()
    last_yield = 0.0
    while True:
        fresh = [p for p in list_checkpoints(checkpoint_dir) if p not in seen]
        if fresh:
            wait = min_interval_secs - (time.monotonic() - last_yield)
            if wait > 0:
                time.sleep(wait)
            seen.add(fresh[0])
            last_yield = last_new = time.monotonic()
            yield fresh[0]
            continue
        if timeout is not None and time.monotonic() - last_new >= timeout:
            log.info("No new checkpoint in %s for %.0f s; stopping.", checkpoint_dir, timeout)
            return
        time.sleep(poll_secs)


def _to_python(value: Any) -> Any:
    value = value.numpy() if hasattr(value, "numpy") else value
    return value.item() if getattr(value, "ndim", 1) == 0 else value.tolist()


def evaluate_once(checkpoint_path: str, restore_fn: Callable[[str], Any],
                  eval_step: Callable[[Any], Any], dataset: Iterable, metric_map: MetricMap,
                  num_batches: int | None = None, summary_dir: str | None = None,
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, Any]:
    """Evaluates one checkpoint.

    Args:
      checkpoint_path: the checkpoint prefix.
      restore_fn: `restore_fn(path)` loads the checkpoint into the model.
      eval_step: `eval_step(batch)` runs the model and updates the metrics.
      dataset: an iterable of batches (one pass; it is not repeated).
      metric_map: the metrics, reset before the pass.
      num_batches: stop after this many batches (None: the whole dataset).
      summary_dir: where to write scalar summaries (None: nowhere).
      progress: wraps the batch iterator (e.g. a tqdm bar).

    Returns:
      `{metric name: value}` (scalars as floats, matrices as nested lists),
      plus `checkpoint`, `global_step` and `num_batches`.
    """
    restore_fn(checkpoint_path)
    metric_map.reset()
    batches = iter(dataset)
    if progress is not None:
        batches = iter(progress(batches))
    count = 0
    for batch in batches:
        if num_batches is not None and count >= num_batches:
            break
        eval_step(batch)
        count += 1
    results = {name: _to_python(value) for name, value in metric_map.results().items()}
    step = checkpoint_step(checkpoint_path)
    if summary_dir:
        writer = tf.summary.create_file_writer(summary_dir)
        with writer.as_default():
            for name, value in results.items():
                if isinstance(value, float):
                    tf.summary.scalar(name, value, step=step or 0)
        writer.flush()
    results.update(checkpoint=checkpoint_path, global_step=step, num_batches=count)
    return results


def evaluation_loop(checkpoint_dir: str, restore_fn: Callable[[str], Any],
                    eval_step: Callable[[Any], Any], dataset: Iterable, metric_map: MetricMap,
                    num_batches: int | None = None, eval_interval_secs: float = 60,
                    timeout: float | None = None, max_number_of_evaluations: int | None = None,
                    summary_dir: str | None = None,
                    on_result: Callable[[dict], Any] | None = None,
                    progress: Callable[[Iterable], Iterable] | None = None) -> list[dict]:
    """Evaluates each new checkpoint in `checkpoint_dir` once, in order.

    Returns:
      The results of every evaluation, in order.
    """
    all_results = []
    for path in checkpoints_iterator(checkpoint_dir, eval_interval_secs, timeout):
        results = evaluate_once(path, restore_fn, eval_step, dataset, metric_map, num_batches,
                                summary_dir, progress)
        all_results.append(results)
        if on_result is not None:
            on_result(results)
        if max_number_of_evaluations is not None and \
                len(all_results) >= max_number_of_evaluations:
            break
    return all_results
