"""slim-download as a library: convert a dataset to TFRecords, or fetch a model-zoo checkpoint.

    download(DownloadConfig(dataset_name="flowers", dataset_dir="/data/flowers"))
    download(DownloadConfig(checkpoint="inception_v3", checkpoint_dir="/data/ckpt"))

The settings that only some datasets read are listed on each dataset's
`DatasetSpec.download_options`; giving one for another dataset is an error.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from slimcli.config import option
from slimcli.datasets import DATASETS, DatasetSpec
from slimcli.datasets import convert as convert_lib
from slimcli.datasets.convert import ImagenetOptions, VisualWakeWordsOptions
from slimcli.errors import SlimError

__all__ = ["DownloadConfig", "download"]

_VWW = VisualWakeWordsOptions
_IMAGENET_HELP = {
    "train_directory": "<image_dir>/train",
    "validation_directory": "<image_dir>/validation",
    "labels_file": "<image_dir>/imagenet_lsvrc_2015_synsets.txt",
    "imagenet_metadata_file": "<image_dir>/imagenet_metadata.txt",
    "bounding_box_file": "<image_dir>/imagenet_2012_bounding_boxes.csv",
    "validation_labels_file": "<image_dir>/imagenet_2012_validation_synset_labels.txt",
}


def _imagenet(name: str) -> Any:
    return option(getattr(ImagenetOptions, name), f"imagenet: default {_IMAGENET_HELP[name]}.")


@dataclasses.dataclass
class DownloadConfig:
    """The settings of `slim-download`: the original download_and_convert_data flags, then
    slimcli's. Field names are the flag names; each field's help is its flag's `--help` text.
    """
    dataset_name: str | None = option(None, "The dataset to convert: flowers, cifar10, mnist, "
                                            "visualwakewords, imagenet or folder.")
    dataset_dir: str | None = option(None, "Where the TFRecords and labels.txt are written.")
    small_object_area_threshold: float = option(
        _VWW.small_object_area_threshold,
        "visualwakewords: objects below this fraction of the image area are ignored.")
    foreground_class_of_interest: str = option(
        _VWW.foreground_class_of_interest, "visualwakewords: the COCO category that makes "
                                           "label 1.")
    coco_train_url: str = option(_VWW.coco_train_url, "visualwakewords: COCO train zip.")
    coco_validation_url: str = option(_VWW.coco_validation_url,
                                      "visualwakewords: COCO validation zip.")
    coco_annotations_url: str = option(_VWW.coco_annotations_url,
                                       "visualwakewords: COCO annotations zip.")
    coco_dirname: str = option(_VWW.coco_dirname, "visualwakewords: sub-folder of --dataset_dir "
                                                  "for the COCO download.")
    # New in slimcli.
    mirror: str | None = option(None, "Base URL or local directory holding the upstream archive "
                                      "file names (used instead of the original URLs).")
    image_dir: str | None = option(None, "folder: one sub-folder of images per class. imagenet: "
                                         "the raw copy (train/, validation/, synset files).")
    validation_fraction: float | None = option(None, "flowers/folder: share of images for "
                                                     "validation (folder default 0.1).")
    num_validation: int | None = option(None, "flowers/folder: number of validation images "
                                              "(flowers default 350).", lower_bound=0)
    num_shards: int | None = option(None, "Shards per split (default: the dataset's own).",
                                    lower_bound=1)
    train_shards: int | None = option(None, "Shards of the train split.", lower_bound=1)
    validation_shards: int | None = option(None, "Shards of the validation split.",
                                           lower_bound=1)
    num_threads: int | None = option(None, "Encoder threads (default: CPU count, max 16).",
                                     lower_bound=1)
    keep_archives: bool = option(False, "Keep downloaded archives and extracted files.")
    progress: bool = option(True, "Show progress bars.")
    checkpoint: str | None = option(None, "Model-zoo checkpoint to download (e.g. inception_v3), "
                                          "or `list`.")
    checkpoint_dir: str | None = option(None, "Where --checkpoint is unpacked.")
    train_directory: str = _imagenet("train_directory")
    validation_directory: str = _imagenet("validation_directory")
    labels_file: str = _imagenet("labels_file")
    imagenet_metadata_file: str = _imagenet("imagenet_metadata_file")
    bounding_box_file: str = _imagenet("bounding_box_file")
    validation_labels_file: str = _imagenet("validation_labels_file")

    def validate(self) -> None:
        """Raises SlimError naming a missing or misplaced setting and the fix."""
        if self.checkpoint and self.checkpoint != "list" and not self.checkpoint_dir:
            raise SlimError(f"--checkpoint={self.checkpoint} needs --checkpoint_dir=DIR to "
                            f"unpack into.")
        if not self.dataset_name:
            if self.checkpoint:
                return
            raise SlimError(f"pass --dataset_name (one of {', '.join(DATASETS.names())}) or "
                            f"--checkpoint=NAME (--checkpoint=list lists them).")
        spec = DATASETS.get(self.dataset_name)
        if not self.dataset_dir:
            raise SlimError("You must supply the dataset directory with --dataset_dir.")
        self._check_dataset_options(spec)

    def _check_dataset_options(self, spec: DatasetSpec) -> None:
        """A setting that only other datasets read is an error naming them."""
        for field in dataclasses.fields(self):
            if getattr(self, field.name) == field.default or field.name in spec.download_options:
                continue
            takers = [name for name, other in DATASETS.items()
                      if field.name in other.download_options]
            if takers:
                raise SlimError(f"--{field.name} applies to --dataset_name={'/'.join(takers)}, "
                                f"not {spec.name!r}; drop it.")

    def convert_options(self) -> convert_lib.ConvertOptions:
        """The converters' options."""
        def subset(options_class):
            return options_class(**{f.name: getattr(self, f.name)
                                    for f in dataclasses.fields(options_class)})
        return convert_lib.ConvertOptions(
            mirror=self.mirror, num_threads=self.num_threads or convert_lib.default_num_threads(),
            num_shards=self.num_shards, train_shards=self.train_shards,
            validation_shards=self.validation_shards, num_validation=self.num_validation,
            validation_fraction=self.validation_fraction, keep_archives=self.keep_archives,
            image_dir=self.image_dir, quiet=not self.progress,
            visualwakewords=subset(VisualWakeWordsOptions), imagenet=subset(ImagenetOptions))


def _download_checkpoint(config: DownloadConfig) -> None:
    from slimcli.datasets import checkpoints
    if config.checkpoint == "list":
        print(checkpoints.list_checkpoints())
        return
    result = checkpoints.download_checkpoint(config.checkpoint, config.checkpoint_dir,
                                             config.mirror, config.keep_archives,
                                             quiet=not config.progress)
    if result.already_there:
        print(f"{result.checkpoint_path} already exists; not downloading it again.")
    print(checkpoints.fine_tune_hint(result))


def download(config: DownloadConfig) -> None:
    """Runs slim-download: the checkpoint first (if asked for), then the dataset (if named).

    Raises:
      SlimError: a missing or misplaced setting, an unknown dataset or checkpoint, or a
        failed download or conversion (the message names the fix).
    """
    config.validate()
    if config.checkpoint:
        _download_checkpoint(config)
    if config.dataset_name:
        DATASETS.get(config.dataset_name).convert(config.dataset_dir, config.convert_options())
