"""The one tf.data input pipeline of slimcli: TFRecords → preprocessed batches.

Used by training, evaluation and the benchmarks:

    fn = get_preprocessing("inception_v3", is_training=True)
    ds = build_input_pipeline(files, fn, batch_size=32, image_size=299, is_training=True, seed=0)
    for images, labels in ds: ...   # float32 [32, 299, 299, 3], int64 [32]

Stages: interleaved parallel reads of the files (shuffled when training; in
blocks of 16 records) → shard per worker → [cache] → [repeat] → shuffle
records → blocks of 32 records, numbered → parse + decode + preprocess a block
per element (parallel) → corrupt-record and label check per block → rebatch
to the batch size → prefetch. Every parallel stage is AUTOTUNE unless told
otherwise. Each tf.data stage costs tens of microseconds per element, more
than decoding a 28x28 PNG, so the stages after the shuffle work on blocks
(docs/preprocessing.md has the figures). A repeated stream of small images
of one size is instead decoded once into memory (`slimcli.input_cache`,
`decoded_cache_mb`).

Corrupt data. Three things can be wrong with a record: the TFRecord framing
(truncated file, CRC mismatch: the rest of that file cannot be read), the
`tf.train.Example` or its image (not parseable, not decodable), or a missing
`image/class/label`. By default the pipeline then fails with the file name and
the record index (0-based, within the file). With `skip_corrupt=True` it
skips such records, logs them and counts them in `PipelineStats`.

How, cheaply: a block is decoded in one element of a parallel map followed by
`ignore_errors`, so a corrupt record loses its block; the ordered check after
it finds the gap in the block numbers and decodes that block again record by
record (`_Decoder`), from a small table that holds each block until checked.
Framing: the bytes read per file must add up to its size.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import random
import threading
from typing import Callable, NamedTuple, Optional, Sequence

import tensorflow as tf

from slimcli.errors import SlimError

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 1024
DEFAULT_NUM_READERS = 4

# The slim tf.train.Example schema (also read by TF Model Garden).
IMAGE_KEY = "image/encoded"
FORMAT_KEY = "image/format"
LABEL_KEY = "image/class/label"
HEIGHT_KEY = "image/height"
WIDTH_KEY = "image/width"
EXAMPLE_FEATURES = {
    IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    FORMAT_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
    LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    HEIGHT_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    WIDTH_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
}

# Record status codes carried through the pipeline.
_DROP = -1          # a good end-of-file marker: not a record
_OK = 0
_END = 1            # end-of-stream marker (finite streams)
_BAD_FRAMING = 2    # the file is truncated or corrupt from this record on
_NO_LABEL = 3       # the Example has no image/class/label
_DECODE_FAILED = 4  # not a parseable Example with a decodable image (or preprocessing failed)
_REASONS = {
    _BAD_FRAMING: "truncated or corrupt TFRecord data (short read or CRC mismatch); "
                  "the rest of this file cannot be read",
    _NO_LABEL: f"the tf.train.Example has no {LABEL_KEY}",
    _DECODE_FAILED: f"not a tf.train.Example with a decodable {IMAGE_KEY}, or its "
                    "preprocessing failed",
}
_TFRECORD_OVERHEAD_BYTES = 16  # length (8) + length CRC (4) + data CRC (4)
# Ends each file's records. A serialized proto never starts with a 0 byte, so
# no valid Example can equal it.
_END_OF_FILE = b"\x00slimcli:end-of-file"
_MAX_CORRUPT_IN_A_ROW = 1000
# Records a file reader hands on at a time: files interleave in blocks of this many.
_READ_BLOCK = 16
# Records decoded as one tf.data element, and checked at a time (vectorized).
_DECODE_BLOCK = 32
# In a repeated stream, an empty block follows every this many blocks (see `_Decoder`).
_HEARTBEAT_EVERY = 32

# The pipeline's functions use explicit tf.cond/tf.case, so tracing them
# without AutoGraph conversion is both correct and much faster.
_graph_fn = tf.autograph.experimental.do_not_convert


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized `tf.train.Example` of the slim schema.

    Args:
      serialized: scalar string tensor.

    Returns:
      Dict with `image/encoded` and `image/format` (string; format "" when
      absent), `image/class/label` (int64, -1 when absent), `image/height`
      and `image/width` (int64, 0 when absent).
    """
    return tf.io.parse_single_example(serialized, EXAMPLE_FEATURES)


