"""Tests of photos decoded once at a working resolution (slimcli.input: records.
decode_image_at_side, decoded, cache_file, cache): the same crops as the stream, the memory
budget, the file kept beside the records, its fingerprint and its repair."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.input import cache_file, config
from slimcli.input.cache import DecodedCache
from slimcli.input.config import decode_side_pixels
from slimcli.input.pipeline import build_input_pipeline
from slimcli.input.records import decode_image_at_side, parse_example
from slimcli.preprocessing import get_preprocessing
from test_input_pipeline import collect, make_example, pattern_image, write_records

SIDE = 24  # the working side: the photos below are 40-60 px on their shorter side
SIZE = 16  # the output size


def photo(label: int) -> np.ndarray:
    """A smooth photo-like image, landscape or portrait, 40-60 px on its shorter side."""
    short, long = 40 + 5 * (label % 5), 64 + label % 7
    height, width = (short, long) if label % 2 else (long, short)
    y, x = np.mgrid[0:height, 0:width]
    waves = [np.sin(x * 0.2 + y * 0.1 * (c + 1) + label) for c in range(3)]
    return ((np.stack(waves, -1) + 1) * 120 + 5).astype(np.uint8)


def photo_records(directory: str, count: int = 10, offset: int = 0) -> tuple[list, list]:
    """One file of JPEG and PNG photos whose label is their number."""
    records = [make_example(photo(i + offset), b"jpeg" if i % 2 else b"png", i)
               for i in range(count)]
    return [write_records(os.path.join(directory, "photos.tfrecord"), records)], records


def cache_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "slimcli.input"]


def pipeline(files, seed=7, side=SIDE, **kwargs):
    return build_input_pipeline(files, get_preprocessing("inception", is_training=True), 4,
                                SIZE, is_training=True, seed=seed, decode_side=side, **kwargs)


def stream_seed(position: int, seed: int = 7) -> tf.Tensor:
    """The preprocessing seed of the record at `position` of a pipeline's stream."""
    return tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64),
                                                    tf.constant(position, tf.int64))


def working_copy(record: bytes, side: int = SIDE) -> tf.Tensor:
    return decode_image_at_side(parse_example(tf.constant(record)), 3, side)


@pytest.mark.parametrize("image_format", [b"jpeg", b"png"])
def test_decode_at_side_keeps_the_aspect_and_never_enlarges(image_format):
    big = make_example(photo(3), image_format)  # 55x67
    image = working_copy(big).numpy()
    assert image.shape == (SIDE, round(67 * SIDE / 55), 3)
    small = photo(0)
    exact = working_copy(make_example(small, b"png"), side=200).numpy()
    np.testing.assert_array_equal(exact, small)  # smaller than the side: the stored pixels
    # Downscaled, it still looks like the photo (a mean close to the photo's).
    assert abs(image.astype(float).mean() - photo(3).astype(float).mean()) < 6


def test_cached_crops_are_the_streams_crops_of_the_working_copy(tmp_path, caplog):
    caplog.set_level(logging.INFO, "slimcli.input")
    files, records = photo_records(str(tmp_path))
    fn = get_preprocessing("inception", is_training=True)

    def expected(label, position):
        return fn(working_copy(records[label]), SIZE, SIZE, seed=stream_seed(position),
                  add_image_summaries=False).numpy()

    # Held in memory: output k is record `label` preprocessed with stream position k's seed.
    images, labels, _ = collect(pipeline(files).take(6))  # 24 images: 2 epochs and more
    assert sorted(labels[:10]) == list(range(10))  # an epoch of each
    for position, (image, label) in enumerate(zip(np.concatenate(images), labels)):
        np.testing.assert_allclose(image, expected(label, position), atol=2e-5)
    decoded = [m for m in cache_log(caplog) if m.startswith("decoded")]
    assert decoded == [f"decoded 10 records (0 MiB) at a shorter side of at most {SIDE} px into "
                       f"memory in {decoded[0].split(' in ')[1]}"]
    # Streamed at the same side: the same function of the same working copies (the file's
    # end marker takes a stream position of its own each epoch, shuffled in with the records).
    images, labels, _ = collect(pipeline(files, decoded_cache_mb=0).take(6))
    for position, (image, label) in enumerate(zip(np.concatenate(images), labels)):
        assert any(np.array_equal(image, expected(label, seq))
                   for seq in range(position, position + 4))


def test_memory_budget_holds_photos_at_the_working_side_only(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "slimcli.input")
    files, records = photo_records(str(tmp_path))
    full = sum(working_copy(r, side=0).numpy().size for r in records)
    small = sum(working_copy(r).numpy().size for r in records)
    budget = (full + small) // 3  # well below the full size, above the working copies
    assert small < budget < full
    monkeypatch.setattr(config, "cache_budget_bytes", lambda mb: budget)
    collect(pipeline(files, side=0).take(1))
    assert cache_log(caplog)[-1].startswith("reading the records as a stream")
    owner = DecodedCache()
    collect(pipeline(files, decoded_cache=owner).take(1))
    assert cache_log(caplog)[-1].startswith("decoded 10 records")
    cfg = config.make_config(files, 4, SIZE, True, 0, None, None, None, 16, 7, None, None,
                             False, None, False, 3, None, SIDE)
    held = owner.split(cfg)
    assert held.nbytes <= budget and held.pixels.shape[0] == small


