"""Reading records back one by one (checks, tests, debugging).

The training input pipeline (parsing, decoding, preprocessing, batching) is
built elsewhere from `DatasetSplit.files`; this reader is the plain way to
look at what a converter wrote.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import tensorflow as tf


def parse_example(serialized: bytes) -> dict[str, list]:
    """A serialized `tf.train.Example` → {key: list of values} (bytes, ints or floats)."""
    example = tf.train.Example.FromString(serialized)
    parsed = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        parsed[key] = list(getattr(feature, kind).value) if kind else []
    return parsed


def read_examples(files: Iterable[str]) -> Iterator[dict[str, list]]:
    """Yields every record of `files`, in file order, as `parse_example` dicts.

    Args:
      files: TFRecord paths (e.g. `DatasetSplit.files`).

    Yields:
      {key: list of values} per record.
    """
    for path in files:
        for record in tf.data.TFRecordDataset(path):
            yield parse_example(record.numpy())


def count_records(files: Iterable[str]) -> int:
    """The number of records in `files`."""
    return sum(1 for path in files for _ in tf.data.TFRecordDataset(path))
