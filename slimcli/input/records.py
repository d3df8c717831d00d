"""The slim TFRecord format: the `tf.train.Example` keys, parsing and image decoding.

The schema of the original's converters, also read by TF Model Garden:

    image/encoded       bytes   JPEG, PNG, ... or raw uint8 pixels
    image/format        bytes   "jpeg", "png", "raw", ... ("" when absent)
    image/class/label   int64   (-1 when absent)
    image/height        int64   (0 when absent; needed by "raw")
    image/width         int64   (0 when absent; needed by "raw")
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


__all__ = ["EXAMPLE_FEATURES", "FORMAT_KEY", "HEIGHT_KEY", "IMAGE_KEY", "LABEL_KEY",
           "RECORD_OVERHEAD_BYTES", "WIDTH_KEY", "decode_image", "parse_example"]
