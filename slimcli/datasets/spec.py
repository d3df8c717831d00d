"""Dataset specs, the `dataset.json` descriptor, and `DatasetSplit` lookup.

A spec holds what the original's `datasets/<name>.py` held (file pattern,
split sizes, number of classes, item descriptions) plus its converter. A
`dataset.json` written by a slimcli converter next to the records wins over
the spec's upstream sizes, so converted subsets and folders of one's own
images need no code change in training or evaluation.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any, Callable, Mapping

from slimcli import fileio
from slimcli.datasets import dataset_utils
from slimcli.errors import SlimError

DESCRIPTOR_FILENAME = "dataset.json"
DESCRIPTOR_FORMAT = "slimcli-dataset/1"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Everything about one dataset.

    Attributes:
      name: the `--dataset_name`.
      file_pattern: `%s` is the split name, relative to the dataset directory.
      splits_to_sizes: upstream number of records per split (empty for
        `folder`, whose splits come from its descriptor).
      num_classes: number of labels (0 when only the descriptor knows).
      items_to_descriptions: what each decoded item is.
      split_aliases: other accepted split names → split name.
      convert: `convert(dataset_dir, options) -> ConversionReport`, or None.
      description: one line for `--help` and docs.
      download_options: the slim-download settings (fields of
        `slimcli.download.DownloadConfig`) that only some datasets read and this
        one does; such a setting given for a dataset that does not list it is an
        error naming the datasets that take it.
    """
    name: str
    file_pattern: str
    splits_to_sizes: Mapping[str, int]
    num_classes: int
    items_to_descriptions: Mapping[str, str]
    split_aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    convert: Callable[..., Any] | None = None
    description: str = ""
    download_options: tuple[str, ...] = ()


# Groups of `download_options` that several datasets share.
SHARD_OPTIONS = ("num_shards", "train_shards", "validation_shards")
VALIDATION_SPLIT_OPTIONS = ("num_validation", "validation_fraction")


@dataclasses.dataclass(frozen=True)
class DatasetSplit:
    """One split of a dataset on disk, ready for an input pipeline.

    Attributes:
      name: dataset name.
      split_name: split name (aliases resolved).
      dataset_dir: the directory holding the records.
      files: sorted paths of the TFRecord files.
      num_samples: number of records in the split.
      num_classes: number of labels.
      labels_to_names: from labels.txt, or None without one.
      items_to_descriptions: what each decoded item is.
      file_pattern: the glob the files were found with.
      from_descriptor: whether sizes came from dataset.json.
    """
    name: str
    split_name: str
    dataset_dir: str
    files: list[str]
    num_samples: int
    num_classes: int
    labels_to_names: dict[int, str] | None
    items_to_descriptions: Mapping[str, str]
    file_pattern: str
    from_descriptor: bool = False


def read_descriptor(dataset_dir: str) -> dict | None:
    """The parsed dataset.json of `dataset_dir`, or None if there is none.

    Raises:
      SlimError: the file exists but is not a slimcli descriptor.
    """
    path = os.path.join(dataset_dir, DESCRIPTOR_FILENAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "r", encoding="utf-8") as f:
            descriptor = json.load(f)
    except ValueError as e:
        raise SlimError(f"{path} is not valid JSON ({e}); delete it and rerun slim-download "
                        f"to rewrite it.") from None
    if not isinstance(descriptor, dict) or descriptor.get("format") != DESCRIPTOR_FORMAT:
        raise SlimError(f"{path} is not a slimcli dataset descriptor (format "
                        f"{DESCRIPTOR_FORMAT!r}); move it away or rerun slim-download.")
    return descriptor


def write_descriptor(dataset_dir: str, descriptor: dict) -> str:
    """Writes dataset.json atomically; returns its path."""
    return fileio.write_json(os.path.join(dataset_dir, DESCRIPTOR_FILENAME),
                             {"format": DESCRIPTOR_FORMAT, **descriptor}, sort_keys=True)


def resolve_split(spec: DatasetSpec, split_name: str, known: list[str]) -> str:
    """The canonical split name, or a SlimError listing the known splits."""
    split = spec.split_aliases.get(split_name, split_name)
    if split not in known:
        aliases = "".join(f", {a} (= {s})" for a, s in spec.split_aliases.items() if s in known)
        raise SlimError(f"unknown split --dataset_split_name={split_name!r} for dataset "
                        f"{spec.name!r}. Known splits: {', '.join(known)}{aliases}.")
    return split


def split_from_spec(spec: DatasetSpec, split_name: str, dataset_dir: str,
                    file_pattern: str | None, descriptor: dict | None) -> DatasetSplit:
    """Builds a DatasetSplit from a spec and an optional descriptor."""
    if descriptor is not None and descriptor.get("name") != spec.name:
        raise SlimError(f"{dataset_dir} holds the {descriptor.get('name')!r} dataset "
                        f"({DESCRIPTOR_FILENAME}), not {spec.name!r}; pass "
                        f"--dataset_name={descriptor.get('name')}.")
    splits = descriptor["splits"] if descriptor else dict(spec.splits_to_sizes)
    if not splits:
        raise SlimError(f"{dataset_dir} has no {DESCRIPTOR_FILENAME}: dataset {spec.name!r} "
                        f"exists only once converted; run `slim-download "
                        f"--dataset_name={spec.name} --dataset_dir={dataset_dir} ...` first.")
    split = resolve_split(spec, split_name, list(splits))
    pattern = file_pattern or (descriptor or {}).get("file_pattern") or spec.file_pattern
    pattern = pattern % split if "%s" in pattern else pattern
    if descriptor and not file_pattern:
        files = _listed_files(spec.name, dataset_dir, splits[split]["files"])
    else:
        files = _find_files(spec.name, dataset_dir, pattern, split)
    if descriptor:
        num_samples = int(splits[split]["num_samples"])
        num_classes = int(descriptor["num_classes"])
        items = descriptor.get("items_to_descriptions", spec.items_to_descriptions)
    else:
        num_samples, num_classes = int(splits[split]), spec.num_classes
        items = spec.items_to_descriptions
    labels = (dataset_utils.read_label_file(dataset_dir)
              if dataset_utils.has_labels(dataset_dir) else None)
    return DatasetSplit(spec.name, split, dataset_dir, files, num_samples, num_classes, labels,
                        dict(items), pattern, descriptor is not None)


def _find_files(name: str, dataset_dir: str, pattern: str, split: str) -> list[str]:
    full = pattern if os.path.isabs(pattern) else os.path.join(dataset_dir, pattern)
    files = sorted(p for p in glob.glob(full) if os.path.isfile(p))
    if not files:
        raise SlimError(f"no TFRecord files match {full!r} (dataset {name!r}, split {split!r}); "
                        f"run `slim-download --dataset_name={name} --dataset_dir={dataset_dir}` "
                        f"or fix --dataset_dir / the file pattern.")
    return files


def _listed_files(name: str, dataset_dir: str, listed: list[str]) -> list[str]:
    """The files dataset.json lists for a split (stray files matching the pattern are ignored)."""
    files = [os.path.join(dataset_dir, f) for f in listed]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing or not files:
        what = f"{missing[0]!r} is missing" if missing else "no file is listed"
        raise SlimError(f"{DESCRIPTOR_FILENAME} in {dataset_dir} lists the records of this split "
                        f"but {what}; rerun `slim-download --dataset_name={name} "
                        f"--dataset_dir={dataset_dir} ...` to write them again.")
    return sorted(files)
