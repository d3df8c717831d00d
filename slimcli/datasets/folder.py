"""`folder`: one's own `class_name/*.jpg|png|...` tree → TFRecords.

Same record format and split procedure as flowers (sorted class folders →
labels, seed-0 shuffle, the first N images validate). Files are found
recursively inside each class folder; hidden files are ignored, as are files
without an image extension (their count is printed). JPEG and PNG bytes are
stored as they are; other formats are re-encoded as PNG. Unreadable images
are reported by name and skipped. An empty class folder is an error: skipping
it would silently renumber every later class.

Output: `folder_{split}_{i:05d}-of-{n:05d}.tfrecord`, `labels.txt` and
`dataset.json` (which records the actual split sizes, so `slim-train
--dataset_name=folder --dataset_dir=...` works unchanged).
"""

from __future__ import annotations

import math
import os

from slimcli.datasets import image_tree
from slimcli.datasets.convert import (ConversionPlan, ConversionReport, ConvertOptions,
                                      run_conversion)
from slimcli.datasets.shards import contiguous_shards, fingerprint
from slimcli.datasets.spec import SHARD_OPTIONS, VALIDATION_SPLIT_OPTIONS, DatasetSpec
from slimcli.errors import SlimError

DEFAULT_VALIDATION_FRACTION = 0.1
SHARD_TARGET_BYTES = 100 * 1024 * 1024
FILE_PATTERN = "folder_%s_*.tfrecord"


def output_name(split: str, shard_id: int, num_shards: int) -> str:
    """`folder_train_00000-of-00003.tfrecord`."""
    return f"folder_{split}_{shard_id:05d}-of-{num_shards:05d}.tfrecord"


def _check_dirs(image_dir: str | None, dataset_dir: str) -> str:
    if not image_dir:
        raise SlimError("--dataset_name=folder needs --image_dir=DIR (one sub-folder of images "
                        "per class).")
    image_dir = os.path.abspath(image_dir)
    out = os.path.abspath(dataset_dir)
    if out == image_dir or out.startswith(image_dir + os.sep):
        raise SlimError(f"--dataset_dir={dataset_dir!r} is inside --image_dir={image_dir!r}; "
                        f"put the output outside the image tree.")
    return image_dir


def convert(dataset_dir: str, options: ConvertOptions) -> ConversionReport:
    """Converts the tree at `options.image_dir` into `dataset_dir`.

    Args:
      dataset_dir: output directory.
      options: the user's options (`image_dir`, validation size, shards).

    Returns:
      The conversion report.

    Raises:
      SlimError: missing/empty image tree, empty class folder, bad split size.
    """
    image_dir = _check_dirs(options.image_dir, dataset_dir)
    tree = image_tree.list_image_tree(image_dir)
    total = len(tree.items)
    fraction = options.validation_fraction
    if options.num_validation is None and fraction is None:
        fraction = DEFAULT_VALIDATION_FRACTION
    count = image_tree.validation_count(total, options.num_validation, fraction, 0)
    train, validation = image_tree.shuffle_split(tree.items, count)
    splits = {"train": train, "validation": validation} if count else {"train": train}
    sizes = _split_bytes(tree, splits)
    num_shards = {s: options.shards_for(s, _default_shards(sizes[s])) for s in splits}
    settings = {"image_dir": image_dir, "num_validation": count, "num_shards": num_shards,
                "listing": fingerprint(tree.items)}

    def prepare() -> ConversionPlan:
        shards = []
        for split, items in splits.items():
            paths = [os.path.join(dataset_dir, output_name(split, i, num_shards[split]))
                     for i in range(num_shards[split])]
            shards.extend(contiguous_shards(split, items, paths))
        notes = [f"{image_dir}: {total} images in {len(tree.class_names)} classes; "
                 f"{len(train)} train, {len(validation)} validation."]
        if tree.ignored:
            notes.append(f"ignored {len(tree.ignored)} file(s) without an image extension, "
                         f"e.g. {tree.ignored[0]}")
        return ConversionPlan(
            shards=shards, encode=image_tree.make_encoder(image_dir), item_key=list,
            labels_to_names=dict(enumerate(tree.class_names)), file_pattern=FILE_PATTERN,
            notes=notes, extra={"source": image_dir},
            check_written=lambda result: image_tree.check_readable_classes(tree, result.skipped))

    return run_conversion(SPEC, dataset_dir, options, settings, prepare)


def _split_bytes(tree: image_tree.ImageTree, splits: dict) -> dict[str, int]:
    size_of = {}
    for rel, _ in tree.items:
        size_of[rel] = os.path.getsize(os.path.join(tree.root, rel))
    return {s: sum(size_of[rel] for rel, _ in items) for s, items in splits.items()}


def _default_shards(num_bytes: int) -> int:
    """About 100 MiB per shard (at least one)."""
    return max(1, int(math.ceil(num_bytes / SHARD_TARGET_BYTES)))


SPEC = DatasetSpec(
    name="folder",
    file_pattern=FILE_PATTERN,
    splits_to_sizes={},
    num_classes=0,
    items_to_descriptions={"image": "A color or grayscale image of varying size.",
                           "label": "A single integer: the class folder's index in sorted order"},
    convert=convert,
    description="Your own images: --image_dir=DIR with one sub-folder per class.",
    download_options=(*VALIDATION_SPLIT_OPTIONS, *SHARD_OPTIONS, "image_dir"),
)
