"""Tests of slimcli.input (records, stream, checks, pipeline) on tiny TFRecords written here."""

from __future__ import annotations

import collections
import os

import numpy as np
import pytest
import tensorflow as tf

from slimcli.distribute import mirrored_strategy
from slimcli.errors import SlimError
from slimcli.input import stream
from slimcli.input.checks import PipelineStats
from slimcli.input.pipeline import build_input_pipeline
from slimcli.input.records import decode_image, parse_example
from slimcli.preprocessing import get_preprocessing
from slimcli.train_data import synthetic_dataset

NAMES = ["inception", "vgg", "cifarnet", "lenet"]


def pattern_image(label: int, height: int = 24, width: int = 30) -> np.ndarray:
    """A small image whose pixels depend on the label."""
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(3), indexing="ij")
    return ((x * 5 + y * 3 + c * 60 + label * 17) % 256).astype(np.uint8)


def make_example(image: np.ndarray | None = None, image_format: bytes = b"png",
                 label: int | None = 0, encoded: bytes | None = None) -> bytes:
    """A slim-schema tf.train.Example; `encoded` overrides the image bytes."""
    if encoded is None:
        if image_format == b"png":
            encoded = tf.io.encode_png(image).numpy()
        elif image_format == b"jpeg":
            encoded = tf.io.encode_jpeg(image, quality=95).numpy()
        else:
            encoded = image.tobytes()

    def feature(values):
        if isinstance(values[0], bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    features = {"image/encoded": feature([encoded]), "image/format": feature([image_format])}
    if image is not None:
        features["image/height"] = feature([image.shape[0]])
        features["image/width"] = feature([image.shape[1]])
    if label is not None:
        features["image/class/label"] = feature([label])
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def write_records(path: str, records: list[bytes]) -> str:
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    return path


def write_dataset(directory, num_files: int, per_file: int, label_base: int = 0,
                  formats=(b"png", b"jpeg")) -> tuple[list[str], list[int]]:
    """Files of PNG/JPEG records; each label is unique and serves as the record id."""
    files, labels = [], []
    for f in range(num_files):
        records = []
        for i in range(per_file):
            label = label_base + f * 100 + i
            image = pattern_image(label, height=28 + i % 5, width=30 + f)
            records.append(make_example(image, formats[(f + i) % len(formats)], label))
            labels.append(label)
        files.append(write_records(os.path.join(directory, f"shard-{f:05d}.tfrecord"), records))
    return files, labels


def collect(dataset) -> tuple[list[np.ndarray], list[int], list[int]]:
    images, labels, sizes = [], [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels += batch_labels.numpy().tolist()
        sizes.append(int(batch_labels.shape[0]))
    return images, labels, sizes


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory):
    """3 files with 9, 9, 9 records = 27 records (labels 0-8, 100-108, 200-208)."""
    return write_dataset(str(tmp_path_factory.mktemp("records")), num_files=3, per_file=9)


# ----------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("image_format", [b"png", b"jpeg", b"raw", b""])
def test_parse_and_decode_each_format(image_format):
    image = pattern_image(7)
    if image_format == b"":
        record = make_example(image, b"", 7, encoded=tf.io.encode_png(image).numpy())
    else:
        record = make_example(image, image_format, 7)
    features = parse_example(tf.constant(record))
    assert int(features["image/class/label"]) == 7
    assert (int(features["image/height"]), int(features["image/width"])) == image.shape[:2]
    decoded = decode_image(features).numpy()
    if image_format == b"jpeg":
        expected = tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=95)).numpy()
        np.testing.assert_array_equal(decoded, expected)
    else:
        np.testing.assert_array_equal(decoded, image)


def test_decode_to_one_channel():
    features = parse_example(tf.constant(make_example(pattern_image(1), b"png", 1)))
    assert decode_image(features, channels=1).shape == (24, 30, 1)


