"""Batch augmentations of today's from-scratch recipes: RandAugment, random erasing, mixup
and cutmix, applied to preprocessed batches in the input pipeline.

    augment = BatchAugmentation(num_classes=5, randaugment=(2, 9), random_erasing=0.25,
                                mixup_alpha=0.8, cutmix_alpha=1.0, pixel_range=(2.0, -1.0))
    dataset = augment.apply(dataset, seed=[0, 0])   # (images, labels) → (images, soft labels)

All are off by default, batched TensorFlow ops, and stateless: batch `i` of
the stream draws from `fold_in(seed, i)`, so a seeded run is reproducible.
In order, as timm applies them:
- RandAugment (`slimcli.preprocessing.randaugment`) on the images mapped to
  [0, 1] (the preprocessing's output range, `pixel_range`, says how);
- random erasing: with probability `random_erasing` per image, a rectangle of
  2-33% of its area (aspect ratio 0.3-3.3) filled with a random colour (uniform
  over the pixel range per channel; normal with a standardizing preprocessing);
- mixup or cutmix (each image one or the other, half and half when both are
  on): image `i` is mixed with image `B - 1 - i` of its batch, with
  `lam ~ Beta(alpha, alpha)`. Mixup blends the pixels, `lam x_i + (1 - lam)
  x_j`; cutmix pastes a box of `1 - lam` of the area (clipped to the image,
  lam then recomputed from the pasted area). The label becomes the soft label
  `lam y_i + (1 - lam) y_j`: one-hot rows [B, num_classes] that sum to 1, which
  slim-train's loss takes as they are.

Provenance: the methods and default ranges are those of the papers (Zhang et
al. 2017, mixup; Yun et al. 2019, CutMix; Zhong et al. 2017, random erasing)
as timm sets them; the code is slimcli's own.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.preprocessing import common, randaugment as randaugment_lib

ERASE_AREA = (0.02, 1.0 / 3.0)
ERASE_ASPECT = (0.3, 3.3)
CUTMIX_SHARE = 0.5  # with both mixup and cutmix on, the share of images cutmixed


def _per_image(values: tf.Tensor) -> tf.Tensor:
    return tf.reshape(values, [-1, 1, 1, 1])


def _beta(seed: tf.Tensor, count: tf.Tensor, alpha: float) -> tf.Tensor:
    """`count` draws of Beta(alpha, alpha), as the ratio of two gamma draws."""
    first, second = common.split_seed(seed, 2)
    a = tf.random.stateless_gamma([count], first, alpha)
    b = tf.random.stateless_gamma([count], second, alpha)
    return a / tf.maximum(a + b, 1e-12)


def box_mask(height: int, width: int, top: tf.Tensor, left: tf.Tensor, box_height: tf.Tensor,
             box_width: tf.Tensor) -> tf.Tensor:
    """bool [B, height, width, 1]: each image's box of rows [top, top + box_height) and
    columns [left, left + box_width)."""
    rows = tf.range(height)[None, :, None, None]
    cols = tf.range(width)[None, None, :, None]
    top, left = _per_image(top), _per_image(left)
    return ((rows >= top) & (rows < top + _per_image(box_height))
            & (cols >= left) & (cols < left + _per_image(box_width)))


def erasing_boxes(seed: tf.Tensor, count: tf.Tensor, height: int, width: int,
                  probability: float) -> dict:
    """Each image's random-erasing box: `erase` bool, `top`, `left`, `height`, `width`
    (int32; the box lies inside the image)."""
    seeds = common.split_seed(seed, 5)
    area = tf.random.stateless_uniform([count], seeds[0], *ERASE_AREA) * height * width
    log_aspect = tf.random.stateless_uniform([count], seeds[1], math.log(ERASE_ASPECT[0]),
                                             math.log(ERASE_ASPECT[1]))
    box_height = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * tf.exp(log_aspect))),
                                          tf.int32), 1, height)
    box_width = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / tf.exp(log_aspect))),
                                         tf.int32), 1, width)
    unit = tf.random.stateless_uniform([count, 2], seeds[2])
    top = tf.cast(unit[:, 0] * tf.cast(height - box_height + 1, tf.float32), tf.int32)
    left = tf.cast(unit[:, 1] * tf.cast(width - box_width + 1, tf.float32), tf.int32)
    return {"erase": tf.random.stateless_uniform([count], seeds[3]) < probability,
            "top": tf.minimum(top, height - box_height),
            "left": tf.minimum(left, width - box_width),
            "height": box_height, "width": box_width, "noise_seed": seeds[4]}


def _erase(images: tf.Tensor, noise: tf.Tensor, erase: tf.Tensor, top: tf.Tensor,
           left: tf.Tensor, box_height: tf.Tensor, box_width: tf.Tensor) -> tf.Tensor:
    height, width = images.shape[1], images.shape[2]
    mask = box_mask(height, width, top, left, box_height, box_width) & _per_image(erase)
    return tf.where(mask, noise, images)


# The pixel work of an augmentation, its elementwise ops fused into few passes by XLA
# (TensorFlow's CPU kernels make one pass over the batch each); the random draws stay
# outside (XLA's generators are slow on a CPU, and it has no gamma draws).
_erase_compiled = tf.function(_erase, jit_compile=True, autograph=False)


def random_erasing(images: tf.Tensor, probability: float, seed: tf.Tensor,
                   pixel_range: Optional[tuple] = None) -> tf.Tensor:
    """Random erasing of a batch [B, H, W, C]: see the module docstring."""
    boxes = erasing_boxes(seed, tf.shape(images)[0], images.shape[1], images.shape[2],
                          probability)
    # One random colour per box (per-pixel noise would cost more than the rest together).
    shape = tf.stack([tf.shape(images)[0], 1, 1, images.shape[3]])
    if pixel_range is None:
        noise = tf.random.stateless_normal(shape, boxes["noise_seed"])
    else:
        noise = from_unit(tf.random.stateless_uniform(shape, boxes["noise_seed"]), pixel_range)
    return _erase_compiled(images, noise, boxes["erase"], boxes["top"], boxes["left"],
                           boxes["height"], boxes["width"])


def cutmix_boxes(lam: tf.Tensor, seed: tf.Tensor, height: int, width: int) -> dict:
    """Boxes of `1 - lam` of the area centred at random points, clipped to the image;
    `lam` recomputed as the share of the image outside the box."""
    cut = tf.sqrt(1.0 - lam)
    centre = tf.random.stateless_uniform([tf.size(lam), 2], seed)
    sizes = tf.constant([height, width], tf.float32)
    half = cut[:, None] * sizes / 2.0
    start = tf.cast(tf.round(tf.clip_by_value(centre * sizes - half, 0.0, sizes)), tf.int32)
    end = tf.cast(tf.round(tf.clip_by_value(centre * sizes + half, 0.0, sizes)), tf.int32)
    extent = end - start
    area = tf.cast(extent[:, 0] * extent[:, 1], tf.float32)
    return {"top": start[:, 0], "left": start[:, 1], "height": extent[:, 0],
            "width": extent[:, 1], "lam": 1.0 - area / (height * width)}


def _mix_pixels(images: tf.Tensor, lam: tf.Tensor, use_cutmix: tf.Tensor, top: tf.Tensor,
                left: tf.Tensor, box_height: tf.Tensor, box_width: tf.Tensor) -> tf.Tensor:
    height, width = images.shape[1], images.shape[2]
    partners = tf.reverse(images, [0])
    pasted = box_mask(height, width, top, left, box_height, box_width) & _per_image(use_cutmix)
    blended = _per_image(lam) * images + (1.0 - _per_image(lam)) * partners
    return tf.where(pasted, partners, tf.where(_per_image(use_cutmix), images, blended))


_mix_pixels_compiled = tf.function(_mix_pixels, jit_compile=True, autograph=False)


def mix(images: tf.Tensor, labels: tf.Tensor, num_classes: int, mixup_alpha: float,
        cutmix_alpha: float, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixup and/or cutmix of a batch with its reverse (see the module docstring).

    Args:
      images: float [B, H, W, C].
      labels: int [B] class ids, or float [B, num_classes] soft labels.

    Returns:
      (images, soft labels float32 [B, num_classes]).
    """
    count = tf.shape(images)[0]
    seeds = common.split_seed(seed, 4)
    if labels.shape.rank == 1:
        labels = tf.one_hot(labels, num_classes)
    if cutmix_alpha > 0 and mixup_alpha > 0:
        use_cutmix = tf.random.stateless_uniform([count], seeds[0]) < CUTMIX_SHARE
    else:
        use_cutmix = tf.fill([count], cutmix_alpha > 0)
    lam = tf.where(use_cutmix, _beta(seeds[1], count, cutmix_alpha or 1.0),
                   _beta(seeds[2], count, mixup_alpha or 1.0))
    boxes = cutmix_boxes(lam, seeds[3], images.shape[1], images.shape[2])
    lam = tf.where(use_cutmix, boxes["lam"], lam)
    mixed = _mix_pixels_compiled(images, lam, use_cutmix, boxes["top"], boxes["left"],
                                 boxes["height"], boxes["width"])
    return mixed, lam[:, None] * labels + (1.0 - lam[:, None]) * tf.reverse(labels, [0])


