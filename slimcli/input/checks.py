"""The input pipeline's checks of its records, run inside tf.data, and their one-line errors.

Three things can be wrong with a record: the TFRecord framing (truncated file,
CRC mismatch: the rest of that file cannot be read), the `tf.train.Example` or
its image (not parseable, not decodable), or a missing `image/class/label`. By
default the pipeline then fails with the file name and the record index
(0-based, within the file). With `skip_corrupt=True` it skips such records,
logs them and counts them in `PipelineStats`. A label outside
[labels_offset, labels_offset + num_classes) is always an error: it is the
dataset's or the flags' mistake, not a damaged record.

The checks run vectorized over blocks of decoded records (`check_records`).
They fail by raising `InvalidArgumentError` whose text holds a tagged message;
`pipeline_error_message` gets it back for the commands' one-line `error:`.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, NamedTuple, Optional

import tensorflow as tf

from slimcli.input.config import graph_fn, text
from slimcli.input.records import IMAGE_KEY, LABEL_KEY


class Status:
    """Record status codes carried through the pipeline (ints, for tensors)."""

    DROP = -1          # a good end-of-file marker: not a record
    OK = 0
    END = 1            # end-of-stream marker (finite streams)
    BAD_FRAMING = 2    # the file is truncated or corrupt from this record on
    NO_LABEL = 3       # the Example has no image/class/label
    DECODE_FAILED = 4  # not a parseable Example with a decodable image (or preprocessing failed)


REASONS = {
    Status.BAD_FRAMING: "truncated or corrupt TFRecord data (short read or CRC mismatch); "
                        "the rest of this file cannot be read",
    Status.NO_LABEL: f"the tf.train.Example has no {LABEL_KEY}",
    Status.DECODE_FAILED: f"not a tf.train.Example with a decodable {IMAGE_KEY}, or its "
                          "preprocessing failed",
}
MAX_CORRUPT_IN_A_ROW = 1000
_INDEX_BITS = 40  # `where` = file number << 40 | record index within the file
# Tags the pipeline's own run-time errors inside TensorFlow's InvalidArgumentError text.
_ERROR_TAG = "slimcli input pipeline: "


class CorruptRecord(NamedTuple):
    """One skipped record: file, 0-based index within the file, reason."""

    file: str
    index: int
    reason: str


class PipelineStats:
    """What a pipeline skipped with `skip_corrupt=True`; thread-safe.

    Pass one to `build_input_pipeline(..., stats=stats)` and read
    `stats.skipped` at any time. The count covers records the pipeline has
    read so far, which can run ahead of the batches consumed by the prefetch
    depth; a corrupt record is counted each time it is read (once per epoch).

    Attributes:
      skipped: records skipped so far.
      examples: the first `max_examples` skipped records.
    """

    def __init__(self, max_examples: int = 100, max_log_lines: int = 20):
        self.skipped = 0
        self.examples: list[CorruptRecord] = []
        self._max_examples = max_examples
        self._max_log_lines = max_log_lines
        self._taken = 0
        self._lock = threading.Lock()

    def add(self, files, indices, reasons) -> int:
        """Records skipped records (called from the pipeline); returns the total."""
        with self._lock:
            for file, index, reason in zip(files, indices, reasons):
                record = CorruptRecord(text(file), int(index), REASONS[int(reason)])
                self.skipped += 1
                if len(self.examples) < self._max_examples:
                    self.examples.append(record)
                if self.skipped <= self._max_log_lines:
                    logging.warning("skipped corrupt record %d of %s: %s",
                                    record.index, record.file, record.reason)
                elif self.skipped % 1000 == 0:
                    logging.warning("skipped %d corrupt records so far", self.skipped)
            return self.skipped

    def take_skipped(self) -> int:
        """The count of skipped records since the last call (for one evaluation pass)."""
        with self._lock:
            count, self._taken = self.skipped - self._taken, self.skipped
            return count

    def __repr__(self) -> str:
        return f"PipelineStats(skipped={self.skipped})"


def record_where(number: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """A record's place as one int64: its file's number and its index within the file."""
    return number * (1 << _INDEX_BITS) + index


def located(where: tf.Tensor, files: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(file names, record indices) of `where` values; -1 (unknown) gives ("?", -1)."""
    known = where >= 0
    number = tf.where(known, where // (1 << _INDEX_BITS), 0)
    return (tf.where(known, tf.gather(files, number), "?"),
            tf.where(known, where % (1 << _INDEX_BITS), -1))


def pipeline_error_message(error: BaseException) -> str | None:
    """The pipeline's own message inside a TensorFlow error it raised, else None.

    The checks of the pipeline run inside tf.data, so they surface as
    `InvalidArgumentError` with an assertion wrapper and the op's name; the
    commands print just this message as their one-line error.
    """
    message = getattr(error, "message", None) or str(error)
    start = message.find(_ERROR_TAG)
    if start < 0:
        return None
    line = message[start + len(_ERROR_TAG):].split("\n", 1)[0]
    line = line[:line.rfind("]")] if "]" in line else line
    return line.replace("\\'", "'")  # the assertion's text escapes quotes


def fail(condition: tf.Tensor, message_fn: Callable[[], tf.Tensor]) -> tf.Tensor:
    """Raises InvalidArgumentError(message_fn()) at run time where `condition` holds."""
    def raise_error():
        message = tf.strings.join([_ERROR_TAG, message_fn()])
        check = tf.debugging.Assert(tf.logical_not(condition), [message], summarize=1)
        with tf.control_dependencies([check]):
            return tf.constant(True)

    return tf.cond(condition, raise_error, lambda: tf.constant(True))


def _report_corrupt(wheres: tf.Tensor, reasons: tf.Tensor, files: tf.Tensor, skip_corrupt: bool,
                    stats: PipelineStats) -> tf.Tensor:
    """Fails on the first corrupt record, or counts and logs them all."""
    files, indices = located(wheres, files)
    if skip_corrupt:
        total = tf.py_function(stats.add, [files, indices, reasons], Tout=tf.int64)
        with tf.control_dependencies([total]):
            return tf.constant(True)
    reason_text = tf.gather(tf.constant([REASONS.get(code, "") for code in range(5)]), reasons[0])
    return fail(tf.size(reasons) > 0, lambda: tf.strings.join([
        "corrupt record ", tf.strings.as_string(indices[0]), " of ", files[0], ": ", reason_text,
        " (TensorFlow's own message is in the warning logged just before). Fix or remove it, "
        "or pass skip_corrupt=True (--skip_corrupt) to skip and count corrupt records."]))


def _first(mask: tf.Tensor) -> tf.Tensor:
    """Index of the first True of a boolean vector; 0 when there is none (so the
    vectors indexed with it get one padding element for empty blocks)."""
    return tf.argmax(tf.cast(mask, tf.int32), output_type=tf.int64)


def _check_labels(keep, label, where, files, labels_offset: int,
                  label_limit: Optional[int]) -> tf.Tensor:
    """Fails on the first kept record whose label is below the offset or at the limit."""
    def fail_at(mask, explanation: str):
        at = _first(mask)
        file, index = located(where[at], files)
        return fail(tf.reduce_any(mask), lambda: tf.strings.join([
            "record ", tf.strings.as_string(index), " of ", file, " has ", LABEL_KEY, "=",
            tf.strings.as_string(tf.concat([label, [-1]], 0)[at]), explanation]))

    below = fail_at(tf.logical_and(keep, label < labels_offset), (
        f", below labels_offset={labels_offset}; labels must stay >= 0 after the offset "
        "is subtracted (use labels_offset=0 for 0-based labels)"))
    if label_limit is None:
        return below
    num_classes = label_limit - labels_offset
    above = fail_at(tf.logical_and(keep, label >= label_limit), (
        f", out of range for {num_classes} classes: labels must be below labels_offset + "
        f"num_classes = {labels_offset} + {num_classes}. Set --labels_offset to match the "
        "labels, or correct the dataset's class count (num_classes in its dataset.json)"))
    return tf.group(below, above)


def check_records(blocks: tf.data.Dataset, files: tf.Tensor, skip_corrupt: bool,
                  stats: PipelineStats, labels_offset: int,
                  label_limit: Optional[int]) -> tf.data.Dataset:
    """Reports bad statuses, counts corrupt runs, checks labels; keeps good records.

    Vectorized over each block of decoded records (dicts of `where`, `status`,
    `image`, `label`). Yields blocks of `(images, labels - labels_offset)` of
    the good records (possibly empty); a label that the offset makes negative,
    or one at or above `label_limit` (when not None), is an error.
    """
    def step(corrupt_run, block):
        status, label, where = block["status"], block["label"], block["where"]
        bad = status >= Status.BAD_FRAMING
        handled = tf.cond(tf.reduce_any(bad), lambda: _report_corrupt(
            tf.boolean_mask(where, bad), tf.boolean_mask(status, bad), files, skip_corrupt,
            stats), lambda: tf.constant(True))
        # Corrupt records in a row, before each record's own reset: with
        # skip_corrupt, all-corrupt data would otherwise loop forever in a
        # repeated (training) stream. A kept record resets the run.
        keep = tf.equal(status, Status.OK)
        counted = tf.math.cumsum(tf.cast(bad, tf.int64))
        keeps_before = tf.math.cumsum(tf.cast(keep, tf.int64), exclusive=True)
        # The count at the last kept record before each one (-run carried in before the first).
        since = tf.gather(tf.concat([[-corrupt_run], tf.boolean_mask(counted, keep)], 0),
                          keeps_before)
        run = counted - since
        too_many = run >= MAX_CORRUPT_IN_A_ROW
        # An empty block (a heartbeat) has no record to name: located(-1) is "?".
        where = tf.concat([where, [-1]], 0)
        file, index = located(where[_first(too_many)], files)
        too_many = fail(tf.reduce_any(too_many), lambda: tf.strings.join([
            f"{MAX_CORRUPT_IN_A_ROW} or more records in a row were corrupt (up to record ",
            tf.strings.as_string(index), " of ", file,
            "); these files do not hold slim TFRecords of images (see the logged warnings)"]))
        labels_ok = _check_labels(keep, label, where, files, labels_offset, label_limit)
        with tf.control_dependencies([handled, too_many, labels_ok]):
            images, labels = tf.cond(
                tf.reduce_all(keep), lambda: (tf.identity(block["image"]), tf.identity(label)),
                lambda: (tf.boolean_mask(block["image"], keep), tf.boolean_mask(label, keep)))
        last_kept = tf.concat([[False], keep], 0)[-1]
        corrupt_run = tf.where(last_kept, tf.constant(0, tf.int64),
                               tf.concat([[corrupt_run], run], 0)[-1])
        return corrupt_run, (images, labels - labels_offset)

    return blocks.scan(tf.constant(0, tf.int64), graph_fn(step))


__all__ = ["CorruptRecord", "MAX_CORRUPT_IN_A_ROW", "PipelineStats", "REASONS", "Status",
           "check_records", "fail", "located", "pipeline_error_message", "record_where"]
