"""Files that appear whole or not at all: written under a temporary name, then renamed.

Every file or directory that slimcli publishes (configs, results, dataset
descriptors, shards, checkpoints, exported models) is written next to its
final place under a hidden temporary name, `.tmp-<name>.incomplete`, and
renamed over the target in one step once complete. A reader sees the old
file or the new one, never half of one; a failure removes the temporary
file and leaves the old file as it was. The temporary name is hidden and
ends in `.incomplete`, so no dataset file pattern or checkpoint glob
matches it, and a rerun overwrites what a killed run left behind.

Paths go through `tf.io.gfile`, so `gs://` and other TensorFlow filesystems
work as local paths do. Nothing here calls fsync: a rename on the same
filesystem is the atomic step, as it was in each place before this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Any, Iterator

import tensorflow as tf

TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".incomplete"


def temp_path(path: str) -> str:
    """The hidden temporary sibling `path` is written to before it is renamed into place."""
    directory, name = os.path.split(path.rstrip("/"))
    return os.path.join(directory, f"{TEMP_PREFIX}{name}{TEMP_SUFFIX}")


def publish(tmp: str, path: str) -> None:
    """Renames the finished file `tmp` over `path` in one step."""
    tf.io.gfile.rename(tmp, path, overwrite=True)


def _remove(path: str) -> None:
    """Removes a file or a tree if there; a local tree never through its symbolic links."""
    if "://" not in path:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    elif tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


def _make_parent(path: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)


@contextlib.contextmanager
def writing(path: str) -> Iterator[str]:
    """Yields a temporary path to write `path`'s content to; publishes it when the block ends.

    For writers that take a file name (`tf.io.TFRecordWriter`, a download).
    The parent directory is created. If the block raises (Ctrl-C included),
    the temporary file is removed and `path` keeps its old content.

    Args:
      path: the file to produce.

    Yields:
      The temporary path (see `temp_path`).
    """
    _make_parent(path)
    tmp = temp_path(path)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_file(path: str, data: bytes | str) -> str:
    """Writes `data` (bytes, or text as UTF-8) to `path` atomically; returns `path`."""
    with writing(path) as tmp:
        with tf.io.gfile.GFile(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
    return path


def write_json(path: str, payload: Any, indent: int | None = 1, sort_keys: bool = False) -> str:
    """Writes `payload` as JSON (ending in a newline) to `path` atomically; returns `path`.

    The payload is serialised before anything is written, so a value JSON
    cannot hold raises TypeError and leaves `path` untouched.
    """
    text = json.dumps(payload, indent=indent, sort_keys=sort_keys) + "\n"
    return write_file(path, text)


@contextlib.contextmanager
def staging_dir(directory: str, name: str) -> Iterator[str]:
    """Yields an empty hidden directory inside `directory`, removed with whatever is left in it.

    For writers that produce several files at once (a checkpoint's data and
    index files): write them here, then `publish` each into `directory`.
    """
    staging = temp_path(os.path.join(directory, name))
    _remove(staging)
    tf.io.gfile.makedirs(staging)
    try:
        yield staging
    finally:
        _remove(staging)


@contextlib.contextmanager
def writing_dir(directory: str) -> Iterator[str]:
    """Yields a temporary directory to fill; it replaces `directory` when the block ends.

    For writers that produce a directory (a SavedModel). The old directory is
    moved aside before the new one is renamed in, then deleted, so a reader
    finds the old tree or the new one. If the block raises, the temporary
    directory is removed and `directory` is left as it was.
    """
    directory = directory.rstrip("/")
    _make_parent(directory)
    tmp = temp_path(directory)
    _remove(tmp)
    try:
        yield tmp
        old = temp_path(f"{directory}.old")
        _remove(old)
        if tf.io.gfile.exists(directory):
            tf.io.gfile.rename(directory, old)
        tf.io.gfile.rename(tmp, directory)
        _remove(old)
    except BaseException:
        _remove(tmp)
        raise
