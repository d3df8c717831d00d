"""MNIST: the four idx .gz files → `mnist_train.tfrecord`, `mnist_test.tfrecord`.

As the original: 28x28x1 images PNG-encoded (`png`), class names `zero` ...
`nine` with the original's `size` for 6 (kept: labels.txt of existing
conversions says so). The image count is read from the idx header (upstream:
60,000 / 10,000) and checked against the labels file.

yann.lecun.com is often unreachable: `--mirror` takes the same four file
names from another host or directory (e.g. the CVDF mirror
https://storage.googleapis.com/cvdf-datasets/mnist/, which serves the files
whose SHA-256 TensorFlow Datasets publishes).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np
import tensorflow as tf

from slimcli.datasets import dataset_utils, fetch
from slimcli.datasets.convert import (ConversionPlan, ConversionReport, ConvertOptions,
                                      run_conversion)
from slimcli.datasets.shards import Shard
from slimcli.datasets.spec import DatasetSpec
from slimcli.errors import SlimError

DATA_URL = "http://yann.lecun.com/exdb/mnist/"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_SIZE = 28
CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "size", "seven", "eight", "nine"]
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


_FIX = "delete it and rerun, or check --mirror"


def _read_gz(path: str, fix: str) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise SlimError(f"cannot read {path}: not a complete gzip file ({e}); {fix}.") from None


def read_images(path: str, fix: str = _FIX) -> np.ndarray:
    """uint8 [n, 28, 28, 1] from an idx3 .gz file (`fix`: the advice for a bad file).

    Raises:
      SlimError: wrong magic number, size or truncated data.
    """
    raw = _read_gz(path, fix)
    if len(raw) < 16:
        raise SlimError(f"{path} is too short for an idx3 image file; check --mirror.")
    magic, count, rows, cols = struct.unpack(">iiii", raw[:16])
    if magic != _IMAGES_MAGIC or rows != IMAGE_SIZE or cols != IMAGE_SIZE:
        raise SlimError(f"{path} is not an MNIST image file (magic {magic}, {rows}x{cols}); "
                        f"expected magic {_IMAGES_MAGIC} and 28x28. Check --mirror.")
    if len(raw) != 16 + count * rows * cols:
        raise SlimError(f"{path} holds {len(raw) - 16} pixel bytes, header says {count} images "
                        f"({count * rows * cols} bytes); {fix}.")
    return np.frombuffer(raw, np.uint8, offset=16).reshape(count, rows, cols, 1)


def read_labels(path: str, fix: str = _FIX) -> np.ndarray:
    """int64 [n] from an idx1 .gz file (`fix`: the advice for a bad file).

    Raises:
      SlimError: wrong magic number, size or label values.
    """
    raw = _read_gz(path, fix)
    if len(raw) < 8:
        raise SlimError(f"{path} is too short for an idx1 label file; check --mirror.")
    magic, count = struct.unpack(">ii", raw[:8])
    if magic != _LABELS_MAGIC or len(raw) != 8 + count:
        raise SlimError(f"{path} is not an MNIST label file (magic {magic}, {len(raw) - 8} "
                        f"labels, header {count}); expected magic {_LABELS_MAGIC}. Check --mirror.")
    labels = np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)
    if labels.size and labels.max() > 9:
        raise SlimError(f"{path} has label {labels.max()} outside 0..9; check --mirror.")
    return labels


def output_name(split: str) -> str:
    """`mnist_train.tfrecord` / `mnist_test.tfrecord`."""
    return f"mnist_{split}.tfrecord"


def _encode(item: tuple[np.ndarray, int]) -> bytes:
    image, label = item
    png = tf.io.encode_png(image).numpy()
    return dataset_utils.image_example_bytes(png, b"png", IMAGE_SIZE, IMAGE_SIZE, int(label))


def convert(dataset_dir: str, options: ConvertOptions) -> ConversionReport:
    """Downloads the four MNIST files (or takes them from --mirror) and converts them.

    Args:
      dataset_dir: output directory.
      options: the user's options.

    Returns:
      The conversion report.

    Raises:
      SlimError: download, checksum or file-format problems.
    """
    def prepare() -> ConversionPlan:
        shards, cleanup = [], []
        for split, (images_name, labels_name) in FILES.items():
            got = [fetch.fetch(DATA_URL + name, dataset_dir, options.mirror, options.quiet)
                   for name in (images_name, labels_name)]
            cleanup.extend(f.path for f in got if f.owned)
            images = read_images(got[0].path, got[0].fix)
            labels = read_labels(got[1].path, got[1].fix)
            if len(images) != len(labels):
                raise SlimError(f"{images_name} has {len(images)} images but {labels_name} has "
                                f"{len(labels)} labels; check --mirror.")
            shards.append(Shard(split, os.path.join(dataset_dir, output_name(split)),
                                list(zip(images, labels.tolist()))))
        return ConversionPlan(
            shards=shards, encode=_encode, item_key=lambda i: [int(i[1]), int(i[0].sum())],
            labels_to_names=dict(enumerate(CLASS_NAMES)), file_pattern="mnist_%s.tfrecord",
            cleanup=cleanup, extra={"source": DATA_URL})

    return run_conversion(SPEC, dataset_dir, options, {}, prepare,
                          [output_name("train"), output_name("test")])


SPEC = DatasetSpec(
    name="mnist",
    file_pattern="mnist_%s.tfrecord",
    splits_to_sizes={"train": 60000, "test": 10000},
    num_classes=10,
    items_to_descriptions={"image": "A [28 x 28 x 1] grayscale image.",
                           "label": "A single integer between 0 and 9"},
    convert=convert,
    description="MNIST digits from the four idx .gz files (60,000 train / 10,000 test).",
    download_options=("mirror",),
)
