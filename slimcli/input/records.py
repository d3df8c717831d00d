"""The slim TFRecord format: the `tf.train.Example` keys, parsing and image decoding.

The schema of the original's converters, also read by TF Model Garden:

    image/encoded       bytes   JPEG, PNG, ... or raw uint8 pixels
    image/format        bytes   "jpeg", "png", "raw", ... ("" when absent)
    image/class/label   int64   (-1 when absent)
    image/height        int64   (0 when absent; needed by "raw")
    image/width         int64   (0 when absent; needed by "raw")

`decode_image_at_side` decodes a photo smaller, for training from a working
copy: its shorter side brought down to a given side (JPEG by DCT scaling in
the decoder, then an area resize; never enlarged).
"""

from __future__ import annotations

import tensorflow as tf

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
# Bytes a TFRecord file holds per record beyond the record itself:
# length (8) + length CRC (4) + data CRC (4).
RECORD_OVERHEAD_BYTES = 16


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


# The scale factors a JPEG decoder offers (libjpeg's DCT scaling: 1/1, 1/2, 1/4, 1/8).
_JPEG_RATIOS = (1, 2, 4, 8)


def shrink_to_side(image: tf.Tensor, side: int) -> tf.Tensor:
    """A uint8 [H, W, C] image whose shorter side is above `side`, area-resized so that it is
    `side` (the longer side in proportion, rounded); others are returned as they are."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    shorter = tf.minimum(height, width)

    def shrink():
        scale = side / tf.cast(shorter, tf.float64)
        size = tf.cast(tf.round(tf.cast(tf.stack([height, width]), tf.float64) * scale), tf.int32)
        size = tf.where(tf.stack([height, width]) == shorter, side, tf.maximum(size, side))
        resized = tf.image.resize(image, size, method="area")
        return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

    shrunk = tf.cond(shorter > side, shrink, lambda: image)
    return tf.ensure_shape(shrunk, [None, None, image.shape[-1]])


def _decode_jpeg_near_side(encoded: tf.Tensor, channels: int, side: int) -> tf.Tensor:
    """A JPEG decoded at the largest DCT scale-down that keeps its shorter side >= `side`."""
    shape = tf.io.extract_jpeg_shape(encoded)
    shorter = tf.minimum(shape[0], shape[1])
    ratios = tf.constant(_JPEG_RATIOS, tf.int32)
    # libjpeg rounds a scaled size up: ceil(shorter / ratio).
    fits = (shorter + ratios - 1) // ratios >= side
    branch = tf.reduce_max(tf.where(fits, tf.range(len(_JPEG_RATIOS)), 0))
    return tf.switch_case(branch, [
        lambda r=r: tf.io.decode_jpeg(encoded, channels=channels, ratio=r) for r in _JPEG_RATIOS])


def decode_image_at_side(features: dict[str, tf.Tensor], channels: int = 3,
                         side: int = 0) -> tf.Tensor:
    """`decode_image`, with the shorter side brought down to `side` pixels when it is longer.

    A JPEG is decoded at the largest of libjpeg's DCT scales (1/2, 1/4, 1/8)
    that keeps its shorter side at least `side`, several times faster than
    decoding it whole; then any image whose shorter side is still above
    `side` is area-resized to it (`shrink_to_side`). Smaller images keep their
    exact pixels. `side=0` is `decode_image`.

    Returns:
      uint8 tensor [height, width, channels].
    """
    if not side:
        return decode_image(features, channels)
    encoded = features[IMAGE_KEY]
    is_jpeg = tf.logical_and(tf.equal(tf.strings.substr(encoded, 0, 2), b"\xff\xd8"),
                             tf.not_equal(tf.strings.lower(features[FORMAT_KEY]), "raw"))
    image = tf.cond(is_jpeg, lambda: _decode_jpeg_near_side(encoded, channels, side),
                    lambda: decode_image(features, channels))
    return shrink_to_side(tf.ensure_shape(image, [None, None, channels]), side)


__all__ = ["EXAMPLE_FEATURES", "FORMAT_KEY", "HEIGHT_KEY", "IMAGE_KEY", "LABEL_KEY",
           "RECORD_OVERHEAD_BYTES", "WIDTH_KEY", "decode_image", "decode_image_at_side",
           "parse_example", "shrink_to_side"]
