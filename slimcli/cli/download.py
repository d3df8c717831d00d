"""`slim-download`: Download datasets and convert them to TFRecords; download model-zoo checkpoints.

    slim-download --dataset_name=flowers --dataset_dir=/data/flowers
    slim-download --dataset_name=folder --image_dir=~/photos --dataset_dir=/data/mine
    slim-download --checkpoint=inception_v3 --checkpoint_dir=/data/ckpt
"""

from __future__ import annotations

import sys

from absl import flags

from slimcli.cli.base import run_cli
from slimcli.errors import SlimError

DESCRIPTION = "Download datasets and convert them to TFRecords; download model-zoo checkpoints."

_SHARDED = ("flowers", "folder", "visualwakewords", "imagenet")
_IMAGENET_FLAGS = ("train_directory", "validation_directory", "labels_file",
                   "imagenet_metadata_file", "bounding_box_file", "validation_labels_file")
_VWW_FLAGS = ("small_object_area_threshold", "foreground_class_of_interest", "coco_train_url",
              "coco_validation_url", "coco_annotations_url", "coco_dirname")
# flag → the datasets it applies to.
_ONLY_FOR = {
    "num_validation": ("flowers", "folder"), "validation_fraction": ("flowers", "folder"),
    "image_dir": ("folder", "imagenet"), "num_shards": _SHARDED, "train_shards": _SHARDED,
    "validation_shards": _SHARDED,
    "mirror": ("flowers", "cifar10", "mnist", "visualwakewords"),
    **{f: ("imagenet",) for f in _IMAGENET_FLAGS}, **{f: ("visualwakewords",) for f in _VWW_FLAGS},
}


def _define_original_flags(fv: flags.FlagValues) -> None:
    from slimcli.datasets.convert import VisualWakeWordsOptions as V
    flags.DEFINE_string("dataset_name", None, "The dataset to convert: flowers, cifar10, mnist, "
                        "visualwakewords, imagenet or folder.", flag_values=fv)
    flags.DEFINE_string("dataset_dir", None, "Where the TFRecords and labels.txt are written.",
                        flag_values=fv)
    flags.DEFINE_float("small_object_area_threshold", V.small_object_area_threshold,
                       "visualwakewords: objects below this fraction of the image area are "
                       "ignored.", flag_values=fv)
    flags.DEFINE_string("foreground_class_of_interest", V.foreground_class_of_interest,
                        "visualwakewords: the COCO category that makes label 1.", flag_values=fv)
    flags.DEFINE_string("coco_train_url", V.coco_train_url, "visualwakewords: COCO train zip.",
                        flag_values=fv)
    flags.DEFINE_string("coco_validation_url", V.coco_validation_url,
                        "visualwakewords: COCO validation zip.", flag_values=fv)
    flags.DEFINE_string("coco_annotations_url", V.coco_annotations_url,
                        "visualwakewords: COCO annotations zip.", flag_values=fv)
    flags.DEFINE_string("coco_dirname", V.coco_dirname, "visualwakewords: sub-folder of "
                        "--dataset_dir for the COCO download.", flag_values=fv)


