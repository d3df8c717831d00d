"""RandAugment on batches: N operations, each drawn per image from 14, at magnitude M.

    images = randaugment(images, num_ops=2, magnitude=9, seed=seed)   # float [B, H, W, C] in [0, 1]

Each of the `num_ops` layers draws, for every image of the batch, one of
`OPS` (uniformly) and a sign; the operation's strength is `magnitude / 10` of
its largest (AutoAugment's ranges: rotations up to 30 degrees, shears up to
0.3, translations up to 45% of the side, colour, contrast, brightness and
sharpness factors 1 ± 0.9, solarize thresholds down to 0, posterize down to 4
bits). Everything is a batched TensorFlow op: each layer splits the batch by
the operation each image drew (`tf.dynamic_partition`), runs every operation
once on its images, and stitches the batch back together, so an image costs
one operation per layer. Geometric operations act about the image centre and
bring in grey from outside.

Provenance: the operation list and ranges are those of the RandAugment paper
(Cubuk et al., arXiv:1909.13719) and AutoAugment (arXiv:1805.09501); the
formulas follow PIL's ImageOps/ImageEnhance definitions. Images are in
[0, 1]; the input pipeline maps the preprocessing's output range there and back.
"""

from __future__ import annotations

import math

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.preprocessing import common

OPS = ("identity", "auto_contrast", "equalize", "rotate", "solarize", "color", "posterize",
       "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x",
       "translate_y")
GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
MAX_MAGNITUDE = 10
MAX_ROTATE_DEGREES = 30.0
MAX_SHEAR = 0.3
MAX_TRANSLATE = 0.45  # of the image side
MAX_ENHANCE = 0.9  # colour, contrast, brightness, sharpness: factors 1 ± 0.9
MIN_POSTERIZE_BITS = 4
FILL = 0.5  # what geometric operations bring in from outside the image (grey)


def parse_randaugment(text: str) -> tuple[int, int] | None:
    """`--randaugment=N,M` as (N, M); "" or "0" → None (off).

    Raises:
      SlimError: not two integers, N < 0 or M outside [0, 10].
    """
    text = (text or "").strip()
    if text in ("", "0"):
        return None
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise SlimError(f"--randaugment={text!r} is not N,M (operations per image, magnitude "
                        f"0-10); pass e.g. --randaugment=2,9, or leave it empty for none.")
    num_ops, magnitude = (int(p) for p in parts)
    if magnitude > MAX_MAGNITUDE:
        raise SlimError(f"--randaugment={text}: the magnitude M must be 0-10 (10 is "
                        f"AutoAugment's largest); got {magnitude}.")
    return (num_ops, magnitude) if num_ops else None