def test_missing_fields_get_defaults():
    features = parse_example(tf.constant(make_example(None, b"png", None, encoded=b"x")))
    assert int(features["image/class/label"]) == -1
    assert int(features["image/height"]) == 0


# ----------------------------------------------------------------------------- evaluation

def decoded_records(files: list[str]) -> dict[int, np.ndarray]:
    """label → decoded image of every record, decoded outside the pipeline."""
    images = {}
    for record in tf.data.TFRecordDataset(files):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        label = features["image/class/label"].int64_list.value[0]
        images[label] = tf.io.decode_image(features["image/encoded"].bytes_list.value[0]).numpy()
    return images


@pytest.mark.parametrize("name", NAMES)
def test_eval_epoch_sees_every_record_once_preprocessed_exactly(name, dataset_files):
    files, labels = dataset_files
    fn = get_preprocessing(name, is_training=False)
    dataset = build_input_pipeline(files, fn, batch_size=4, image_size=32, is_training=False)
    images, seen, sizes = collect(dataset)
    assert sorted(seen) == sorted(labels)           # nothing dropped, nothing twice
    assert sizes == [4] * 6 + [3]                   # 27 = 6 * 4 + 3: exact final batch
    assert all(batch.shape[1:] == (32, 32, 3) and batch.dtype == np.float32 for batch in images)
    originals = decoded_records(files)              # PNG and JPEG records
    for image, label in zip(np.concatenate(images), seen):
        np.testing.assert_array_equal(image, fn(tf.constant(originals[label]), 32, 32).numpy())
    assert collect(dataset)[1] == seen              # eval order is deterministic


def test_labels_offset_is_subtracted(tmp_path):
    files, labels = write_dataset(str(tmp_path), num_files=2, per_file=5, label_base=1)
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 8, 28, is_training=False,
                                   labels_offset=1, cache=True)
    assert sorted(collect(dataset)[1]) == sorted(label - 1 for label in labels)
    assert sorted(collect(dataset)[1]) == sorted(label - 1 for label in labels)  # from the cache


def test_label_below_offset_fails_with_file_and_index(tmp_path):
    files = [write_records(str(tmp_path / "zero.tfrecord"),
                           [make_example(pattern_image(0), b"png", 5), make_example(pattern_image(0), b"png", 0)])]
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 2, 28, is_training=False,
                                   labels_offset=1)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"record 1 of .*zero.tfrecord has image/class/label=0, below labels_offset=1"):
        collect(dataset)


@pytest.mark.parametrize("is_training", [False, True], ids=["eval", "train_unseeded"])
@pytest.mark.parametrize("num_files, num_pipelines", [(4, 2), (3, 4)],
                         ids=["shard_files", "shard_records"])
def test_sharding_across_input_pipelines_covers_every_record_once(tmp_path, num_files,
                                                                  num_pipelines, is_training):
    files, labels = write_dataset(str(tmp_path), num_files=num_files, per_file=4)
    seen = []
    for pipeline in range(num_pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=num_pipelines,
                                             input_pipeline_id=pipeline,
                                             num_replicas_in_sync=num_pipelines)
        dataset = build_input_pipeline(files, get_preprocessing("lenet", is_training), 5, 28,
                                       is_training=is_training, repeat=False,
                                       drop_remainder=False, input_context=context)
        shard = collect(dataset)[1]
        assert 0 < len(shard) < len(labels)
        seen += shard
    assert sorted(seen) == sorted(labels)


# ----------------------------------------------------------------------------- training

