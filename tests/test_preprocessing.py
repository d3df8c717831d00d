"""Tests of slimcli.preprocessing: exactness against the original, seeds, factory."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.preprocessing import (
    DEFAULTS_NOT_IN_ORIGINAL,
    PREPROCESSING,
    PREPROCESSING_FOR_MODEL,
    get_preprocessing,
    preprocessing_name_for_model,
    resolve_preprocessing_name,
)
from slimcli.preprocessing import common, vgg

DATA = os.path.join(os.path.dirname(__file__), "data", "preprocessing")
NAMES = ["inception", "vgg", "cifarnet", "lenet"]
SIZES = {"inception": 299, "vgg": 224, "cifarnet": 32, "lenet": 28}
# The two fixed test images of the reference: (height, width, ky, kx, kc).
IMAGES = {"a": (333, 500, 3, 7, 50), "b": (64, 48, 5, 11, 80)}


def make_image(which: str) -> np.ndarray:
    """`img[y, x, c] = (x*kx + y*ky + c*kc) % 256` as in the reference JSON."""
    height, width, ky, kx, kc = IMAGES[which]
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    return ((x * kx + y * ky + c * kc) % 256).astype(np.uint8)


@pytest.fixture(scope="module")
def reference_outputs():
    with np.load(os.path.join(DATA, "eval_outputs.npz")) as data:
        return {key: data[key] for key in data.files}


def load_case(name: str, which: str) -> dict:
    with open(os.path.join(DATA, f"{name}_{which}.json")) as f:
        return json.load(f)


def test_reference_inputs_follow_their_formula():
    for which in IMAGES:
        case = load_case("vgg", which)
        assert f"img[y,x,c] = (x*{IMAGES[which][3]} + y*{IMAGES[which][2]} + c*{IMAGES[which][4]})" \
            in case["input_formula"]
        assert list(make_image(which).shape) == case["input_shape"]


@pytest.mark.parametrize("which", sorted(IMAGES))
@pytest.mark.parametrize("name", NAMES)
def test_eval_matches_original(name, which, reference_outputs):
    case = load_case(name, which)
    size = SIZES[name]
    assert (case["output_height"], case["output_width"]) == (size, size)
    expected = reference_outputs[f"{name}_{which}"]
    fn = get_preprocessing(name, is_training=False)
    image = make_image(which)

    eager = fn(tf.constant(image), size, size)
    assert eager.dtype == tf.float32
    assert eager.shape == tuple(case["output_shape"])
    np.testing.assert_allclose(eager.numpy(), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(eager.numpy().reshape(-1)[:8], case["output_first8"], rtol=0, atol=1e-5)

    # Inside tf.data the image shape is unknown: the dynamic-shape path must agree.
    dynamic = tf.function(lambda x: fn(x, size, size),
                          input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    out = dynamic(tf.constant(image))
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-5)


def train_once(name: str, image: np.ndarray, seed, **kwargs) -> np.ndarray:
    fn = get_preprocessing(name, is_training=True)
    return fn(tf.constant(image), SIZES[name], SIZES[name], seed=seed, **kwargs).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_train_output_shape_dtype_and_range(name):
    size = SIZES[name]
    out = train_once(name, make_image("a"), seed=3)
    assert out.shape == (size, size, 3) and out.dtype == np.float32
    assert np.isfinite(out).all()
    if name == "inception":
        assert out.min() >= -1.0 and out.max() <= 1.0
    elif name == "vgg":
        assert out.min() >= -max(vgg.RGB_MEANS) and out.max() <= 255 - min(vgg.RGB_MEANS)
    elif name == "cifarnet":
        assert abs(out.mean()) < 1e-4 and abs(out.std() - 1.0) < 1e-3
    else:
        assert out.min() >= -1.0 and out.max() < 1.0


@pytest.mark.parametrize("name", ["inception", "vgg", "cifarnet"])
def test_train_is_seedable(name):
    image = make_image("a")
    first = train_once(name, image, seed=1)
    np.testing.assert_array_equal(first, train_once(name, image, seed=1))
    np.testing.assert_array_equal(first, train_once(name, image, seed=[1, 0]))
    assert np.abs(first - train_once(name, image, seed=2)).max() > 1e-3
    # Unseeded calls draw fresh seeds.
    assert np.abs(train_once(name, image, None) - train_once(name, image, None)).max() > 1e-3


def test_lenet_train_equals_eval():
    image = make_image("b")
    np.testing.assert_array_equal(train_once("lenet", image, seed=5),
                                  get_preprocessing("lenet")(tf.constant(image), 28, 28).numpy())


def test_inception_slow_mode_draws_every_resize_and_color_case():
    from slimcli.preprocessing import inception
    cases = {int(inception._apply_with_random_case(tf.constant(0), lambda x, c: tf.constant(c),
                                                    num_cases=4, seed=tf.constant([s, 1], tf.int64)))
             for s in range(40)}
    assert cases == {0, 1, 2, 3}
    image = tf.random.stateless_uniform([20, 30, 3], [0, 0])
    for order in range(4):
        out = inception.distort_color(image, order, fast_mode=False, seed=tf.constant([order, 0], tf.int64))
        assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0
        assert float(tf.reduce_max(tf.abs(out - image))) > 1e-3
    fn = tf.function(lambda x, s: get_preprocessing("inception", True)(
        x, 64, 48, seed=s, fast_mode=False, add_image_summaries=False))
    for s in range(4):
        out = fn(tf.constant(make_image("a")), tf.constant([s, 7], tf.int64)).numpy()
        assert out.shape == (64, 48, 3) and -1.0 <= out.min() and out.max() <= 1.0


def test_inception_train_without_crop_keeps_the_whole_image():
    image = np.zeros([40, 60, 3], np.uint8)
    image[:, :30] = 255  # left half white: a crop would change the white share
    out = train_once("inception", image, seed=0, crop_image=False, add_image_summaries=False)
    assert out.shape == (299, 299, 3)
    # Colour distortion keeps black and white apart; half the columns stay brighter.
    column_means = out.mean(axis=(0, 2))
    assert (column_means > column_means.mean()).sum() in range(140, 160)


@pytest.mark.parametrize("is_training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", NAMES)
def test_use_grayscale_gives_one_channel(name, is_training):
    size = SIZES[name]
    fn = get_preprocessing(name, is_training=is_training, use_grayscale=True)
    kwargs = {"seed": 0} if is_training else {}
    out = fn(tf.constant(make_image("b")), size, size, **kwargs).numpy()
    assert out.shape == (size, size, 1) and np.isfinite(out).all()


def test_vgg_grayscale_eval_subtracts_the_gray_mean():
    image = tf.constant(make_image("a"))
    gray = get_preprocessing("vgg", use_grayscale=True)(image, 224, 224)
    rgb = get_preprocessing("vgg")(image, 224, 224) + tf.constant(vgg.RGB_MEANS)
    expected = tf.image.rgb_to_grayscale(rgb) - vgg.GRAY_MEAN
    np.testing.assert_allclose(gray.numpy(), expected.numpy(), atol=1e-3)


def test_vgg_eval_keeps_single_channel_images():
    image = tf.constant(make_image("a")[:, :, :1])
    out = get_preprocessing("vgg")(image, 224, 224)
    assert out.shape == (224, 224, 1)


def test_vgg_smallest_side_rounds_half_to_even_in_float32():
    # 333x500 → 256 x rint(500*256/333 = 384.38) = 384; 64x48 → rint(341.33) x 256.
    assert [int(v) for v in vgg.smallest_size_at_least(333, 500, 256)] == [256, 384]
    assert [int(v) for v in vgg.smallest_size_at_least(64, 48, 256)] == [341, 256]
    # 3x5 → 2 x rint(3.333) = 3; 2x5 → side 3: 3 x rint(7.5) = 8 (half to even).
    assert [int(v) for v in vgg.smallest_size_at_least(3, 5, 2)] == [2, 3]
    assert [int(v) for v in vgg.smallest_size_at_least(2, 5, 3)] == [3, 8]


@pytest.mark.parametrize("channels", [1, 3])
def test_crop_or_pad_equals_tensorflows_resize_with_crop_or_pad(channels):
    rng = np.random.RandomState(channels)
    lean = {}
    for height, width in [(1, 1), (5, 4), (6, 7), (28, 28), (33, 30)]:
        image = tf.constant(rng.randint(0, 256, (height, width, channels)).astype(np.float32))
        for target in [(1, 3), (5, 28), (6, 31), (28, 28)]:
            # Traced with an unknown size, as in the input pipeline.
            fn = lean.setdefault(target, tf.function(
                lambda x, t=target: common.crop_or_pad(x, *t),
                input_signature=[tf.TensorSpec([None, None, channels])]))
            ours = fn(image)
            expected = tf.image.resize_with_crop_or_pad(image, *target)
            assert ours.shape == expected.shape == (*target, channels)
            np.testing.assert_array_equal(ours.numpy(), expected.numpy())


def test_cifarnet_batch_training_applies_each_images_draws_as_the_per_image_ops():
    from slimcli.preprocessing import cifarnet
    rng = np.random.RandomState(3)
    images = tf.constant(rng.randint(0, 256, (16, 30, 30, 3)).astype(np.uint8))
    draws = cifarnet.distortion_draws(tf.constant([4, 5], tf.int64), 16, tf.constant([11, 11]))
    batch = cifarnet.distort_batch(images, draws, 28, 28).numpy()
    for i in range(16):
        image = tf.pad(tf.cast(images[i], tf.float32), [[4, 4], [4, 4], [0, 0]])
        y, x = draws["offsets"][i].numpy()
        image = tf.image.crop_to_bounding_box(image, y, x, 28, 28)
        if draws["flip"][i]:
            image = tf.image.flip_left_right(image)
        image = tf.image.adjust_brightness(image, draws["brightness"][i])
        image = tf.image.adjust_contrast(image, draws["contrast"][i])
        np.testing.assert_allclose(batch[i], tf.image.per_image_standardization(image), atol=2e-4)
    many = cifarnet.distortion_draws(tf.constant([1, 2], tf.int64), 4000, tf.constant([9, 3]))
    offsets = many["offsets"].numpy()
    assert set(offsets[:, 0]) == set(range(9)) and set(offsets[:, 1]) == set(range(3))
    assert 0.45 < many["flip"].numpy().mean() < 0.55
    for name, (low, high) in (("brightness", (-63, 63)), ("contrast", (0.2, 1.8))):
        values = many[name].numpy()
        assert low <= values.min() < low + 0.1 and high - 0.1 < values.max() < high


@pytest.mark.parametrize("is_training", [False, True])
def test_cifarnet_batched_preprocessing_matches_one_image_at_a_time(is_training):
    fn = get_preprocessing("cifarnet", is_training=is_training)
    images = tf.constant(np.random.RandomState(0).randint(0, 256, (6, 36, 34, 3)), tf.uint8)
    batch = fn.batched()(images, 32, 32, **({"seed": [1, 2]} if is_training else {}))
    assert batch.shape == (6, 32, 32, 3) and batch.dtype == tf.float32
    if is_training:  # the distributions of one image at a time: standardized, and varied
        np.testing.assert_allclose(tf.reduce_mean(batch, [1, 2, 3]), 0, atol=1e-4)
        np.testing.assert_allclose(tf.math.reduce_std(batch, [1, 2, 3]), 1, atol=1e-3)
        assert np.abs(batch[0] - fn(images[0], 32, 32, seed=[1, 2])).max() > 1e-3
    else:  # evaluation: exactly the per-image pixels
        for i in range(6):
            np.testing.assert_array_equal(batch[i], fn(images[i], 32, 32))
    assert get_preprocessing("inception", is_training=is_training).batched() is None


def test_crop_larger_than_image_fails_clearly():
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the 300x300 crop"):
        get_preprocessing("vgg")(tf.constant(make_image("a")), 300, 300)


@pytest.mark.parametrize("size", [0, -3, 2.5, None])
def test_bad_output_size_is_a_slim_error(size):
    with pytest.raises(SlimError, match="output_height"):
        get_preprocessing("inception")(tf.constant(make_image("b")), size, 10)


def test_bad_seed_is_a_slim_error():
    with pytest.raises(SlimError, match="seed=\\[1, 2, 3\\]"):
        common.as_seed([1, 2, 3])


def read_summary_tags(logdir: str) -> list[str]:
    from tensorflow.core.util import event_pb2
    tags = []
    for path in glob.glob(os.path.join(logdir, "events.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            tags += [value.tag for value in event.summary.value]
    return tags


@pytest.mark.parametrize("enabled", [True, False], ids=["summaries", "no_summaries"])
def test_inception_train_writes_the_original_image_summaries(tmp_path, enabled):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(step=0):
        train_once("inception", make_image("b"), seed=0, add_image_summaries=enabled)
    writer.close()
    expected = ["image_with_bounding_boxes", "images_with_distorted_bounding_box",
                "cropped_resized_image", "final_distorted_image"]
    assert read_summary_tags(str(tmp_path)) == (expected if enabled else [])


def test_factory_map_matches_the_original():
    with open(os.path.join(DATA, "factory_map.json")) as f:
        original = json.load(f)
    mapping = original["preprocessing_fn_map (name -> <x>_preprocessing module)"]
    for name, target in mapping.items():
        assert resolve_preprocessing_name(name) == target, name
    for model, target in original["nets_factory model name -> preprocessing"].items():
        if model in ("i3d", "s3dg"):  # video nets: out of scope
            continue
        if target.startswith("NOT IN MAP"):
            assert model in DEFAULTS_NOT_IN_ORIGINAL
        else:
            assert PREPROCESSING_FOR_MODEL[model] == target, model
    assert set(PREPROCESSING_FOR_MODEL) == set(original["nets_factory model name -> preprocessing"]) - {
        "i3d", "s3dg"}


@pytest.mark.parametrize("model, expected", [
    ("mobilenet_v1_075", "inception"), ("mobilenet_v1_050", "inception"),
    ("mobilenet_v1_025", "inception"), ("nasnet_cifar", "cifarnet"),
    ("alexnet_v2", "vgg"), ("overfeat", "vgg")])
def test_defaults_for_models_missing_from_the_original_map(model, expected):
    assert preprocessing_name_for_model(model) == expected
    assert get_preprocessing(model).name == expected


def test_registry_holds_the_four_functions():
    assert PREPROCESSING.names() == sorted(NAMES)
    assert set(PREPROCESSING_FOR_MODEL.values()) == set(NAMES)


def test_unknown_preprocessing_lists_names_and_closest_match():
    with pytest.raises(SlimError) as info:
        get_preprocessing("inception_v5")
    message = str(info.value)
    assert "'inception_v5'" in message and "Did you mean 'inception_v" in message
    assert "vgg" in message and "resnet_v1_50" in message and "--preprocessing_name" in message


def test_unknown_model_lists_models():
    with pytest.raises(SlimError, match="unknown model --model_name='resnet_v1_5'.*Did you mean"):
        preprocessing_name_for_model("resnet_v1_5")


def test_every_net_of_the_registry_names_the_tables_preprocessing():
    from slimcli.nets import NETS_REGISTRY
    specs = dict(NETS_REGISTRY.items())
    assert sorted(specs) == sorted(PREPROCESSING_FOR_MODEL)
    for name, spec in specs.items():
        assert spec.preprocessing == PREPROCESSING_FOR_MODEL[name], name


def test_inception_in_two_parts_equals_the_per_image_training():
    from slimcli.preprocessing import inception
    fn = get_preprocessing("inception", is_training=True)
    per_image, per_batch = fn.split()
    rng = np.random.RandomState(4)
    for i in range(6):
        image = tf.constant(rng.randint(0, 256, (20 + 7 * i, 50 - 3 * i, 3)).astype(np.uint8))
        seed = tf.constant([i, 3], tf.int64)
        part, draws = per_image(image, 24, 16, seed=seed)
        ours = per_batch(part[tf.newaxis], {k: v[tf.newaxis] for k, v in draws.items()})[0]
        expected = fn(image, 24, 16, seed=seed, add_image_summaries=False)
        np.testing.assert_allclose(ours.numpy(), expected.numpy(), atol=2e-6)
    # Saturation in closed form, also on values a brightness shift put outside [0, 1].
    pixels = tf.random.stateless_uniform([4, 6, 5, 3], [1, 2], -0.2, 1.2)
    factors = tf.constant([0.0, 0.5, 1.3, 3.0])
    expected = tf.stack([tf.image.adjust_saturation(pixels[i], factors[i]) for i in range(4)])
    np.testing.assert_allclose(inception.adjust_saturation_batch(pixels, factors).numpy(),
                               expected.numpy(), atol=2e-6)
    assert fn.split() is not None and get_preprocessing("inception").split() is None
    assert get_preprocessing("vgg", is_training=True).split() is None


def test_min_crop_area_narrows_inceptions_training_crops():
    from slimcli.errors import SlimError
    from slimcli.preprocessing import inception
    image = tf.constant(make_image("a"))
    fn = get_preprocessing("inception", is_training=True)
    assert fn.with_min_crop_area(0.05) is fn  # the original's range: the same preprocessing
    gentle = fn.with_min_crop_area(0.9)
    per_image, per_batch = gentle.split()
    for s in range(3):
        seed = tf.constant([s, 1], tf.int64)
        ours = gentle(image, 32, 32, seed=seed, add_image_summaries=False).numpy()
        expected = inception.preprocess_for_train(image, 32, 32, seed=seed, area_range=(0.9, 1.0),
                                                  add_image_summaries=False).numpy()
        np.testing.assert_array_equal(ours, expected)
        assert np.abs(ours - fn(image, 32, 32, seed=seed, add_image_summaries=False)).max() > 0
        part, draws = per_image(image, 32, 32, seed=seed)
        two_parts = per_batch(part[tf.newaxis], {k: v[tf.newaxis] for k, v in draws.items()})
        np.testing.assert_allclose(two_parts[0].numpy(), ours, atol=2e-6)
    with pytest.raises(SlimError, match="only inception's does"):
        get_preprocessing("vgg", is_training=True).with_min_crop_area(0.3)
    with pytest.raises(SlimError, match=r"--min_crop_area must be in \(0, 1\]"):
        fn.with_min_crop_area(0.0)
