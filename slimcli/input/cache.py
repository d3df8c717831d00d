"""Decoded images held in memory: a training split decoded once, then read many times.

A training stream reads its data many times: MNIST's 60,000 records are read
about 17 times by the original's LeNet recipe, CIFAR-10's 50,000 about 250
times by CifarNet's, a folder of photos 50 times in ten minutes. Parsing and
decoding a record costs more CPU than the rest of the pipeline together (a
2-megapixel JPEG: 5 ms), and on a machine of few cores that CPU comes out of
the training step. So when the decoded images of a repeated stream fit in
`decoded_cache_mb`, `build_input_pipeline` decodes them once, before the first
batch, into memory (`slimcli.input.decoded`). With `decode_side`, each photo is
first brought down to a working resolution: its shorter side at that many
pixels, what the preprocessing needs for the output size
(`Preprocessing.working_side`); smaller images keep their exact pixels.

Each epoch then draws a fresh permutation of all N records (a full shuffle,
where the streaming pipeline shuffles in a buffer) and preprocesses them with
the preprocessing's random crop, flip and colour changes:
- images of one size, in blocks of the batch size: by the preprocessing's
  own batched form where it has one (`Preprocessing.batched`: cifarnet),
  else vectorized (`tf.vectorized_map`) when every op has a batched form,
  else `tf.map_fn`;
- otherwise one image per element of a parallel map, batched after; a
  preprocessing in two parts (`Preprocessing.split`: inception) does its
  crop per image and its colour changes in one pass compiled by XLA.
Preprocessing seeds come from each record's place in the stream, as in the
streaming pipeline (the batched form: from its block's place).

Anything unusual leaves the streaming pipeline in charge, which reports or
skips it with its usual care: a record that does not parse or decode, a
missing label, a label out of range (below `labels_offset`, or not below
`labels_offset + num_classes`), a damaged file (the bytes read must add up to
its size), too many pixels for the budget, or no records. The reason is
logged in one line.

A `DecodedCache` keeps the newest decoded split for the pipelines built with
it, while the files are unchanged: slim-train builds its pipeline more than once
(for the input-image summary, then for training) and decodes once. With
`decoded_cache_on_disk`, the split is also kept in a file beside the records
(`slimcli.input.cache_file`) and loaded from there by later runs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from slimcli.input import cache_file
from slimcli.input.config import PipelineConfig, accepts_seed, graph_fn
from slimcli.input.decoded import READ_ERRORS, DecodedImages, NotCached, decode_to_memory

log = logging.getLogger("slimcli.input")


def _memo_key(cfg: PipelineConfig) -> tuple:
    mtimes = tuple(os.stat(f).st_mtime_ns if os.path.exists(f) else 0 for f in cfg.files)
    return tuple(cfg.files), tuple(cfg.file_sizes), mtimes, cfg.channels, cfg.decode_side


def _decode_or_load(cfg: PipelineConfig) -> DecodedImages:
    """The split of `cfg`: from its file on disk when kept there and usable, else decoded
    (and then kept on disk when asked)."""
    path = cache_file.cache_path(cfg.files, cfg.decode_side) if cfg.decoded_cache_on_disk \
        else None
    key = cache_file.fingerprint(cfg.files, cfg.channels, cfg.decode_side) if path else None
    data = cache_file.load(path, key) if path else None
    if data is not None and data.nbytes > cfg.decoded_cache_bytes:
        raise NotCached(f"{path} holds {data.nbytes / 2**20:.0f} MiB, over the "
                        f"{cfg.decoded_cache_bytes / 2**20:.0f} MiB budget")
    if data is None:
        data = decode_to_memory(cfg.files, cfg.file_sizes, cfg.channels,
                                cfg.decoded_cache_bytes, cfg.decode_side)
        at = f" at a shorter side of at most {cfg.decode_side} px" if cfg.decode_side else ""
        log.info("decoded %d records (%.0f MiB)%s into memory in %.1f s; later epochs "
                 "skip parsing and decoding", len(data.labels), data.nbytes / 2**20, at,
                 data.seconds)
        if path:
            cache_file.save(path, key, data)
    return data


class DecodedCache:
    """Decodes a split into memory for the pipelines built with it, and keeps the newest.

    The split is reused while its files are unchanged (same names, sizes and
    modification times) and asked for at the same side; a new split replaces
    it. The pipelines built from a split keep theirs after `clear()`.
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
        except NotCached as e:
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
            raise NotCached("the pipeline is built inside a graph")
        key = _memo_key(cfg)
        with self._lock:
            data = self._memo.get(key)
            if data is None:
                data = _decode_or_load(cfg)
                self._memo.clear()
                self._memo[key] = data
        return data