@pytest.mark.parametrize("name", NAMES)
def test_training_batches(name, dataset_files):
    files, labels = dataset_files
    dataset = build_input_pipeline(files, get_preprocessing(name, is_training=True), 4, 32,
                                   is_training=True, labels_offset=0, seed=3, shuffle_buffer=16)
    assert dataset.element_spec[0].shape == (4, 32, 32, 3)  # drop_remainder: static batch
    assert dataset.element_spec[1].dtype == tf.int64
    images, seen, _ = collect(dataset.take(10))  # 40 > 27 records: it repeats
    assert set(seen) <= set(labels) and len(set(seen)) > 20
    stacked = np.concatenate(images)
    assert np.isfinite(stacked).all()
    if name == "inception":
        assert stacked.min() >= -1.0 and stacked.max() <= 1.0


def test_training_is_deterministic_with_a_seed(dataset_files):
    files, _ = dataset_files
    fn = get_preprocessing("inception", is_training=True)

    def first_batches(seed):
        dataset = build_input_pipeline(files, fn, 4, 24, is_training=True, seed=seed)
        return collect(dataset.take(3))

    images_a, labels_a, _ = first_batches(7)
    images_b, labels_b, _ = first_batches(7)
    assert labels_a == labels_b
    np.testing.assert_array_equal(np.stack(images_a), np.stack(images_b))
    images_c, labels_c, _ = first_batches(8)
    assert labels_a != labels_c or np.abs(np.stack(images_a) - np.stack(images_c)).max() > 1e-3


def test_training_shuffles_records(dataset_files):
    files, labels = dataset_files
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 27, 28, is_training=True,
                                   seed=0, repeat=False, drop_remainder=False)
    seen = collect(dataset)[1]
    assert sorted(seen) == sorted(labels) and seen != sorted(labels)


# ----------------------------------------------------------------------------- corrupt data

CORRUPTIONS = {
    "garbage_image": lambda: make_example(None, b"jpeg", 1, encoded=b"not an image"),
    "truncated_jpeg": lambda: make_example(
        None, b"jpeg", 1, encoded=tf.io.encode_jpeg(pattern_image(1, 64, 64)).numpy()[:300]),
    "png_as_garbage": lambda: make_example(None, b"png", 1, encoded=b"\x89PNG\r\n\x1a\nxx"),
    "not_an_example": lambda: b"\xff\xff\xff\xff definitely not a proto",
    "missing_label": lambda: make_example(pattern_image(1), b"png", None),
}


def corrupt_files(directory: str, corruption: str) -> tuple[list[str], list[int]]:
    """Two good files and one with a corrupt record at index 2 of 5."""
    files, labels = write_dataset(directory, num_files=2, per_file=4)
    records, bad_labels = [], []
    for i in range(5):
        if i == 2:
            records.append(CORRUPTIONS[corruption]())
        else:
            records.append(make_example(pattern_image(500 + i), b"png", 500 + i))
            bad_labels.append(500 + i)
    files.insert(1, write_records(os.path.join(directory, "bad.tfrecord"), records))
    return files, labels + bad_labels


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_record_fails_with_file_and_index(tmp_path, corruption):
    files, _ = corrupt_files(str(tmp_path), corruption)
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 3, 28, is_training=False)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"corrupt record 2 of .*bad\.tfrecord: .*skip_corrupt=True"):
        collect(dataset)


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_record_is_skipped_and_counted(tmp_path, corruption):
    files, labels = corrupt_files(str(tmp_path), corruption)
    stats = PipelineStats()
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 3, 28, is_training=False,
                                   skip_corrupt=True, stats=stats)
    assert sorted(collect(dataset)[1]) == sorted(labels)
    assert stats.skipped == 1
    assert stats.examples[0].file.endswith("bad.tfrecord") and stats.examples[0].index == 2


def truncate_or_flip(path: str, how: str) -> None:
    data = bytearray(open(path, "rb").read())
    if how == "truncated":
        data = data[:-40]
    else:
        data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "crc_mismatch"])
