"""Tests of the batch augmentations (slimcli.preprocessing.augment, randaugment): what each
does to a batch, on small known inputs and statistically over many tiny images."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.preprocessing import augment, get_preprocessing, randaugment
from slimcli.preprocessing.augment import BatchAugmentation

SEED = tf.constant([3, 4], tf.int64)


def two_tone(count: int, size: int = 8) -> tuple[tf.Tensor, tf.Tensor]:
    """`count` images, image i all `i % 2` (0 or 1), label i % 2: image i's partner in the
    reversed batch has the other tone when count is even."""
    tones = np.arange(count) % 2
    images = np.broadcast_to(tones[:, None, None, None], (count, size, size, 3))
    return tf.constant(images, tf.float32), tf.constant(tones, tf.int64)


@pytest.mark.parametrize("mixup, cutmix", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixing_conserves_label_mass_and_labels_follow_the_pixels(mixup, cutmix):
    images, labels = two_tone(400)
    mixed, soft = augment.mix(images, labels, 2, mixup, cutmix, SEED)
    mixed, soft = mixed.numpy(), soft.numpy()
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)
    assert (soft >= 0).all()
    # Each image's mean tone is its label's weight of class 1, pixel for pixel in cutmix.
    np.testing.assert_allclose(mixed.mean((1, 2, 3)), soft[:, 1], atol=1e-5)
    cut = (mixed == np.round(mixed)).all((1, 2, 3)) & (np.abs(soft[:, 1] - 0.5) < 0.5)
    blended = ~(mixed == np.round(mixed)).all((1, 2, 3))
    if not mixup:
        assert not blended.any()  # cutmix only: pixels are copied, never blended
    if not cutmix:
        assert not cut.any()
        # Mixup: every pixel of an image is the same blend.
        assert np.ptp(mixed, axis=(1, 2, 3)).max() < 1e-6
    if mixup and cutmix:  # about half and half (400 images: 5 sigma is 50)
        assert abs(blended.sum() - 200) < 50
    lam = np.where(labels.numpy() == 1, soft[:, 1], soft[:, 0])
    if not cutmix:  # Beta(a, a) is symmetric about 0.5 (cutmix's clipped boxes raise lam)
        assert abs(lam.mean() - 0.5) < 0.05


def test_cutmix_boxes_lie_inside_the_image_and_give_lam():
    lam = tf.random.stateless_uniform([500], [1, 1])
    boxes = {k: v.numpy() for k, v in augment.cutmix_boxes(lam, SEED, 12, 20).items()}
    assert (boxes["top"] >= 0).all() and (boxes["left"] >= 0).all()
    assert (boxes["top"] + boxes["height"] <= 12).all()
    assert (boxes["left"] + boxes["width"] <= 20).all()
    np.testing.assert_allclose(boxes["lam"], 1 - boxes["height"] * boxes["width"] / 240.0,
                               atol=1e-6)
    # Clipping only shrinks a box: lam never falls below the one drawn (up to rounding).
    assert (boxes["lam"] >= lam.numpy() - 2.5 * (12 + 20) / 240.0).all()
    mask = augment.box_mask(12, 20, *(tf.constant(boxes[k]) for k in
                                      ("top", "left", "height", "width"))).numpy()
    np.testing.assert_array_equal(mask.sum((1, 2, 3)), boxes["height"] * boxes["width"])


def test_mixing_a_small_known_batch():
    images = tf.constant([[[[0.0]]], [[[1.0]]]])  # two 1x1 one-channel images
    mixed, soft = augment.mix(images, tf.constant([0, 1]), 3, 0.5, 0.0, SEED)
    lam = soft.numpy()[0, 0]
    np.testing.assert_allclose(soft.numpy()[0], [lam, 1 - lam, 0.0], atol=1e-6)
    np.testing.assert_allclose(mixed.numpy()[0, 0, 0, 0], 1 - lam, atol=1e-6)


def test_random_erasing_probability_boxes_and_noise():
    count, size = 2000, 10
    boxes = {k: v.numpy() if hasattr(v, "numpy") else v
             for k, v in augment.erasing_boxes(SEED, count, size, size, 0.25).items()}
    share = boxes["erase"].mean()
    assert abs(share - 0.25) < 5 * np.sqrt(0.25 * 0.75 / count)
    for start, extent in (("top", "height"), ("left", "width")):
        assert (boxes[start] >= 0).all() and (boxes[start] + boxes[extent] <= size).all()
    area = boxes["height"] * boxes["width"] / size**2
    assert area.min() >= 0.01 and area.max() <= 0.5  # 2-33% of the area, rounded to pixels
    images = tf.fill([count, size, size, 3], -0.25)
    erased = augment.random_erasing(images, 0.25, SEED, pixel_range=(2.0, -1.0)).numpy()
    changed = (erased != -0.25).any(3)
    # Erased: exactly each drawn box, filled with noise over the pixel range [-1, 1].
    np.testing.assert_array_equal(changed.any((1, 2)), boxes["erase"])
    assert erased.min() >= -1.0 and erased.max() <= 1.0 and erased[changed].std() > 0.4
    np.testing.assert_array_equal(changed.sum((1, 2)),
                                  boxes["erase"] * boxes["height"] * boxes["width"])


def test_randaugment_draws_every_operation_about_equally():
    layer = randaugment.draws(SEED, 14000, 9)
    counts = np.bincount(layer["ops"].numpy(), minlength=len(randaugment.OPS))
    assert np.abs(counts - 1000).max() < 5 * np.sqrt(1000)
    assert abs(float(tf.reduce_mean(layer["signs"]))) < 0.05
    np.testing.assert_allclose(layer["fractions"].numpy(), 0.9)


def one_op(name: str, images: tf.Tensor, magnitude: int = 10, sign: float = 1.0) -> np.ndarray:
    count = images.shape[0]
    layer = {"ops": tf.fill([count], randaugment.OPS.index(name)),
             "signs": tf.fill([count], sign),
             "fractions": tf.fill([count], magnitude / 10.0)}
    return randaugment.apply_layer(images, layer).numpy()


def test_randaugment_operations_on_known_images():
    ramp = tf.reshape(tf.range(0, 48, dtype=tf.float32) / 47.0, [1, 4, 4, 3])
    np.testing.assert_array_equal(one_op("identity", ramp), ramp.numpy())
    np.testing.assert_allclose(one_op("solarize", ramp), 1.0 - ramp.numpy(), atol=1e-6)
    posterized = np.round(one_op("posterize", ramp) * 255).astype(int)
    assert (posterized % 16 == 0).all()  # 4 bits kept at magnitude 10
    dim = 0.25 + 0.5 * ramp
    stretched = one_op("auto_contrast", dim)
    assert stretched[..., 0].min() == 0.0 and stretched[..., 0].max() == pytest.approx(1.0)
    np.testing.assert_allclose(one_op("brightness", dim, sign=-1.0), 0.1 * dim.numpy(),
                               atol=1e-6)
    gray = one_op("color", ramp, sign=-1.0)  # factor 0.1: nearly grey
    assert np.ptp(gray, axis=-1).max() < 0.1 * np.ptp(ramp.numpy(), axis=-1).max() + 1e-6
    two_levels = tf.constant([0.2] * 512 + [0.4] * 512, shape=[1, 32, 32, 1])
    equalized = np.round(one_op("equalize", two_levels) * 255).astype(int)
    assert sorted(set(equalized.ravel().tolist())) == [0, 255]  # PIL's two-level result
    few = tf.constant([0.2] * 8 + [0.4] * 8, shape=[1, 4, 4, 1])  # too few pixels: kept
    np.testing.assert_allclose(one_op("equalize", few), np.round(few.numpy() * 255) / 255)
    # A translation by 45% of 20 px = 9 px: column c shows column c + 9, grey beyond.
    columns = tf.tile(tf.reshape(tf.range(20, dtype=tf.float32) / 19.0, [1, 1, 20, 1]),
                      [1, 3, 1, 1])
    moved = one_op("translate_x", columns)
    np.testing.assert_allclose(moved[0, 1, :11, 0], columns.numpy()[0, 1, 9:, 0], atol=1e-6)
    np.testing.assert_allclose(moved[0, 1, 11:, 0], randaugment.FILL)
    # A shear and a rotation keep the centre pixel of an odd-sized image.
    odd = tf.random.stateless_uniform([1, 5, 5, 3], [2, 2])
    for name in ("rotate", "shear_x", "shear_y"):
        np.testing.assert_allclose(one_op(name, odd)[0, 2, 2], odd.numpy()[0, 2, 2], atol=1e-5)


def test_randaugment_is_seeded_and_keeps_the_range():
    images = tf.random.stateless_uniform([16, 12, 12, 3], [5, 6])
    first = randaugment.randaugment(images, 2, 9, SEED).numpy()
    np.testing.assert_array_equal(first, randaugment.randaugment(images, 2, 9, SEED).numpy())
    other = randaugment.randaugment(images, 2, 9, tf.constant([3, 5], tf.int64)).numpy()
    assert np.abs(first - other).max() > 0.1
    assert first.min() >= 0.0 and first.max() <= 1.0
    changed = (np.abs(first - images.numpy()) > 1e-6).any((1, 2, 3))
    assert changed.mean() > 0.5  # 2 layers of 14 operations, 1 of them the identity


def test_batch_augmentation_pipeline_is_reproducible_and_maps_the_range():
    images, labels = two_tone(8, size=4)
    images = images * 2.0 - 1.0  # as inception preprocessing gives: [-1, 1]
    data = tf.data.Dataset.from_tensors((images, labels)).repeat(2)
    fn = get_preprocessing("inception", is_training=True)
    augmentation = BatchAugmentation(2, (1, 5), 0.5, 0.8, 1.0, fn.pixel_range())
    augmented = augmentation.apply(data, [1, 2])
    runs = [[(x.numpy(), y.numpy()) for x, y in augmented] for _ in range(2)]  # two passes
    for (x0, y0), (x1, y1) in zip(*runs):
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(y0, y1)
        assert y0.shape == (8, 2) and np.allclose(y0.sum(1), 1.0)
        assert x0.min() >= -1.0 - 1e-6 and x0.max() <= 1.0 + 1e-6
    assert np.abs(runs[0][0][0] - runs[0][1][0]).max() > 0  # each batch its own draws
    assert BatchAugmentation(2).apply(data, [1, 2]) is data  # all off: the stream as it is


def test_bad_augmentation_settings_are_slim_errors():
    for text in ("2", "a,b", "2,11", "1,2,3"):
        with pytest.raises(SlimError, match="randaugment"):
            augment.check_flags(text, 0.0, 0.0, 0.0)
    assert randaugment.parse_randaugment("") is None
    assert randaugment.parse_randaugment(" 2,9 ") == (2, 9)
    with pytest.raises(SlimError, match=r"--random_erasing must be in \[0.0, 1.0\]"):
        augment.check_flags("", 1.5, 0.0, 0.0)
    with pytest.raises(SlimError, match="--mixup_alpha must be >= 0.0"):
        augment.check_flags("", 0.0, -1.0, 0.0)
    with pytest.raises(SlimError, match="needs a preprocessing with a fixed pixel range"):
        BatchAugmentation(10, (2, 9), pixel_range=get_preprocessing("cifarnet").pixel_range())