def decode_image(features: dict[str, tf.Tensor], channels: int = 3) -> tf.Tensor:
    """Decodes `image/encoded` according to `image/format`.

    `jpeg`/`jpg` → `decode_jpeg`, `png` → `decode_png`, `raw` → uint8 bytes
    reshaped to [image/height, image/width, channels]; any other or missing
    format → `decode_image`, which recognises JPEG, PNG, GIF, BMP and WebP by
    content (first frame of animations).

    Args:
      features: output of `parse_example`.
      channels: channels of the decoded image (1 or 3).

    Returns:
      uint8 tensor [height, width, channels].

    Raises:
      tf.errors.InvalidArgumentError: (at run time) undecodable data.
    """
    encoded = features[IMAGE_KEY]
    image_format = tf.strings.lower(features[FORMAT_KEY])
    is_jpeg = tf.logical_or(tf.equal(image_format, "jpeg"), tf.equal(image_format, "jpg"))
    branch = tf.where(is_jpeg, 0, tf.where(tf.equal(image_format, "png"), 1,
                                           tf.where(tf.equal(image_format, "raw"), 2, 3)))
    shape = tf.stack([features[HEIGHT_KEY], features[WIDTH_KEY], channels])
    image = tf.switch_case(branch, [
        lambda: tf.io.decode_jpeg(encoded, channels=channels),
        lambda: tf.io.decode_png(encoded, channels=channels),
        lambda: tf.reshape(tf.io.decode_raw(encoded, tf.uint8), shape),
        lambda: tf.io.decode_image(encoded, channels=channels, expand_animations=False),
    ])
    return tf.ensure_shape(image, [None, None, channels])


class CorruptRecord(NamedTuple):
    """One skipped record: file, 0-based index within the file, reason."""

    file: str
    index: int
    reason: str


class PipelineStats:
    """What a pipeline skipped with `skip_corrupt=True`; thread-safe.

    Pass one to `build_input_pipeline(..., stats=stats)` and read
    `stats.skipped` at any time. The count covers records the pipeline has
    read so far, which can run ahead of the batches consumed by the prefetch
    depth; a corrupt record is counted each time it is read (once per epoch).

    Attributes:
      skipped: records skipped so far.
      examples: the first `max_examples` skipped records.
    """

    def __init__(self, max_examples: int = 100, max_log_lines: int = 20):
        self.skipped = 0
        self.examples: list[CorruptRecord] = []
        self._max_examples = max_examples
        self._max_log_lines = max_log_lines
        self._taken = 0
        self._lock = threading.Lock()

    def add(self, files, indices, reasons) -> int:
        """Records skipped records (called from the pipeline); returns the total."""
        with self._lock:
            for file, index, reason in zip(files, indices, reasons):
                record = CorruptRecord(_text(file), int(index), _REASONS[int(reason)])
                self.skipped += 1
                if len(self.examples) < self._max_examples:
                    self.examples.append(record)
                if self.skipped <= self._max_log_lines:
                    logging.warning("skipped corrupt record %d of %s: %s",
                                    record.index, record.file, record.reason)
                elif self.skipped % 1000 == 0:
                    logging.warning("skipped %d corrupt records so far", self.skipped)
            return self.skipped

    def take_skipped(self) -> int:
        """The count of skipped records since the last call (for one evaluation pass)."""
        with self._lock:
            count, self._taken = self.skipped - self._taken, self.skipped
            return count

    def __repr__(self) -> str:
        return f"PipelineStats(skipped={self.skipped})"


def _text(value) -> str:
    value = value.numpy() if hasattr(value, "numpy") else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass(frozen=True)
class _Config:
    """The validated arguments of one pipeline."""

    files: tuple[str, ...]
    file_sizes: tuple[int, ...]
    image_size: int
    is_training: bool
    labels_offset: int
    num_readers: int
    num_parallel_calls: int
    shuffle_buffer: int
    seed: int
    deterministic: bool
    repeat: bool
    skip_corrupt: bool
    drop_remainder: bool
    cache: bool
    decoded_cache_bytes: int  # 0: never hold decoded images in memory
    channels: int
    shard_records: tuple[int, int]  # (num_shards, index); (1, 0) = no record sharding


def _check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        expected = "a positive int or None" if allow_none else "a positive int"
        raise SlimError(f"Invalid value for argument {name}. Expected {expected}. "
                        f"Received: {name}={value!r}")


