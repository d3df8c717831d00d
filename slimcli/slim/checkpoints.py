"""Name-based checkpoints: TF-Slim's restore helpers and an atomic V2 writer.

Checkpoints here are the TF1 format: `<prefix>.index` + `<prefix>.data-*`,
keys = variable names (`InceptionV3/Conv2d_1a_3x3/weights`), plus a
`checkpoint` state file in the directory. `tf.train.load_checkpoint`, TF1's
Saver and TensorFlow's freeze_graph read what `save_checkpoint` writes; the
TF-Slim model zoo's checkpoints restore through `assign_from_checkpoint`.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf

from slimcli import fileio
from slimcli.errors import SlimError
from slimcli.slim import variables as slim_variables

__all__ = [
    "resolve_checkpoint_path", "latest_checkpoint", "list_variables", "save_checkpoint",
    "assign_from_checkpoint", "assign_from_checkpoint_fn", "assign_from_values",
    "assign_from_values_fn", "CheckpointMismatch", "checkpoint_step", "list_checkpoints",
    "listed_checkpoints", "remove_stale_temporaries", "set_aside", "adopt_checkpoint",
]

log = logging.getLogger(__name__)


class CheckpointMismatch(SlimError):
    """A checkpoint does not fit the variables: lists missing keys and shape mismatches."""

    def __init__(self, message: str, missing: list[str], mismatched: list[tuple],
                 details: str | None = None):
        super().__init__(message)
        self.missing = missing
        self.mismatched = mismatched
        self.details = details or message  # the finding alone, for callers naming their fix


def latest_checkpoint(directory: str) -> str | None:
    """The newest checkpoint prefix in `directory`, or None."""
    path = tf.train.latest_checkpoint(directory)
    if path and tf.io.gfile.exists(path + ".index"):
        return path
    # The state file may name a path from another machine: fall back to the newest index file.
    indexes = tf.io.gfile.glob(os.path.join(directory, "*.index"))
    if not indexes:
        return None
    def step(p: str) -> int:
        tail = p[:-len(".index")].rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1
    return max(indexes, key=lambda p: (step(p), os.path.getmtime(p)))[:-len(".index")]


def checkpoint_step(prefix: str) -> int:
    """The step of `model.ckpt-<step>` (-1 when the name carries none)."""
    tail = os.path.basename(prefix).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def listed_checkpoints(directory: str) -> list[str]:
    """The prefixes the directory's `checkpoint` state file lists, oldest first."""
    state = tf.train.get_checkpoint_state(directory)
    paths = list(state.all_model_checkpoint_paths) if state else []
    return [os.path.join(directory, os.path.basename(p)) for p in paths]


def list_checkpoints(directory: str) -> list[str]:
    """Every complete checkpoint of `directory` (listed or not), newest first.

    A checkpoint is complete when its `.index` exists: the writer renames the
    index into place last. One written completely by a run killed before it
    updated the state file is included.
    """
    indexes = tf.io.gfile.glob(os.path.join(directory, "*.index"))
    prefixes = [p[:-len(".index")] for p in indexes]
    return sorted(prefixes, key=lambda p: (checkpoint_step(p), os.path.getmtime(p + ".index")),
                  reverse=True)


def remove_stale_temporaries(directory: str) -> list[str]:
    """Removes what killed writers left in `directory`; returns the names removed.

    That is every hidden temporary (`.tmp-*`: staging folders of checkpoints,
    half-written state files) and the data files of a checkpoint whose index
    never arrived. Call it only while holding the directory's writer lock
    (`slim.train_dir.TrainDirLock`): a live writer's temporaries look the same.
    """
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        orphan = ".data-" in name and not os.path.exists(
            os.path.join(directory, name.split(".data-")[0] + ".index"))
        if not (name.startswith(fileio.TEMP_PREFIX) or orphan):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
        removed.append(name)
    return removed


def set_aside(prefix: str, folder: str) -> str:
    """Moves the files of checkpoint `prefix` into `<its directory>/<folder>/` and unlists it.

    Returns:
      The new prefix.
    """
    directory = os.path.dirname(os.path.abspath(prefix))
    target = os.path.join(directory, folder)
    os.makedirs(target, exist_ok=True)
    for path in tf.io.gfile.glob(prefix + ".*"):
        os.replace(path, os.path.join(target, os.path.basename(path)))
    kept = [os.path.basename(p) for p in listed_checkpoints(directory)
            if tf.io.gfile.exists(p + ".index")]
    _write_state_file(directory, kept)
    return os.path.join(target, os.path.basename(prefix))


