"""The validated arguments of one input pipeline (`PipelineConfig`) and their defaults."""

from __future__ import annotations

import dataclasses
import inspect
import random
from typing import Callable, Optional, Sequence

import tensorflow as tf

from slimcli.errors import SlimError

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 1024
DEFAULT_NUM_READERS = 4
DEFAULT_DECODED_CACHE_MB = 1024

# The pipeline's functions use explicit tf.cond/tf.case, so tracing them
# without AutoGraph conversion is both correct and much faster.
graph_fn = tf.autograph.experimental.do_not_convert


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The validated arguments of one pipeline (see `build_input_pipeline`)."""

    files: tuple[str, ...]
    file_sizes: tuple[int, ...]
    image_size: int
    is_training: bool
    labels_offset: int
    num_classes: Optional[int]  # labels - labels_offset must stay below it; None: unchecked
    num_readers: int
    num_parallel_calls: int
    shuffle_buffer: int
    seed: int
    deterministic: bool
    repeat: bool
    skip_corrupt: bool
    drop_remainder: bool
    cache: bool
    decoded_cache_bytes: int  # 0: never hold decoded images in memory
    channels: int
    decode_side: int  # shorter side images are decoded down to; 0: as stored
    decoded_cache_on_disk: bool  # keep the decoded split in a file beside the records
    shard_records: tuple[int, int]  # (num_shards, index); (1, 0) = no record sharding

    @property
    def label_limit(self) -> Optional[int]:
        """The first stored label out of range, or None when unchecked."""
        return None if self.num_classes is None else self.labels_offset + self.num_classes


def text(value) -> str:
    """A file name (str, bytes or a string tensor) as str."""
    value = value.numpy() if hasattr(value, "numpy") else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def accepts_seed(fn: Callable) -> bool:
    """Whether a preprocessing function takes `seed=`."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def cache_budget_bytes(decoded_cache_mb) -> int:
    """Bytes of `decoded_cache_mb` (None → the default; 0 turns the cache off)."""
    mb = DEFAULT_DECODED_CACHE_MB if decoded_cache_mb is None else decoded_cache_mb
    return int(mb * 2**20)


def decode_side_pixels(setting: str, working_side: Callable[[int], int], image_size: int) -> int:
    """`--decode_side` as pixels: `auto` → `working_side(image_size)`, `full` → 0, or a number.

    Raises:
      SlimError: a value that is none of these.
    """
    text = str(setting).strip().lower()
    if text == "auto":
        return int(working_side(image_size))
    if text == "full":
        return 0
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise SlimError(f"--decode_side={setting!r} is not auto, full or a number of pixels; pass "
                    f"e.g. --decode_side=auto (what the preprocessing needs), --decode_side=full "
                    f"(the stored pixels) or --decode_side=180.")


def _check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        expected = "a positive int or None" if allow_none else "a positive int"
        raise SlimError(f"Invalid value for argument {name}. Expected {expected}. "
                        f"Received: {name}={value!r}")


def _check_int_at_least_0(name: str, value, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SlimError(f"Invalid value for argument {name}. Expected an int >= 0{note}. "
                        f"Received: {name}={value!r}")


def _file_sizes(files: Sequence[str]) -> tuple[int, ...]:
    sizes = []
    for path in files:
        try:
            sizes.append(tf.io.gfile.stat(path).length)
        except tf.errors.NotFoundError:
            raise SlimError(f"TFRecord file not found: {path!r}; check --dataset_dir and "
                            f"--dataset_split_name (or create it with slim-download)") from None
    return tuple(sizes)


def _shard(files: tuple[str, ...], sizes: tuple[int, ...],
           input_context: Optional[tf.distribute.InputContext]):
    """Files per worker when there are enough, else every worker reads all and shards records."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return files, sizes, (1, 0)
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= count:
        return files[index::count], sizes[index::count], (1, 0)
    return files, sizes, (count, index)


def make_config(files, batch_size, image_size, is_training, labels_offset, num_classes,
                num_readers, num_parallel_calls, shuffle_buffer, seed, input_context, repeat,
                skip_corrupt, drop_remainder, cache, channels,
                decoded_cache_mb, decode_side=0, decoded_cache_on_disk=False) -> PipelineConfig:
    """Checks the arguments of `build_input_pipeline` and fills in the defaults.

    Raises:
      SlimError: a bad argument (named, with the value received) or a missing file.
    """
    if isinstance(files, (str, bytes)):
        files = [files]
    files = tuple(text(f) for f in files)
    if not files:
        raise SlimError("no TFRecord files given to the input pipeline; check --dataset_dir "
                        "and --dataset_split_name")
    for name, value in (("batch_size", batch_size), ("image_size", image_size),
                        ("shuffle_buffer", shuffle_buffer)):
        _check_positive_int(name, value)
    _check_positive_int("num_readers", num_readers, allow_none=True)
    _check_positive_int("num_classes", num_classes, allow_none=True)
    if num_parallel_calls != AUTOTUNE:
        _check_positive_int("num_parallel_calls", num_parallel_calls, allow_none=True)
    _check_int_at_least_0("labels_offset", labels_offset)
    if channels not in (1, 3):
        raise SlimError(f"Invalid value for argument channels. Expected 1 or 3. "
                        f"Received: channels={channels!r}")
    if decoded_cache_mb is not None:
        _check_int_at_least_0("decoded_cache_mb", decoded_cache_mb, " (0 turns the cache off)")
    _check_int_at_least_0("decode_side", decode_side, " (0 decodes at the stored size)")
    files, sizes, shard_records = _shard(files, _file_sizes(files), input_context)
    return PipelineConfig(
        files=files, file_sizes=sizes, image_size=image_size, is_training=bool(is_training),
        labels_offset=labels_offset, num_classes=num_classes,
        num_readers=num_readers or DEFAULT_NUM_READERS,
        num_parallel_calls=num_parallel_calls or AUTOTUNE, shuffle_buffer=shuffle_buffer,
        seed=random.SystemRandom().randrange(2**31) if seed is None else int(seed),
        deterministic=not is_training or seed is not None,
        repeat=bool(is_training) if repeat is None else bool(repeat),
        skip_corrupt=bool(skip_corrupt),
        drop_remainder=bool(is_training) if drop_remainder is None else bool(drop_remainder),
        cache=bool(cache), channels=channels, shard_records=shard_records,
        decoded_cache_bytes=cache_budget_bytes(decoded_cache_mb), decode_side=decode_side,
        decoded_cache_on_disk=bool(decoded_cache_on_disk))


__all__ = ["AUTOTUNE", "DEFAULT_DECODED_CACHE_MB", "DEFAULT_NUM_READERS",
           "DEFAULT_SHUFFLE_BUFFER", "PipelineConfig", "accepts_seed", "cache_budget_bytes",
           "decode_side_pixels", "graph_fn", "make_config", "text"]
