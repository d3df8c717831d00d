"""The one tf.data input pipeline of slimcli: TFRecords → preprocessed batches.

Used by training, evaluation and the benchmarks:

    fn = get_preprocessing("inception_v3", is_training=True)
    ds = build_input_pipeline(files, fn, batch_size=32, image_size=299, is_training=True, seed=0)
    for images, labels in ds: ...   # float32 [32, 299, 299, 3], int64 [32]

The pieces it assembles, each a module of `slimcli.input`:
- `records`: the slim `tf.train.Example` format (keys, parse, decode);
- `config`: the checked arguments (`PipelineConfig`) and their defaults;
- `stream`: reading, decoding and preprocessing as a stream, in blocks;
- `checks`: the corrupt-record and label checks and their one-line errors;
- `decoded`, `cache_file`, `cache`: a repeated stream decoded once into
  memory (`decoded_cache_mb`), photos at a working resolution
  (`decode_side`), optionally kept on disk beside the records.
Every parallel stage is AUTOTUNE unless told otherwise; the result is
rebatched to the batch size and prefetched.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import tensorflow as tf

from slimcli.input.cache import DecodedCache
from slimcli.input.checks import PipelineStats, pipeline_error_message
from slimcli.input.config import AUTOTUNE, DEFAULT_SHUFFLE_BUFFER, PipelineConfig, make_config
from slimcli.input.stream import streamed_batches


def build_input_pipeline(files: Sequence[str], preprocess_fn: Callable, batch_size: int,
                         image_size: int, *, is_training: bool, labels_offset: int = 0,
                         num_classes: Optional[int] = None,
                         num_readers: Optional[int] = None,
                         num_parallel_calls: Optional[int] = None,
                         shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                         seed: Optional[int] = None,
                         input_context: Optional[tf.distribute.InputContext] = None,
                         repeat: Optional[bool] = None, skip_corrupt: bool = False,
                         drop_remainder: Optional[bool] = None, cache: bool = False,
                         channels: int = 3,
                         stats: Optional[PipelineStats] = None,
                         decoded_cache_mb: Optional[int] = None,
                         decoded_cache: Optional[DecodedCache] = None,
                         decode_side: int = 0,
                         decoded_cache_on_disk: bool = False) -> tf.data.Dataset:
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
      num_classes: the classes of the labels after the offset (the logits
        size); a label that is not below it is an error. None: unchecked.
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
        many MiB is decoded once into memory, then shuffled in full each
        epoch (`slimcli.input.cache`); None → 1024, 0 → always stream.
      decoded_cache: keeps that decoded split for the later pipelines built
        with the same one (and the same files); None: a new one, for this
        pipeline alone.
      decode_side: decode each image with its shorter side brought down to
        this many pixels when longer (`records.decode_image_at_side`; e.g.
        `preprocess_fn.working_side(image_size)`), in memory and in the
        stream; 0 (the default) → the stored pixels, exactly.
      decoded_cache_on_disk: also keep the decoded split in a file beside
        the records, for later runs (`slimcli.input.cache_file`).

    Returns:
      A `tf.data.Dataset` of `(images float32 [B, image_size, image_size, C],
      labels int64 [B])`, prefetched.

    Raises:
      SlimError: bad arguments or missing files.
    """
    cfg = make_config(files, batch_size, image_size, is_training, labels_offset, num_classes,
                      num_readers, num_parallel_calls, shuffle_buffer, seed, input_context,
                      repeat, skip_corrupt, drop_remainder, cache, channels, decoded_cache_mb,
                      decode_side, decoded_cache_on_disk)
    stats = stats if stats is not None else PipelineStats()
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    base_seed = tf.constant([cfg.seed, pipeline_id], tf.int64)
    if cfg.repeat and cfg.decoded_cache_bytes:
        owner = decoded_cache if decoded_cache is not None else DecodedCache()
        batches = owner.batches(cfg, preprocess_fn, batch_size, base_seed)
        if batches is not None:
            return _finish(batches, cfg)
    return _finish(streamed_batches(cfg, preprocess_fn, batch_size, base_seed, stats), cfg)


def _finish(batches: tf.data.Dataset, cfg: PipelineConfig) -> tf.data.Dataset:
    batches = batches.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = cfg.deterministic
    return batches.with_options(options)


__all__ = ["build_input_pipeline", "pipeline_error_message"]