def test_a_split_kept_on_disk_is_loaded_and_follows_its_records(tmp_path, caplog):
    caplog.set_level(logging.INFO, "slimcli.input")
    files, _ = photo_records(str(tmp_path))
    first = collect(pipeline(files, decoded_cache_on_disk=True).take(3))[0]
    path = cache_file.cache_path(tuple(files), SIDE)
    assert os.path.exists(path)
    assert cache_log(caplog)[-1] == f"kept the decoded images in {path} for later runs"
    again = collect(pipeline(files, decoded_cache_on_disk=True).take(3))[0]
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert cache_log(caplog)[-1].startswith(f"loaded 10 decoded images (0 MiB) from {path}")
    # Other records under the same names: the fingerprint differs, the split is decoded again.
    files, records = photo_records(str(tmp_path), offset=1)
    caplog.clear()
    images, labels, _ = collect(pipeline(files, decoded_cache_on_disk=True).take(3))
    assert cache_log(caplog)[0] == (f"decoding the images again: {path} cannot be used (made "
                                    f"from other records or at another side)")
    assert cache_log(caplog)[1].startswith("decoded 10 records")
    fn = get_preprocessing("inception", is_training=True)
    seed = stream_seed(0)
    np.testing.assert_allclose(images[0][0], fn(working_copy(records[labels[0]]), SIZE, SIZE,
                                                seed=seed, add_image_summaries=False), atol=2e-5)
    # Another side is another file.
    assert cache_file.cache_path(tuple(files), SIDE + 1) != path


@pytest.mark.parametrize("damage", ["flip_a_pixel", "truncate", "garbage"])
def test_a_damaged_file_on_disk_is_rebuilt(tmp_path, caplog, damage):
    caplog.set_level(logging.INFO, "slimcli.input")
    files, _ = photo_records(str(tmp_path))
    expected = collect(pipeline(files, decoded_cache_on_disk=True).take(2))[0]
    path = cache_file.cache_path(tuple(files), SIDE)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if damage == "flip_a_pixel":
        data[-5] ^= 0x40
    elif damage == "truncate":
        data = data[:-100]
    else:
        data = bytearray(b"not a cache" * 10)
    with open(path, "wb") as f:
        f.write(data)
    caplog.clear()
    images = collect(pipeline(files, decoded_cache_on_disk=True).take(2))[0]
    np.testing.assert_array_equal(np.stack(images), np.stack(expected))
    why = {"flip_a_pixel": "its checksum fails (damaged)",
           "truncate": "its length is wrong (truncated?)",
           "garbage": "not a slimcli decoded-images file"}[damage]
    assert cache_log(caplog)[0] == f"decoding the images again: {path} cannot be used ({why})"
    assert cache_log(caplog)[-1] == f"kept the decoded images in {path} for later runs"
    caplog.clear()
    collect(pipeline(files, decoded_cache_on_disk=True).take(1))
    assert cache_log(caplog)[-1].startswith("loaded 10 decoded images")  # repaired


def test_a_folder_that_refuses_the_file_only_costs_the_saving(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "slimcli.input")
    files, _ = photo_records(str(tmp_path))

    def refuse(path):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(cache_file.fileio, "writing", refuse)
    assert collect(pipeline(files, decoded_cache_on_disk=True).take(1))[2] == [4]
    assert cache_log(caplog)[-1].startswith("not keeping the decoded images on disk: cannot "
                                            "write")


def test_decode_side_setting():
    assert decode_side_pixels("auto", lambda size: size * 2, 64) == 128
    assert decode_side_pixels("full", lambda size: 1, 64) == 0
    assert decode_side_pixels(" 180 ", lambda size: 1, 64) == 180
    for bad in ("-3", "0", "big", ""):
        with pytest.raises(SlimError, match="is not auto, full or a number of pixels"):
            decode_side_pixels(bad, lambda size: 1, 64)
    inception = get_preprocessing("inception", is_training=True)
    assert inception.working_side(128) == 182
    assert get_preprocessing("inception").working_side(128) == 147
    assert get_preprocessing("vgg", is_training=True).working_side(64) == 512
    assert get_preprocessing("cifarnet", is_training=True).working_side(32) == 0


def test_evaluation_reads_the_working_copy_only_when_asked(tmp_path):
    from slimcli.evaluate import EvalConfig
    files, records = photo_records(str(tmp_path), count=4)
    fn = get_preprocessing("inception")
    for side in (0, SIDE):
        images, labels, _ = collect(build_input_pipeline(files, fn, 4, SIZE, is_training=False,
                                                         decode_side=side))
        for image, label in zip(images[0], labels):
            expected = fn(working_copy(records[label], side=side), SIZE, SIZE).numpy()
            np.testing.assert_array_equal(image, expected)
    assert EvalConfig().decode_side == "full"  # evaluation stays exact unless asked
    with pytest.raises(SlimError, match="--decode_side='half' is not auto, full or a number"):
        EvalConfig(dataset_dir=str(tmp_path), decode_side="half").validate()
