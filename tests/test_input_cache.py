"""Tests of slimcli.input.cache: small datasets decoded once into memory for training."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from slimcli.distribute import mirrored_strategy
from slimcli.errors import SlimError
from slimcli.input import config
from slimcli.input.cache import DecodedCache
from slimcli.input.checks import PipelineStats
from slimcli.input.pipeline import build_input_pipeline
from slimcli.preprocessing import get_preprocessing
from test_input_pipeline import CORRUPTIONS, collect, make_example, pattern_image, write_records

PER_EPOCH = 26  # records: 2 files of 13, each a 20x20 PNG whose label is its id


def one_size_files(directory: str, files: int = 2, per_file: int = 13) -> tuple[list, list]:
    paths, labels = [], []
    for f in range(files):
        records = []
        for i in range(per_file):
            label = 10 + f * per_file + i
            records.append(make_example(pattern_image(label, 20, 20), b"png", label))
            labels.append(label)
        paths.append(write_records(os.path.join(directory, f"one-size-{f}.tfrecord"), records))
    return paths, labels


@pytest.fixture()
def small_files(tmp_path):
    return one_size_files(str(tmp_path))


def cache_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "slimcli.input"]


def training(files, name="lenet", batch=4, size=20, **kwargs):
    return build_input_pipeline(files, get_preprocessing(name, is_training=True), batch, size,
                                is_training=True, seed=kwargs.pop("seed", 5), **kwargs)


def test_every_epoch_holds_every_record_once_in_a_new_order(small_files, caplog):
    files, labels = small_files
    caplog.set_level(logging.INFO, "slimcli.input")
    dataset = training(files, batch=4)
    assert dataset.element_spec[0].shape == (4, 20, 20, 3)
    images, seen, sizes = collect(dataset.take(3 * PER_EPOCH // 4 + 1))  # 3 epochs and more
    assert set(sizes) == {4}  # full batches across the epochs' ends
    epochs = [seen[i * PER_EPOCH:(i + 1) * PER_EPOCH] for i in range(3)]
    assert all(sorted(epoch) == sorted(labels) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3 and epochs[0] != sorted(labels)
    assert cache_log(caplog) == [f"decoded {PER_EPOCH} records (0 MiB) into memory in "
                                 f"{cache_log(caplog)[0].split(' in ')[1]}"]
    assert "later epochs skip parsing and decoding" in cache_log(caplog)[0]
    # Each image is the lenet preprocessing of its own record, as the stream gives it.
    stream = build_input_pipeline(files, get_preprocessing("lenet"), PER_EPOCH, 20,
                                  is_training=False)
    expected_images, expected_labels, _ = collect(stream)
    by_label = dict(zip(expected_labels, expected_images[0]))
    for image, label in zip(np.concatenate(images), seen):
        np.testing.assert_array_equal(image, by_label[label])


def test_augmented_training_is_deterministic_with_a_seed(small_files, caplog):
    files, _ = small_files
    caplog.set_level(logging.INFO, "slimcli.input")

    owner = DecodedCache()

    def first(seed):
        return collect(training(files, "cifarnet", batch=5, seed=seed,
                                decoded_cache=owner).take(8))

    images_a, labels_a, _ = first(3)
    images_b, labels_b, _ = first(3)
    images_c, labels_c, _ = first(4)
    assert labels_a == labels_b
    np.testing.assert_array_equal(np.stack(images_a), np.stack(images_b))
    assert labels_a != labels_c
    # Distortions differ per record and per epoch: a record's two appearances differ.
    flat, first_at, repeated = np.concatenate(images_a), {}, []
    for i, label in enumerate(labels_a):
        if label in first_at:
            repeated.append((first_at[label], i))
        first_at.setdefault(label, i)
    assert len(repeated) == 40 - PER_EPOCH
    assert all(np.abs(flat[i] - flat[j]).max() > 1e-3 for i, j in repeated)
    decoded = [m for m in cache_log(caplog) if m.startswith("decoded")]
    assert len(decoded) == 1  # decoded once, then reused while the files are unchanged


def test_decoded_cache_off_or_over_budget_streams(small_files, caplog, monkeypatch):
    files, labels = small_files
    caplog.set_level(logging.INFO, "slimcli.input")
    assert collect(training(files, decoded_cache_mb=0).take(2))[2] == [4, 4]
    assert cache_log(caplog) == []  # 0: not even tried
    monkeypatch.setattr(config, "cache_budget_bytes", lambda mb: 5000)
    seen = collect(training(files).take(PER_EPOCH // 2))[1]
    assert set(seen) <= set(labels)
    assert cache_log(caplog) == [
        "reading the records as a stream (not decoding them into memory): about 0 MiB "
        "decoded, over the 0 MiB budget"]


def test_images_of_different_sizes_are_held_too(tmp_path, caplog):
    caplog.set_level(logging.INFO, "slimcli.input")
    records = [make_example(pattern_image(i, 20 + i % 3, 20 + i % 2), b"png", i)
               for i in range(6)]
    files = [write_records(str(tmp_path / "sizes.tfrecord"), records)]
    images, seen, _ = collect(training(files, batch=3).take(4))
    assert sorted(seen[:6]) == list(range(6)) and len(seen) == 12
    assert cache_log(caplog)[0].startswith("decoded 6 records (0 MiB) into memory")
    # lenet's training output is its evaluation output: the stream's, record by record.
    expected_images, expected_labels, _ = collect(build_input_pipeline(
        files, get_preprocessing("lenet"), 6, 20, is_training=False))
    by_label = dict(zip(expected_labels, expected_images[0]))
    for image, label in zip(np.concatenate(images), seen):
        np.testing.assert_array_equal(image, by_label[label])


@pytest.mark.parametrize("corruption", ["garbage_image", "missing_label", "not_an_example"])
def test_corrupt_data_is_left_to_the_stream(small_files, caplog, corruption):
    files, labels = small_files
    caplog.set_level(logging.INFO, "slimcli.input")
    bad = write_records(files[0] + ".bad", [make_example(pattern_image(1, 20, 20), b"png", 1),
                                            CORRUPTIONS[corruption]()])
    stats = PipelineStats(max_log_lines=0)
    seen = collect(training(files + [bad], batch=3, skip_corrupt=True, stats=stats).take(20))[1]
    assert set(seen) <= set(labels) | {1} and len(set(seen)) > 20 and stats.skipped >= 1
    assert cache_log(caplog)[-1].startswith("reading the records as a stream")
    with pytest.raises(tf.errors.InvalidArgumentError, match="corrupt record 1 of .*bad"):
        collect(training(files + [bad], batch=3).take(20))


def test_truncated_file_is_left_to_the_stream(small_files, caplog):
    files, labels = small_files
    caplog.set_level(logging.INFO, "slimcli.input")
    with open(files[1], "rb") as f:
        data = f.read()
    with open(files[1], "wb") as f:
        f.write(data[:-7])
    with pytest.raises(tf.errors.InvalidArgumentError, match="truncated or corrupt TFRecord"):
        collect(training(files).take(20))
    assert cache_log(caplog)[0].startswith("reading the records as a stream")


def test_label_below_offset_is_reported_by_the_stream(small_files):
    files, _ = small_files
    with pytest.raises(tf.errors.InvalidArgumentError, match="below labels_offset=11"):
        collect(training(files, labels_offset=11).take(20))
    labels = collect(training(files, batch=2, labels_offset=10).take(PER_EPOCH // 2))[1]
    assert sorted(labels) == list(range(PER_EPOCH))


def test_shards_of_records_split_the_cache(tmp_path):
    files, labels = one_size_files(str(tmp_path), files=1, per_file=12)
    seen = []
    for index in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index)
        shard = collect(build_input_pipeline(files, get_preprocessing("lenet"), 6, 20,
                                             is_training=True, seed=0,
                                             input_context=context).take(1))[1]
        assert len(set(shard)) == 6
        seen += shard
    assert sorted(seen) == labels


def test_cached_training_under_a_strategy(small_files):
    files, labels = small_files
    strategy = mirrored_strategy(["/cpu:0", "/cpu:1"])

    def dataset_fn(context):
        return build_input_pipeline(files, get_preprocessing("lenet"),
                                    context.get_per_replica_batch_size(4), 20, is_training=True,
                                    seed=1, input_context=context)

    seen = []
    for _, per_replica in zip(range(PER_EPOCH // 4),
                              strategy.distribute_datasets_from_function(dataset_fn)):
        for part in strategy.experimental_local_results(per_replica[1]):
            seen += part.numpy().tolist()
    assert len(seen) == PER_EPOCH // 4 * 4 and set(seen) <= set(labels)


def test_bad_decoded_cache_mb_is_a_slim_error(small_files):
    with pytest.raises(SlimError, match=r"decoded_cache_mb=-1"):
        training(small_files[0], decoded_cache_mb=-1)


def test_preprocessing_that_fails_on_the_images_is_left_to_the_stream(small_files, caplog):
    files, _ = small_files
    caplog.set_level(logging.INFO, "slimcli.input")
    # cifarnet's training crop of 40 does not fit a 20x20 image padded by 4: every record
    # fails its preprocessing, which the stream reports as corrupt.
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="corrupt record .* its preprocessing failed"):
        collect(training(files, "cifarnet", size=40).take(1))
    assert cache_log(caplog)[-1] == ("reading the records as a stream (not decoding them into "
                                     "memory): the preprocessing fails on the first image "
                                     "(InvalidArgumentError)")


def test_clear_frees_the_kept_split(small_files, caplog):
    files, _ = small_files
    caplog.set_level(logging.INFO, "slimcli.input")
    owner = DecodedCache()
    training(files, decoded_cache=owner)
    training(files, decoded_cache=owner)
    owner.clear()
    training(files, decoded_cache=owner)
    assert sum(m.startswith("decoded") for m in cache_log(caplog)) == 2
    training(files)  # no owner given: the split is this pipeline's alone, nothing kept
    training(files)
    assert sum(m.startswith("decoded") for m in cache_log(caplog)) == 4