def _define_new_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("mirror", None, "Base URL or local directory holding the upstream "
                        "archive file names (used instead of the original URLs).", flag_values=fv)
    flags.DEFINE_string("image_dir", None, "folder: one sub-folder of images per class. "
                        "imagenet: the raw copy (train/, validation/, synset files).",
                        flag_values=fv)
    flags.DEFINE_float("validation_fraction", None, "flowers/folder: share of images for "
                       "validation (folder default 0.1).", flag_values=fv)
    flags.DEFINE_integer("num_validation", None, "flowers/folder: number of validation images "
                         "(flowers default 350).", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("num_shards", None, "Shards per split (default: the dataset's own).",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("train_shards", None, "Shards of the train split.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("validation_shards", None, "Shards of the validation split.",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("num_threads", None, "Encoder threads (default: CPU count, max 16).",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_boolean("keep_archives", False, "Keep downloaded archives and extracted files.",
                         flag_values=fv)
    flags.DEFINE_boolean("progress", True, "Show progress bars.", flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "Model-zoo checkpoint to download (e.g. "
                        "inception_v3), or `list`.", flag_values=fv)
    flags.DEFINE_string("checkpoint_dir", None, "Where --checkpoint is unpacked.",
                        flag_values=fv)
    for name, text in (("train_directory", "<image_dir>/train"),
                       ("validation_directory", "<image_dir>/validation"),
                       ("labels_file", "<image_dir>/imagenet_lsvrc_2015_synsets.txt"),
                       ("imagenet_metadata_file", "<image_dir>/imagenet_metadata.txt"),
                       ("bounding_box_file", "<image_dir>/imagenet_2012_bounding_boxes.csv"),
                       ("validation_labels_file",
                        "<image_dir>/imagenet_2012_validation_synset_labels.txt")):
        flags.DEFINE_string(name, "", f"imagenet: default {text}.", flag_values=fv)


def define_flags(fv: flags.FlagValues) -> None:
    """Defines the original's flags and slimcli's additions on `fv`."""
    _define_original_flags(fv)
    _define_new_flags(fv)


def _options(fv: flags.FlagValues):
    from slimcli.datasets import convert as c
    vww = c.VisualWakeWordsOptions(**{f: fv[f].value for f in _VWW_FLAGS})
    imagenet = c.ImagenetOptions(**{f: fv[f].value for f in _IMAGENET_FLAGS})
    return c.ConvertOptions(
        mirror=fv.mirror, num_threads=fv.num_threads or c.default_num_threads(),
        num_shards=fv.num_shards, train_shards=fv.train_shards,
        validation_shards=fv.validation_shards, num_validation=fv.num_validation,
        validation_fraction=fv.validation_fraction, keep_archives=fv.keep_archives,
        image_dir=fv.image_dir, quiet=not fv.progress, visualwakewords=vww, imagenet=imagenet)


def _check_applicable(fv: flags.FlagValues, dataset: str) -> None:
    for flag, datasets in _ONLY_FOR.items():
        if fv[flag].present and dataset not in datasets:
            raise SlimError(f"--{flag} applies to --dataset_name={'/'.join(datasets)}, not "
                            f"{dataset!r}; drop it.")


def _download_checkpoint(fv: flags.FlagValues) -> None:
    from slimcli.datasets import checkpoints
    if fv.checkpoint == "list":
        print(checkpoints.list_checkpoints())
        return
    if not fv.checkpoint_dir:
        raise SlimError(f"--checkpoint={fv.checkpoint} needs --checkpoint_dir=DIR to unpack into.")
    result = checkpoints.download_checkpoint(fv.checkpoint, fv.checkpoint_dir, fv.mirror,
                                             fv.keep_archives, quiet=not fv.progress)
    if result.already_there:
        print(f"{result.checkpoint_path} already exists; not downloading it again.")
    print(checkpoints.fine_tune_hint(result))


def main(fv: flags.FlagValues) -> int:
    """Runs slim-download with parsed flags; returns the exit status."""
    from slimcli.datasets import DATASETS
    if fv.checkpoint:
        _download_checkpoint(fv)
    if not fv.dataset_name:
        if fv.checkpoint:
            return 0
        raise SlimError(f"pass --dataset_name (one of {', '.join(DATASETS.names())}) or "
                        f"--checkpoint=NAME (--checkpoint=list lists them).")
    spec = DATASETS.get(fv.dataset_name)
    if not fv.dataset_dir:
        raise SlimError("You must supply the dataset directory with --dataset_dir.")
    _check_applicable(fv, spec.name)
    spec.convert(fv.dataset_dir, _options(fv))
    return 0


def run(argv=None) -> None:
    sys.exit(run_cli(define_flags, main, "slim-download", DESCRIPTION, argv))


if __name__ == "__main__":
    run()
