"""Building blocks shared by the preprocessing modules.

Randomness: every random choice goes through stateless ops keyed by one
`seed` (a shape-[2] integer tensor), split into one sub-seed per step. The
same image and seed always give the same output, on any device and in any
tf.data thread. `seed=None` draws a fresh seed from the global generator
(`tf.random.uniform`, which honours `tf.random.set_seed`).

Image summaries: `image_summary` writes through `tf.summary.write` with the
TensorBoard images-plugin layout, so it needs no TensorBoard install. It
writes only where a default summary writer is set (and its `record_if`
condition holds) when the function is traced; elsewhere it adds no ops.
"""

from __future__ import annotations

import logging
from typing import Sequence, Union

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from slimcli.errors import SlimError

SeedLike = Union[None, int, Sequence[int], tf.Tensor]

_INT32_MAX = 2**31 - 1


def as_seed(seed: SeedLike) -> tf.Tensor:
    """Returns a stateless-op seed: an int64 tensor of shape [2].

    Args:
      seed: None (draw one from the global generator), a Python int `s`
        (gives `[s, 0]`), or a pair / shape-[2] integer tensor.

    Returns:
      An int64 tensor of shape [2].

    Raises:
      SlimError: `seed` is a sequence of the wrong length.
    """
    if seed is None:
        seed = tf.random.uniform([2], maxval=_INT32_MAX, dtype=tf.int32)
    elif isinstance(seed, int):
        seed = [seed, 0]
    elif isinstance(seed, (list, tuple)) and len(seed) != 2:
        raise SlimError(
            f"a stateless seed is an int or a pair of ints. Received: seed={seed!r}")
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return tf.ensure_shape(seed, [2])


def split_seed(seed: tf.Tensor, num: int) -> list[tf.Tensor]:
    """Splits one stateless seed into `num` independent ones."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=num))


def check_output_size(output_height: int, output_width: int) -> None:
    """Rejects output sizes that are not positive Python ints.

    Raises:
      SlimError: a size is not a positive int.
    """
    for name, value in (("output_height", output_height), ("output_width", output_width)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SlimError(
                f"Invalid value for argument {name}. Expected a positive int "
                f"(the net's input size, e.g. 224). Received: {name}={value!r}")


def to_grayscale(image: tf.Tensor) -> tf.Tensor:
    """RGB → one luminance channel; an image with one channel is kept as is."""
    if image.shape[-1] == 1:
        return image
    return tf.image.rgb_to_grayscale(image)


def resize_bilinear_v1(image: tf.Tensor, size) -> tf.Tensor:
    """Bilinear resize of one [H, W, C] image with TF1's arithmetic.

    TF1's `resize_bilinear(align_corners=False)` samples at `y * in/out`
    (no half-pixel centres), unlike TF2's `tf.image.resize`. The original
    preprocessing used it, and checkpoints were trained on its output.
    The result is float32 whatever the input dtype.
    """
    resized = tf.raw_ops.ResizeBilinear(  # the op itself: the v1 wrapper logs a deprecation
        images=image[tf.newaxis], size=size, align_corners=False, half_pixel_centers=False)
    return resized[0]


def crop(image: tf.Tensor, offset_height, offset_width, crop_height: int, crop_width: int) -> tf.Tensor:
    """Crops [crop_height, crop_width] at the given offsets, checking the size.

    Raises:
      tf.errors.InvalidArgumentError: (at run time) the image is smaller than
        the crop.
    """
    shape = tf.shape(image)
    size_check = tf.debugging.assert_greater_equal(
        shape[:2], tf.constant([crop_height, crop_width]),
        message=f"image smaller than the {crop_height}x{crop_width} crop; use a "
                f"larger resize side or a smaller output size")
    offsets = tf.stack([tf.cast(offset_height, tf.int32), tf.cast(offset_width, tf.int32), 0])
    with tf.control_dependencies([size_check]):
        cropped = tf.slice(image, offsets, tf.stack([crop_height, crop_width, shape[2]]))
    return tf.ensure_shape(cropped, [crop_height, crop_width, image.shape[-1]])


def crop_or_pad(image: tf.Tensor, target_height: int, target_width: int) -> tf.Tensor:
    """Centre-crops or zero-pads a [H, W, C] image to [target_height, target_width, C].

    The same pixels as `tf.image.resize_with_crop_or_pad` (the crop offset is
    `(size - target) // 2`, the padding before `(target - size) // 2`), in
    one slice and one pad: TensorFlow's version adds dozens of shape ops and
    checks, which cost more than decoding a small image in an input pipeline.
    """
    check_output_size(target_height, target_width)
    shape = tf.shape(image)
    size = shape[:2]
    target = tf.constant([target_height, target_width])
    kept = tf.minimum(size, target)
    cropped = tf.slice(image, tf.concat([tf.maximum(size - target, 0) // 2, [0]], 0),
                       tf.concat([kept, [-1]], 0))
    before = tf.maximum(target - size, 0) // 2
    padding = tf.concat([tf.stack([before, target - kept - before], 1), [[0, 0]]], 0)
    padded = tf.pad(cropped, padding)
    return tf.ensure_shape(padded, [target_height, target_width, image.shape[-1]])


def _summary_uint8(image: tf.Tensor) -> tf.Tensor:
    """Maps an image to uint8 for display (TF1 summary rules for floats)."""
    if image.dtype == tf.uint8:
        return image
    image = tf.cast(image, tf.float32)
    low, high = tf.reduce_min(image), tf.reduce_max(image)
    # Non-negative images scale so that the maximum is 255; others so that
    # 0 maps to 127.5 and the largest magnitude to 0 or 255.
    scale_nonneg = 255.0 / tf.maximum(high, 1e-12)
    scale_signed = 127.5 / tf.maximum(tf.maximum(-low, high), 1e-12)
    display = tf.where(low >= 0, image * scale_nonneg, image * scale_signed + 127.5)
    return tf.cast(tf.clip_by_value(tf.round(display), 0.0, 255.0), tf.uint8)


_IMAGE_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images")
).SerializeToString()


def image_summary(name: str, images: tf.Tensor, enabled: bool = True) -> None:
    """Writes one image summary of a [N, H, W, C] batch (N ≥ 1, C in 1, 3, 4).

    A no-op (no ops added) unless `enabled` and a default summary writer
    that records at trace time. The step is the default step
    (`writer.as_default(step=...)`); without one, nothing is written and a
    warning is logged.
    """
    if not enabled:
        return
    should_record = tf.summary.should_record_summaries()
    static = tf.get_static_value(should_record)
    if static is not None and not static:
        return
    if tf.summary.experimental.get_step() is None:
        logging.warning("image summary %r not written: the default summary writer has no "
                        "step; use writer.as_default(step=...)", name)
        return

    def write() -> tf.Tensor:
        pixels = _summary_uint8(images)
        encoded = tf.map_fn(tf.io.encode_png, pixels, fn_output_signature=tf.string)
        shape = tf.shape(images)
        tensor = tf.concat([tf.strings.as_string(tf.stack([shape[2], shape[1]])), encoded], 0)
        return tf.summary.write(name, tensor, metadata=_IMAGE_METADATA)

    tf.cond(should_record, write, lambda: tf.constant(False))