@pytest.mark.parametrize("skip", [False, True], ids=["fail", "skip"])
def test_damaged_tfrecord_file(tmp_path, how, skip):
    files, labels = write_dataset(str(tmp_path), num_files=3, per_file=4)
    truncate_or_flip(files[1], how)
    stats = PipelineStats()
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 5, 28, is_training=False,
                                   skip_corrupt=skip, stats=stats)
    if not skip:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"corrupt record \d of .*shard-00001.tfrecord: truncated or corrupt"):
            collect(dataset)
        return
    seen = collect(dataset)[1]
    good = [label for label in labels if label // 100 != 1]
    assert set(good) <= set(seen) and len(seen) == len(set(seen)) < len(labels)
    assert stats.skipped == 1 and "cannot be read" in stats.examples[0].reason


def test_many_corrupt_records_in_a_row_are_all_counted(tmp_path):
    records = [make_example(None, b"jpeg", 1, encoded=b"bad") for _ in range(6)]
    records.append(make_example(pattern_image(9), b"png", 9))
    files = [write_records(str(tmp_path / "mostly_bad.tfrecord"), records + records[:3])]
    stats = PipelineStats()
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 4, 28, is_training=False,
                                   skip_corrupt=True, stats=stats)
    assert collect(dataset)[1] == [9]
    assert stats.skipped == 9
    assert [record.index for record in stats.examples] == [0, 1, 2, 3, 4, 5, 7, 8, 9]


def spread_corruption(path: str, count: int, every: int) -> tuple[list[str], list[int], list[int]]:
    """One file of `count` records; every `every`-th (from index 5) is corrupt, the
    kinds of CORRUPTIONS in turn. Returns the files, the good labels in file order
    and the corrupt records' indices."""
    kinds = sorted(CORRUPTIONS)
    records, good, bad = [], [], []
    for i in range(count):
        if i % every == 5:
            records.append(CORRUPTIONS[kinds[len(bad) % len(kinds)]]())
            bad.append(i)
        else:
            records.append(make_example(pattern_image(i % 251, 8, 8), b"png", i))
            good.append(i)
    return [write_records(path, records)], good, bad


@pytest.mark.parametrize("block, heartbeat_every", [(4, 3), (None, None)],
                         ids=["small_blocks", "default_blocks"])
def test_corrupt_records_in_many_blocks_lose_nothing_else(tmp_path, monkeypatch, block,
                                                          heartbeat_every):
    """Records are decoded in blocks; a corrupt one sends its block to the
    record-by-record path: each good record still comes once, in order, and
    each corrupt one is counted once; training (with empty heartbeat blocks) too."""
    if block:
        monkeypatch.setattr(stream, "_DECODE_BLOCK", block)
        monkeypatch.setattr(stream, "_HEARTBEAT_EVERY", heartbeat_every)
        count, every = 61, 7
    else:
        blocks = stream._DECODE_BLOCK * stream._HEARTBEAT_EVERY
        count, every = blocks + 3 * stream._DECODE_BLOCK, 97
    files, good, bad = spread_corruption(str(tmp_path / "spread.tfrecord"), count, every)
    stats = PipelineStats(max_log_lines=0)
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 10, 8, is_training=False,
                                   skip_corrupt=True, stats=stats)
    _, labels, sizes = collect(dataset)
    assert labels == good
    assert sizes == [10] * (len(good) // 10) + ([len(good) % 10] if len(good) % 10 else [])
    assert stats.skipped == len(bad) and [r.index for r in stats.examples] == bad
    failing = build_input_pipeline(files, get_preprocessing("lenet"), 10, 8, is_training=False)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"corrupt record {bad[0]} of .*spread\.tfrecord"):
        collect(failing)
    training = build_input_pipeline(files, get_preprocessing("lenet", True), 16, 8,
                                    is_training=True, seed=0, skip_corrupt=True,
                                    stats=PipelineStats(max_log_lines=0))
    seen = [label for batch in training.take(2 * count // 16) for label in batch[1].numpy()]
    assert len(seen) == 2 * count // 16 * 16 and set(seen) <= set(good)


def test_two_iterators_of_one_dataset_keep_their_blocks_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "_DECODE_BLOCK", 4)
    monkeypatch.setattr(stream, "_HEARTBEAT_EVERY", 3)
    files, good, _ = spread_corruption(str(tmp_path / "spread.tfrecord"), 45, 6)
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 5, 8, is_training=False,
                                   skip_corrupt=True, stats=PipelineStats(max_log_lines=0))
    first, second = iter(dataset), iter(dataset)
    seen = {0: [], 1: []}
    for batches in zip(first, second):  # in turns: both iterators' blocks wait in the table
        for which, (_, labels) in enumerate(batches):
            seen[which] += labels.numpy().tolist()
    assert seen[0] == seen[1] == good