def to_unit(images: tf.Tensor, pixel_range: tuple) -> tf.Tensor:
    """Preprocessed pixels → [0, 1], for `pixel_range = (scale, offset)` (per channel ok)."""
    scale, offset = pixel_range
    return (images - tf.constant(offset, tf.float32)) / tf.constant(scale, tf.float32)


def from_unit(images: tf.Tensor, pixel_range: tuple) -> tf.Tensor:
    scale, offset = pixel_range
    return images * tf.constant(scale, tf.float32) + tf.constant(offset, tf.float32)


def _check(name: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise SlimError(f"--{name} must be {bounds} (0 = off); got {value}.")


def check_flags(randaugment: str, random_erasing: float, mixup_alpha: float,
                cutmix_alpha: float) -> None:
    """Checks slim-train's augmentation flags.

    Raises:
      SlimError: naming the bad value and the range.
    """
    randaugment_lib.parse_randaugment(randaugment)
    _check("random_erasing", random_erasing, 0.0, 1.0)
    _check("mixup_alpha", mixup_alpha, 0.0)
    _check("cutmix_alpha", cutmix_alpha, 0.0)


@dataclasses.dataclass(frozen=True)
class BatchAugmentation:
    """The batch augmentations of a run (all off by default).

    Attributes:
      num_classes: the logits' size (for soft labels).
      randaugment: (num_ops, magnitude), or None.
      random_erasing: the probability of erasing a box of an image.
      mixup_alpha, cutmix_alpha: Beta parameters (0: off).
      pixel_range: (scale, offset) with preprocessed = scale * [0, 1] + offset, or
        None for a preprocessing without a fixed range (cifarnet standardizes).
    """
    num_classes: int
    randaugment: Optional[tuple[int, int]] = None
    random_erasing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    pixel_range: Optional[tuple] = None

    def __post_init__(self):
        _check("random_erasing", self.random_erasing, 0.0, 1.0)
        _check("mixup_alpha", self.mixup_alpha, 0.0)
        _check("cutmix_alpha", self.cutmix_alpha, 0.0)
        if self.randaugment and self.pixel_range is None:
            raise SlimError("--randaugment needs a preprocessing with a fixed pixel range "
                            "(inception, vgg, lenet); this one standardizes each image: pass "
                            "--preprocessing_name=inception or leave --randaugment empty.")

    @property
    def active(self) -> bool:
        return bool(self.randaugment or self.random_erasing or self.mixing)

    @property
    def mixing(self) -> bool:
        """Whether labels become soft (mixup or cutmix)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def __call__(self, images: tf.Tensor, labels: tf.Tensor,
                 seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The augmentations of one batch, from one stateless seed."""
        seeds = common.split_seed(common.as_seed(seed), 3)
        if self.randaugment:
            unit = randaugment_lib.randaugment(to_unit(images, self.pixel_range),
                                               *self.randaugment, seeds[0])
            images = from_unit(unit, self.pixel_range)
        if self.random_erasing:
            images = random_erasing(images, self.random_erasing, seeds[1], self.pixel_range)
        if self.mixing:
            images, labels = mix(images, labels, self.num_classes, self.mixup_alpha,
                                 self.cutmix_alpha, seeds[2])
        return images, labels

    def apply(self, dataset: tf.data.Dataset, seed: Sequence[int] | tf.Tensor) -> tf.data.Dataset:
        """`dataset` of (images, labels) batches, augmented; itself when nothing is on."""
        if not self.active:
            return dataset
        base = common.as_seed(seed)

        def augment(index, batch):
            return self(*batch, tf.random.experimental.stateless_fold_in(base, index))
        return dataset.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE,
                                       deterministic=True).prefetch(tf.data.AUTOTUNE)


__all__ = ["BatchAugmentation", "box_mask", "check_flags", "cutmix_boxes", "erasing_boxes",
           "from_unit", "mix", "random_erasing", "to_unit"]
