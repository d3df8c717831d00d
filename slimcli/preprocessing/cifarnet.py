"""CifarNet preprocessing: per-image standardization (zero mean, unit std).

- Training: pad 4 pixels of zeros on each side, random crop of the output
  size, random left-right flip, random brightness (±63) and contrast
  (0.2-1.8), then `tf.image.per_image_standardization`.
- Evaluation: centre crop or zero-pad to the output size, then
  standardization. This matches the original bit for bit.
- Batches of same-size images (`preprocess_batch`, for images held in
  memory by the input pipeline): the same, in ops over the whole batch.

Deviations from the original, where it failed or was inconsistent: the
evaluation crop is [output_height, output_width] (the original passed the
two sizes swapped, which only matters for non-square outputs), and
one-channel images work in training.

Provenance: the facts (padding, distortion ranges) are those of TF-Slim's
`cifarnet_preprocessing.py`.
"""

from __future__ import annotations

import tensorflow as tf

from slimcli.preprocessing import common

PADDING = 4
BRIGHTNESS_MAX_DELTA = 63.0
CONTRAST_RANGE = (0.2, 1.8)


def preprocess_for_train(image: tf.Tensor, output_height: int, output_width: int,
                         padding: int = PADDING, add_image_summaries: bool = True,
                         use_grayscale: bool = False, seed: common.SeedLike = None) -> tf.Tensor:
    """Pads, randomly crops, flips and distorts one image, then standardizes.

    Args:
      image: [H, W, C] image with values in [0, 255].
      output_height: crop height.
      output_width: crop width.
      padding: zero pixels added on each side before the crop.
      add_image_summaries: write the original's image summaries.
      use_grayscale: convert to one channel first.
      seed: stateless seed; None draws one.

    Returns:
      [output_height, output_width, C] float32 standardized image.
    """
    crop_seed, flip_seed, brightness_seed, contrast_seed = common.split_seed(
        common.as_seed(seed), 4)
    common.image_summary("image", image[tf.newaxis], add_image_summaries)
    image = tf.cast(image, tf.float32)
    if use_grayscale:
        image = common.to_grayscale(image)
    if padding > 0:
        image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    distorted = tf.image.stateless_random_crop(
        image, [output_height, output_width, image.shape[-1]], crop_seed)
    distorted = tf.image.stateless_random_flip_left_right(distorted, flip_seed)
    common.image_summary("distorted_image", distorted[tf.newaxis], add_image_summaries)
    distorted = tf.image.stateless_random_brightness(distorted, BRIGHTNESS_MAX_DELTA, brightness_seed)
    distorted = tf.image.stateless_random_contrast(distorted, *CONTRAST_RANGE, seed=contrast_seed)
    return tf.image.per_image_standardization(distorted)


def distortion_draws(seed: tf.Tensor, count: int, crop_limits: tf.Tensor) -> dict:
    """The random choices of `count` training distortions, from one stateless seed.

    Args:
      seed: shape-[2] int seed.
      count: images.
      crop_limits: int32 [2]: the number of crop offsets in each dimension
        (padded size - output size + 1).

    Returns:
      Dict of `offsets` int32 [count, 2], `flip` bool [count], `brightness`
      float32 [count] in [-63, 63), `contrast` float32 [count] in [0.2, 1.8).
    """
    offsets, flip, brightness, contrast = common.split_seed(common.as_seed(seed), 4)
    unit = tf.random.stateless_uniform([count, 2], offsets)
    return {
        "offsets": tf.minimum(tf.cast(unit * tf.cast(crop_limits, tf.float32), tf.int32),
                              crop_limits - 1),
        "flip": tf.random.stateless_uniform([count], flip) < 0.5,
        "brightness": tf.random.stateless_uniform([count], brightness, -BRIGHTNESS_MAX_DELTA,
                                                  BRIGHTNESS_MAX_DELTA),
        "contrast": tf.random.stateless_uniform([count], contrast, *CONTRAST_RANGE),
    }


