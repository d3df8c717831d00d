"""A split decoded once into memory: `DecodedImages` and the decoding pass that makes it.

The images of a split are held one after another in one flat uint8 tensor,
with each image's shape, so photos of any size fit:

    pixels uint8 [total], shapes int32 [N, 3], labels int64 [N]    (the files' order)

A split of one image size (MNIST, CIFAR) is also a [N, H, W, C] array
(`stacked`) without a copy. The pass decodes each record at `side` when
given (`records.decode_image_at_side`: a photo's shorter side brought down to
what the preprocessing needs; 0 keeps the stored pixels) and stops as soon
as the decoded bytes pass the budget, or a record is damaged: `NotCached`
says why, and the streaming pipeline takes over.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow as tf

from slimcli.input.config import AUTOTUNE
from slimcli.input.records import (EXAMPLE_FEATURES, FORMAT_KEY, HEIGHT_KEY, IMAGE_KEY,
                                   LABEL_KEY, RECORD_OVERHEAD_BYTES, WIDTH_KEY,
                                   decode_image_at_side, parse_example)

_PASS_BATCH = 256  # records parsed and decoded per element of the decoding pass
# What reading damaged data can raise (TensorFlow's message may hold undecodable bytes).
READ_ERRORS = (tf.errors.OpError, UnicodeError)


class NotCached(Exception):
    """Why a split is left to the streaming pipeline (a log line, not an error)."""


@dataclasses.dataclass(frozen=True)
class DecodedImages:
    """A dataset split decoded into memory, in the files' order.

    Attributes:
      pixels: uint8 tensor [total]: the images one after another (a tensor, so
        that pipelines use it without a copy).
      shapes: int32 [N, 3], each image's [height, width, channels].
      labels: int64 [N], as stored (`image/class/label`).
      seconds: wall time the decoding (or loading) took.
      side: the shorter side the images were brought down to (0: as stored).
    """
    pixels: tf.Tensor
    shapes: np.ndarray
    labels: np.ndarray
    seconds: float
    side: int = 0

    @property
    def offsets(self) -> np.ndarray:
        """int64 [N + 1]: where each image starts in `pixels`, then the total."""
        return np.concatenate([[0], np.cumsum(np.prod(self.shapes.astype(np.int64), 1))])

    @property
    def one_shape(self) -> tuple[int, int, int] | None:
        """The images' shape when they all have one, else None."""
        if not len(self.shapes) or (self.shapes != self.shapes[0]).any():
            return None
        return tuple(int(v) for v in self.shapes[0])

    def stacked(self) -> tf.Tensor:
        """uint8 [N, H, W, C] (the images must all have `one_shape`)."""
        return tf.reshape(self.pixels, [len(self.labels), *self.one_shape])

    @property
    def nbytes(self) -> int:
        return int(self.pixels.shape.num_elements()) + self.labels.nbytes + self.shapes.nbytes

    def every(self, count: int, index: int) -> "DecodedImages":
        """Every `count`-th image from `index` (one input pipeline's records)."""
        if count == 1:
            return self
        offsets = self.offsets
        chosen = range(index, len(self.labels), count)
        pixels = [self.pixels[offsets[i]:offsets[i + 1]] for i in chosen]
        return dataclasses.replace(
            self, pixels=tf.concat(pixels, 0) if pixels else tf.zeros([0], tf.uint8),
            shapes=self.shapes[index::count], labels=self.labels[index::count])


def _decode_block(serialized: tf.Tensor, channels: int, side: int):
    features = tf.io.parse_example(serialized, EXAMPLE_FEATURES)

    def one(record):
        image = decode_image_at_side(record, channels, side)
        return tf.reshape(image, [-1]), tf.shape(image, out_type=tf.int32)

    pixels, shapes = tf.map_fn(
        one, {k: features[k] for k in (IMAGE_KEY, FORMAT_KEY, HEIGHT_KEY, WIDTH_KEY)},
        fn_output_signature=(tf.RaggedTensorSpec([None], tf.uint8, ragged_rank=0),
                             tf.TensorSpec([3], tf.int32)))
    nbytes = tf.reduce_sum(tf.cast(tf.strings.length(serialized), tf.int64)
                           + RECORD_OVERHEAD_BYTES)
    return pixels.flat_values, shapes, features[LABEL_KEY], nbytes


def _first_pixels(path: str, channels: int, side: int) -> tuple[int, int]:
    """The decoded size (bytes) and the stored length of the first record of `path`."""
    for record in tf.data.TFRecordDataset(path).take(1):
        image = decode_image_at_side(parse_example(record), channels, side)
        return int(tf.size(image)), int(tf.strings.length(record)) + RECORD_OVERHEAD_BYTES
    raise NotCached(f"{path} holds no records")


def _estimate(files: tuple[str, ...], file_sizes: tuple[int, ...], channels: int, side: int,
              budget_bytes: int) -> None:
    """Raises NotCached when the first record, scaled to all, says the split cannot fit."""
    try:
        pixels, first_bytes = _first_pixels(files[0], channels, side)
    except READ_ERRORS as e:
        raise NotCached(f"the first record of {files[0]} does not decode "
                        f"({type(e).__name__})") from None
    estimate = sum(file_sizes) / first_bytes * pixels
    if estimate > 1.5 * budget_bytes:
        raise NotCached(f"about {estimate / 2**20:.0f} MiB decoded, over the "
                        f"{budget_bytes / 2**20:.0f} MiB budget")


def decode_to_memory(files: tuple[str, ...], file_sizes: tuple[int, ...], channels: int,
                     budget_bytes: int, side: int = 0) -> DecodedImages:
    """Decodes every record of `files` (in order), at `side` when given, into memory.

    Raises:
      NotCached: the split is not one that can be held (the message says why).
    """
    _estimate(files, file_sizes, channels, side, budget_bytes)
    start = time.perf_counter()
    pixels, shapes, labels, total = [], [], [], 0
    # Traced once for every file (a map of a plain function traces it per dataset: 0.4 s
    # a file, seconds for a split of many shards).
    decode = tf.function(lambda serialized: _decode_block(serialized, channels, side),
                         input_signature=[tf.TensorSpec([None], tf.string)])
    for path, size in zip(files, file_sizes):
        blocks = tf.data.TFRecordDataset(path).batch(_PASS_BATCH).map(
            decode, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(2)
        consumed = 0
        try:
            for block_pixels, block_shapes, block_labels, nbytes in blocks:
                consumed += int(nbytes)
                total += int(block_pixels.shape[0])
                if total > budget_bytes:
                    raise NotCached(f"more than {budget_bytes / 2**20:.0f} MiB decoded")
                pixels.append(block_pixels)
                shapes.append(block_shapes.numpy())
                labels.append(block_labels.numpy())
        except READ_ERRORS as e:
            raise NotCached(f"a record of {path} is damaged or does not decode "
                            f"({type(e).__name__})") from None
        if consumed != size:
            raise NotCached(f"{path} is damaged (read {consumed} of {size} bytes)")
    return DecodedImages(tf.concat(pixels, 0), np.concatenate(shapes), np.concatenate(labels),
                         time.perf_counter() - start, side)


__all__ = ["DecodedImages", "NotCached", "READ_ERRORS", "decode_to_memory"]
