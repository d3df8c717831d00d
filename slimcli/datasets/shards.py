"""Parallel, resumable writing of sharded TFRecord files.

Items are encoded by a thread pool (reading, decoding and re-encoding images
release the GIL) in a bounded window, and written in order by one thread.
Each shard is written to a hidden `.tmp-<name>.incomplete` file (which no
dataset file pattern matches; see `slimcli.fileio`) and renamed when
complete; the completed shards and their record counts are kept in a small
state file, so a rerun skips them.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Callable, Iterable, Iterator, Sequence

import tensorflow as tf
from tqdm import tqdm

from slimcli import fileio

STATE_FILENAME = ".slimcli-convert-state.json"
CHUNK_ITEMS = 16  # items per task handed to a worker thread


class SkipItem(Exception):
    """Raised by an encoder for an input that is reported and left out."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclasses.dataclass
class Shard:
    """One output file and the items it holds, in order."""
    split: str
    path: str
    items: list


@dataclasses.dataclass
class WriteResult:
    """Records per split and the items left out as (name, reason)."""
    records: dict[str, int]
    skipped: list[tuple[str, str]]
    written_now: int


def contiguous_shards(split: str, items: Sequence, paths: Sequence[str]) -> list[Shard]:
    """The flowers layout: `ceil(n / num_shards)` consecutive items per shard."""
    per_shard = int(math.ceil(len(items) / float(len(paths)))) if items else 0
    return [Shard(split, path, list(items[i * per_shard:(i + 1) * per_shard]))
            for i, path in enumerate(paths)]


def round_robin_shards(split: str, items: Sequence, paths: Sequence[str]) -> list[Shard]:
    """The Visual Wake Words layout: item `i` goes to shard `i % num_shards`."""
    return [Shard(split, path, list(items[i::len(paths)])) for i, path in enumerate(paths)]


def linspace_bounds(start: int, stop: int, parts: int) -> list[int]:
    """`numpy.linspace(start, stop, parts + 1).astype(int)` in integers."""
    return [int(start + (stop - start) * k / parts) for k in range(parts + 1)]


def nested_linspace_shards(split: str, items: Sequence, paths: Sequence[str],
                           num_batches: int) -> list[Shard]:
    """The ImageNet layout: `num_batches` even ranges, each cut into even shards.

    The original build_imagenet_data.py splits the files among its threads
    (default 8) and each thread among its shards; with `num_batches` equal to
    that thread count the shards hold exactly the same files.
    """
    if len(paths) % num_batches:
        num_batches = 1
    per_batch = len(paths) // num_batches
    outer = linspace_bounds(0, len(items), num_batches)
    shards = []
    for b in range(num_batches):
        inner = linspace_bounds(outer[b], outer[b + 1], per_batch)
        for s in range(per_batch):
            path = paths[b * per_batch + s]
            shards.append(Shard(split, path, list(items[inner[s]:inner[s + 1]])))
    return shards


