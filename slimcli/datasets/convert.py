"""The conversion driver every dataset shares.

`run_conversion` skips a dataset that is already converted with the same
settings, asks the dataset's `prepare` for a plan (it downloads, verifies and
extracts), writes the shards (parallel, resumable), then `labels.txt` and
`dataset.json`, and finally deletes the downloaded archives as the original
converters do (unless `keep_archives`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping

import tensorflow as tf

from slimcli.datasets import archives, dataset_utils, shards as shards_lib
from slimcli.datasets.spec import (DESCRIPTOR_FILENAME, DatasetSpec, read_descriptor,
                                   write_descriptor)
from slimcli.errors import SlimError
from slimcli.slim import train_dir


def default_num_threads() -> int:
    """Encoder threads: the CPU count, capped at 16."""
    return max(1, min(16, os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class VisualWakeWordsOptions:
    """The original's Visual Wake Words flags."""
    small_object_area_threshold: float = 0.005
    foreground_class_of_interest: str = "person"
    coco_train_url: str = "http://images.cocodataset.org/zips/train2014.zip"
    coco_validation_url: str = "http://images.cocodataset.org/zips/val2014.zip"
    coco_annotations_url: str = (
        "http://images.cocodataset.org/annotations/annotations_trainval2014.zip")
    coco_dirname: str = "coco_dataset"


@dataclasses.dataclass(frozen=True)
class ImagenetOptions:
    """Where the raw ImageNet copy is (build_imagenet_data.py's inputs).

    Empty paths default to the upstream file names inside `image_dir`.
    """
    train_directory: str = ""
    validation_directory: str = ""
    labels_file: str = ""
    imagenet_metadata_file: str = ""
    bounding_box_file: str = ""
    validation_labels_file: str = ""


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """Options of `slim-download` that the converters use.

    Attributes:
      mirror: base URL or local directory holding the upstream file names.
      num_threads: encoder threads.
      num_shards: shards per split (None: the dataset's default).
      train_shards: shards of the train split (wins over num_shards).
      validation_shards: shards of the validation/val split.
      num_validation: validation images (flowers, folder).
      validation_fraction: validation share (flowers, folder).
      keep_archives: keep downloaded archives and extracted files.
      image_dir: input directory (folder, imagenet).
      quiet: no progress bars.
      visualwakewords: Visual Wake Words options.
      imagenet: ImageNet options.
    """
    mirror: str | None = None
    num_threads: int = dataclasses.field(default_factory=default_num_threads)
    num_shards: int | None = None
    train_shards: int | None = None
    validation_shards: int | None = None
    num_validation: int | None = None
    validation_fraction: float | None = None
    keep_archives: bool = False
    image_dir: str | None = None
    quiet: bool = False
    visualwakewords: VisualWakeWordsOptions = VisualWakeWordsOptions()
    imagenet: ImagenetOptions = ImagenetOptions()

    def shards_for(self, split: str, default: int) -> int:
        """Shard count of `split`: per-split flag, then --num_shards, then `default`."""
        per_split = self.train_shards if split == "train" else (
            self.validation_shards if split in ("validation", "val") else None)
        count = per_split or self.num_shards or default
        if count < 1:
            raise SlimError(f"shard count {count} for split {split!r} must be at least 1; "
                            f"fix --num_shards/--train_shards/--validation_shards.")
        return count


