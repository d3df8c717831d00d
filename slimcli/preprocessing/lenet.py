"""LeNet preprocessing: centre crop or zero-pad, then `(x - 128) / 128`.

The same in training and evaluation (the original had no augmentation for
LeNet); matches the original bit for bit. Values lie in [-1, 0.9922].

Deviation: the crop is [output_height, output_width] (the original passed
the two sizes swapped, which only matters for non-square outputs).
"""

from __future__ import annotations

import tensorflow as tf

from slimcli.preprocessing import common

SCALE = 128.0


def pixel_range(use_grayscale: bool) -> tuple[float, float]:
    """(scale, offset): the output is `scale * pixel + offset` for pixels in [0, 1]."""
    del use_grayscale
    return 255.0 / SCALE, -1.0


def preprocess_image(image: tf.Tensor, output_height: int, output_width: int,
                     is_training: bool = False, use_grayscale: bool = False,
                     seed: common.SeedLike = None) -> tf.Tensor:
    """Preprocesses one image (training and evaluation alike).

    Args:
      image: [H, W, C] image with values in [0, 255].
      output_height: output height.
      output_width: output width.
      is_training: unused: LeNet has no training distortions.
      use_grayscale: output one channel.
      seed: unused; accepted so that every preprocessing takes the same
        keyword arguments.

    Returns:
      [output_height, output_width, C] float32 image.

    Raises:
      SlimError: the output size is not a positive int.
    """
    del is_training, seed  # No randomness in LeNet preprocessing.
    common.check_output_size(output_height, output_width)
    image = tf.cast(image, tf.float32)
    if use_grayscale:
        image = common.to_grayscale(image)
    image = common.crop_or_pad(image, output_height, output_width)
    return (image - SCALE) / SCALE
