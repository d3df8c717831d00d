"""CifarNet preprocessing: per-image standardization (zero mean, unit std).

- Training: pad 4 pixels of zeros on each side, random crop of the output
  size, random left-right flip, random brightness (±63) and contrast
  (0.2-1.8), then `tf.image.per_image_standardization`.
- Evaluation: centre crop or zero-pad to the output size, then
  standardization. This matches the original bit for bit.

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
