"""The input side of slim-train: a dataset split through the input pipeline, or
generated (`--synthetic_data`) images for trying a net or measuring speed.

Each replica gets `--batch_size` images per step (the original's batch size
per clone); with several workers, every worker reads its own shard of files.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from slimcli.errors import SlimError

__all__ = ["TrainData", "make_train_data", "synthetic_dataset", "SYNTHETIC_EPOCH_SIZE"]

log = logging.getLogger("slimcli.train")

SYNTHETIC_EPOCH_SIZE = 10_000  # what an "epoch" of generated data counts for decay steps
_SYNTHETIC_POOL_BATCHES = 8


@dataclasses.dataclass
class TrainData:
    """What the trainer needs to know about its input.

    Attributes:
      dataset_fn: `fn(tf.distribute.InputContext) -> tf.data.Dataset` of
        per-replica batches `(images float32 [B, H, W, C], labels int64 [B])`.
      num_classes: logits size (the dataset's classes minus `labels_offset`).
      num_samples: examples per epoch (for the decay steps).
      image_size: the training height and width.
      channels: image channels (1 with `--use_grayscale`).
    """
    dataset_fn: Callable[[Any], tf.data.Dataset]
    num_classes: int
    num_samples: int
    image_size: int
    channels: int

    def sample_images(self, count: int = 3) -> tf.Tensor:
        """A few training images, for an image summary."""
        batch = next(iter(self.dataset_fn(tf.distribute.InputContext())))
        return batch[0][:count]


def synthetic_dataset(batch_size: int, image_size: int, num_classes: int, channels: int = 3,
                      seed: int = 0, input_context: Any = None) -> tf.data.Dataset:
    """Learnable generated batches: each class has its own fixed pattern plus noise.

    A pool of a few batches is made once and repeated, so reading costs
    nothing (what a speed measurement wants) and a net can learn it.
    """
    shard = input_context.input_pipeline_id if input_context is not None else 0
    rng = np.random.RandomState(seed)
    patterns = rng.uniform(-1.0, 1.0, (num_classes, image_size, image_size, channels))
    rng = np.random.RandomState(seed + 1000 * (shard + 1))
    count = batch_size * _SYNTHETIC_POOL_BATCHES
    labels = rng.randint(0, num_classes, count).astype(np.int64)
    noise = rng.normal(0.0, 0.3, (count, image_size, image_size, channels))
    images = (patterns[labels] + noise).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size,
                                                                    drop_remainder=True)
    return ds.cache().repeat().prefetch(2)


def _synthetic(config: Any, spec: Any) -> TrainData:
    size = config.train_image_size or spec.default_image_size
    channels = 1 if config.use_grayscale else 3
    num_classes = config.synthetic_num_classes
    seed = config.seed or 0

    def dataset_fn(ctx: Any) -> tf.data.Dataset:
        return synthetic_dataset(config.batch_size, size, num_classes, channels, seed, ctx)
    log.info("Training on generated images (%dx%dx%d, %d classes)", size, size, channels,
             num_classes)
    return TrainData(dataset_fn, num_classes, SYNTHETIC_EPOCH_SIZE, size, channels)


def _dataset(config: Any, spec: Any) -> TrainData:
    try:
        from slimcli import datasets, preprocessing
        from slimcli.input import DecodedCache, build_input_pipeline
        from slimcli.input.config import decode_side_pixels
        from slimcli.preprocessing.augment import BatchAugmentation
        from slimcli.preprocessing.randaugment import parse_randaugment
    except ImportError as e:
        raise SlimError(f"this slimcli build lacks the dataset input pipeline ({e}); "
                        f"use --synthetic_data until it is installed.") from None
    split = datasets.get_dataset(config.dataset_name, config.dataset_split_name,
                                 config.dataset_dir, config.file_pattern)
    num_classes = split.num_classes - config.labels_offset
    if num_classes < 1:
        raise SlimError(f"--labels_offset={config.labels_offset} leaves no classes of "
                        f"{config.dataset_name} ({split.num_classes}); use a smaller offset.")
    preprocess_fn = preprocessing.preprocessing_for_net(
        config.model_name, config.preprocessing_name, is_training=True,
        use_grayscale=config.use_grayscale)
    if config.min_crop_area is not None:
        preprocess_fn = preprocess_fn.with_min_crop_area(config.min_crop_area)
    size = config.train_image_size or spec.default_image_size
    channels = 1 if config.use_grayscale else 3  # decoded as RGB; grayscale by preprocessing
    decoded = DecodedCache()  # a split that fits is decoded once, for the summary and training
    side = decode_side_pixels(config.decode_side, preprocess_fn.working_side, size)
    augment = BatchAugmentation(num_classes, parse_randaugment(config.randaugment),
                                config.random_erasing, config.mixup_alpha, config.cutmix_alpha,
                                preprocess_fn.pixel_range())
    seed = random.SystemRandom().randrange(2**31) if config.seed is None else config.seed

    def dataset_fn(ctx: Any) -> tf.data.Dataset:
        batches = build_input_pipeline(
            split.files, preprocess_fn, config.batch_size, size, is_training=True,
            labels_offset=config.labels_offset, num_classes=num_classes,
            num_readers=config.num_readers,
            num_parallel_calls=config.num_preprocessing_threads, seed=config.seed,
            input_context=ctx, drop_remainder=True, skip_corrupt=config.skip_corrupt,
            decoded_cache_mb=config.decoded_cache_mb, decoded_cache=decoded, decode_side=side,
            decoded_cache_on_disk=config.decoded_cache_on_disk)
        # The batch augmentations draw from their own seeds, one pair per input pipeline.
        return augment.apply(batches, [seed + 1, ctx.input_pipeline_id if ctx else 0])
    return TrainData(dataset_fn, num_classes, split.num_samples, size, channels)


def make_train_data(config: Any, spec: Any, info: Any) -> TrainData:
    """The input of a run: generated with `--synthetic_data`, else the dataset split.

    Raises:
      SlimError: unknown dataset or split, missing files.
    """
    del info
    return _synthetic(config, spec) if config.synthetic_data else _dataset(config, spec)
