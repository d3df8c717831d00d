"""TFRecord features and label files in the original TF-Slim format.

Records are `tf.train.Example` protos with the keys `image/encoded`,
`image/format` (`jpg`/`png`), `image/class/label`, `image/height` and
`image/width`; `labels.txt` holds one `id:name` line per class. Files written
by the original TF-Slim converters and by slimcli are interchangeable.
"""

from __future__ import annotations

import os
import struct
from typing import Iterable, Mapping

import tensorflow as tf

from slimcli import fileio
from slimcli.errors import SlimError

LABELS_FILENAME = "labels.txt"


def int64_feature(values: int | Iterable[int]) -> tf.train.Feature:
    """Returns an int64-list feature of a scalar or a list of ints."""
    if not isinstance(values, (list, tuple)):
        values = [values]
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def bytes_feature(value: bytes) -> tf.train.Feature:
    """Returns a bytes-list feature holding one byte string."""
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def float_feature(values: float | Iterable[float]) -> tf.train.Feature:
    """Returns a float-list feature of a scalar or a list of floats."""
    if not isinstance(values, (list, tuple)):
        values = [values]
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def image_to_tfexample(image_data: bytes, image_format: bytes, height: int, width: int,
                       class_id: int) -> tf.train.Example:
    """Builds the classification record of the original converters.

    Args:
      image_data: the encoded image (JPEG or PNG bytes), stored as is.
      image_format: `b'jpg'` or `b'png'`.
      height: image height in pixels.
      width: image width in pixels.
      class_id: the integer label.

    Returns:
      A `tf.train.Example` with the five standard keys.
    """
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": bytes_feature(image_data),
        "image/format": bytes_feature(image_format),
        "image/class/label": int64_feature(class_id),
        "image/height": int64_feature(height),
        "image/width": int64_feature(width),
    }))


# ---------------------------------------------------------------------------
# Fast serialization for converters. Building `tf.train.Example` objects holds
# the GIL for longer than the rest of a record's work besides decoding (it cost
# ~25% of the threaded conversion rate), so records are written straight in
# protobuf wire format: Example{1: Features{1: map<string, Feature>}},
# Feature{1: BytesList | 2: FloatList | 3: Int64List}, values in field 1,
# numbers packed. A wire feature is (chunks, size) so the image bytes are copied
# once, by the final join. `tf.train.Example.FromString` reads the result back
# as a message equal to `image_to_tfexample`'s (tested).

WireFeature = tuple[list[bytes], int]


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf encodes negatives
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _prefixed(tag: bytes, chunks: list[bytes], size: int) -> WireFeature:
    head = tag + _varint(size)
    return [head, *chunks], len(head) + size


def bytes_list(values: bytes | Iterable[bytes]) -> WireFeature:
    """A wire-format Feature holding a BytesList (one value or several)."""
    if isinstance(values, bytes):
        values = [values]
    chunks: list[bytes] = []
    size = 0
    for value in values:
        part, n = _prefixed(b"\x0a", [value], len(value))
        chunks += part
        size += n
    return _prefixed(b"\x0a", chunks, size)  # Feature.bytes_list = BytesList{value...}


def _packed(tag: bytes, payload: bytes) -> WireFeature:
    return _prefixed(tag, *_prefixed(b"\x0a", [payload], len(payload)))


def int64_list(values: int | Iterable[int]) -> WireFeature:
    """A wire-format Feature holding an Int64List."""
    if not isinstance(values, (list, tuple)):
        values = [values]
    return _packed(b"\x1a", b"".join(_varint(int(v)) for v in values))


def float_list(values: float | Iterable[float]) -> WireFeature:
    """A wire-format Feature holding a FloatList (float32)."""
    if not isinstance(values, (list, tuple)):
        values = [values]
    return _packed(b"\x12", struct.pack(f"<{len(values)}f", *values))


def serialize_example(features: Mapping[str, WireFeature]) -> bytes:
    """A serialized `tf.train.Example` from {key: `bytes_list`/`int64_list`/`float_list`}.

    Args:
      features: feature key → wire-format Feature.

    Returns:
      Bytes that `tf.train.Example.FromString` parses into the same message
      as building it with `tf.train.Feature` objects.
    """
    chunks: list[bytes] = []
    size = 0
    for key, (value_chunks, value_size) in features.items():
        name = key.encode("utf-8")
        key_part, key_size = _prefixed(b"\x0a", [name], len(name))
        value_part, value_n = _prefixed(b"\x12", value_chunks, value_size)
        part, n = _prefixed(b"\x0a", key_part + value_part, key_size + value_n)
        chunks += part
        size += n
    return b"".join(_prefixed(b"\x0a", chunks, size)[0])


def image_example_bytes(image_data: bytes, image_format: bytes, height: int, width: int,
                        class_id: int) -> bytes:
    """`image_to_tfexample(...).SerializeToString()`, fast (see above)."""
    return serialize_example({
        "image/encoded": bytes_list(image_data),
        "image/format": bytes_list(image_format),
        "image/class/label": int64_list(class_id),
        "image/height": int64_list(height),
        "image/width": int64_list(width),
    })


def write_label_file(labels_to_class_names: Mapping[int, str], dataset_dir: str,
                     filename: str = LABELS_FILENAME) -> str:
    """Writes `id:name` lines, one per class, atomically.

    Args:
      labels_to_class_names: integer label → class name.
      dataset_dir: the directory to write into.
      filename: the file name inside `dataset_dir`.

    Returns:
      The path written.

    Raises:
      SlimError: a class name contains a newline (it would break the format).
    """
    lines = []
    for label, name in labels_to_class_names.items():
        if "\n" in name or "\r" in name:
            raise SlimError(f"class name {name!r} (label {label}) contains a line break; "
                            f"rename it so labels.txt keeps one class per line.")
        lines.append(f"{int(label)}:{name}\n")
    return fileio.write_file(os.path.join(dataset_dir, filename), "".join(lines))


def has_labels(dataset_dir: str, filename: str = LABELS_FILENAME) -> bool:
    """Returns whether `dataset_dir` holds a labels file."""
    return os.path.isfile(os.path.join(dataset_dir, filename))


def read_label_file(dataset_dir: str, filename: str = LABELS_FILENAME) -> dict[int, str]:
    """Reads `id:name` lines (split at the first colon) into a dict.

    Args:
      dataset_dir: the directory holding the labels file.
      filename: the file name inside `dataset_dir`.

    Returns:
      integer label → class name.

    Raises:
      SlimError: a line has no colon or a non-integer id.
    """
    path = os.path.join(dataset_dir, filename)
    with open(path, "r", encoding="utf-8") as f:
        lines = f.read().split("\n")
    labels_to_class_names = {}
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        label, sep, name = line.partition(":")
        if not sep or not label.strip().lstrip("-").isdigit():
            raise SlimError(f"{path}:{number}: expected 'id:name', got {line!r}; "
                            f"fix the line or delete the file and rerun slim-download.")
        labels_to_class_names[int(label)] = name
    return labels_to_class_names


def sharded_filename(prefix: str, shard_id: int, num_shards: int) -> str:
    """`prefix-00002-of-00010`, the original's sharded output name."""
    return f"{prefix}-{shard_id:05d}-of-{num_shards:05d}"
