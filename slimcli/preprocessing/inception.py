"""Inception preprocessing: images scaled to [-1, 1].

Used by the Inception, Inception-ResNet, MobileNet and NASNet/PNASNet
checkpoints of the TF-Slim model zoo.

- Training: a random crop covering 5-100% of the image (aspect ratio 3/4 to
  4/3, at least 10% of the bounding box), resize to the output size, random
  left-right flip, random colour distortion (brightness and saturation; also
  hue and contrast, in one of four orders, when `fast_mode=False`).
- Evaluation: central crop of 87.5% of each side, bilinear resize with TF1
  arithmetic (no half-pixel centres), then `2 * (x - 0.5)`. This matches the
  original bit for bit.

- Training in two parts (`train_crop_and_draws` per image, `finish_train_batch`
  per batch): the same crops and random draws as `preprocess_for_train` in
  fast mode, with the flip, brightness and saturation done over a whole batch
  (saturation by its closed form in RGB, equal to the HSV op up to float
  rounding). The input pipeline uses it on images decoded in memory.
- `working_side(size, is_training)`: the shorter side an image needs for an
  output of `size` (training: the median crop keeps full resolution;
  evaluation: the central crop does); a photo decoded at that side loses
  little (`slimcli.input.records.decode_image_at_side`).

Provenance: the facts (crop fraction, distortion ranges, resize methods) are
those of TF-Slim's `inception_preprocessing.py`; randomness here is stateless
and seedable (see `slimcli.preprocessing.common`).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import tensorflow as tf

from slimcli.preprocessing import common

CENTRAL_FRACTION = 0.875
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (0.75, 1.33)
AREA_RANGE = (0.05, 1.0)
MAX_ATTEMPTS = 100
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)
HUE_MAX_DELTA = 0.2
CONTRAST_RANGE = (0.5, 1.5)
# The median area of a training crop: AREA_RANGE is drawn uniformly (about 0.5).
_MEDIAN_CROP_AREA = 0.5

# TF1 `resize_images` methods, picked at random when fast_mode=False.
_RESIZE_METHODS = (
    tf.compat.v1.image.ResizeMethod.BILINEAR,
    tf.compat.v1.image.ResizeMethod.NEAREST_NEIGHBOR,
    tf.compat.v1.image.ResizeMethod.BICUBIC,
    tf.compat.v1.image.ResizeMethod.AREA,
)

# The four colour-distortion orders of the original (fast mode uses the
# first two steps of order 0 only).
_COLOR_ORDERS = (
    ("brightness", "saturation", "hue", "contrast"),
    ("saturation", "brightness", "contrast", "hue"),
    ("contrast", "hue", "brightness", "saturation"),
    ("hue", "saturation", "contrast", "brightness"),
)


def _color_op(name: str, image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    if name == "brightness":
        return tf.image.stateless_random_brightness(image, BRIGHTNESS_MAX_DELTA, seed)
    if name == "saturation":
        return tf.image.stateless_random_saturation(image, *SATURATION_RANGE, seed=seed)
    if name == "hue":
        return tf.image.stateless_random_hue(image, HUE_MAX_DELTA, seed)
    return tf.image.stateless_random_contrast(image, *CONTRAST_RANGE, seed=seed)


def distort_color(image: tf.Tensor, color_ordering: int, fast_mode: bool, seed: tf.Tensor) -> tf.Tensor:
    """Randomly distorts the colours of a [H, W, 3] float image in [0, 1].

    Args:
      image: float32 RGB image with values in [0, 1].
      color_ordering: which of the 4 orders of the colour ops to apply.
      fast_mode: only brightness and saturation (order 0: brightness first,
        any other order: saturation first).
      seed: stateless seed, shape [2].

    Returns:
      The distorted image, clipped to [0, 1].
    """
    if fast_mode:
        steps = ("brightness", "saturation") if color_ordering == 0 else ("saturation", "brightness")
    else:
        steps = _COLOR_ORDERS[color_ordering]
    for name, step_seed in zip(steps, common.split_seed(seed, len(steps))):
        image = _color_op(name, image, step_seed)
    return tf.clip_by_value(image, 0.0, 1.0)


def _apply_with_random_case(image: tf.Tensor, fn: Callable[[tf.Tensor, int], tf.Tensor],
                            num_cases: int, seed: tf.Tensor) -> tf.Tensor:
    """Applies `fn(image, case)` for one case drawn uniformly from `num_cases`."""
    if num_cases == 1:
        return fn(image, 0)
    case = tf.random.stateless_uniform([], seed, maxval=num_cases, dtype=tf.int32)
    return tf.switch_case(case, [lambda c=c: fn(image, c) for c in range(num_cases)])


def distorted_bounding_box_crop(image: tf.Tensor, bbox: tf.Tensor, seed: tf.Tensor,
                                min_object_covered: float = MIN_OBJECT_COVERED,
                                aspect_ratio_range=ASPECT_RATIO_RANGE,
                                area_range=AREA_RANGE,
                                max_attempts: int = MAX_ATTEMPTS) -> tuple[tf.Tensor, tf.Tensor]:
    """Crops a random region that covers part of `bbox`.

    Args:
      image: [H, W, C] image.
      bbox: [1, num_boxes, 4] float boxes (ymin, xmin, ymax, xmax) in [0, 1].
      seed: stateless seed, shape [2].
      min_object_covered: the crop covers at least this fraction of a box.
      aspect_ratio_range: allowed width/height ratios of the crop.
      area_range: allowed fractions of the image area.
      max_attempts: tries before falling back to the whole image.

    Returns:
      (cropped image, the crop as a [1, 1, 4] box).
    """
    begin, size, crop_box = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=bbox, seed=seed,
        min_object_covered=min_object_covered, aspect_ratio_range=aspect_ratio_range,
        area_range=area_range, max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True)
    cropped = tf.slice(image, begin, size)
    cropped.set_shape([None, None, image.shape[-1]])
    return cropped, crop_box


def preprocess_for_train(image: tf.Tensor, height: int, width: int,
                         bbox: Optional[tf.Tensor] = None, fast_mode: bool = True,
                         add_image_summaries: bool = True, random_crop: bool = True,
                         use_grayscale: bool = False, seed: common.SeedLike = None,
                         area_range: tuple[float, float] = AREA_RANGE) -> tf.Tensor:
    """Distorts one RGB image for training; returns float32 in [-1, 1].

    Args:
      image: [H, W, 3] image; integer types are scaled to [0, 1] by
        `tf.image.convert_image_dtype`, float32 must already be in [0, 1].
      height: output height.
      width: output width.
      bbox: [1, num_boxes, 4] boxes to cover; None → the whole image.
      fast_mode: bilinear resize only and brightness/saturation only;
        False picks one of 4 resize methods and one of 4 colour orders.
      add_image_summaries: write the original's image summaries (see
        `common.image_summary`).
      random_crop: take a random distorted-box crop (else the whole image).
      use_grayscale: convert to one channel after the colour distortion.
      seed: stateless seed (int, pair or shape-[2] tensor); None draws one.
      area_range: the shares of the image area a random crop may cover (the
        original's 5-100%).

    Returns:
      [height, width, C] float32 image, C = 1 with `use_grayscale` else 3.
    """
    seeds = common.split_seed(common.as_seed(seed), 5)
    if bbox is None:
        bbox = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
    if image.dtype != tf.float32:
        image = tf.image.convert_image_dtype(image, tf.float32)
    red = tf.constant([[1.0, 0.0, 0.0, 1.0]])
    common.image_summary("image_with_bounding_boxes",
                         tf.image.draw_bounding_boxes(image[tf.newaxis], bbox, red),
                         add_image_summaries)
    distorted = image
    if random_crop:
        distorted, crop_box = distorted_bounding_box_crop(image, bbox, seeds[0],
                                                          area_range=area_range)
        common.image_summary("images_with_distorted_bounding_box",
                             tf.image.draw_bounding_boxes(image[tf.newaxis], crop_box, red),
                             add_image_summaries)
    distorted = _apply_with_random_case(
        distorted,
        lambda x, method: tf.compat.v1.image.resize_images(x, [height, width], _RESIZE_METHODS[method]),
        num_cases=1 if fast_mode else 4, seed=seeds[1])
    distorted.set_shape([height, width, image.shape[-1]])
    common.image_summary(("cropped_" if random_crop else "") + "resized_image",
                         distorted[tf.newaxis], add_image_summaries)
    distorted = tf.image.stateless_random_flip_left_right(distorted, seeds[2])
    distorted = _apply_with_random_case(
        distorted, lambda x, order: distort_color(x, order, fast_mode, seeds[4]),
        num_cases=1 if fast_mode else 4, seed=seeds[3])
    if use_grayscale:
        distorted = common.to_grayscale(distorted)
    common.image_summary("final_distorted_image", distorted[tf.newaxis], add_image_summaries)
    return (distorted - 0.5) * 2.0


def preprocess_for_eval(image: tf.Tensor, height: int, width: int,
                        central_fraction: Optional[float] = CENTRAL_FRACTION,
                        central_crop: bool = True, use_grayscale: bool = False) -> tf.Tensor:
    """Prepares one image for evaluation, exactly as the original.

    Args:
      image: [H, W, C] image; integer types are scaled to [0, 1].
      height: output height (0 or None: keep the cropped size).
      width: output width (0 or None: keep the cropped size).
      central_fraction: fraction of each side kept by the central crop.
      central_crop: whether to crop at all.
      use_grayscale: convert to one channel first.

    Returns:
      Float32 image in [-1, 1].
    """
    if image.dtype != tf.float32:
        image = tf.image.convert_image_dtype(image, tf.float32)
    if use_grayscale:
        image = common.to_grayscale(image)
    if central_crop and central_fraction:
        image = tf.image.central_crop(image, central_fraction=central_fraction)
    if height and width:
        image = common.resize_bilinear_v1(image, [height, width])
    return (image - 0.5) * 2.0


def preprocess_image(image: tf.Tensor, output_height: int, output_width: int,
                     is_training: bool = False, bbox: Optional[tf.Tensor] = None,
                     fast_mode: bool = True, add_image_summaries: bool = True,
                     crop_image: bool = True, use_grayscale: bool = False,
                     central_fraction: float = CENTRAL_FRACTION,
                     seed: common.SeedLike = None,
                     area_range: tuple[float, float] = AREA_RANGE) -> tf.Tensor:
    """Preprocesses one image for training or evaluation.

    Args:
      image: [H, W, 3] image (uint8, or float32 in [0, 1]).
      output_height: output height.
      output_width: output width.
      is_training: random distortions (train) or central crop (eval).
      bbox: training only, see `preprocess_for_train`.
      fast_mode: training only, see `preprocess_for_train`.
      add_image_summaries: training only, see `preprocess_for_train`.
      crop_image: random crop (train) / central crop (eval) or none.
      use_grayscale: output one channel.
      central_fraction: eval only, fraction of each side kept.
      seed: training only: stateless seed; None draws one.
      area_range: training only, see `preprocess_for_train`.

    Returns:
      [output_height, output_width, C] float32 image in [-1, 1].

    Raises:
      SlimError: the output size is not a positive int.
    """
    common.check_output_size(output_height, output_width)
    if is_training:
        return preprocess_for_train(image, output_height, output_width, bbox, fast_mode,
                                    add_image_summaries=add_image_summaries,
                                    random_crop=crop_image, use_grayscale=use_grayscale,
                                    seed=seed, area_range=area_range)
    return preprocess_for_eval(image, output_height, output_width, central_fraction,
                               central_crop=crop_image, use_grayscale=use_grayscale)


def pixel_range(use_grayscale: bool) -> tuple[float, float]:
    """(scale, offset): the output is `scale * pixel + offset` for pixels in [0, 1]."""
    del use_grayscale
    return 2.0, -1.0


def working_side(output_size: int, is_training: bool) -> int:
    """The shorter side (pixels) an image needs for an output of `output_size`.

    Training: a crop of the median area (half the image) then keeps full
    resolution: `ceil(size / sqrt(0.5))`, 182 for 128. Evaluation: the
    central crop does: `ceil(size / 0.875)`, 147 for 128.
    """
    fraction = math.sqrt(_MEDIAN_CROP_AREA) if is_training else CENTRAL_FRACTION
    return math.ceil(output_size / fraction)


def train_crop_and_draws(image: tf.Tensor, height: int, width: int,
                         seed: common.SeedLike = None,
                         area_range: tuple[float, float] = AREA_RANGE) -> tuple[tf.Tensor, dict]:
    """The per-image half of fast-mode training: crop and resize, and the colour draws.

    The same random crop, resize and draws as `preprocess_for_train(image,
    height, width, seed=seed, area_range=area_range)` (fast mode, whole-image
    box), whose other half
    is `finish_train_batch`. The crop is cut from the integer image before the
    conversion to float, which gives the same values.

    Returns:
      (float32 [height, width, C] in [0, 1], draws: `flip` bool, `brightness`
      and `saturation` float32 scalars).
    """
    seeds = common.split_seed(common.as_seed(seed), 5)
    box = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=box, seed=seeds[0],
        min_object_covered=MIN_OBJECT_COVERED, aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=area_range, max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    cropped = tf.slice(image, begin, size)
    if cropped.dtype != tf.float32:
        cropped = tf.image.convert_image_dtype(cropped, tf.float32)
    resized = tf.compat.v1.image.resize_images(cropped, [height, width],
                                               tf.compat.v1.image.ResizeMethod.BILINEAR)
    resized = tf.ensure_shape(resized, [height, width, image.shape[-1]])
    brightness_seed, saturation_seed = common.split_seed(seeds[4], 2)
    draws = {
        "flip": tf.random.stateless_uniform([], seeds[2], 0.0, 1.0) < 0.5,
        "brightness": tf.random.stateless_uniform([], brightness_seed, -BRIGHTNESS_MAX_DELTA,
                                                  BRIGHTNESS_MAX_DELTA),
        "saturation": tf.random.stateless_uniform([], saturation_seed, *SATURATION_RANGE),
    }
    return resized, draws


def adjust_saturation_batch(images: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """`tf.image.adjust_saturation` of each RGB image of [B, H, W, 3] by its own factor.

    HSV with only S scaled (and capped at 1) keeps each pixel's maximum V and
    moves every channel towards it in proportion: `c' = V - f' (V - c)`, with
    `f' = min(f, 1 / S)` and `S = (V - min) / V`; the op takes S = 0 where
    V <= 0 (after a brightness shift), which makes the pixel grey at V. Equal
    to the HSV op up to float rounding.
    """
    value = tf.reduce_max(images, -1, keepdims=True)
    spread = value - tf.reduce_min(images, -1, keepdims=True)
    factor = tf.reshape(factors, [-1, 1, 1, 1])
    # f' = min(f, V / spread); with no spread the pixel is grey and stays.
    capped = tf.where(value > 0, tf.minimum(factor, value / tf.maximum(spread, 1e-12)), 0.0)
    return value - capped * (value - images)


def finish_train_batch(images: tf.Tensor, draws: dict, use_grayscale: bool = False) -> tf.Tensor:
    """The per-batch half of fast-mode training (see `train_crop_and_draws`).

    Args:
      images: float32 [B, H, W, 3] in [0, 1], cropped and resized.
      draws: each image's draws, stacked ([B] each).
      use_grayscale: one channel after the colour distortion.

    Returns:
      [B, H, W, C] float32 in [-1, 1].
    """
    flip = tf.reshape(draws["flip"], [-1, 1, 1, 1])
    images = tf.where(flip, tf.reverse(images, [2]), images)
    images = images + tf.reshape(draws["brightness"], [-1, 1, 1, 1])
    if images.shape[-1] != 1:
        images = adjust_saturation_batch(images, draws["saturation"])
    images = tf.clip_by_value(images, 0.0, 1.0)
    if use_grayscale:
        images = common.to_grayscale(images)
    return (images - 0.5) * 2.0
