"""Evaluating checkpoints: once, or each new one as training writes it.

`evaluate_once` restores a checkpoint, streams a dataset through an
evaluation step that updates metrics, and returns (and writes as TensorBoard
summaries) the results. `evaluation_loop` watches a directory and evaluates
every new checkpoint exactly once, oldest first, until no new one appears
within `timeout` seconds or `max_number_of_evaluations` is reached.

Both take slimcli's form, `(checkpoint, restore_fn, eval_step, dataset,
metric_map, ...)`, or TF-Slim's, `(master, checkpoint, logdir, num_evals=,
eval_op=, final_op=, summary_op=, variables_to_restore=, ...)` in which the
"ops" are zero-argument callables such as the `update_op`s and values of
`slim.metrics.streaming_*` (see `tf_slim_evaluate_once`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Iterable, Iterator

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import checkpoints as slim_checkpoints
from slimcli.slim.metric_classes import MetricMap

log = logging.getLogger(__name__)

__all__ = ["checkpoint_step", "list_checkpoints", "checkpoints_iterator", "evaluate_once",
           "evaluation_loop", "evaluate_checkpoint", "evaluate_checkpoints",
           "tf_slim_evaluate_once", "tf_slim_evaluation_loop"]


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


def _slimcli_aliases(kwargs: dict) -> dict:
    """TF-Slim's keyword names in slimcli's form: num_evals, logdir; master is ignored."""
    if "master" in kwargs:
        log.info("master=%r ignored: TF2 has no session target.", kwargs.pop("master"))
    for old, new in (("num_evals", "num_batches"), ("logdir", "summary_dir")):
        if old in kwargs:
            if new in kwargs:
                raise SlimError(f"pass {old}= or {new}=, not both.")
            kwargs[new] = kwargs.pop(old)
    return kwargs


def _is_slimcli_form(args: tuple, kwargs: dict) -> bool:
    restore_fn = args[1] if len(args) > 1 else kwargs.get("restore_fn")
    return callable(restore_fn)


def evaluate_once(*args: Any, **kwargs: Any) -> Any:
    """Evaluates one checkpoint: `evaluate_checkpoint` (slimcli's form, also taking
    `num_evals`, `logdir` and `master`), or `tf_slim_evaluate_once` when called
    TF-Slim's way (`evaluate_once(master, checkpoint_path, logdir, num_evals=...,
    eval_op=..., final_op=...)`)."""
    if _is_slimcli_form(args, kwargs):
        return evaluate_checkpoint(*args, **_slimcli_aliases(kwargs))
    return tf_slim_evaluate_once(*args, **kwargs)


def evaluation_loop(*args: Any, **kwargs: Any) -> Any:
    """Evaluates each new checkpoint of a directory: `evaluate_checkpoints` (slimcli's
    form, also taking `num_evals`, `logdir` and `master`), or
    `tf_slim_evaluation_loop` when called TF-Slim's way."""
    if _is_slimcli_form(args, kwargs):
        return evaluate_checkpoints(*args, **_slimcli_aliases(kwargs))
    return tf_slim_evaluation_loop(*args, **kwargs)


def evaluate_checkpoint(checkpoint_path: str, restore_fn: Callable[[str], Any],
                        eval_step: Callable[[Any], Any], dataset: Iterable,
                        metric_map: MetricMap, num_batches: int | None = None,
                        summary_dir: str | None = None,
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


def evaluate_checkpoints(checkpoint_dir: str, restore_fn: Callable[[str], Any],
                         eval_step: Callable[[Any], Any], dataset: Iterable,
                         metric_map: MetricMap, num_batches: int | None = None,
                         eval_interval_secs: float = 60, timeout: float | None = None,
                         max_number_of_evaluations: int | None = None,
                         summary_dir: str | None = None,
                         on_result: Callable[[dict], Any] | None = None,
                         progress: Callable[[Iterable], Iterable] | None = None) -> list[dict]:
    """Evaluates each new checkpoint in `checkpoint_dir` once, in order.

    Returns:
      The results of every evaluation, in order.
    """
    all_results = []
    for path in checkpoints_iterator(checkpoint_dir, eval_interval_secs, timeout):
        results = evaluate_checkpoint(path, restore_fn, eval_step, dataset, metric_map,
                                      num_batches, summary_dir, progress)
        all_results.append(results)
        if on_result is not None:
            on_result(results)
        if max_number_of_evaluations is not None and \
                len(all_results) >= max_number_of_evaluations:
            break
    return all_results


# -- TF-Slim's call form ------------------------------------------------------------------

_DEFAULT = object()


def _run(fetch: Any) -> Any:
    """Runs an "op" the TF2 way: callables are called, tensors read, structures walked."""
    if fetch is None:
        return None
    if isinstance(fetch, dict):
        return {k: _run(v) for k, v in fetch.items()}
    if isinstance(fetch, (list, tuple)):
        return [_run(f) for f in fetch]
    if callable(fetch):
        fetch = fetch()
    if isinstance(fetch, (tf.Tensor, tf.Variable)):
        return _to_python(fetch)
    return fetch


def _metrics_in(*fetches: Any) -> list:
    """The metric objects behind the (value, update_op) callables in `fetches`."""
    found: list = []
    stack = list(fetches)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "metric") and not any(m is item.metric for m in found):
            found.append(item.metric)
    return found


def _check_tf1_only(master: Any, feed_dicts: tuple, hooks: Any, session_config: Any) -> None:
    if master:
        log.info("master=%r ignored: TF2 has no session target.", master)
    if any(feed_dicts):
        raise SlimError("evaluation: *_feed_dict arguments are gone with TF1 sessions; make the "
                        "ops callables that read their inputs.")
    if hooks:
        raise SlimError("evaluation: hooks are gone with TF1 sessions; wrap eval_op in a "
                        "callable that does the hook's work.")
    if session_config is not None:
        log.info("session_config ignored: TF2 has no session.")


def _evaluate_tf_slim(path: str, logdir: str | None, num_evals: int, initial_op: Any,
                      eval_op: Any, final_op: Any, summary_op: Any,
                      variables_to_restore: Any) -> Any:
    if variables_to_restore is None:
        raise SlimError("evaluation: pass variables_to_restore= (e.g. model.variables_dict() or "
                        "slim.get_variables_to_restore(store=model)); TF2 has no global "
                        "variables to restore by default.")
    slim_checkpoints.assign_from_checkpoint(path, variables_to_restore)
    for metric in _metrics_in(eval_op, final_op):  # TF-Slim re-initialized local variables
        metric.reset()
    _run(initial_op)
    for _ in range(int(num_evals)):
        _run(eval_op)
    final = _run(final_op)
    step = checkpoint_step(path) or 0
    if logdir and summary_op is not None:
        writer = tf.summary.create_file_writer(logdir)
        with writer.as_default(step=step):
            if summary_op is _DEFAULT:
                for name, value in (final.items() if isinstance(final, dict) else ()):
                    if isinstance(value, float):
                        tf.summary.scalar(name, value)
            else:
                summary_op(step)
        writer.flush()
    log.info("Evaluated %s (global step %d)", path, step)
    return final


def tf_slim_evaluate_once(master: str = "", checkpoint_path: str | None = None,
                          logdir: str | None = None, num_evals: int = 1, initial_op: Any = None,
                          initial_op_feed_dict: Any = None, eval_op: Any = None,
                          eval_op_feed_dict: Any = None, final_op: Any = None,
                          final_op_feed_dict: Any = None, summary_op: Any = _DEFAULT,
                          summary_op_feed_dict: Any = None, variables_to_restore: Any = None,
                          session_config: Any = None, hooks: Any = None) -> Any:
    """TF-Slim's `evaluate_once`, with callables for ops.

    Restores `variables_to_restore` (a list or `{checkpoint name: variable}`;
    required) from `checkpoint_path` (a prefix or a directory), resets the
    metrics behind `eval_op`/`final_op`, runs `initial_op` once, `eval_op`
    `num_evals` times and returns the value of `final_op`. An op is a
    zero-argument callable, or a list/dict of them (`names_to_updates`,
    `names_to_values` of `slim.metrics.aggregate_metric_map`); tensors read
    as numbers. `summary_op` default writes the float values of a dict
    `final_op` to `logdir` at the checkpoint's step; None writes nothing; a
    callable is called as `summary_op(step)` with `logdir`'s writer as default.
    `master` and `session_config` are ignored (logged); feed dicts and hooks
    are errors.
    """
    _check_tf1_only(master, (initial_op_feed_dict, eval_op_feed_dict, final_op_feed_dict,
                             summary_op_feed_dict), hooks, session_config)
    path = slim_checkpoints.resolve_checkpoint_path(checkpoint_path)
    return _evaluate_tf_slim(path, logdir, num_evals, initial_op, eval_op, final_op, summary_op,
                             variables_to_restore)


def tf_slim_evaluation_loop(master: str = "", checkpoint_dir: str | None = None,
                            logdir: str | None = None, num_evals: int = 1,
                            initial_op: Any = None, initial_op_feed_dict: Any = None,
                            init_fn: Callable | None = None, eval_op: Any = None,
                            eval_op_feed_dict: Any = None, final_op: Any = None,
                            final_op_feed_dict: Any = None, summary_op: Any = _DEFAULT,
                            summary_op_feed_dict: Any = None, variables_to_restore: Any = None,
                            eval_interval_secs: float = 60,
                            max_number_of_evaluations: int | None = None,
                            session_config: Any = None, timeout: float | None = None,
                            timeout_fn: Callable[[], bool] | None = None,
                            hooks: Any = None) -> Any:
    """TF-Slim's `evaluation_loop`: `tf_slim_evaluate_once` on each new checkpoint of
    `checkpoint_dir`, oldest first, at most every `eval_interval_secs`.

    Stops after `max_number_of_evaluations`, or when no new checkpoint comes
    within `timeout` seconds and `timeout_fn()` (if given) returns True.
    `init_fn()` runs before each evaluation, after the restore. Returns the
    `final_op` value of the last evaluation (None if there was none).
    """
    _check_tf1_only(master, (initial_op_feed_dict, eval_op_feed_dict, final_op_feed_dict,
                             summary_op_feed_dict), hooks, session_config)
    final, count, seen = None, 0, set()
    while True:
        for path in checkpoints_iterator(checkpoint_dir, eval_interval_secs, timeout):
            if path in seen:
                continue
            seen.add(path)
            ops = [init_fn, initial_op] if init_fn is not None else initial_op
            final = _evaluate_tf_slim(path, logdir, num_evals, ops, eval_op, final_op,
                                      summary_op, variables_to_restore)
            count += 1
            if max_number_of_evaluations is not None and count >= max_number_of_evaluations:
                return final
        if timeout_fn is None or timeout_fn():
            return final
