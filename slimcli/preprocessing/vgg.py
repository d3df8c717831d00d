"""VGG preprocessing: RGB means subtracted, values in about [-124, 152].

Used by the VGG and ResNet (v1 and v2) checkpoints of the TF-Slim model zoo
(and, in slimcli, by AlexNet v2 and OverFeat).

- Training: aspect-preserving resize so that the smallest side is a random
  integer in [256, 512], random crop of the output size, random left-right
  flip, subtract the RGB means.
- Evaluation: aspect-preserving resize of the smallest side to 256, central
  crop, subtract the RGB means. This matches the original bit for bit: the new
  size is `rint(side * scale)` in float32 and the resize is TF1 bilinear.

`working_side` says what shorter side an image needs (512 in training, 256 in
evaluation), for images decoded smaller than they are stored.

Deviations from the original, both where it failed: with `use_grayscale` the
mean of the three channel means weighted as in `rgb_to_grayscale` is
subtracted (the original raised), and one-channel inputs work.

Provenance: the facts (means, resize range) are those of TF-Slim's
`vgg_preprocessing.py` (Simonyan & Zisserman, arXiv:1409.1556).
"""

from __future__ import annotations

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.preprocessing import common

R_MEAN = 123.68
G_MEAN = 116.78
B_MEAN = 103.94
RGB_MEANS = (R_MEAN, G_MEAN, B_MEAN)
# rgb_to_grayscale weights, for the one-channel mean.
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
GRAY_MEAN = sum(w * m for w, m in zip(_GRAY_WEIGHTS, RGB_MEANS))

RESIZE_SIDE_MIN = 256
RESIZE_SIDE_MAX = 512


def smallest_size_at_least(height, width, smallest_side) -> tuple[tf.Tensor, tf.Tensor]:
    """New (height, width) whose smaller side is `smallest_side`, aspect kept.

    Float32 arithmetic rounded half to even, as in the original.

    Args:
      height: int scalar (tensor).
      width: int scalar (tensor).
      smallest_side: int scalar (tensor).

    Returns:
      (new_height, new_width) int32 scalar tensors.
    """
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    side = tf.cast(smallest_side, tf.float32)
    scale = tf.where(height > width, side / width, side / height)
    new_height = tf.cast(tf.math.rint(height * scale), tf.int32)
    new_width = tf.cast(tf.math.rint(width * scale), tf.int32)
    return new_height, new_width


def aspect_preserving_resize(image: tf.Tensor, smallest_side) -> tf.Tensor:
    """TF1-bilinear resize so that the smaller side is `smallest_side`.

    Returns:
      Float32 [new_height, new_width, C] image.
    """
    shape = tf.shape(image)
    new_height, new_width = smallest_size_at_least(shape[0], shape[1], smallest_side)
    resized = common.resize_bilinear_v1(image, tf.stack([new_height, new_width]))
    resized.set_shape([None, None, image.shape[-1]])
    return resized


def central_crop(image: tf.Tensor, crop_height: int, crop_width: int) -> tf.Tensor:
    """Crops the centre; odd margins put the extra pixel after the crop."""
    shape = tf.shape(image)
    return common.crop(image, (shape[0] - crop_height) // 2, (shape[1] - crop_width) // 2,
                       crop_height, crop_width)


def random_crop(image: tf.Tensor, crop_height: int, crop_width: int, seed: tf.Tensor) -> tf.Tensor:
    """Crops at a uniformly random offset (stateless, from `seed`)."""
    shape = tf.shape(image)
    seed_h, seed_w = common.split_seed(seed, 2)
    # Too small an image gets offset 0 here and a clear error from the crop.
    offset_h = tf.random.stateless_uniform(
        [], seed_h, maxval=tf.maximum(shape[0] - crop_height + 1, 1), dtype=tf.int32)
    offset_w = tf.random.stateless_uniform(
        [], seed_w, maxval=tf.maximum(shape[1] - crop_width + 1, 1), dtype=tf.int32)
    return common.crop(image, offset_h, offset_w, crop_height, crop_width)