def _per_image(values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(values, [-1, 1, 1, 1])


def _gray(images: tf.Tensor) -> tf.Tensor:
    """[B, H, W, 1] luminance (ITU-R 601-2, as PIL's "L"); a one-channel image is itself."""
    if images.shape[-1] == 1:
        return images
    return tf.reduce_sum(images * tf.constant([0.299, 0.587, 0.114]), -1, keepdims=True)


def blend(degenerate: tf.Tensor, images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """PIL's ImageEnhance: `degenerate + f (image - degenerate)`, clipped to [0, 1]."""
    return tf.clip_by_value(degenerate + _per_image(factors) * (images - degenerate), 0.0, 1.0)


def smoothed(images: tf.Tensor) -> tf.Tensor:
    """PIL's SMOOTH filter ([[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13); the border kept."""
    height, width = images.shape[1], images.shape[2]
    window = tf.add_n([images[:, dy:height - 2 + dy, dx:width - 2 + dx]
                       for dy in range(3) for dx in range(3)])
    inner = (window + 4.0 * images[:, 1:-1, 1:-1]) / 13.0
    padding = [[0, 0], [1, 1], [1, 1], [0, 0]]
    return tf.pad(inner, padding) + images - tf.pad(images[:, 1:-1, 1:-1], padding)


def auto_contrast(images: tf.Tensor) -> tf.Tensor:
    """Each channel stretched to span [0, 1]; a flat channel is kept."""
    low = tf.reduce_min(images, [1, 2], keepdims=True)
    high = tf.reduce_max(images, [1, 2], keepdims=True)
    spread = high - low
    return tf.where(spread > 0, (images - low) / tf.maximum(spread, 1e-12), images)


def equalize(images: tf.Tensor) -> tf.Tensor:
    """PIL's histogram equalization of each channel of each image, on 256 levels."""
    shape = tf.shape(images)
    batch, channels = shape[0], shape[3]
    levels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.int32)
    # One histogram of 256 bins per (image, channel).
    slot = (tf.range(batch)[:, None, None, None] * channels + tf.range(channels)) * 256
    ids = levels + slot
    histogram = tf.reshape(tf.math.unsorted_segment_sum(tf.ones_like(ids), ids,
                                                        batch * channels * 256),
                           [batch, channels, 256])
    total = tf.reduce_sum(histogram, -1, keepdims=True)
    last_level = tf.reduce_max(tf.where(histogram > 0, tf.range(256), -1), -1, keepdims=True)
    last_count = tf.gather(histogram, tf.maximum(last_level, 0), batch_dims=2)
    step = (total - last_count) // 256
    before = tf.cumsum(histogram, -1, exclusive=True)
    lut = tf.minimum((step // 2 + before) // tf.maximum(step, 1), 255)
    lut = tf.where(step > 0, lut, tf.range(256))
    equalized = tf.gather(tf.reshape(lut, [-1]), ids)
    return tf.cast(equalized, tf.float32) / 255.0


def solarize(images: tf.Tensor, fractions: tf.Tensor) -> tf.Tensor:
    """Pixels at or above the threshold `256 (1 - m)` (of 255) inverted."""
    threshold = _per_image(256.0 / 255.0 * (1.0 - fractions))
    return tf.where(images >= threshold, 1.0 - images, images)


def posterize(images: tf.Tensor, fractions: tf.Tensor) -> tf.Tensor:
    """Each 8-bit level keeps its `8 - floor(4 m)` high bits."""
    bits = 8 - tf.cast(tf.floor((8 - MIN_POSTERIZE_BITS) * fractions), tf.int32)
    levels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.int32)
    shift = _per_image(8 - bits)
    return tf.cast(tf.bitwise.left_shift(tf.bitwise.right_shift(levels, shift), shift),
                   tf.float32) / 255.0


def geometric_transforms(ops: tf.Tensor, fractions: tf.Tensor, signs: tf.Tensor,
                         height: int, width: int) -> tf.Tensor:
    """[B, 8] projective transforms (output → input coordinates) of the geometric
    operations drawn; an identity for the images whose operation is another."""
    op = {name: tf.equal(ops, OPS.index(name)) for name in GEOMETRIC}
    strength = signs * fractions
    angle = tf.where(op["rotate"], strength * MAX_ROTATE_DEGREES * math.pi / 180.0, 0.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    shear_x = tf.where(op["shear_x"], strength * MAX_SHEAR, 0.0)
    shear_y = tf.where(op["shear_y"], strength * MAX_SHEAR, 0.0)
    shift_x = tf.where(op["translate_x"], strength * MAX_TRANSLATE * width, 0.0)
    shift_y = tf.where(op["translate_y"], strength * MAX_TRANSLATE * height, 0.0)
    # Rotation about the centre, then a shear, then a shift (one is non-zero per image).
    a0, a1 = cos + shear_x * sin, -sin + shear_x * cos
    b0, b1 = sin + shear_y * cos, cos - shear_y * sin
    a2 = cx - a0 * cx - a1 * cy + shift_x
    b2 = cy - b0 * cx - b1 * cy + shift_y
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], 1)


def transform(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Bilinear projective transform of each image; outside pixels become `FILL`."""
    shape = tf.shape(images)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.cast(transforms, tf.float32), output_shape=shape[1:3],
        fill_value=tf.constant(FILL, tf.float32), interpolation="BILINEAR",
        fill_mode="CONSTANT")


def _enhance(degenerate_fn):
    def op(images, fractions, signs):
        return blend(degenerate_fn(images), images, 1.0 + signs * fractions * MAX_ENHANCE)
    return op


def _geometric(name):
    def op(images, fractions, signs):
        ops = tf.fill(tf.shape(fractions), OPS.index(name))
        shape = images.shape
        return transform(images, geometric_transforms(ops, fractions, signs, shape[1], shape[2]))
    return op


# Each operation as `fn(images, fractions, signs)` on the images that drew it.
_OPERATIONS = {
    "identity": lambda images, fractions, signs: images,
    "auto_contrast": lambda images, fractions, signs: auto_contrast(images),
    "equalize": lambda images, fractions, signs: equalize(images),
    "solarize": lambda images, fractions, signs: solarize(images, fractions),
    "posterize": lambda images, fractions, signs: posterize(images, fractions),
    "color": _enhance(_gray),
    "contrast": _enhance(lambda images: tf.reduce_mean(_gray(images), [1, 2, 3], keepdims=True)),
    "brightness": _enhance(tf.zeros_like),
    "sharpness": _enhance(smoothed),
    **{name: _geometric(name) for name in GEOMETRIC},
}


def draws(seed: tf.Tensor, batch: tf.Tensor, magnitude: int) -> dict:
    """One layer's random choices for `batch` images: `ops` int32, `signs` ±1, `fractions`."""
    op_seed, sign_seed = common.split_seed(seed, 2)
    return {"ops": tf.random.stateless_uniform([batch], op_seed, 0, len(OPS), tf.int32),
            "signs": tf.where(tf.random.stateless_uniform([batch], sign_seed) < 0.5, -1.0, 1.0),
            "fractions": tf.fill([batch], magnitude / MAX_MAGNITUDE)}


def apply_layer(images: tf.Tensor, layer: dict) -> tf.Tensor:
    """One RandAugment layer whose choices are `layer` (see `draws`): the batch split by
    operation (`tf.dynamic_partition`), each part through its operation, stitched back."""
    ops = layer["ops"]
    count = len(OPS)
    where = tf.dynamic_partition(tf.range(tf.shape(images)[0]), ops, count)
    parts = tf.dynamic_partition(images, ops, count)
    fractions = tf.dynamic_partition(layer["fractions"], ops, count)
    signs = tf.dynamic_partition(layer["signs"], ops, count)
    done = [_OPERATIONS[name](parts[i], fractions[i], signs[i]) for i, name in enumerate(OPS)]
    return tf.ensure_shape(tf.dynamic_stitch(where, done), images.shape)


def randaugment(images: tf.Tensor, num_ops: int, magnitude: int, seed: tf.Tensor) -> tf.Tensor:
    """`num_ops` RandAugment layers on a batch of float [B, H, W, C] images in [0, 1].

    Args:
      images: the batch (static height, width and channels).
      num_ops: operations applied to each image, one after the other.
      magnitude: 0-10, the strength of every operation.
      seed: stateless seed of the batch's draws.

    Returns:
      The augmented batch, in [0, 1].
    """
    batch = tf.shape(images)[0]
    for layer_seed in common.split_seed(common.as_seed(seed), max(num_ops, 1))[:num_ops]:
        images = apply_layer(images, draws(layer_seed, batch, magnitude))
    return images


__all__ = ["OPS", "apply_layer", "auto_contrast", "blend", "draws", "equalize",
           "geometric_transforms", "parse_randaugment", "posterize", "randaugment", "smoothed",
           "solarize", "transform"]