def adopt_checkpoint(prefix: str) -> None:
    """Lists checkpoint `prefix` as the latest in its directory's state file."""
    directory = os.path.dirname(os.path.abspath(prefix))
    _update_state_file(directory, os.path.basename(prefix), None)


def resolve_checkpoint_path(path: str) -> str:
    """A checkpoint prefix from a prefix or a directory (its latest checkpoint).

    Raises:
      SlimError: nothing readable at `path`.
    """
    if not path:
        raise SlimError("no checkpoint path given; pass a checkpoint prefix "
                        "(model.ckpt-1000) or a directory holding checkpoints.")
    if tf.io.gfile.isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise SlimError(f"no checkpoint in directory {path!r}: expected a `checkpoint` file or "
                            f"*.index files; pass a checkpoint prefix or train first.")
        return found
    if tf.io.gfile.exists(path + ".index"):
        return path
    if path.endswith(".index") and tf.io.gfile.exists(path):
        return path[:-len(".index")]
    if tf.io.gfile.exists(path):  # a V1 checkpoint file
        return path
    raise SlimError(f"checkpoint {path!r} not found: expected {path}.index (a checkpoint prefix "
                    f"such as model.ckpt-1000) or a directory.")


def list_variables(path: str) -> list[tuple[str, list[int]]]:
    """`[(name, shape), ...]` of a checkpoint (file prefix or directory), sorted by name."""
    reader = tf.train.load_checkpoint(resolve_checkpoint_path(path))
    shapes = reader.get_variable_to_shape_map()
    return sorted((name, list(shape)) for name, shape in shapes.items())


def _read_value(var: Any) -> np.ndarray:
    return var.numpy() if hasattr(var, "numpy") else np.asarray(var)


def save_checkpoint(var_dict: Mapping[str, Any], prefix: str,
                    max_to_keep: int | None = None,
                    preserve: Callable[[str], bool] | None = None) -> str:
    """Writes `{name: variable or array}` as a V2 checkpoint at `prefix`, atomically.

    The files are written under a temporary name in the same directory and
    renamed into place, data first and index last, then the directory's
    `checkpoint` state file is updated (also by rename). A crash leaves either
    the previous state or the complete new checkpoint.

    Args:
      var_dict: names → variables (or tensors/arrays).
      prefix: the checkpoint prefix, e.g. `train_dir/model.ckpt-1000`.
      max_to_keep: keep only this many newest checkpoints in the state file
        (older files are deleted); None keeps all.
      preserve: called with the prefix of each checkpoint that falls out of
        the newest `max_to_keep`; True keeps its files on disk (it leaves the
        state file's list), as TF1's `keep_checkpoint_every_n_hours` did.

    Returns:
      `prefix`.
    """
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    names = list(var_dict)
    tensors = [tf.convert_to_tensor(_read_value(var_dict[n])) for n in names]
    with fileio.staging_dir(directory, os.path.basename(prefix)) as tmpdir:
        tmp_prefix = os.path.join(tmpdir, os.path.basename(prefix))
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names,
                          shape_and_slices=[""] * len(names), tensors=tensors)
        produced = sorted(os.listdir(tmpdir), key=lambda f: f.endswith(".index"))
        for fname in produced:  # data files first, the index last
            fileio.publish(os.path.join(tmpdir, fname), os.path.join(directory, fname))
    _update_state_file(directory, os.path.basename(prefix), max_to_keep, preserve)
    return prefix


def _update_state_file(directory: str, new: str, max_to_keep: int | None,
                       preserve: Callable[[str], bool] | None = None) -> None:
    state = tf.train.get_checkpoint_state(directory)
    paths = [os.path.basename(p) for p in (state.all_model_checkpoint_paths if state else [])]
    paths = [p for p in paths if p != new] + [new]
    if max_to_keep:
        for old in paths[:-max_to_keep]:
            if preserve is not None and preserve(os.path.join(directory, old)):
                continue
            for f in tf.io.gfile.glob(os.path.join(directory, old + ".*")):
                tf.io.gfile.remove(f)
        paths = paths[-max_to_keep:]
    _write_state_file(directory, paths)


def _write_state_file(directory: str, paths: list[str]) -> None:
    """The `checkpoint` state file listing `paths` (oldest first; the last is the latest)."""
    state = os.path.join(directory, "checkpoint")
    if not paths:
        if tf.io.gfile.exists(state):
            tf.io.gfile.remove(state)
        return
    lines = [f'model_checkpoint_path: "{paths[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{p}"' for p in paths]
    fileio.write_file(state, "\n".join(lines) + "\n")