def _file_sizes(files: Sequence[str]) -> tuple[int, ...]:
    sizes = []
    for path in files:
        try:
            sizes.append(tf.io.gfile.stat(path).length)
        except tf.errors.NotFoundError:
            raise SlimError(f"TFRecord file not found: {path!r}; check --dataset_dir and "
                            f"--dataset_split_name (or create it with slim-download)") from None
    return tuple(sizes)


def _shard(files: tuple[str, ...], sizes: tuple[int, ...],
           input_context: Optional[tf.distribute.InputContext]):
    """Files per worker when there are enough, else every worker reads all and shards records."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return files, sizes, (1, 0)
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= count:
        return files[index::count], sizes[index::count], (1, 0)
    return files, sizes, (count, index)


def _read_file(number: tf.Tensor, file: tf.Tensor, size: tf.Tensor) -> tf.data.Dataset:
    """Blocks of the records of file `number` as dicts of vectors, then an end-of-file marker.

    Each record's `where` is its file number and index in one int64 (`_where`).

    The marker's status is _DROP when the bytes read add up to the file size,
    else _BAD_FRAMING (the reader stopped at a damaged record). Records come in
    blocks of _READ_BLOCK so that the byte count, the interleave and their
    function calls run once per block, not once per record.
    """
    records = tf.data.TFRecordDataset(file).ignore_errors(log_warning=True).batch(_READ_BLOCK)
    records = records.concatenate(tf.data.Dataset.from_tensors(tf.constant([_END_OF_FILE])))

    def step(state, block):
        consumed, index = state
        count = tf.size(block, out_type=tf.int64)
        is_end = tf.equal(block, _END_OF_FILE)
        lengths = tf.cast(tf.strings.length(block), tf.int64) + _TFRECORD_OVERHEAD_BYTES
        status = tf.where(is_end, tf.where(consumed == size, _DROP, _BAD_FRAMING), _OK)
        return (consumed + tf.reduce_sum(lengths), index + count), {
            "where": _where(number, index + tf.range(count)), "record": block, "status": status}

    return records.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), _graph_fn(step))


def _record_stream(cfg: _Config) -> tf.data.Dataset:
    """Reads, shards, caches, shuffles and repeats the raw records."""
    files = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(cfg.files), dtype=tf.int64), tf.constant(cfg.files, tf.string),
         tf.constant(cfg.file_sizes, tf.int64)))
    shard_records = cfg.shard_records[0] > 1
    # Sharding records needs the same record order in every pipeline.
    if cfg.is_training and not shard_records:
        files = files.shuffle(len(cfg.files), seed=cfg.seed, reshuffle_each_iteration=True)
    cycle = min(cfg.num_readers, len(cfg.files))
    blocks = files.interleave(_graph_fn(_read_file), cycle_length=cycle, block_length=1,
                              num_parallel_calls=cycle,
                              deterministic=cfg.deterministic or shard_records)
    records = blocks.unbatch()
    if shard_records:
        records = records.shard(*cfg.shard_records)
    if cfg.cache:
        records = records.cache()
    if cfg.repeat:
        # Repeat before shuffling: no stall to refill the buffer at each epoch's end.
        records = records.repeat()
    if cfg.is_training:
        records = records.shuffle(cfg.shuffle_buffer, seed=cfg.seed, reshuffle_each_iteration=True)
    return records


_INDEX_BITS = 40  # `where` = file number << 40 | record index within the file


def _where(number: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    return number * (1 << _INDEX_BITS) + index


def _located(where: tf.Tensor, files: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(file names, record indices) of `where` values; -1 (unknown) gives ("?", -1)."""
    known = where >= 0
    number = tf.where(known, where // (1 << _INDEX_BITS), 0)
    return (tf.where(known, tf.gather(files, number), "?"),
            tf.where(known, where % (1 << _INDEX_BITS), -1))


class _Decoder:
    """Decodes blocks of records; keeps each block until checked, to decode it again
    record by record when one of its records fails.

    The fast path decodes a whole block in one tf.data element (`tf.map_fn`
    over its records): per element, tf.data costs more than decoding a small
    image. A record that fails to parse, decode or preprocess raises, which
    loses its block (`ignore_errors`); the check sees the gap in the block
    numbers, and `recover` decodes that block's records one tf.data element
    each, where a failure loses only its own record and is marked
    _DECODE_FAILED. In a repeated stream an empty block (which cannot fail)
    follows every _HEARTBEAT_EVERY blocks, so that data where every block
    fails still reaches the check (which stops after _MAX_CORRUPT_IN_A_ROW)
    instead of looping forever; a finite stream ends with a block of its own.
    """

    def __init__(self, preprocess_fn: Callable, cfg: _Config, base_seed: tf.Tensor):
        self._preprocess_fn, self._cfg, self._base_seed = preprocess_fn, cfg, base_seed
        self._seeded = cfg.is_training and _accepts_seed(preprocess_fn)
        self._channels: list = []  # output channels, known once decode is traced
        self._records = tf.lookup.experimental.MutableHashTable(
            tf.int64, tf.string, default_value=tf.fill([_DECODE_BLOCK], ""))
        self._info = tf.lookup.experimental.MutableHashTable(  # where, then status
            tf.int64, tf.int64, default_value=tf.fill([2 * _DECODE_BLOCK], tf.constant(-1, tf.int64)))

    def _one(self, seq: tf.Tensor, record: tf.Tensor, status: tf.Tensor):
        """(image, label, status) of one record; raises on corrupt data."""
        cfg = self._cfg

        def decode():
            features = parse_example(record)
            label = features[LABEL_KEY]
            kwargs = {}
            if self._seeded:
                kwargs["seed"] = tf.random.experimental.stateless_fold_in(self._base_seed, seq)
            size = cfg.image_size
            image = self._preprocess_fn(decode_image(features, cfg.channels), size, size, **kwargs)
            self._channels.append(image.shape[-1])  # 1 after a grayscale preprocessing
            image = tf.ensure_shape(tf.cast(image, tf.float32), [size, size, image.shape[-1]])
            return image, label, tf.where(label < 0, _NO_LABEL, _OK)

        def passthrough():  # traced after decode (tf.cond traces the true branch first)
            return (tf.zeros([cfg.image_size, cfg.image_size, self._channels[-1] or 1]),
                    tf.constant(-1, tf.int64), status)

        return tf.cond(tf.equal(status, _OK), decode, passthrough)

    def _spec(self):
        size = self._cfg.image_size
        return (tf.TensorSpec([size, size, None], tf.float32), tf.TensorSpec([], tf.int64),
                tf.TensorSpec([], tf.int32))

    def _out(self, run, number, where, images, labels, statuses) -> dict:
        size = self._cfg.image_size
        images = tf.ensure_shape(images, [None, size, size, self._channels[-1]])
        return {"run": run, "block": number, "where": where, "status": statuses,
                "image": images, "label": labels}

    def block(self, run: tf.Tensor, number: tf.Tensor, block: dict) -> dict:
        """Files block `number` of iterator `run` for `recover`, then decodes it."""
        count = tf.size(block["status"])
        pad = [[0, _DECODE_BLOCK - count]]
        info = tf.concat([tf.pad(block["where"], pad, constant_values=-1),
                          tf.pad(tf.cast(block["status"], tf.int64), pad,
                                 constant_values=_DROP)], 0)
        key = _block_key(run, number)
        kept = [self._records.insert(key, tf.pad(block["record"], pad)[tf.newaxis]),
                self._info.insert(key, info[tf.newaxis])]
        with tf.control_dependencies(kept):
            seqs = number * _DECODE_BLOCK + tf.range(tf.cast(count, tf.int64))

        def decode():
            return tf.map_fn(lambda e: self._one(*e), (seqs, block["record"], block["status"]),
                             fn_output_signature=self._spec())

        def empty():
            return (tf.zeros([count, self._cfg.image_size, self._cfg.image_size,
                              self._channels[-1] or 1]),
                    tf.fill([count], tf.constant(-1, tf.int64)), block["status"])

        images, labels, statuses = tf.cond(count > 0, decode, empty)
        return self._out(run, number, block["where"], images, labels, statuses)

    def recover(self, run: tf.Tensor, number: tf.Tensor, log_warning: bool) -> tf.data.Dataset:
        """Block `number` decoded record by record: one block, failures marked."""
        key = _block_key(run, number)
        records = tf.reshape(self._records.lookup(key), [_DECODE_BLOCK])
        info = tf.reshape(self._info.lookup(key), [2 * _DECODE_BLOCK])
        with tf.control_dependencies([records, info]):
            forget = self.forget(run, number)
        with tf.control_dependencies([forget]):
            where, status = tf.identity(info[:_DECODE_BLOCK]), info[_DECODE_BLOCK:]
        seqs = number * _DECODE_BLOCK + tf.range(_DECODE_BLOCK, dtype=tf.int64)

        def one(seq, record, status):
            decoded = tf.data.Dataset.from_tensors((seq, record, status)).map(
                _graph_fn(self._one)).ignore_errors(log_warning=log_warning)
            failed = tf.data.Dataset.from_tensors((
                tf.zeros([self._cfg.image_size, self._cfg.image_size, self._channels[-1]]),
                tf.constant(-1, tf.int64), tf.constant(_DECODE_FAILED)))
            return decoded.concatenate(failed).take(1)

        singles = tf.data.Dataset.from_tensor_slices(
            (seqs, records, tf.cast(status, tf.int32))).flat_map(_graph_fn(one))
        return singles.batch(_DECODE_BLOCK).map(_graph_fn(
            lambda images, labels, statuses: self._out(run, number, where, images, labels,
                                                       statuses)))

    def forget(self, run: tf.Tensor, number: tf.Tensor) -> tf.Operation:
        key = _block_key(run, number)
        return tf.group(self._records.remove(key), self._info.remove(key))


_BLOCK_BITS = 33  # the table key: an iterator's run id << 33 | block number


def _block_key(run: tf.Tensor, number: tf.Tensor) -> tf.Tensor:
    return tf.reshape(run * (1 << _BLOCK_BITS) + number, [1])


def _numbered(blocks: tf.data.Dataset) -> tf.data.Dataset:
    """(run, number, block): blocks numbered from 0, and a run id drawn from the clock
    when an iterator starts, so that iterators of one dataset keep apart in the table."""
    def step(state, block):
        run, number = state
        run = tf.where(run < 0, tf.cast(tf.timestamp() * 1e6, tf.int64) % (1 << 29), run)
        return (run, number + 1), (run, number, block)

    initial = (tf.constant(-1, tf.int64), tf.constant(0, tf.int64))
    return blocks.scan(initial, _graph_fn(step))


# Tags the pipeline's own run-time errors inside TensorFlow's InvalidArgumentError text.
_ERROR_TAG = "slimcli input pipeline: "


def pipeline_error_message(error: BaseException) -> str | None:
    """The pipeline's own message inside a TensorFlow error it raised, else None.

    The checks of the pipeline run inside tf.data, so they surface as
    `InvalidArgumentError` with an assertion wrapper and the op's name; the
    commands print just this message as their one-line error.
    """
    text = getattr(error, "message", None) or str(error)
    start = text.find(_ERROR_TAG)
    if start < 0:
        return None
    line = text[start + len(_ERROR_TAG):].split("\n", 1)[0]
    return line[:line.rfind("]")] if "]" in line else line


def _fail(condition: tf.Tensor, message_fn: Callable[[], tf.Tensor]) -> tf.Tensor:
    """Raises InvalidArgumentError(message_fn()) at run time where `condition` holds."""
    def raise_error():
        message = tf.strings.join([_ERROR_TAG, message_fn()])
        check = tf.debugging.Assert(tf.logical_not(condition), [message], summarize=1)
        with tf.control_dependencies([check]):
            return tf.constant(True)

    return tf.cond(condition, raise_error, lambda: tf.constant(True))


def _report_corrupt(wheres: tf.Tensor, reasons: tf.Tensor, files: tf.Tensor, skip_corrupt: bool,
                    stats: PipelineStats) -> tf.Tensor:
    """Fails on the first corrupt record, or counts and logs them all."""
    files, indices = _located(wheres, files)
    if skip_corrupt:
        total = tf.py_function(stats.add, [files, indices, reasons], Tout=tf.int64)
        with tf.control_dependencies([total]):
            return tf.constant(True)
    reason_text = tf.gather(tf.constant([_REASONS.get(code, "") for code in range(5)]), reasons[0])
    return _fail(tf.size(reasons) > 0, lambda: tf.strings.join([
        "corrupt record ", tf.strings.as_string(indices[0]), " of ", files[0], ": ", reason_text,
        " (TensorFlow's own message is in the warning logged just before). Fix or remove it, "
        "or pass skip_corrupt=True (--skip_corrupt) to skip and count corrupt records."]))


def _first(mask: tf.Tensor) -> tf.Tensor:
    """Index of the first True of a boolean vector; 0 when there is none (so the
    vectors indexed with it get one padding element for empty blocks)."""
    return tf.argmax(tf.cast(mask, tf.int32), output_type=tf.int64)


def _in_order(decoded: tf.data.Dataset, decoder: _Decoder,
              log_warning: bool) -> tf.data.Dataset:
    """Every block in order: those lost in decoding (gaps in the block numbers) are
    decoded again record by record (`_Decoder.recover`)."""
    def gaps(expected, element):
        run, number = element["run"], element["block"]
        with tf.control_dependencies([decoder.forget(run, number)]):
            return number + 1, (tf.range(expected, number), element)

    def expand(redo, element):
        recovered = tf.data.Dataset.from_tensor_slices(redo).flat_map(
            _graph_fn(lambda number: decoder.recover(element["run"], number, log_warning)))
        return recovered.concatenate(tf.data.Dataset.from_tensors(element))

    return decoded.scan(tf.constant(0, tf.int64), _graph_fn(gaps)).flat_map(_graph_fn(expand))


def _check_records(blocks: tf.data.Dataset, files: tf.Tensor, skip_corrupt: bool,
                   stats: PipelineStats, labels_offset: int) -> tf.data.Dataset:
    """Reports bad statuses, counts corrupt runs, checks labels; keeps good records.

    Vectorized over each block of decoded records. Yields blocks of
    `(images, labels - labels_offset)` of the good records (possibly empty);
    a label that the offset makes negative is an error.
    """
    def step(corrupt_run, block):
        status, label, where = block["status"], block["label"], block["where"]
        bad = status >= _BAD_FRAMING
        handled = tf.cond(tf.reduce_any(bad), lambda: _report_corrupt(
            tf.boolean_mask(where, bad), tf.boolean_mask(status, bad), files, skip_corrupt,
            stats), lambda: tf.constant(True))
        # Corrupt records in a row, before each record's own reset: with
        # skip_corrupt, all-corrupt data would otherwise loop forever in a
        # repeated (training) stream. A kept record resets the run.
        keep = tf.equal(status, _OK)
        counted = tf.math.cumsum(tf.cast(bad, tf.int64))
        keeps_before = tf.math.cumsum(tf.cast(keep, tf.int64), exclusive=True)
        # The count at the last kept record before each one (-run carried in before the first).
        since = tf.gather(tf.concat([[-corrupt_run], tf.boolean_mask(counted, keep)], 0),
                          keeps_before)
        run = counted - since
        too_many = run >= _MAX_CORRUPT_IN_A_ROW
        # An empty block (a heartbeat) has no record to name: _located(-1) is "?".
        where = tf.concat([where, [-1]], 0)
        file, index = _located(where[_first(too_many)], files)
        too_many = _fail(tf.reduce_any(too_many), lambda: tf.strings.join([
            f"{_MAX_CORRUPT_IN_A_ROW} or more records in a row were corrupt (up to record ",
            tf.strings.as_string(index), " of ", file,
            "); these files do not hold slim TFRecords of images (see the logged warnings)"]))
        below = tf.logical_and(keep, label < labels_offset)
        at = _first(below)
        file, index = _located(where[at], files)
        below = _fail(tf.reduce_any(below), lambda: tf.strings.join([
            "record ", tf.strings.as_string(index), " of ", file,
            " has ", LABEL_KEY, "=", tf.strings.as_string(tf.concat([label, [-1]], 0)[at]),
            f", below labels_offset={labels_offset}; labels must stay >= 0 after the offset "
            "is subtracted (use labels_offset=0 for 0-based labels)"]))
        with tf.control_dependencies([handled, too_many, below]):
            images, labels = tf.cond(
                tf.reduce_all(keep), lambda: (tf.identity(block["image"]), tf.identity(label)),
                lambda: (tf.boolean_mask(block["image"], keep), tf.boolean_mask(label, keep)))
        last_kept = tf.concat([[False], keep], 0)[-1]
        corrupt_run = tf.where(last_kept, tf.constant(0, tf.int64),
                               tf.concat([[corrupt_run], run], 0)[-1])
        return corrupt_run, (images, labels - labels_offset)

    return blocks.scan(tf.constant(0, tf.int64), _graph_fn(step))


def _accepts_seed(fn: Callable) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _make_config(files, batch_size, image_size, is_training, labels_offset, num_readers,
                 num_parallel_calls, shuffle_buffer, seed, input_context, repeat, skip_corrupt,
                 drop_remainder, cache, channels, decoded_cache_mb) -> _Config:
    if isinstance(files, (str, bytes)):
        files = [files]
    files = tuple(_text(f) for f in files)
    if not files:
        raise SlimError("no TFRecord files given to the input pipeline; check --dataset_dir "
                        "and --dataset_split_name")
    for name, value in (("batch_size", batch_size), ("image_size", image_size),
                        ("shuffle_buffer", shuffle_buffer)):
        _check_positive_int(name, value)
    _check_positive_int("num_readers", num_readers, allow_none=True)
    if num_parallel_calls != AUTOTUNE:
        _check_positive_int("num_parallel_calls", num_parallel_calls, allow_none=True)
    if isinstance(labels_offset, bool) or not isinstance(labels_offset, int) or labels_offset < 0:
        raise SlimError(f"Invalid value for argument labels_offset. Expected an int >= 0. "
                        f"Received: labels_offset={labels_offset!r}")
    if channels not in (1, 3):
        raise SlimError(f"Invalid value for argument channels. Expected 1 or 3. "
                        f"Received: channels={channels!r}")
    if decoded_cache_mb is not None and (isinstance(decoded_cache_mb, bool) or not isinstance(
            decoded_cache_mb, int) or decoded_cache_mb < 0):
        raise SlimError(f"Invalid value for argument decoded_cache_mb. Expected an int >= 0 "
                        f"(0 turns the cache off). Received: decoded_cache_mb={decoded_cache_mb!r}")
    files, sizes, shard_records = _shard(files, _file_sizes(files), input_context)
    return _Config(
        files=files, file_sizes=sizes, image_size=image_size, is_training=bool(is_training),
        labels_offset=labels_offset, num_readers=num_readers or DEFAULT_NUM_READERS,
        num_parallel_calls=num_parallel_calls or AUTOTUNE, shuffle_buffer=shuffle_buffer,
        seed=random.SystemRandom().randrange(2**31) if seed is None else int(seed),
        deterministic=not is_training or seed is not None,
        repeat=bool(is_training) if repeat is None else bool(repeat),
        skip_corrupt=bool(skip_corrupt),
        drop_remainder=bool(is_training) if drop_remainder is None else bool(drop_remainder),
        cache=bool(cache), channels=channels, shard_records=shard_records,
        decoded_cache_bytes=input_cache.cache_budget_bytes(decoded_cache_mb))


def build_input_pipeline(files: Sequence[str], preprocess_fn: Callable, batch_size: int,
                         image_size: int, *, is_training: bool, labels_offset: int = 0,
                         num_readers: Optional[int] = None,
                         num_parallel_calls: Optional[int] = None,
                         shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                         seed: Optional[int] = None,
                         input_context: Optional[tf.distribute.InputContext] = None,
                         repeat: Optional[bool] = None, skip_corrupt: bool = False,
                         drop_remainder: Optional[bool] = None, cache: bool = False,
                         channels: int = 3,
                         stats: Optional[PipelineStats] = None,
                         decoded_cache_mb: Optional[int] = None) -> tf.data.Dataset:
    """Builds the dataset of (images, labels) batches from slim TFRecord files.

    Args:
      files: TFRecord paths (a single path string is accepted too).
      preprocess_fn: `fn(image_uint8, height, width, **kwargs)`, e.g. from
        `get_preprocessing`; in training it gets `seed=` (a per-record
        stateless seed) when its signature accepts it.
      batch_size: batch size of this dataset. Under
        `strategy.distribute_datasets_from_function` pass
        `input_context.get_per_replica_batch_size(global_batch_size)`.
      image_size: output height and width.
      is_training: shuffle files and records, and the defaults below.
      labels_offset: subtracted from `image/class/label` (1 for 1000-class
        nets on 1001-class data); a label that goes negative is an error.
      num_readers: files read in parallel (interleave cycle); None → 4.
      num_parallel_calls: parallel decode and preprocess calls; None → AUTOTUNE.
      shuffle_buffer: records in the shuffle buffer (training).
      seed: seeds file and record shuffling and the preprocessing; with a
        seed, training is deterministic. None: random, and element order may
        vary between runs for speed.
      input_context: shards per input pipeline: whole files when there are at
        least as many files as pipelines, else every `n`-th record.
      repeat: repeat forever; None → `is_training`.
      skip_corrupt: skip, log and count corrupt records instead of failing.
      drop_remainder: drop the last partial batch; None → `is_training`. With
        False and no repeat, one epoch yields every record exactly once.
      cache: keep the encoded records in memory after the first epoch.
      channels: channels to decode (3, or 1 for grayscale data).
      stats: receives the count of skipped records (`skip_corrupt=True`).
      decoded_cache_mb: a repeated stream whose decoded images fit in this
        many MiB (and are all one size) is decoded once into memory, then
        shuffled in full each epoch (`slimcli.input_cache`); None → 1024,
        0 → always stream.

    Returns:
      A `tf.data.Dataset` of `(images float32 [B, image_size, image_size, C],
      labels int64 [B])`, prefetched.

    Raises:
      SlimError: bad arguments or missing files.
    """
    cfg = _make_config(files, batch_size, image_size, is_training, labels_offset, num_readers,
                       num_parallel_calls, shuffle_buffer, seed, input_context, repeat,
                       skip_corrupt, drop_remainder, cache, channels, decoded_cache_mb)
    stats = stats if stats is not None else PipelineStats()
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    base_seed = tf.constant([cfg.seed, pipeline_id], tf.int64)
    if cfg.repeat and cfg.decoded_cache_bytes:
        batches = input_cache.cached_pipeline(cfg, preprocess_fn, batch_size, base_seed)
        if batches is not None:
            return _finish(batches, cfg)
    decoder = _Decoder(preprocess_fn, cfg, base_seed)
    blocks = _record_stream(cfg).batch(_DECODE_BLOCK)
    if cfg.repeat:  # an empty block, which cannot fail to decode, every _HEARTBEAT_EVERY
        empty = tf.data.Dataset.from_tensors({
            "where": tf.zeros([0], tf.int64), "record": tf.zeros([0], tf.string),
            "status": tf.zeros([0], tf.int32)}).repeat()
        turns = tf.data.Dataset.range(_HEARTBEAT_EVERY + 1).map(
            lambda i: tf.cast(tf.equal(i, _HEARTBEAT_EVERY), tf.int64)).repeat()
        blocks = tf.data.Dataset.choose_from_datasets([blocks, empty], turns)
    else:  # an end marker in a block of its own, which cannot fail to decode
        blocks = blocks.concatenate(tf.data.Dataset.from_tensors({
            "where": tf.constant([-1], tf.int64), "record": tf.constant([""]),
            "status": tf.constant([_END])}))
    decoded = _numbered(blocks).map(_graph_fn(decoder.block),
                                     num_parallel_calls=cfg.num_parallel_calls, deterministic=True)
    # A lost block is decoded again record by record; that logs the decoder's messages
    # when failing (when skipping, stats logs a few).
    decoded = decoded.ignore_errors(log_warning=False).prefetch(2)
    checked = _check_records(_in_order(decoded, decoder, log_warning=not cfg.skip_corrupt),
                             tf.constant(cfg.files, tf.string), cfg.skip_corrupt, stats,
                             cfg.labels_offset)
    return _finish(checked.rebatch(batch_size, drop_remainder=cfg.drop_remainder), cfg)


def _finish(batches: tf.data.Dataset, cfg: _Config) -> tf.data.Dataset:
    batches = batches.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = cfg.deterministic
    return batches.with_options(options)


def synthetic_input_pipeline(batch_size: int, image_size: int, num_classes: int,
                             channels: int = 3, seed: int = 0) -> tf.data.Dataset:
    """An endless dataset of one random batch, shaped like the real pipeline's.

    For benchmarks that leave the input out: no decoding or preprocessing.

    Args:
      batch_size: images per batch.
      image_size: height and width.
      num_classes: labels are uniform in [0, num_classes).
      channels: image channels.
      seed: stateless seed of the images and labels.

    Returns:
      Dataset of `(images float32 [B, H, W, C] in [-1, 1), labels int64 [B])`.

    Raises:
      SlimError: a size is not a positive int.
    """
    for name, value in (("batch_size", batch_size), ("image_size", image_size),
                        ("num_classes", num_classes), ("channels", channels)):
        _check_positive_int(name, value)
    images = tf.random.stateless_uniform([batch_size, image_size, image_size, channels],
                                         [seed, 0], minval=-1.0, maxval=1.0)
    labels = tf.random.stateless_uniform([batch_size], [seed, 1], maxval=num_classes,
                                         dtype=tf.int64)
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


# Imported last: the cache reads this module's parsing and decoding.
from slimcli import input_cache  # noqa: E402
