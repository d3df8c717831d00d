"""Dataset registry, get_dataset, descriptors, label files, shard layouts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from datasets_helpers import read_examples
from slimcli.datasets import DATASETS, dataset_utils, get_dataset
from slimcli.datasets import shards as shards_lib
from slimcli.datasets.spec import write_descriptor
from slimcli.errors import SlimError

UPSTREAM = {  # name → (file pattern, split sizes, classes), from the original descriptors.
    "flowers": ("flowers_%s_*.tfrecord", {"train": 3320, "validation": 350}, 5),
    "cifar10": ("cifar10_%s.tfrecord", {"train": 50000, "test": 10000}, 10),
    "mnist": ("mnist_%s.tfrecord", {"train": 60000, "test": 10000}, 10),
    "imagenet": ("%s-*", {"train": 1281167, "validation": 50000}, 1001),
    "visualwakewords": ("%s.record-*", {"train": 82783, "val": 40504}, 2),
}


def _write_records(path: str, n: int, label: int = 0) -> None:
    with tf.io.TFRecordWriter(path) as w:
        for i in range(n):
            w.write(dataset_utils.image_to_tfexample(b"x%d" % i, b"png", 2, 3, label)
                    .SerializeToString())


def test_registry_lists_every_dataset():
    assert DATASETS.names() == ["cifar10", "flowers", "folder", "imagenet", "mnist",
                                "visualwakewords"]


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_spec_matches_original_descriptor(name):
    spec = DATASETS.get(name)
    pattern, sizes, classes = UPSTREAM[name]
    assert spec.file_pattern == pattern
    assert dict(spec.splits_to_sizes) == sizes
    assert spec.num_classes == classes
    assert spec.convert is not None


def test_unknown_dataset_names_closest_match(tmp_path):
    with pytest.raises(SlimError, match=r"'flowrs'.*Did you mean 'flowers'.*Known: cifar10"):
        get_dataset("flowrs", "train", str(tmp_path))


def test_upstream_sizes_without_descriptor(tmp_path):
    """A directory converted by the original TF-Slim: spec sizes, labels.txt."""
    for i in range(2):
        _write_records(str(tmp_path / f"flowers_train_{i:05d}-of-00005.tfrecord"), 2)
    dataset_utils.write_label_file({0: "daisy", 1: "roses"}, str(tmp_path))
    split = get_dataset("flowers", "train", str(tmp_path))
    assert split.num_samples == 3320 and split.num_classes == 5
    assert [os.path.basename(f) for f in split.files] == [
        "flowers_train_00000-of-00005.tfrecord", "flowers_train_00001-of-00005.tfrecord"]
    assert split.labels_to_names == {0: "daisy", 1: "roses"}
    assert not split.from_descriptor


def test_unknown_split_lists_known_splits(tmp_path):
    with pytest.raises(SlimError, match=r"'test'.*Known splits: train, validation"):
        get_dataset("flowers", "test", str(tmp_path))


def test_split_alias_for_visualwakewords(tmp_path):
    _write_records(str(tmp_path / "val.record-00000-of-00010"), 1)
    split = get_dataset("visualwakewords", "validation", str(tmp_path))
    assert split.split_name == "val" and split.num_samples == 40504


def test_no_files_names_pattern_and_fix(tmp_path):
    with pytest.raises(SlimError, match=r"flowers_validation_\*\.tfrecord.*slim-download "
                                        r"--dataset_name=flowers"):
        get_dataset("flowers", "validation", str(tmp_path))


def test_missing_dataset_dir(tmp_path):
    with pytest.raises(SlimError, match="does not exist; run `slim-download"):
        get_dataset("mnist", "train", str(tmp_path / "nope"))


def test_descriptor_wins_over_upstream_sizes(tmp_path):
    _write_records(str(tmp_path / "cifar10_train.tfrecord"), 4)
    write_descriptor(str(tmp_path), {
        "name": "cifar10", "num_classes": 10, "file_pattern": "cifar10_%s.tfrecord",
        "splits": {"train": {"num_samples": 4, "files": ["cifar10_train.tfrecord"]}}})
    split = get_dataset("cifar10", "train", str(tmp_path))
    assert split.num_samples == 4 and split.from_descriptor
    with pytest.raises(SlimError, match="Known splits: train"):
        get_dataset("cifar10", "test", str(tmp_path))


def test_descriptor_of_other_dataset_is_named(tmp_path):
    write_descriptor(str(tmp_path), {"name": "folder", "num_classes": 2, "splits": {}})
    with pytest.raises(SlimError, match="holds the 'folder' dataset.*--dataset_name=folder"):
        get_dataset("flowers", "train", str(tmp_path))


def test_folder_needs_descriptor(tmp_path):
    with pytest.raises(SlimError, match="exists only once converted"):
        get_dataset("folder", "train", str(tmp_path))


def test_unfinished_conversion_is_reported(tmp_path):
    _write_records(str(tmp_path / "mnist_train.tfrecord"), 1)
    (tmp_path / shards_lib.STATE_FILENAME).write_text("{}")
    with pytest.raises(SlimError, match="did not finish; rerun"):
        get_dataset("mnist", "train", str(tmp_path))


def test_custom_file_pattern(tmp_path):
    _write_records(str(tmp_path / "mine-train.rec"), 1)
    split = get_dataset("mnist", "train", str(tmp_path), file_pattern="mine-%s.rec")
    assert [os.path.basename(f) for f in split.files] == ["mine-train.rec"]


def test_label_file_round_trip_and_colon_in_name(tmp_path):
    labels = {0: "background", 1: "tench, Tinca tinca", 2: "a:b"}
    dataset_utils.write_label_file(labels, str(tmp_path))
    assert (tmp_path / "labels.txt").read_text() == "0:background\n1:tench, Tinca tinca\n2:a:b\n"
    assert dataset_utils.has_labels(str(tmp_path))
    assert dataset_utils.read_label_file(str(tmp_path)) == labels


def test_bad_label_line_names_file_and_line(tmp_path):
    (tmp_path / "labels.txt").write_text("0:cat\ndog\n")
    with pytest.raises(SlimError, match=r"labels.txt:2: expected 'id:name', got 'dog'"):
        dataset_utils.read_label_file(str(tmp_path))


def test_image_to_tfexample_keys(tmp_path):
    path = str(tmp_path / "one.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(dataset_utils.image_to_tfexample(b"abc", b"jpg", 7, 9, 3).SerializeToString())
    (record,) = list(read_examples([path]))
    assert record == {"image/encoded": [b"abc"], "image/format": [b"jpg"],
                      "image/class/label": [3], "image/height": [7], "image/width": [9]}


def test_contiguous_shards_match_flowers_layout():
    items = list(range(11))
    shards = shards_lib.contiguous_shards("train", items, [f"s{i}" for i in range(5)])
    assert [s.items for s in shards] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10], []]


def test_round_robin_shards_match_vww_layout():
    shards = shards_lib.round_robin_shards("val", list(range(7)), ["a", "b", "c"])
    assert [s.items for s in shards] == [[0, 3, 6], [1, 4], [2, 5]]


@pytest.mark.parametrize("n,num_shards,batches", [(1000, 16, 8), (37, 8, 8), (50, 6, 8)])
def test_nested_linspace_matches_numpy(n, num_shards, batches):
    """The ImageNet layout equals build_imagenet_data.py's numpy linspace arithmetic."""
    shards = shards_lib.nested_linspace_shards("t", list(range(n)), list(range(num_shards)),
                                               batches)
    if num_shards % batches:
        batches = 1
    outer = np.linspace(0, n, batches + 1).astype(int)
    expected = []
    for b in range(batches):
        inner = np.linspace(outer[b], outer[b + 1], num_shards // batches + 1).astype(int)
        expected.extend(list(range(inner[s], inner[s + 1])) for s in range(len(inner) - 1))
    assert [s.items for s in shards] == expected
    assert sum(len(s.items) for s in shards) == n


def test_write_shards_resumes_and_never_leaves_partial_shards(tmp_path):
    per_shard = 3 * shards_lib.CHUNK_ITEMS
    total, bad = 3 * per_shard, 2 * per_shard + shards_lib.CHUNK_ITEMS + 1
    paths = [str(tmp_path / f"out-{i}") for i in range(3)]
    plan = shards_lib.contiguous_shards("train", list(range(total)), paths)
    calls = []

    def failing(item):
        calls.append(item)
        if item == bad:
            raise RuntimeError("disk on fire")
        return dataset_utils.image_example_bytes(b"x", b"png", 1, 1, item)

    state = shards_lib.ConversionState(str(tmp_path), "digest")
    with pytest.raises(RuntimeError):
        shards_lib.write_shards(plan, failing, state, 2, "t", quiet=True)
    assert sorted(os.listdir(tmp_path)) == [shards_lib.STATE_FILENAME, "out-0", "out-1"]

    def ok(item):
        calls.append(item)
        return dataset_utils.image_example_bytes(b"x", b"png", 1, 1, item)

    calls.clear()
    state = shards_lib.ConversionState(str(tmp_path), "digest")
    result = shards_lib.write_shards(plan, ok, state, 2, "t", quiet=True)
    assert sorted(calls) == list(range(2 * per_shard, total))  # only the unfinished shard
    assert result.records == {"train": total}
    labels = [r["image/class/label"][0] for r in read_examples(paths)]
    assert labels == list(range(total))


def test_state_of_another_plan_is_discarded(tmp_path):
    path = str(tmp_path / "out-0")
    plan = shards_lib.contiguous_shards("train", [1], [path])
    encode = lambda i: dataset_utils.image_to_tfexample(b"x", b"png", 1, 1, i).SerializeToString()
    shards_lib.write_shards(plan, encode, shards_lib.ConversionState(str(tmp_path), "a"), 1, "t",
                            quiet=True)
    state = shards_lib.ConversionState(str(tmp_path), "b")
    assert not os.path.exists(path) and not state.is_complete(plan[0])
    assert json.loads((tmp_path / shards_lib.STATE_FILENAME).read_text())["fingerprint"] == "a"


def test_descriptor_file_list_beats_stray_files(tmp_path):
    for name in ("cifar10_train.tfrecord", "cifar10_train.tfrecord.old"):
        _write_records(str(tmp_path / name), 2)
    write_descriptor(str(tmp_path), {
        "name": "cifar10", "num_classes": 10, "file_pattern": "cifar10_%s.tfrecord*",
        "splits": {"train": {"num_samples": 2, "files": ["cifar10_train.tfrecord"]}}})
    split = get_dataset("cifar10", "train", str(tmp_path))
    assert [os.path.basename(f) for f in split.files] == ["cifar10_train.tfrecord"]
    os.remove(tmp_path / "cifar10_train.tfrecord")
    with pytest.raises(SlimError, match=r"lists the records of this split but "
                                        r"'.*cifar10_train.tfrecord' is missing; rerun"):
        get_dataset("cifar10", "train", str(tmp_path))


@pytest.mark.parametrize("label,size", [(0, 0), (4, 127), (300, 128), (-1, 15000), (2**40, 70000)])
def test_fast_record_equals_tf_example(label, size):
    data = os.urandom(size)
    fast = tf.train.Example.FromString(dataset_utils.image_example_bytes(data, b"png", 7, 9,
                                                                          label))
    assert fast == dataset_utils.image_to_tfexample(data, b"png", 7, 9, label)


def test_serialize_example_matches_protobuf_for_every_kind():
    du = dataset_utils
    fast = du.serialize_example({
        "image/object/bbox/xmin": du.float_list([0.25, -1.5, 3e-8]),
        "image/object/bbox/ymin": du.float_list([]),
        "image/object/bbox/label": du.int64_list([1, 1, -7, 2**62]),
        "image/class/text": du.bytes_list("tench, Tinca tinca ü".encode()),
        "multi": du.bytes_list([b"a", b"", b"\x00" * 300]),
        "ключ": du.int64_list(np.int64(5)),
    })
    expected = tf.train.Example(features=tf.train.Features(feature={
        "image/object/bbox/xmin": du.float_feature([0.25, -1.5, 3e-8]),
        "image/object/bbox/ymin": du.float_feature([]),
        "image/object/bbox/label": du.int64_feature([1, 1, -7, 2**62]),
        "image/class/text": du.bytes_feature("tench, Tinca tinca ü".encode()),
        "multi": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a", b"", b"\x00" * 300])),
        "ключ": du.int64_feature(5),
    }))
    assert tf.train.Example.FromString(fast) == expected
