"""The streaming side of the input pipeline: records read, decoded and checked as they come.

Stages: interleaved parallel reads of the files (shuffled when training; in
blocks of 16 records) → shard per worker → [cache] → [repeat] → shuffle
records → blocks of 32 records, numbered → parse + decode + preprocess a block
per element (parallel) → corrupt-record and label check per block
(`slimcli.input.checks`). Each tf.data stage costs tens of microseconds per
element, more than decoding a 28x28 PNG, so the stages after the shuffle work
on blocks (docs/preprocessing.md has the figures).

How corrupt records are found cheaply: a block is decoded in one element of a
parallel map followed by `ignore_errors`, so a corrupt record loses its block;
the ordered check after it finds the gap in the block numbers and decodes that
block again record by record (`_Decoder`), from a small table that holds each
block until checked. Framing: the bytes read per file must add up to its size.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from slimcli.input.checks import PipelineStats, Status, check_records, record_where
from slimcli.input.config import PipelineConfig, accepts_seed, graph_fn
from slimcli.input.records import (LABEL_KEY, RECORD_OVERHEAD_BYTES, decode_image_at_side,
                                   parse_example)

# Ends each file's records. A serialized proto never starts with a 0 byte, so
# no valid Example can equal it.
_END_OF_FILE = b"\x00slimcli:end-of-file"
# Records a file reader hands on at a time: files interleave in blocks of this many.
_READ_BLOCK = 16
# Records decoded as one tf.data element, and checked at a time (vectorized).
_DECODE_BLOCK = 32
# In a repeated stream, an empty block follows every this many blocks (see `_Decoder`).
_HEARTBEAT_EVERY = 32


def _read_file(number: tf.Tensor, file: tf.Tensor, size: tf.Tensor) -> tf.data.Dataset:
    """Blocks of the records of file `number` as dicts of vectors, then an end-of-file marker.

    Each record's `where` is its file number and index in one int64 (`checks.record_where`).

    The marker's status is Status.DROP when the bytes read add up to the file
    size, else Status.BAD_FRAMING (the reader stopped at a damaged record).
    Records come in blocks of _READ_BLOCK so that the byte count, the interleave and their
    function calls run once per block, not once per record.
    """
    records = tf.data.TFRecordDataset(file).ignore_errors(log_warning=True).batch(_READ_BLOCK)
    records = records.concatenate(tf.data.Dataset.from_tensors(tf.constant([_END_OF_FILE])))

    def step(state, block):
        consumed, index = state
        count = tf.size(block, out_type=tf.int64)
        is_end = tf.equal(block, _END_OF_FILE)
        lengths = tf.cast(tf.strings.length(block), tf.int64) + RECORD_OVERHEAD_BYTES
        at_end = tf.where(consumed == size, Status.DROP, Status.BAD_FRAMING)
        status = tf.where(is_end, at_end, Status.OK)
        return (consumed + tf.reduce_sum(lengths), index + count), {
            "where": record_where(number, index + tf.range(count)), "record": block,
            "status": status}

    return records.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), graph_fn(step))


def _record_stream(cfg: PipelineConfig) -> tf.data.Dataset:
    """Reads, shards, caches, shuffles and repeats the raw records."""
    files = tf.data.Dataset.from_tensor_slices(
        (tf.range(len(cfg.files), dtype=tf.int64), tf.constant(cfg.files, tf.string),
         tf.constant(cfg.file_sizes, tf.int64)))
    shard_records = cfg.shard_records[0] > 1
    # Sharding records needs the same record order in every pipeline.
    if cfg.is_training and not shard_records:
        files = files.shuffle(len(cfg.files), seed=cfg.seed, reshuffle_each_iteration=True)
    cycle = min(cfg.num_readers, len(cfg.files))
    blocks = files.interleave(graph_fn(_read_file), cycle_length=cycle, block_length=1,
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


class _Decoder:
    """Decodes blocks of records; keeps each block until checked, to decode it again
    record by record when one of its records fails.

    The fast path decodes a whole block in one tf.data element (`tf.map_fn`
    over its records): per element, tf.data costs more than decoding a small
    image. A record that fails to parse, decode or preprocess raises, which
    loses its block (`ignore_errors`); the check sees the gap in the block
    numbers, and `recover` decodes that block's records one tf.data element
    each, where a failure loses only its own record and is marked
    Status.DECODE_FAILED. In a repeated stream an empty block (which cannot fail)
    follows every _HEARTBEAT_EVERY blocks, so that data where every block
    fails still reaches the check (which stops after MAX_CORRUPT_IN_A_ROW)
    instead of looping forever; a finite stream ends with a block of its own.
    """

    def __init__(self, preprocess_fn: Callable, cfg: PipelineConfig, base_seed: tf.Tensor):
        self._preprocess_fn, self._cfg, self._base_seed = preprocess_fn, cfg, base_seed
        self._seeded = cfg.is_training and accepts_seed(preprocess_fn)
        self._channels: list = []  # output channels, known once decode is traced
        self._records = tf.lookup.experimental.MutableHashTable(
            tf.int64, tf.string, default_value=tf.fill([_DECODE_BLOCK], ""))
        self._info = tf.lookup.experimental.MutableHashTable(  # where, then status
            tf.int64, tf.int64,
            default_value=tf.fill([2 * _DECODE_BLOCK], tf.constant(-1, tf.int64)))

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
            image = decode_image_at_side(features, cfg.channels, cfg.decode_side)
            image = self._preprocess_fn(image, size, size, **kwargs)
            self._channels.append(image.shape[-1])  # 1 after a grayscale preprocessing
            image = tf.ensure_shape(tf.cast(image, tf.float32), [size, size, image.shape[-1]])
            return image, label, tf.where(label < 0, Status.NO_LABEL, Status.OK)

        def passthrough():  # traced after decode (tf.cond traces the true branch first)
            return (tf.zeros([cfg.image_size, cfg.image_size, self._channels[-1] or 1]),
                    tf.constant(-1, tf.int64), status)

        return tf.cond(tf.equal(status, Status.OK), decode, passthrough)

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
                                 constant_values=Status.DROP)], 0)
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
                graph_fn(self._one)).ignore_errors(log_warning=log_warning)
            failed = tf.data.Dataset.from_tensors((
                tf.zeros([self._cfg.image_size, self._cfg.image_size, self._channels[-1]]),
                tf.constant(-1, tf.int64), tf.constant(Status.DECODE_FAILED)))
            return decoded.concatenate(failed).take(1)

        singles = tf.data.Dataset.from_tensor_slices(
            (seqs, records, tf.cast(status, tf.int32))).flat_map(graph_fn(one))
        return singles.batch(_DECODE_BLOCK).map(graph_fn(
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
    return blocks.scan(initial, graph_fn(step))


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
            graph_fn(lambda number: decoder.recover(element["run"], number, log_warning)))
        return recovered.concatenate(tf.data.Dataset.from_tensors(element))

    return decoded.scan(tf.constant(0, tf.int64), graph_fn(gaps)).flat_map(graph_fn(expand))


def streamed_batches(cfg: PipelineConfig, preprocess_fn: Callable, batch_size: int,
                     base_seed: tf.Tensor, stats: PipelineStats) -> tf.data.Dataset:
    """The checked (images, labels) batches of `cfg`'s records, read as a stream."""
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
            "status": tf.constant([Status.END])}))
    decoded = _numbered(blocks).map(graph_fn(decoder.block),
                                    num_parallel_calls=cfg.num_parallel_calls, deterministic=True)
    # A lost block is decoded again record by record; that logs the decoder's messages
    # when failing (when skipping, stats logs a few).
    decoded = decoded.ignore_errors(log_warning=False).prefetch(2)
    checked = check_records(_in_order(decoded, decoder, log_warning=not cfg.skip_corrupt),
                            tf.constant(cfg.files, tf.string), cfg.skip_corrupt, stats,
                            cfg.labels_offset, cfg.label_limit)
    return checked.rebatch(batch_size, drop_remainder=cfg.drop_remainder)


__all__ = ["streamed_batches"]
