"""Decoded images held in memory, for training on small datasets (MNIST, CIFAR-10, ...).

A training stream reads its data many times: MNIST's 60,000 records are read
about 17 times by the original's LeNet recipe, CIFAR-10's 50,000 about 250
times by CifarNet's. Parsing and decoding a record costs more CPU than the
rest of the pipeline together, and on a machine of few cores that CPU comes
out of the training step. So when the decoded images of a repeated stream
fit in `decoded_cache_mb` and all have one size, `build_input_pipeline`
decodes them once, before the first batch, into one uint8 array:

    images uint8 [N, H, W, C], labels int64 [N]     (the files' order)

Each epoch then draws a fresh permutation of all N records (a full shuffle,
where the streaming pipeline shuffles in a buffer), gathers blocks of the
batch size and runs the preprocessing on each block: vectorized
(`tf.vectorized_map`) when every op of the preprocessing has a batched form,
else `tf.map_fn`; or by the preprocessing's own batched form where it has one
(`Preprocessing.batched`: cifarnet). Preprocessing seeds come from each
record's place in the stream, as in the streaming pipeline (the batched form:
from its block's place).

Anything unusual leaves the streaming pipeline in charge, which reports or
skips it with its usual care: a record that does not parse or decode, a
missing label, a label out of range (below `labels_offset`, or not below
`labels_offset + num_classes`), images of different sizes, a damaged file
(the bytes read must add up to its size), too many pixels for the budget, or
no records. The reason is logged in one line.

A `DecodedCache` keeps the newest decoded split for the pipelines built with
it, while the files are unchanged: slim-train builds its pipeline more than once
(for the input-image summary, then for training) and decodes once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from slimcli.input.config import AUTOTUNE, PipelineConfig, accepts_seed, graph_fn
from slimcli.input.records import (EXAMPLE_FEATURES, FORMAT_KEY, HEIGHT_KEY, IMAGE_KEY,
                                   LABEL_KEY, RECORD_OVERHEAD_BYTES, WIDTH_KEY, decode_image,
                                   parse_example)

_PASS_BATCH = 256  # records parsed and decoded per element of the decoding pass
# What reading damaged data can raise (TensorFlow's message may hold undecodable bytes).
_READ_ERRORS = (tf.errors.OpError, UnicodeError)

log = logging.getLogger("slimcli.input")


@dataclasses.dataclass(frozen=True)
class DecodedImages:
    """A dataset split decoded into memory, in the files' order.

    Attributes:
      images: uint8 tensor [N, H, W, C] (a tensor, so that the pipeline uses it
        without a copy).
      labels: int64 [N], as stored (`image/class/label`).
      seconds: wall time the decoding took.
    """
    images: tf.Tensor
    labels: np.ndarray
    seconds: float

    @property
    def nbytes(self) -> int:
        return self.images.shape.num_elements() + self.labels.nbytes


class _NotCached(Exception):
    """Why a split is left to the streaming pipeline (a log line, not an error)."""


def _memo_key(files, file_sizes, channels) -> tuple:
    mtimes = tuple(os.stat(f).st_mtime_ns if os.path.exists(f) else 0 for f in files)
    return tuple(files), tuple(file_sizes), mtimes, channels


def _decode_block(serialized: tf.Tensor, channels: int, shape: tf.TensorShape):
    features = tf.io.parse_example(serialized, EXAMPLE_FEATURES)
    images = tf.map_fn(lambda f: tf.ensure_shape(decode_image(f, channels), shape),
                       {k: features[k] for k in (IMAGE_KEY, FORMAT_KEY, HEIGHT_KEY,
                                                 WIDTH_KEY)},
                       fn_output_signature=tf.TensorSpec(shape, tf.uint8))
    nbytes = tf.reduce_sum(tf.cast(tf.strings.length(serialized), tf.int64)
                           + RECORD_OVERHEAD_BYTES)
    return images, features[LABEL_KEY], nbytes


def _first_shape(path: str, channels: int) -> tuple[tf.TensorShape, int]:
    """The decoded shape and the stored length of the first record of `path`."""
    for record in tf.data.TFRecordDataset(path).take(1):
        image = decode_image(parse_example(record), channels)
        return image.shape, int(tf.strings.length(record)) + RECORD_OVERHEAD_BYTES
    raise _NotCached(f"{path} holds no records")


def decode_to_memory(files: tuple[str, ...], file_sizes: tuple[int, ...], channels: int,
                     budget_bytes: int) -> DecodedImages:
    """Decodes every record of `files` (in order) into one array.

    Raises:
      _NotCached: the split is not one that can be held (the message says why).
    """
    try:
        shape, first_bytes = _first_shape(files[0], channels)
    except _READ_ERRORS as e:
        raise _NotCached(f"the first record of {files[0]} does not decode "
                         f"({type(e).__name__})") from None
    pixels = shape.num_elements()
    estimate = sum(file_sizes) / first_bytes * pixels
    if estimate > 1.5 * budget_bytes:
        raise _NotCached(f"about {estimate / 2**20:.0f} MiB decoded, over the "
                         f"{budget_bytes / 2**20:.0f} MiB budget")
    start = time.perf_counter()
    images, labels, total = [], [], 0
    for path, size in zip(files, file_sizes):
        blocks = tf.data.TFRecordDataset(path).batch(_PASS_BATCH).map(
            lambda s: _decode_block(s, channels, shape), num_parallel_calls=AUTOTUNE,
            deterministic=True).prefetch(2)
        consumed = 0
        try:
            for block_images, block_labels, nbytes in blocks:
                consumed += int(nbytes)
                total += block_images.shape[0] * pixels
                if total > budget_bytes:
                    raise _NotCached(f"more than {budget_bytes / 2**20:.0f} MiB decoded")
                images.append(block_images)
                labels.append(block_labels.numpy())
        except _READ_ERRORS as e:
            raise _NotCached(f"a record of {path} is damaged, does not decode, or is not "
                             f"{shape[0]}x{shape[1]} like the first ({type(e).__name__})") from None
        if consumed != size:
            raise _NotCached(f"{path} is damaged (read {consumed} of {size} bytes)")
    return DecodedImages(tf.concat(images, 0), np.concatenate(labels),
                         time.perf_counter() - start)


class DecodedCache:
    """Decodes a split into memory for the pipelines built with it, and keeps the newest.

    The split is reused while its files are unchanged (same names, sizes and
    modification times); a new split replaces it. The pipelines built from a
    split keep theirs after `clear()`.
    """

    def __init__(self):
        self._memo: dict = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Frees the decoded split kept for reuse."""
        with self._lock:
            self._memo.clear()

    def split(self, cfg: PipelineConfig) -> Optional[DecodedImages]:
        """This pipeline's records decoded in memory, or None (why is logged)."""
        try:
            return _usable(self._decoded(cfg), cfg)
        except _NotCached as e:
            log.info("reading the records as a stream (not decoding them into memory): %s", e)
            return None

    def batches(self, cfg: PipelineConfig, preprocess_fn: Callable, batch_size: int,
                base_seed: tf.Tensor) -> Optional[tf.data.Dataset]:
        """The batches of `cfg`'s records decoded in memory, or None to stream them."""
        data = self.split(cfg)
        return None if data is None else cached_batches(data, cfg, preprocess_fn, batch_size,
                                                        base_seed)

    def _decoded(self, cfg: PipelineConfig) -> DecodedImages:
        if not tf.executing_eagerly():
            raise _NotCached("the pipeline is built inside a graph")
        key = _memo_key(cfg.files, cfg.file_sizes, cfg.channels)
        with self._lock:
            data = self._memo.get(key)
            if data is None:
                data = decode_to_memory(cfg.files, cfg.file_sizes, cfg.channels,
                                        cfg.decoded_cache_bytes)
                self._memo.clear()
                self._memo[key] = data
                log.info("decoded %d records (%.0f MiB) into memory in %.1f s; later epochs "
                         "skip parsing and decoding", len(data.labels), data.nbytes / 2**20,
                         data.seconds)
        return data