def test_all_corrupt_data_fails_instead_of_looping_forever(tmp_path):
    files = [write_records(str(tmp_path / "junk.tfrecord"), [b"junk"] * 50)]
    dataset = build_input_pipeline(files, get_preprocessing("lenet", True), 4, 28,
                                   is_training=True, skip_corrupt=True, stats=PipelineStats(max_log_lines=0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="1000 or more records in a row were corrupt"):
        collect(dataset.take(1))


# ----------------------------------------------------------------------------- arguments

def test_missing_file_is_a_slim_error(tmp_path):
    with pytest.raises(SlimError, match="TFRecord file not found: .*nope.tfrecord"):
        build_input_pipeline([str(tmp_path / "nope.tfrecord")], get_preprocessing("lenet"), 2, 28,
                             is_training=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size=0"),
    ({"image_size": -1}, "image_size=-1"),
    ({"labels_offset": -1}, "labels_offset=-1"),
    ({"channels": 2}, "channels=2"),
    ({"num_readers": 0}, "num_readers=0"),
    ({"num_classes": 0}, "num_classes=0"),
    ({"files": []}, "no TFRecord files"),
])
def test_bad_arguments_are_slim_errors(dataset_files, kwargs, match):
    arguments = {"files": dataset_files[0], "preprocess_fn": get_preprocessing("lenet"),
                 "batch_size": 2, "image_size": 28, "is_training": False, **kwargs}
    with pytest.raises(SlimError, match=match):
        build_input_pipeline(**arguments)


def test_grayscale_records_with_one_channel(tmp_path):
    gray = pattern_image(4)[:, :, :1]
    files = [write_records(str(tmp_path / "gray.tfrecord"), [make_example(gray, b"png", 4)])]
    dataset = build_input_pipeline(files, get_preprocessing("lenet"), 1, 28, is_training=False,
                                   channels=1)
    images, labels, _ = collect(dataset)
    assert images[0].shape == (1, 28, 28, 1) and labels == [4]


def test_synthetic_dataset_is_shaped_like_the_pipeline():
    """Generated data (`--synthetic_data`) comes from `train_data.synthetic_dataset`."""
    dataset = synthetic_dataset(batch_size=3, image_size=17, num_classes=5, seed=1)
    counts = collections.Counter()
    for images, labels in dataset.take(2):
        assert images.shape == (3, 17, 17, 3) and images.dtype == tf.float32
        assert labels.dtype == tf.int64
        counts.update(labels.numpy().tolist())
    assert set(counts) <= set(range(5))


def test_distribute_datasets_from_function(dataset_files):
    files, labels = dataset_files
    strategy = mirrored_strategy(["/cpu:0"])
    stats = PipelineStats()

    def dataset_fn(context):
        return build_input_pipeline(files, get_preprocessing("lenet"),
                                    context.get_per_replica_batch_size(8), 28, is_training=False,
                                    input_context=context, skip_corrupt=True, stats=stats)

    seen = []
    for _, batch_labels in strategy.distribute_datasets_from_function(dataset_fn):
        seen += batch_labels.numpy().tolist()
    assert sorted(seen) == sorted(labels) and stats.skipped == 0