def _named_vars(var_list: Any, store: Any) -> dict[str, Any]:
    """`{checkpoint name: variable}` from a list of variables or a dict."""
    if isinstance(var_list, Mapping):
        return dict(var_list)
    try:
        st = slim_variables._store(store)
    except SlimError:
        st = None
    result = {}
    for var in var_list:
        name = st.name_of(var) if st is not None else slim_variables.strip_name(var.name)
        result[name] = var
    return result


def _check_fit(named: Mapping[str, Any], shapes: Mapping[str, list], path: str,
               ignore_missing_vars: bool) -> dict[str, Any]:
    missing = [n for n in named if n not in shapes]
    mismatched = [(n, list(shapes[n]), named[n].shape.as_list())
                  for n in named if n in shapes and list(shapes[n]) != named[n].shape.as_list()]
    if mismatched:
        lines = "; ".join(f"{n}: checkpoint {c} vs model {m}" for n, c, m in mismatched)
        raise CheckpointMismatch(f"checkpoint {path} does not fit the model: {len(mismatched)} "
                                 f"shape mismatch(es): {lines}", missing, mismatched)
    if missing and not ignore_missing_vars:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        details = f"checkpoint {path} lacks {len(missing)} variable(s): {shown}."
        raise CheckpointMismatch(f"{details} Exclude them or pass ignore_missing_vars=True.",
                                 missing, [], details)
    for name in missing:
        log.warning("Variable %s missing in checkpoint %s", name, path)
    return {n: v for n, v in named.items() if n in shapes}


def assign_from_checkpoint(model_path: str, var_list: Any, ignore_missing_vars: bool = False,
                           store: Any = None) -> list[str]:
    """Assigns checkpoint values to variables now.

    Args:
      model_path: a checkpoint prefix or a directory (its latest checkpoint).
      var_list: variables (restored by their own names), or a dict
        `{name_in_checkpoint: variable}` to restore under other names.
      ignore_missing_vars: skip (with a warning) variables the checkpoint lacks.
      store: the store that names the variables of a list (default: active one,
        else the variables' own names).

    Returns:
      The checkpoint names restored.

    Raises:
      CheckpointMismatch: shapes differ (every mismatch listed with both
        shapes) or keys are missing (listed).
    """
    path = resolve_checkpoint_path(model_path)
    reader = tf.train.load_checkpoint(path)
    named = _check_fit(_named_vars(var_list, store), reader.get_variable_to_shape_map(), path,
                       ignore_missing_vars)
    for name, var in named.items():
        value = reader.get_tensor(name)
        var.assign(tf.cast(value, var.dtype) if value.dtype != var.dtype.as_numpy_dtype else value)
    return list(named)


def assign_from_checkpoint_fn(model_path: str, var_list: Any, ignore_missing_vars: bool = False,
                              reshape_variables: bool = False, store: Any = None) -> Callable:
    """A function that restores `var_list` from `model_path` when called.

    The returned callable takes any (ignored) arguments, as TF-Slim's took a
    session. `reshape_variables` is not supported (an error if True).
    """
    if reshape_variables:
        raise SlimError("assign_from_checkpoint_fn: reshape_variables=True is not supported.")
    named = _named_vars(var_list, store)

    def init_fn(*_unused: Any) -> list[str]:
        return assign_from_checkpoint(model_path, named, ignore_missing_vars)
    return init_fn


def assign_from_values(var_names_to_values: Mapping[str, Any], store: Any = None) -> None:
    """Assigns `{variable name: value}` to the store's variables now.

    Raises:
      SlimError: a name is not a variable, or a value's shape differs.
    """
    st = slim_variables._store(store)
    for name, value in var_names_to_values.items():
        var = slim_variables.get_unique_variable(name, store=st)
        value = np.asarray(value)
        if list(value.shape) != var.shape.as_list():
            raise SlimError(f"assign_from_values: {name} has shape {var.shape.as_list()}, the "
                            f"value has shape {list(value.shape)}.")
        var.assign(value.astype(var.dtype.as_numpy_dtype))


def assign_from_values_fn(var_names_to_values: Mapping[str, Any], store: Any = None) -> Callable:
    """A function that calls `assign_from_values` when called (arguments ignored)."""
    def init_fn(*_unused: Any) -> None:
        assign_from_values(var_names_to_values, store)
    return init_fn
