"""CIFAR-10: cifar-10-python.tar.gz → `cifar10_train.tfrecord`, `cifar10_test.tfrecord`.

As the original: `data_batch_1..5` in order make the train file, `test_batch`
the test file; each 3x32x32 row is transposed to 32x32x3 and PNG-encoded
(`png`, TensorFlow's PNG encoder, as the original used).

The batches are Python pickles. They are read with a restricted unpickler
that resolves only the few globals a NumPy array needs (array and dtype
reconstruction, and `_codecs.encode` for byte strings) and refuses any other
global, so a tampered archive cannot run code; the result must then be a dict
with a `(n, 3072)` uint8 `data` array and `n` integer `labels` in [0, 9].
"""

from __future__ import annotations

import importlib
import io
import os
import pickle

import numpy as np
import tensorflow as tf

from slimcli.datasets import archives, dataset_utils, fetch
from slimcli.datasets.convert import (ConversionPlan, ConversionReport, ConvertOptions,
                                      run_conversion)
from slimcli.datasets.shards import Shard
from slimcli.datasets.spec import DatasetSpec
from slimcli.errors import SlimError

DATA_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
NUM_TRAIN_FILES = 5
IMAGE_SIZE = 32
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]

# (module, name) → (module to import, attribute). Nothing else can be loaded.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays and plain containers, nothing else."""

    def find_class(self, module: str, name: str):
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return getattr(importlib.import_module(target[0]), target[1])


def load_batch(path: str, fix: str = "delete the archive and rerun, or check --mirror"
               ) -> tuple[np.ndarray, list[int]]:
    """Reads one CIFAR-10 python batch without running untrusted code.

    Args:
      path: a `data_batch_N` or `test_batch` file.
      fix: the advice when it is not a batch (`FetchedFile.fix` of its archive).

    Returns:
      (images uint8 [n, 32, 32, 3], labels).

    Raises:
      SlimError: the file is not a CIFAR-10 batch (or tries to load other globals).
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as e:
        raise SlimError(f"{path} is not a CIFAR-10 python batch ({e}); {fix}.") from None
    data, labels = _check_batch(path, batch)
    images = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _check_batch(path: str, batch) -> tuple[np.ndarray, list[int]]:
    bad = f"{path} is not a CIFAR-10 python batch"
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise SlimError(f"{bad} (no 'data'/'labels' entries); check the archive or --mirror.")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * IMAGE_SIZE * IMAGE_SIZE:
        raise SlimError(f"{bad} ('data' must be uint8 [n, 3072]); check the archive or --mirror.")
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if not isinstance(labels, list) or len(labels) != data.shape[0] or not all(
            isinstance(v, int) and 0 <= v < len(CLASS_NAMES) for v in labels):
        raise SlimError(f"{bad} ('labels' must be {data.shape[0]} integers in [0, 9]); check "
                        f"the archive or --mirror.")
    return data, labels


def output_name(split: str) -> str:
    """`cifar10_train.tfrecord` / `cifar10_test.tfrecord`."""
    return f"cifar10_{split}.tfrecord"


def _encode(item: tuple[np.ndarray, int]) -> bytes:
    image, label = item
    png = tf.io.encode_png(image).numpy()
    return dataset_utils.image_example_bytes(png, b"png", IMAGE_SIZE, IMAGE_SIZE, label)


def convert(dataset_dir: str, options: ConvertOptions) -> ConversionReport:
    """Downloads cifar-10-python.tar.gz (or takes it from --mirror) and converts it.

    Args:
      dataset_dir: output directory.
      options: the user's options.

    Returns:
      The conversion report.

    Raises:
      SlimError: download, checksum or archive problems.
    """
    def prepare() -> ConversionPlan:
        archive = fetch.fetch(DATA_URL, dataset_dir, options.mirror, options.quiet)
        batches = os.path.join(dataset_dir, BATCHES_DIR)
        with archives.checked_extraction(archive.path, archive.sha256, dataset_dir,
                                         archive.fix) as (_, marker):
            shards = _read_batches(archive, batches, dataset_dir)
        return ConversionPlan(
            shards=shards, encode=_encode, item_key=_item_key,
            labels_to_names=dict(enumerate(CLASS_NAMES)), file_pattern="cifar10_%s.tfrecord",
            cleanup=[archive.path] * archive.owned + [batches, marker],
            extra={"source": os.path.basename(DATA_URL)})

    return run_conversion(SPEC, dataset_dir, options, {}, prepare,
                          [output_name("train"), output_name("test")])


def _read_batches(archive: fetch.FetchedFile, batches: str, dataset_dir: str) -> list[Shard]:
    """The train and test shards from the extracted batch files."""
    files = {"train": [f"data_batch_{i + 1}" for i in range(NUM_TRAIN_FILES)],
             "test": ["test_batch"]}
    shards = []
    for split, names in files.items():
        items = []
        for name in names:
            path = os.path.join(batches, name)
            if not os.path.isfile(path):
                raise SlimError(f"{archive.path} has no {BATCHES_DIR}/{name}; it is not the "
                                f"CIFAR-10 python archive. Check --mirror.")
            images, labels = load_batch(path, archive.fix)
            items.extend(zip(images, labels))
        shards.append(Shard(split, os.path.join(dataset_dir, output_name(split)), items))
    return shards


def _item_key(item: tuple[np.ndarray, int]) -> list:
    image, label = item
    return [int(label), int(image.sum()) % 1000003]


SPEC = DatasetSpec(
    name="cifar10",
    file_pattern="cifar10_%s.tfrecord",
    splits_to_sizes={"train": 50000, "test": 10000},
    num_classes=10,
    items_to_descriptions={"image": "A [32 x 32 x 3] color image.",
                           "label": "A single integer between 0 and 9"},
    convert=convert,
    description="CIFAR-10 from cifar-10-python.tar.gz (50,000 train / 10,000 test).",
    download_options=("mirror",),
)
