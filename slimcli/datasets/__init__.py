"""Datasets: specs, converters (`slim-download`) and split lookup for train/eval.

    split = get_dataset("flowers", "train", "/data/flowers")
    split.files, split.num_samples, split.num_classes, split.labels_to_names

Every dataset is one `DatasetSpec` in `DATASETS`; a `dataset.json` written by
the converter next to the records wins over the spec's upstream sizes.
"""

from __future__ import annotations

import os

from slimcli.datasets import (cifar10, dataset_utils, flowers, folder, imagenet, mnist,
                              visualwakewords)
from slimcli.datasets.shards import STATE_FILENAME
from slimcli.datasets.spec import DatasetSpec, DatasetSplit, read_descriptor, split_from_spec
from slimcli.errors import SlimError
from slimcli.registry import Registry

DATASETS: Registry[DatasetSpec] = Registry("dataset", "--dataset_name")
for _module in (cifar10, flowers, folder, imagenet, mnist, visualwakewords):
    DATASETS.register(_module.SPEC.name, _module.SPEC)


def get_dataset(name: str, split_name: str, dataset_dir: str,
                file_pattern: str | None = None) -> DatasetSplit:
    """Finds one split of a converted dataset.

    Args:
      name: the dataset name (`flowers`, `cifar10`, `mnist`, `imagenet`,
        `visualwakewords`, `folder`).
      split_name: `train`, `validation`, `test`, ... (the dataset's splits).
      dataset_dir: the directory holding the records.
      file_pattern: overrides the file pattern (`%s` = split name).

    Returns:
      The split: sorted files, number of samples and classes, label names.

    Raises:
      SlimError: unknown dataset or split (known ones listed), no matching
        files, or an unfinished conversion in `dataset_dir`.
    """
    spec = DATASETS.get(name)
    if not os.path.isdir(dataset_dir):
        raise SlimError(f"--dataset_dir={dataset_dir!r} does not exist; run `slim-download "
                        f"--dataset_name={name} --dataset_dir={dataset_dir}` first.")
    descriptor = read_descriptor(dataset_dir)
    if descriptor is None and os.path.exists(os.path.join(dataset_dir, STATE_FILENAME)):
        raise SlimError(f"the conversion into {dataset_dir} did not finish; rerun the same "
                        f"slim-download command to complete it.")
    return split_from_spec(spec, split_name, dataset_dir, file_pattern, descriptor)


__all__ = ["DATASETS", "DatasetSpec", "DatasetSplit", "dataset_utils", "get_dataset"]