def _usable(data: DecodedImages, cfg: PipelineConfig) -> DecodedImages:
    """This pipeline's shard of `data`; raises NotCached where the stream must take over."""
    data = data.every(*cfg.shard_records)
    if not len(data.labels):
        raise NotCached("this shard holds no records")
    if data.labels.min() < cfg.labels_offset:
        raise NotCached("a record has no label or one below labels_offset")
    if cfg.label_limit is not None and data.labels.max() >= cfg.label_limit:
        raise NotCached("a record has a label not below labels_offset + num_classes")
    if data.nbytes > cfg.decoded_cache_bytes:
        raise NotCached(f"more than {cfg.decoded_cache_bytes / 2**20:.0f} MiB decoded")
    return data


@dataclasses.dataclass(frozen=True)
class _Epochs:
    """Each epoch's order of the records, in blocks of the batch size."""
    count: int
    batch_size: int
    shuffle: bool
    order_seed: tf.Tensor

    def blocks(self) -> tf.data.Dataset:
        """Endless (first stream position, record indices) blocks."""
        count, batch_size, shuffle, order_seed = (self.count, self.batch_size, self.shuffle,
                                                  self.order_seed)

        def epoch(number):
            order = tf.range(count, dtype=tf.int64)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(
                    order, tf.random.experimental.stateless_fold_in(order_seed, number))
            starts = tf.range(0, count, batch_size, dtype=tf.int64)
            return tf.data.Dataset.from_tensor_slices(starts).map(
                lambda start: (number * count + start, order[start:start + batch_size]))

        return tf.data.Dataset.counter().flat_map(graph_fn(epoch))

    def records(self) -> tf.data.Dataset:
        """Endless (stream position, record index) pairs."""
        return self.blocks().flat_map(graph_fn(lambda first, indices: (
            tf.data.Dataset.from_tensor_slices((first + tf.range(
                tf.size(indices, out_type=tf.int64)), indices)))))


def _seeded_one(preprocess_fn: Callable, cfg: PipelineConfig, base_seed: tf.Tensor) -> Callable:
    """`one(image, seq)`: the preprocessing of one image at stream position `seq`."""
    seeded = cfg.is_training and accepts_seed(preprocess_fn)
    size = cfg.image_size

    def one(image, seq):
        kwargs = {"seed": tf.random.experimental.stateless_fold_in(base_seed, seq)} \
            if seeded else {}
        return tf.cast(preprocess_fn(image, size, size, **kwargs), tf.float32)
    return one


def _first_fails(data: DecodedImages, cfg: PipelineConfig, preprocess_fn: Callable,
                 base_seed: tf.Tensor) -> Optional[int]:
    """The output channels of the preprocessing on the first image, or None when it fails
    there (logged: the stream then reports it)."""
    first = tf.reshape(data.pixels[:int(np.prod(data.shapes[0]))], data.shapes[0])
    try:
        channels = _seeded_one(preprocess_fn, cfg, base_seed)(
            first, tf.constant(0, tf.int64)).shape[-1]
        batch_fn = getattr(preprocess_fn, "batched", lambda: None)()
        if batch_fn is not None and data.one_shape is not None:
            batch_fn(first[tf.newaxis], cfg.image_size, cfg.image_size,
                     **({"seed": base_seed} if cfg.is_training else {}))
    except (*READ_ERRORS, ValueError, TypeError) as e:
        log.info("reading the records as a stream (not decoding them into memory): the "
                 "preprocessing fails on the first image (%s)", type(e).__name__)
        return None
    return channels