def fingerprint(payload: Any) -> str:
    """A stable digest of JSON-serialisable data (settings and item identities)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ConversionState:
    """Completed shards of one conversion, kept in `STATE_FILENAME`.

    Args:
      dataset_dir: the output directory.
      digest: the fingerprint of the plan; a state of another plan is dropped
        (and the shards it lists are deleted, since they hold other data).
    """

    def __init__(self, dataset_dir: str, digest: str):
        self.path = os.path.join(dataset_dir, STATE_FILENAME)
        self.dataset_dir = dataset_dir
        self.digest = digest
        self.shards: dict[str, dict] = {}
        old = self._load()
        if old.get("fingerprint") == digest:
            self.shards = old.get("shards", {})
        else:
            for name in old.get("shards", {}):
                _remove_quietly(os.path.join(dataset_dir, name))

    def _load(self) -> dict:
        try:
            with open(self.path, "r", encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def is_complete(self, shard: Shard) -> bool:
        entry = self.shards.get(os.path.basename(shard.path))
        return (entry is not None and os.path.isfile(shard.path)
                and os.path.getsize(shard.path) == entry["bytes"])

    def mark_complete(self, shard: Shard, records: int, skipped: list[tuple[str, str]]) -> None:
        self.shards[os.path.basename(shard.path)] = {
            "records": records, "bytes": os.path.getsize(shard.path),
            "skipped": [list(s) for s in skipped]}
        self.save()

    def save(self) -> None:
        fileio.write_json(self.path, {"fingerprint": self.digest, "shards": self.shards},
                          indent=None)

    def remove(self) -> None:
        _remove_quietly(self.path)

    def discard(self) -> None:
        """Deletes the shards written so far and the state: a rerun starts afresh."""
        for name in self.shards:
            _remove_quietly(os.path.join(self.dataset_dir, name))
        self.shards = {}
        self.remove()


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ordered_map(pool: concurrent.futures.Executor, fn: Callable, items: Iterable,
                 window: int, chunk: int = CHUNK_ITEMS) -> Iterator:
    """`map(fn, items)` on `pool`, in order, at most `window` chunks of `chunk` in flight."""
    pending: collections.deque = collections.deque()
    run = lambda batch: [fn(item) for item in batch]  # noqa: E731
    for batch in _chunks(items, chunk):
        pending.append(pool.submit(run, batch))
        if len(pending) >= window:
            yield from pending.popleft().result()
    while pending:
        yield from pending.popleft().result()


def _encode_or_skip(encode: Callable[[Any], bytes]) -> Callable[[Any], Any]:
    def run(item):
        try:
            return encode(item)
        except SkipItem as e:
            return e
    return run


def write_shards(shards: Sequence[Shard], encode: Callable[[Any], bytes], state: ConversionState,
                 num_threads: int, desc: str, quiet: bool = False) -> WriteResult:
    """Writes every shard not already complete; returns counts and skips.

    Args:
      shards: the plan, in output order.
      encode: item → serialized `tf.train.Example`; raises `SkipItem` for an
        input to leave out. Runs on `num_threads` threads.
      state: completed shards (updated as shards complete).
      num_threads: encoder threads.
      desc: progress bar label.
      quiet: no progress bar or skip messages.

    Returns:
      Records per split (completed earlier or now) and all skipped items.
    """
    pending = [s for s in shards if not state.is_complete(s)]
    total = sum(len(s.items) for s in pending)
    stream_items = (item for shard in pending for item in shard.items)
    written_now = 0
    with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool, \
            tqdm(total=total, unit="img", desc=desc, disable=quiet or not total) as bar:
        stream = _ordered_map(pool, _encode_or_skip(encode), stream_items, 3 * max(1, num_threads))
        try:
            for shard in pending:
                records, skipped = _write_one(shard, stream, bar, quiet)
                state.mark_complete(shard, records, skipped)
                written_now += records
        finally:
            stream.close()
            pool.shutdown(wait=True, cancel_futures=True)
    return _summarise(shards, state, written_now)


def _write_one(shard: Shard, stream: Iterator, bar, quiet: bool) -> tuple[int, list]:
    records, skipped = 0, []
    with fileio.writing(shard.path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for _ in shard.items:
            result = next(stream)
            if isinstance(result, SkipItem):
                skipped.append((result.name, result.reason))
                if not quiet:
                    tqdm.write(f"skipped {result.name}: {result.reason}")
            else:
                writer.write(result)
                records += 1
            bar.update(1)
    return records, skipped


def _summarise(shards: Sequence[Shard], state: ConversionState, written_now: int) -> WriteResult:
    records: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    for shard in shards:
        entry = state.shards[os.path.basename(shard.path)]
        records[shard.split] = records.get(shard.split, 0) + entry["records"]
        skipped.extend(tuple(s) for s in entry["skipped"])
    return WriteResult(records, skipped, written_now)
