"""A decoded split kept on disk beside its records, so that the next run skips decoding.

    <records' folder>/.slimcli-decoded-<names hash>-<side>.cache

One file per split (its file names) and side. It holds a header, then the
arrays of `DecodedImages` (shapes int32, labels int64, pixels uint8, in that
order). The header names the file's key: a fingerprint of the records
(each file's name, size, modification time and first 64 KiB), the channels
and the side. A file whose key differs (the records changed, or another
resolution), whose length is wrong or whose checksum fails is not used: the
split is decoded again and the file rewritten (whole or not at all, through
`slimcli.fileio`). A folder that cannot be written (or a remote one) only
costs the saving, with one log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import time
import zlib
from typing import Optional

import numpy as np
import tensorflow as tf

from slimcli import fileio
from slimcli.input.decoded import DecodedImages

MAGIC = b"slimcli decoded images\n"
VERSION = 1
_HEAD_BYTES = 64 * 1024  # of each record file, in the fingerprint
_CRC_CHUNK = 64 * 2**20

log = logging.getLogger("slimcli.input")


def cache_path(files: tuple[str, ...], side: int) -> Optional[str]:
    """Where the split of `files` decoded at `side` is kept; None for remote records."""
    if any("://" in f for f in files):
        return None
    names = hashlib.sha256("\n".join(os.path.basename(f) for f in files).encode()).hexdigest()
    return os.path.join(os.path.dirname(os.path.abspath(files[0])),
                        f".slimcli-decoded-{names[:12]}-{side or 'full'}.cache")


def fingerprint(files: tuple[str, ...], channels: int, side: int) -> str:
    """The key of a decoded split: the records (name, size, mtime, first 64 KiB),
    the channels and the side."""
    digest = hashlib.sha256(f"v{VERSION} channels={channels} side={side}".encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f"\n{os.path.basename(path)} {stat.st_size} {stat.st_mtime_ns} ".encode())
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read(_HEAD_BYTES)).digest())
    return digest.hexdigest()


def _crc(*arrays: np.ndarray) -> int:
    crc = 0
    for array in arrays:
        view = memoryview(np.ascontiguousarray(array)).cast("B")
        for start in range(0, len(view), _CRC_CHUNK):
            crc = zlib.crc32(view[start:start + _CRC_CHUNK], crc)
    return crc


def save(path: str, key: str, data: DecodedImages) -> bool:
    """Writes `data` under `key` to `path`; False (logged) when the folder refuses it."""
    shapes = data.shapes.astype("<i4")
    labels = data.labels.astype("<i8")
    pixels = data.pixels.numpy()
    header = json.dumps({"key": key, "count": len(labels), "pixels": int(pixels.size),
                         "side": data.side, "crc32": _crc(shapes, labels, pixels)}).encode()
    try:
        with fileio.writing(path) as tmp, open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            for array in (shapes, labels, pixels):
                f.write(memoryview(np.ascontiguousarray(array)).cast("B"))
    except OSError as e:
        log.info("not keeping the decoded images on disk: cannot write %s (%s)", path,
                 e.strerror or e)
        return False
    log.info("kept the decoded images in %s for later runs", path)
    return True


def _read(path: str, key: str) -> DecodedImages:
    """The decoded split of `path`; raises ValueError saying why it cannot be used."""
    start = time.perf_counter()
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a slimcli decoded-images file")
        (length,) = struct.unpack("<Q", f.read(8))
        if length > 4096:
            raise ValueError("its header is damaged")
        header = json.loads(f.read(length))
        if header.get("key") != key:
            raise ValueError("made from other records or at another side")
        count, total = int(header["count"]), int(header["pixels"])
        expected = len(MAGIC) + 8 + length + 12 * count + 8 * count + total
        if os.fstat(f.fileno()).st_size != expected:
            raise ValueError("its length is wrong (truncated?)")
        shapes = np.fromfile(f, "<i4", 3 * count).reshape(count, 3)
        labels = np.fromfile(f, "<i8", count)
        pixels = np.fromfile(f, np.uint8, total)
    if _crc(shapes, labels, pixels) != header["crc32"]:
        raise ValueError("its checksum fails (damaged)")
    if (shapes < 0).any() or int(np.prod(shapes.astype(np.int64), 1).sum()) != total:
        raise ValueError("its shapes do not add up")
    return DecodedImages(tf.constant(pixels), shapes.astype(np.int32), labels.astype(np.int64),
                         time.perf_counter() - start, int(header["side"]))


def load(path: str, key: str) -> Optional[DecodedImages]:
    """The split kept in `path` under `key`, or None (a missing file, or one that cannot be
    used: logged) so that it is decoded again."""
    if not os.path.exists(path):
        return None
    try:
        data = _read(path, key)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
        log.info("decoding the images again: %s cannot be used (%s)", path, e)
        return None
    log.info("loaded %d decoded images (%.0f MiB) from %s in %.1f s", len(data.labels),
             data.nbytes / 2**20, path, data.seconds)
    return data


__all__ = ["cache_path", "fingerprint", "load", "save"]
