"""Flowers: flower_photos.tgz → `flowers_{split}_{i:05d}-of-00005.tfrecord`.

As the original: class names are the sorted sub-folders of `flower_photos/`,
the sorted photo list is shuffled with seed 0, the first 350 photos are the
validation split and the rest train, each split in 5 shards of
`ceil(n / 5)` consecutive photos, JPEG bytes stored as they are (`jpg`).

An archive with fewer photos than the upstream 3,670 (for instance a small
mirror copy) keeps the upstream validation share, 350/3670, rounded; pass
--num_validation or --validation_fraction to choose otherwise.
"""

from __future__ import annotations

import os

from slimcli.datasets import archives, fetch, image_tree
from slimcli.datasets.convert import (ConversionPlan, ConversionReport, ConvertOptions,
                                      run_conversion)
from slimcli.datasets.shards import contiguous_shards
from slimcli.datasets.spec import SHARD_OPTIONS, VALIDATION_SPLIT_OPTIONS, DatasetSpec
from slimcli.errors import SlimError

DATA_URL = "https://download.tensorflow.org/example_images/flower_photos.tgz"
NUM_VALIDATION = 350
UPSTREAM_NUM_PHOTOS = 3670
NUM_SHARDS = 5
SPLITS = ("train", "validation")


def output_name(split: str, shard_id: int, num_shards: int = NUM_SHARDS) -> str:
    """`flowers_train_00000-of-00005.tfrecord`."""
    return f"flowers_{split}_{shard_id:05d}-of-{num_shards:05d}.tfrecord"


def upstream_validation_count(total: int) -> int:
    """350, or the same share of a smaller archive (at least 1)."""
    if total >= UPSTREAM_NUM_PHOTOS:
        return NUM_VALIDATION
    return max(1, int(round(total * NUM_VALIDATION / UPSTREAM_NUM_PHOTOS)))


def convert(dataset_dir: str, options: ConvertOptions) -> ConversionReport:
    """Downloads flower_photos.tgz (or takes it from --mirror) and converts it.

    Args:
      dataset_dir: output directory.
      options: the user's options.

    Returns:
      The conversion report.

    Raises:
      SlimError: download, checksum, archive or split-size problems.
    """
    num_shards = {s: options.shards_for(s, NUM_SHARDS) for s in SPLITS}
    settings = {"num_validation": options.num_validation,
                "validation_fraction": options.validation_fraction, "num_shards": num_shards}
    originals = [output_name(s, i) for s in SPLITS for i in range(NUM_SHARDS)]

    def prepare() -> ConversionPlan:
        archive = fetch.fetch(DATA_URL, dataset_dir, options.mirror, options.quiet)
        with archives.checked_extraction(archive.path, archive.sha256, dataset_dir,
                                         archive.fix) as (_, marker):
            root = os.path.join(dataset_dir, "flower_photos")
            if not os.path.isdir(root):
                raise SlimError(f"{archive.path} has no flower_photos/ folder; it is not the "
                                f"flowers archive. Check --mirror.")
            return _plan(dataset_dir, root, options, num_shards,
                         [archive.path] * archive.owned + [root, marker])

    return run_conversion(SPEC, dataset_dir, options, settings, prepare, originals)


def _plan(dataset_dir: str, root: str, options: ConvertOptions, num_shards: dict[str, int],
          cleanup: list[str]) -> ConversionPlan:
    tree = image_tree.list_image_tree(root)
    total = len(tree.items)
    default = upstream_validation_count(total)
    count = image_tree.validation_count(total, options.num_validation,
                                        options.validation_fraction, default)
    notes = []
    if options.num_validation is None and options.validation_fraction is None \
            and count != NUM_VALIDATION:
        notes.append(f"flower_photos has {total} photos (upstream {UPSTREAM_NUM_PHOTOS}): "
                     f"taking {count} for validation, the upstream share "
                     f"{NUM_VALIDATION}/{UPSTREAM_NUM_PHOTOS}; pass --num_validation to choose.")
    train, validation = image_tree.shuffle_split(tree.items, count)
    shards = []
    for split, items in (("train", train), ("validation", validation)):
        paths = [os.path.join(dataset_dir, output_name(split, i, num_shards[split]))
                 for i in range(num_shards[split])]
        shards.extend(contiguous_shards(split, items, paths))
    return ConversionPlan(
        shards=shards, encode=image_tree.make_encoder(root), item_key=list,
        labels_to_names=dict(enumerate(tree.class_names)),
        file_pattern="flowers_%s_*.tfrecord", cleanup=cleanup, notes=notes,
        extra={"source": os.path.basename(DATA_URL)},
        check_written=lambda result: image_tree.check_readable_classes(tree, result.skipped))


SPEC = DatasetSpec(
    name="flowers",
    file_pattern="flowers_%s_*.tfrecord",
    splits_to_sizes={"train": 3320, "validation": 350},
    num_classes=5,
    items_to_descriptions={"image": "A color image of varying size.",
                           "label": "A single integer between 0 and 4"},
    convert=convert,
    description="5 flower classes from flower_photos.tgz (3,320 train / 350 validation).",
    download_options=(*VALIDATION_SPLIT_OPTIONS, *SHARD_OPTIONS, "mirror"),
)