def distort_batch(images: tf.Tensor, draws: dict, output_height: int, output_width: int,
                  padding: int = PADDING) -> tf.Tensor:
    """The training distortions of a batch, each image with its own draws.

    Per image, the arithmetic of `preprocess_for_train` (pad, crop at
    `offsets`, flip, brightness, contrast, standardization) in ops over the
    whole batch. Padding, crop and flip move pixels only: they are one pad and
    two gathers, before the cast to float32 (on a quarter of the bytes of
    uint8 images). Brightness, contrast and standardization are one
    expression, equal up to float rounding (the brightness shift cancels in
    the standardization).

    Args:
      images: [B, H, W, C] (uint8 or float32).
      draws: `distortion_draws` for B images.

    Returns:
      [B, output_height, output_width, C] float32.
    """
    images = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    rows = draws["offsets"][:, :1] + tf.range(output_height)
    # A flipped crop reads its columns right to left.
    cols = draws["offsets"][:, 1:] + tf.where(draws["flip"][:, None],
                                              tf.range(output_width - 1, -1, -1),
                                              tf.range(output_width))
    images = tf.gather(tf.gather(images, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    images = tf.cast(images, tf.float32)
    # Brightness b then contrast f give y = (x - m) f + m + b, with m the channel means
    # of x. Standardization then removes b: y's mean is M + b (M: x's mean), and its
    # variance is f² V + B, where V is the variance of x - m and B that of the m.
    means = tf.reduce_mean(images, [1, 2], keepdims=True)
    deviations = images - means
    factor = draws["contrast"][:, None, None, None]
    between = means - tf.reduce_mean(means, [3], keepdims=True)
    variance = (tf.square(factor) * tf.reduce_mean(tf.square(deviations), [1, 2, 3], keepdims=True)
                + tf.reduce_mean(tf.square(between), [3], keepdims=True))
    count = tf.cast(tf.reduce_prod(tf.shape(images)[1:]), tf.float32)
    stddev = tf.maximum(tf.sqrt(variance), tf.math.rsqrt(count))
    return (deviations * factor + between) / stddev


def preprocess_batch(images: tf.Tensor, output_height: int, output_width: int,
                     is_training: bool = False, use_grayscale: bool = False,
                     padding: int = PADDING, seed: common.SeedLike = None) -> tf.Tensor:
    """`preprocess_image` of a batch of same-size images, in ops over the batch.

    Evaluation gives exactly `preprocess_image`'s pixels. Training has its
    distributions, from other random draws (one seed for the batch, not one
    per image). No image summaries. Used by the input pipeline on images
    decoded in memory (`slimcli.input.cache`).

    Args:
      images: [B, H, W, C] images with values in [0, 255].
      seed: training only: stateless seed of the batch; None draws one.

    Returns:
      [B, output_height, output_width, C] float32.
    """
    common.check_output_size(output_height, output_width)
    if use_grayscale:
        images = common.to_grayscale(tf.cast(images, tf.float32))
    if not is_training:
        images = tf.cast(images, tf.float32)
        resized = tf.image.resize_with_crop_or_pad(images, output_height, output_width)
        return tf.image.per_image_standardization(resized)
    shape = tf.shape(images)
    limits = shape[1:3] + 2 * padding - tf.constant([output_height, output_width]) + 1
    draws = distortion_draws(seed, shape[0], limits)
    return distort_batch(images, draws, output_height, output_width, padding)


def preprocess_for_eval(image: tf.Tensor, output_height: int, output_width: int,
                        add_image_summaries: bool = True, use_grayscale: bool = False) -> tf.Tensor:
    """Centre crop or pad to the output size, then standardize (exact).

    Returns:
      [output_height, output_width, C] float32 standardized image.
    """
    common.image_summary("image", image[tf.newaxis], add_image_summaries)
    image = tf.cast(image, tf.float32)
    if use_grayscale:
        image = common.to_grayscale(image)
    resized = common.crop_or_pad(image, output_height, output_width)
    common.image_summary("resized_image", resized[tf.newaxis], add_image_summaries)
    return tf.image.per_image_standardization(resized)


def preprocess_image(image: tf.Tensor, output_height: int, output_width: int,
                     is_training: bool = False, add_image_summaries: bool = True,
                     use_grayscale: bool = False, padding: int = PADDING,
                     seed: common.SeedLike = None) -> tf.Tensor:
    """Preprocesses one image for training or evaluation.

    Args:
      image: [H, W, C] image with values in [0, 255].
      output_height: output height.
      output_width: output width.
      is_training: random distortions (train) or centre crop/pad (eval).
      add_image_summaries: write the original's image summaries.
      use_grayscale: output one channel.
      padding: training only: zero padding before the random crop.
      seed: training only: stateless seed; None draws one.

    Returns:
      [output_height, output_width, C] float32 image.

    Raises:
      SlimError: the output size is not a positive int.
    """
    common.check_output_size(output_height, output_width)
    if is_training:
        return preprocess_for_train(image, output_height, output_width, padding,
                                    add_image_summaries, use_grayscale, seed)
    return preprocess_for_eval(image, output_height, output_width, add_image_summaries,
                               use_grayscale)