@dataclasses.dataclass
class ConversionPlan:
    """What `prepare` hands to the driver.

    Attributes:
      shards: output files and their items, in order.
      encode: item → serialized Example (raises `SkipItem` to leave it out).
      item_key: item → JSON-able identity (for the resume fingerprint).
      labels_to_names: the labels.txt content.
      file_pattern: pattern of the outputs (`%s` = split).
      cleanup: downloaded archives and extracted directories to delete.
      notes: lines to print before converting.
      extra: more fields for dataset.json.
      check_written: called with the write result before labels.txt and
        dataset.json are written; a `SlimError` from it discards the shards
        (e.g. a class whose every image was skipped).
    """
    shards: list[shards_lib.Shard]
    encode: Callable[[Any], bytes]
    item_key: Callable[[Any], Any]
    labels_to_names: dict[int, str]
    file_pattern: str
    cleanup: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)
    check_written: Callable[[shards_lib.WriteResult], None] | None = None


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What a conversion did: records per split, skipped inputs, outputs."""
    dataset_dir: str
    records: Mapping[str, int]
    skipped: list[tuple[str, str]]
    already_existed: bool
    descriptor_path: str | None


def run_conversion(spec: DatasetSpec, dataset_dir: str, options: ConvertOptions,
                   settings: dict, prepare: Callable[[], ConversionPlan],
                   original_outputs: list[str] = ()) -> ConversionReport:
    """Converts a dataset into `dataset_dir` unless it is already there.

    Args:
      spec: the dataset.
      dataset_dir: output directory (created).
      options: the user's options.
      settings: JSON-able choices that change the output (compared with an
        existing dataset.json).
      prepare: downloads/lists the input and returns the plan.
      original_outputs: output names of a conversion made by the original
        TF-Slim (no dataset.json); if all exist, nothing is done.

    Returns:
      The report.

    Raises:
      SlimError: `dataset_dir` holds another dataset or the same one made with
        other settings, any input problem from `prepare`, or the file system
        refused a write (read-only, no space left, a file in the way): what
        was written stays unpublished (no dataset.json), so a rerun resumes.
    """
    if os.path.lexists(dataset_dir) and not os.path.isdir(dataset_dir):
        raise SlimError(f"--dataset_dir={dataset_dir} is a file, not a directory: pass a "
                        f"directory (it is created if missing) or move the file away.")
    try:
        return _convert(spec, dataset_dir, options, settings, prepare, original_outputs)
    except (OSError, tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError) as e:
        path = getattr(e, "filename", None) or dataset_dir
        raise train_dir.dir_error(path, e, flag="--dataset_dir") from None


def _convert(spec: DatasetSpec, dataset_dir: str, options: ConvertOptions, settings: dict,
             prepare: Callable[[], ConversionPlan],
             original_outputs: list[str]) -> ConversionReport:
    os.makedirs(dataset_dir, exist_ok=True)
    existing = _existing_conversion(spec, dataset_dir, settings, original_outputs)
    if existing is not None:
        return existing
    plan = prepare()
    for note in plan.notes:
        print(note)
    digest = shards_lib.fingerprint({
        "dataset": spec.name, "settings": settings,
        "shards": [[os.path.basename(s.path), [plan.item_key(i) for i in s.items]]
                   for s in plan.shards]})
    state = shards_lib.ConversionState(dataset_dir, digest)
    result = shards_lib.write_shards(plan.shards, plan.encode, state, options.num_threads,
                                     f"convert {spec.name}", options.quiet)
    if plan.check_written is not None:
        try:
            plan.check_written(result)
        except SlimError:
            state.discard()
            raise
    dataset_utils.write_label_file(plan.labels_to_names, dataset_dir)
    descriptor_path = write_descriptor(dataset_dir, _descriptor(spec, plan, result, settings,
                                                                digest))
    state.remove()
    if not options.keep_archives:
        archives.remove_paths(plan.cleanup)
    _print_summary(spec, dataset_dir, result)
    return ConversionReport(dataset_dir, result.records, result.skipped, False, descriptor_path)


def _existing_conversion(spec: DatasetSpec, dataset_dir: str, settings: dict,
                         original_outputs: list[str]) -> ConversionReport | None:
    descriptor = read_descriptor(dataset_dir)
    if descriptor is None:
        state = os.path.join(dataset_dir, shards_lib.STATE_FILENAME)
        if original_outputs and not os.path.exists(state) and all(
                os.path.isfile(os.path.join(dataset_dir, f)) for f in original_outputs):
            print("Dataset files already exist. Exiting without re-creating them.")
            return ConversionReport(dataset_dir, {}, [], True, None)
        return None
    if descriptor.get("name") != spec.name:
        raise SlimError(f"{dataset_dir} already holds the {descriptor.get('name')!r} dataset; "
                        f"choose another --dataset_dir for {spec.name!r}.")
    if descriptor.get("settings") != settings:
        old = descriptor.get("settings") or {}
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        diffs = ", ".join(f"{k}: {old.get(k)!r} → {settings.get(k)!r}" for k in changed)
        raise SlimError(f"{dataset_dir} already holds {spec.name} converted with other settings "
                        f"({diffs}); use a new --dataset_dir, or delete {DESCRIPTOR_FILENAME} "
                        f"and the record files there to convert again.")
    files = [f for split in descriptor["splits"].values() for f in split["files"]]
    if not all(os.path.isfile(os.path.join(dataset_dir, f)) for f in files):
        return None
    print("Dataset files already exist. Exiting without re-creating them.")
    records = {k: v["num_samples"] for k, v in descriptor["splits"].items()}
    return ConversionReport(dataset_dir, records, [], True,
                            os.path.join(dataset_dir, DESCRIPTOR_FILENAME))


def _descriptor(spec: DatasetSpec, plan: ConversionPlan, result: shards_lib.WriteResult,
                settings: dict, digest: str) -> dict:
    splits: dict[str, dict] = {}
    for shard in plan.shards:
        entry = splits.setdefault(shard.split, {"num_samples": result.records.get(shard.split, 0),
                                                "files": []})
        entry["files"].append(os.path.basename(shard.path))
    return {
        "name": spec.name,
        "num_classes": len(plan.labels_to_names),
        "splits": splits,
        "file_pattern": plan.file_pattern,
        "labels_file": dataset_utils.LABELS_FILENAME,
        "items_to_descriptions": dict(spec.items_to_descriptions),
        "settings": settings,
        "fingerprint": digest,
        "skipped": [list(s) for s in result.skipped],
        **plan.extra,
    }


def _print_summary(spec: DatasetSpec, dataset_dir: str, result: shards_lib.WriteResult) -> None:
    counts = ", ".join(f"{split}: {n}" for split, n in result.records.items())
    print(f"Finished converting the {spec.name} dataset into {dataset_dir} ({counts}).")
    if result.skipped:
        print(f"Skipped {len(result.skipped)} unreadable file(s):")
        for name, reason in result.skipped:
            print(f"  {name}: {reason}")
