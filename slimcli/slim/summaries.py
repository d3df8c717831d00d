"""TensorBoard summaries without the tensorboard package.

`tf.summary.scalar/histogram/image` need tensorboard installed; these write
the same records through `tf.summary.write` with the TensorBoard plugin
layouts (scalars: a float scalar; histograms: `[k, 3]` rows of left edge,
right edge, count; images: `[width, height, png, ...]` strings), so the event
files read the same in TensorBoard. They write to the default writer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

__all__ = ["scalar", "histogram", "image"]


def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    return meta


def scalar(name: str, value: Any, step: int | None = None) -> bool:
    """Writes a float scalar."""
    return tf.summary.write(name, tf.constant(float(value), tf.float32), step=step,
                            metadata=_metadata("scalars"))


def histogram(name: str, values: Any, step: int | None = None, buckets: int = 30) -> bool:
    """Writes a histogram of `values` (any shape) in `buckets` equal-width buckets."""
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        table = np.zeros((0, 3))
    else:
        lo, hi = float(data.min()), float(data.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(data, bins=buckets, range=(lo, hi))
        table = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
    return tf.summary.write(name, tf.constant(table, tf.float64), step=step,
                            metadata=_metadata("histograms"))


def image(name: str, images: Any, step: int | None = None, max_outputs: int = 3) -> bool:
    """Writes up to `max_outputs` images ([N, H, W, C] floats in [0, 1] or uint8)."""
    batch = tf.convert_to_tensor(images)[:max_outputs]
    if batch.dtype != tf.uint8:
        batch = tf.image.convert_image_dtype(tf.clip_by_value(tf.cast(batch, tf.float32), 0, 1),
                                             tf.uint8, saturate=True)
    pngs = [tf.io.encode_png(img) for img in tf.unstack(batch)]
    height, width = int(batch.shape[1]), int(batch.shape[2])
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height)), *pngs])
    return tf.summary.write(name, tensor, step=step, metadata=_metadata("images"))