def mean_image_subtraction(image: tf.Tensor, means=RGB_MEANS) -> tf.Tensor:
    """Subtracts per-channel means; a one-channel image gets the gray mean.

    Raises:
      SlimError: the channel count is neither 1 nor len(means).
    """
    channels = image.shape[-1]
    if channels == 1 and tuple(means) == RGB_MEANS:
        means = (GRAY_MEAN,)
    if channels != len(means):
        raise SlimError(
            f"vgg preprocessing subtracts {len(means)} channel means but the image has "
            f"{channels} channels; decode with channels=3 (or 1).")
    return image - tf.constant(means, tf.float32)


def preprocess_for_train(image: tf.Tensor, output_height: int, output_width: int,
                         resize_side_min: int = RESIZE_SIDE_MIN,
                         resize_side_max: int = RESIZE_SIDE_MAX,
                         use_grayscale: bool = False, seed: common.SeedLike = None) -> tf.Tensor:
    """Random scale, random crop and flip, then mean subtraction.

    Args:
      image: [H, W, C] image (C = 3 or 1), any real dtype in [0, 255].
      output_height: crop height.
      output_width: crop width.
      resize_side_min: smallest random smaller side.
      resize_side_max: largest random smaller side (inclusive).
      use_grayscale: convert to one channel before the flip.
      seed: stateless seed; None draws one.

    Returns:
      [output_height, output_width, C] float32 image.
    """
    resize_seed, crop_seed, flip_seed = common.split_seed(common.as_seed(seed), 3)
    side = tf.random.stateless_uniform([], resize_seed, minval=resize_side_min,
                                       maxval=resize_side_max + 1, dtype=tf.int32)
    image = aspect_preserving_resize(image, side)
    image = random_crop(image, output_height, output_width, crop_seed)
    if use_grayscale:
        image = common.to_grayscale(image)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return mean_image_subtraction(image)


def preprocess_for_eval(image: tf.Tensor, output_height: int, output_width: int,
                        resize_side: int = RESIZE_SIDE_MIN, use_grayscale: bool = False) -> tf.Tensor:
    """Aspect-preserving resize, central crop, mean subtraction (exact).

    Returns:
      [output_height, output_width, C] float32 image.
    """
    image = aspect_preserving_resize(image, resize_side)
    image = central_crop(image, output_height, output_width)
    if use_grayscale:
        image = common.to_grayscale(image)
    return mean_image_subtraction(image)


def pixel_range(use_grayscale: bool) -> tuple[float, tuple[float, ...]]:
    """(scale, offset per channel): the output is `scale * pixel + offset` for pixels in
    [0, 1]."""
    return 255.0, tuple(-m for m in ((GRAY_MEAN,) if use_grayscale else RGB_MEANS))


def working_side(output_size: int, is_training: bool) -> int:
    """The shorter side (pixels) an image needs: training resizes it to up to
    `RESIZE_SIDE_MAX`, evaluation to `RESIZE_SIDE_MIN`, whatever the output size."""
    del output_size
    return RESIZE_SIDE_MAX if is_training else RESIZE_SIDE_MIN


def preprocess_image(image: tf.Tensor, output_height: int, output_width: int,
                     is_training: bool = False, resize_side_min: int = RESIZE_SIDE_MIN,
                     resize_side_max: int = RESIZE_SIDE_MAX, use_grayscale: bool = False,
                     seed: common.SeedLike = None) -> tf.Tensor:
    """Preprocesses one image for training or evaluation.

    Args:
      image: [H, W, C] image with values in [0, 255] (C = 3, or 1).
      output_height: output height.
      output_width: output width.
      is_training: random scale/crop/flip (train) or central crop (eval).
      resize_side_min: train: smallest random side; eval: the resize side.
      resize_side_max: train only: largest random side (inclusive).
      use_grayscale: output one channel.
      seed: training only: stateless seed; None draws one.

    Returns:
      [output_height, output_width, C] float32 image.

    Raises:
      SlimError: bad output size or resize range.
    """
    common.check_output_size(output_height, output_width)
    if is_training:
        if not 0 < resize_side_min <= resize_side_max:
            raise SlimError(
                f"vgg preprocessing needs 0 < resize_side_min <= resize_side_max. "
                f"Received: resize_side_min={resize_side_min}, resize_side_max={resize_side_max}")
        return preprocess_for_train(image, output_height, output_width, resize_side_min,
                                    resize_side_max, use_grayscale, seed)
    return preprocess_for_eval(image, output_height, output_width, resize_side_min, use_grayscale)