def cached_batches(data: DecodedImages, cfg: PipelineConfig, preprocess_fn: Callable,
                   batch_size: int, base_seed: tf.Tensor) -> Optional[tf.data.Dataset]:
    """The endless stream of preprocessed batches of `data`, or None when the
    preprocessing fails on its first image (the streaming pipeline then reports it)."""
    channels = _first_fails(data, cfg, preprocess_fn, base_seed)
    if channels is None:
        return None
    labels = tf.constant(data.labels - cfg.labels_offset)
    epochs = _Epochs(len(data.labels), batch_size, cfg.is_training,
                     tf.random.experimental.stateless_split(base_seed, 2)[1])
    split = getattr(preprocess_fn, "split", lambda: None)()
    if data.one_shape is not None and split is None:
        batches = _blocks_of_one_size(data.stacked(), labels, epochs, cfg, preprocess_fn,
                                      base_seed, channels)
        return batches.rebatch(batch_size, drop_remainder=cfg.drop_remainder)
    return _one_by_one(data, labels, epochs, cfg, preprocess_fn, base_seed, split, channels)


def _blocks_of_one_size(images: tf.Tensor, labels: tf.Tensor, epochs: _Epochs,
                        cfg: PipelineConfig, preprocess_fn: Callable, base_seed: tf.Tensor,
                        channels: int) -> tf.data.Dataset:
    """Blocks of images of one size, each preprocessed in one element of a parallel map."""
    size = cfg.image_size
    one = _seeded_one(preprocess_fn, cfg, base_seed)
    batch_fn = getattr(preprocess_fn, "batched", lambda: None)()

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
        return epochs.blocks().map(graph_fn(block), num_parallel_calls=cfg.num_parallel_calls,
                                   deterministic=True)

    if batch_fn is not None:  # the preprocessing's own batched form
        return preprocessed(batched)
    try:  # vectorized when every op has a batched form (per-image random seeds do not)
        return preprocessed(vectorized)
    except ValueError:
        return preprocessed(one_by_one)


def _compiled_finish(per_batch: Callable) -> Callable:
    """`per_batch` of one image, compiled with XLA: its elementwise ops fused into one pass
    (TensorFlow's kernels, one pass each, cost 3x more on a CPU)."""
    def finish(image, draws):
        return per_batch(image[tf.newaxis], {k: v[tf.newaxis] for k, v in draws.items()})[0]
    return tf.function(finish, jit_compile=True, autograph=False)


def _one_by_one(data: DecodedImages, labels: tf.Tensor, epochs: _Epochs, cfg: PipelineConfig,
                preprocess_fn: Callable, base_seed: tf.Tensor, split: Optional[tuple],
                channels: int) -> tf.data.Dataset:
    """One image per element of a parallel map (images of any size), then batches; a
    two-part preprocessing finishes each image by its compiled second part."""
    pixels, size = data.pixels, cfg.image_size
    offsets = tf.constant(data.offsets[:-1], tf.int64)
    sizes = tf.constant(np.prod(data.shapes.astype(np.int64), 1), tf.int64)
    shapes = tf.constant(data.shapes, tf.int32)
    if split is None:
        one = _seeded_one(preprocess_fn, cfg, base_seed)
    else:
        finish = _compiled_finish(split[1])

        def one(image, seq):
            seed = tf.random.experimental.stateless_fold_in(base_seed, seq)
            return finish(*split[0](image, size, size, seed=seed))

    def record(seq, index):
        image = tf.reshape(tf.slice(pixels, [offsets[index]], [sizes[index]]), shapes[index])
        image = tf.ensure_shape(image, [None, None, cfg.channels])
        return tf.ensure_shape(one(image, seq), [size, size, channels]), tf.gather(labels, index)

    elements = epochs.records().map(graph_fn(record), num_parallel_calls=cfg.num_parallel_calls,
                                    deterministic=True)
    return elements.batch(epochs.batch_size, drop_remainder=cfg.drop_remainder)


__all__ = ["DecodedCache", "DecodedImages", "cached_batches"]