def _usable(data: DecodedImages, cfg: PipelineConfig) -> DecodedImages:
    """This pipeline's shard of `data`; raises _NotCached where the stream must take over."""
    count, index = cfg.shard_records
    if count > 1:
        data = dataclasses.replace(data, images=data.images[index::count],
                                   labels=data.labels[index::count])
    if not len(data.labels):
        raise _NotCached("this shard holds no records")
    if data.labels.min() < cfg.labels_offset:
        raise _NotCached("a record has no label or one below labels_offset")
    if cfg.label_limit is not None and data.labels.max() >= cfg.label_limit:
        raise _NotCached("a record has a label not below labels_offset + num_classes")
    if data.nbytes > cfg.decoded_cache_bytes:
        raise _NotCached(f"more than {cfg.decoded_cache_bytes / 2**20:.0f} MiB decoded")
    return data


def cached_batches(data: DecodedImages, cfg: PipelineConfig, preprocess_fn: Callable,
                   batch_size: int, base_seed: tf.Tensor) -> Optional[tf.data.Dataset]:
    """The endless stream of preprocessed batches of `data`, or None when the
    preprocessing fails on its first image (the streaming pipeline then reports it)."""
    images = data.images
    labels = tf.constant(data.labels - cfg.labels_offset)
    count = int(labels.shape[0])
    size = cfg.image_size
    seeded = cfg.is_training and accepts_seed(preprocess_fn)
    order_seed = tf.random.experimental.stateless_split(base_seed, 2)[1]

    def one(image, seq):
        kwargs = {"seed": tf.random.experimental.stateless_fold_in(base_seed, seq)} \
            if seeded else {}
        return tf.cast(preprocess_fn(image, size, size, **kwargs), tf.float32)

    batch_fn = getattr(preprocess_fn, "batched", lambda: None)()
    try:
        channels = one(images[0], tf.constant(0, tf.int64)).shape[-1]
        if batch_fn is not None:
            batch_fn(images[:1], size, size, **({"seed": base_seed} if cfg.is_training else {}))
    except (*_READ_ERRORS, ValueError, TypeError) as e:
        log.info("reading the records as a stream (not decoding them into memory): the "
                 "preprocessing fails on the first image (%s)", type(e).__name__)
        return None

    def epoch(number):
        order = tf.range(count, dtype=tf.int64)
        if cfg.is_training:
            order = tf.random.experimental.stateless_shuffle(
                order, tf.random.experimental.stateless_fold_in(order_seed, number))
        starts = tf.range(0, count, batch_size, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices(starts).map(
            lambda start: (number * count + start, order[start:start + batch_size]))

    blocks = tf.data.Dataset.counter().flat_map(graph_fn(epoch))

    def seqs_of(first, block_images):
        return first + tf.range(tf.shape(block_images, out_type=tf.int64)[0])

    def batched(first, block_images):
        kwargs = {"seed": tf.random.experimental.stateless_fold_in(base_seed, first)} \
            if cfg.is_training else {}
        return batch_fn(block_images, size, size, **kwargs)

    def vectorized(first, block_images):
        return tf.vectorized_map(lambda e: one(*e), (block_images, seqs_of(first, block_images)),
                                 fallback_to_while_loop=False)

    def one_by_one(first, block_images):
        return tf.map_fn(lambda e: one(*e), (block_images, seqs_of(first, block_images)),
                         fn_output_signature=tf.float32)

    def preprocessed(preprocess_block):
        def block(first, indices):
            out = preprocess_block(first, tf.gather(images, indices))
            return (tf.ensure_shape(tf.cast(out, tf.float32), [None, size, size, channels]),
                    tf.gather(labels, indices))
        return blocks.map(graph_fn(block), num_parallel_calls=cfg.num_parallel_calls,
                          deterministic=True)

    if batch_fn is not None:  # the preprocessing's own batched form
        batches = preprocessed(batched)
    else:
        try:  # vectorized when every op has a batched form (per-image random seeds do not)
            batches = preprocessed(vectorized)
        except ValueError:
            batches = preprocessed(one_by_one)
    return batches.rebatch(batch_size, drop_remainder=cfg.drop_remainder)


__all__ = ["DecodedCache", "DecodedImages", "cached_batches", "decode_to_memory"]
