"""ImageNet from a local raw copy → `train-?????-of-01024`, `validation-?????-of-00128`.

ImageNet needs an image-net.org login, so there is no download: point
--image_dir at a folder laid out as build_imagenet_data.py expects

  <image_dir>/train/<synset>/*.JPEG
  <image_dir>/validation/<synset>/*.JPEG   (or flat *.JPEG plus
      imagenet_2012_validation_synset_labels.txt, one synset per sorted file)
  <image_dir>/imagenet_lsvrc_2015_synsets.txt   (1000 synsets; label = line + 1)
  <image_dir>/imagenet_metadata.txt             (synset<TAB>human-readable text)
  <image_dir>/imagenet_2012_bounding_boxes.csv  (optional: file,xmin,ymin,xmax,ymax)

As the original: label 0 is the unused background class (1001 classes),
files are shuffled with seed 12345, shards are cut the way its 8 threads cut
them, PNG and CMYK files are re-encoded as RGB JPEG (quality 100), and
records carry `image/class/{label,synset,text}`, `image/object/bbox/*`,
`image/object/bbox/label`, `image/colorspace` `RGB`, `image/channels` 3,
`image/format` `JPEG`, `image/filename`. A split whose folder is absent is
left out (e.g. validation only, for evaluating zoo checkpoints). Unreadable
files are skipped and named `<split>/<path in the split's folder>`; a class
whose every image in a split is unreadable is an error.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random

from slimcli.datasets import dataset_utils as du, images
from slimcli.datasets.convert import (ConversionPlan, ConversionReport, ConvertOptions,
                                      ImagenetOptions, run_conversion)
from slimcli.datasets.shards import SkipItem, WriteResult, nested_linspace_shards
from slimcli.datasets.spec import SHARD_OPTIONS, DatasetSpec
from slimcli.errors import SlimError

SPLITS = {"train": 1024, "validation": 128}
RANDOM_SEED = 12345
ORIGINAL_NUM_THREADS = 8
_JPEG_EXTENSIONS = (".jpeg", ".jpg")
DEFAULT_FILES = {"labels_file": "imagenet_lsvrc_2015_synsets.txt",
                 "imagenet_metadata_file": "imagenet_metadata.txt",
                 "bounding_box_file": "imagenet_2012_bounding_boxes.csv",
                 "validation_labels_file": "imagenet_2012_validation_synset_labels.txt"}


def output_name(split: str, shard_id: int, num_shards: int) -> str:
    """`train-00000-of-01024`."""
    return du.sharded_filename(split, shard_id, num_shards)


def _paths(image_dir: str, opts: ImagenetOptions) -> dict[str, str]:
    paths = {key: getattr(opts, key) or os.path.join(image_dir, name)
             for key, name in DEFAULT_FILES.items()}
    paths["train"] = opts.train_directory or os.path.join(image_dir, "train")
    paths["validation"] = opts.validation_directory or os.path.join(image_dir, "validation")
    return paths


def _read_lines(path: str, what: str) -> list[str]:
    if not os.path.isfile(path):
        raise SlimError(f"{what} {path!r} is missing; put it there or pass its path "
                        f"(see `slim-download --help`).")
    with open(path, "r", encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def read_synset_text(path: str) -> dict[str, str]:
    """`synset<TAB>text` lines → dict."""
    lookup = {}
    for number, line in enumerate(_read_lines(path, "ImageNet metadata file"), start=1):
        synset, sep, text = line.partition("\t")
        if not sep:
            raise SlimError(f"{path}:{number}: expected 'synset<TAB>text', got {line!r}.")
        lookup[synset] = text
    return lookup


def read_bounding_boxes(path: str) -> dict[str, list[list[float]]]:
    """`file,xmin,ymin,xmax,ymax` lines → file name → boxes."""
    boxes: dict[str, list[list[float]]] = {}
    for number, line in enumerate(_read_lines(path, "bounding box file"), start=1):
        parts = line.split(",")
        try:
            box = [float(v) for v in parts[1:]]
        except ValueError:
            box = []
        if len(parts) != 5 or len(box) != 4:
            raise SlimError(f"{path}:{number}: expected 'file.JPEG,xmin,ymin,xmax,ymax', "
                            f"got {line!r}.")
        boxes.setdefault(parts[0], []).append(box)
    return boxes


def _jpegs(directory: str) -> list[str]:
    return sorted(n for n in os.listdir(directory)
                  if n.lower().endswith(_JPEG_EXTENSIONS) and not n.startswith("."))


def find_images(directory: str, synsets: list[str], flat_labels: str) -> list[tuple[str, int]]:
    """(path relative to `directory`, label) of every image, label = synset line + 1.

    A folder without synset sub-folders is read flat, with one synset per
    sorted file from `flat_labels` (the validation layout as distributed).
    """
    label_of = {s: i + 1 for i, s in enumerate(synsets)}
    if any(os.path.isdir(os.path.join(directory, s)) for s in synsets):
        return [(f"{s}/{name}", label_of[s]) for s in synsets
                if os.path.isdir(os.path.join(directory, s))
                for name in _jpegs(os.path.join(directory, s))]
    files = _jpegs(directory)
    labels = _read_lines(flat_labels, "validation synset labels file")
    if len(labels) != len(files):
        raise SlimError(f"{directory} holds {len(files)} JPEG files but {flat_labels} lists "
                        f"{len(labels)} synsets; they must match one to one (sorted file order).")
    unknown = sorted(set(labels) - set(label_of))
    if unknown:
        raise SlimError(f"{flat_labels} names synsets not in the labels file, e.g. {unknown[0]}.")
    return [(name, label_of[s]) for name, s in zip(files, labels)]


def _make_encoder(split: str, directory: str, synsets: list[str], texts: dict[str, str],
                  boxes: dict[str, list[list[float]]]):
    def encode(item: tuple[str, int]) -> bytes:
        rel, label = item
        try:
            with open(os.path.join(directory, rel), "rb") as f:
                data = f.read()
            decoded = images.decode_check(data)
        except OSError as e:
            raise SkipItem(f"{split}/{rel}", e.strerror or str(e)) from None
        except images.UnreadableImage as e:
            raise SkipItem(f"{split}/{rel}", e.reason) from None
        if decoded.format != "JPEG" or decoded.mode not in ("RGB", "L"):
            data = images.reencode_jpeg(decoded)
        width, height = decoded.size
        name = os.path.basename(rel)
        synset = synsets[label - 1]
        bbox = boxes.get(name, [])
        return du.serialize_example({
            "image/height": du.int64_list(height), "image/width": du.int64_list(width),
            "image/colorspace": du.bytes_list(b"RGB"), "image/channels": du.int64_list(3),
            "image/class/label": du.int64_list(label),
            "image/class/synset": du.bytes_list(synset.encode()),
            "image/class/text": du.bytes_list(texts[synset].encode()),
            "image/object/bbox/xmin": du.float_list([b[0] for b in bbox]),
            "image/object/bbox/xmax": du.float_list([b[2] for b in bbox]),
            "image/object/bbox/ymin": du.float_list([b[1] for b in bbox]),
            "image/object/bbox/ymax": du.float_list([b[3] for b in bbox]),
            "image/object/bbox/label": du.int64_list([label] * len(bbox)),
            "image/format": du.bytes_list(b"JPEG"),
            "image/filename": du.bytes_list(name.encode()),
            "image/encoded": du.bytes_list(data)})
    return encode


def _read_labels(paths: dict[str, str], explicit_boxes: str):
    synsets = _read_lines(paths["labels_file"], "synsets labels file")
    texts = read_synset_text(paths["imagenet_metadata_file"])
    missing = [s for s in synsets if s not in texts]
    if missing:
        raise SlimError(f"{paths['imagenet_metadata_file']} has no text for synset "
                        f"{missing[0]}; use the metadata file that goes with the synsets.")
    has_boxes = bool(explicit_boxes) or os.path.isfile(paths["bounding_box_file"])
    boxes = read_bounding_boxes(paths["bounding_box_file"]) if has_boxes else None
    return synsets, texts, boxes


def check_readable_classes(found: dict[str, list[tuple[str, int]]], result: WriteResult,
                           synsets: list[str], texts: dict[str, str],
                           paths: dict[str, str]) -> None:
    """Refuses a split in which a class has images but not one of them could be read.

    Args:
      found: split → (path in the split's folder, label) of every image.
      result: the written shards, whose `skipped` names are `<split>/<path>`.

    Raises:
      SlimError: naming the synset, the folder, the image count and one reason.
    """
    reasons = dict(result.skipped)
    for split, items in found.items():
        total = collections.Counter(label for _, label in items)
        readable = collections.Counter(label for rel, label in items
                                       if f"{split}/{rel}" not in reasons)
        for label in sorted(set(total) - set(readable)):
            rel = next(rel for rel, item_label in items if item_label == label)
            synset = synsets[label - 1]
            raise SlimError(
                f"ImageNet class {synset} ({texts[synset]}) in {paths[split]}: none of its "
                f"{total[label]} image(s) can be read (e.g. {rel}: {reasons[f'{split}/{rel}']});"
                f" replace the broken files, or the class has no {split} example.")


def _plan(dataset_dir: str, paths: dict[str, str], splits: list[str],
          num_shards: dict[str, int], options: ConvertOptions) -> ConversionPlan:
    synsets, texts, boxes = _read_labels(paths, options.imagenet.bounding_box_file)
    shards, encoders, found = [], {}, {}
    for split in ("validation", "train"):  # the original's order
        if split not in splits:
            continue
        found[split] = find_images(paths[split], synsets, paths["validation_labels_file"])
        order = list(range(len(found[split])))
        random.Random(RANDOM_SEED).shuffle(order)
        items = [(split, *found[split][i]) for i in order]
        out = [os.path.join(dataset_dir, output_name(split, i, num_shards[split]))
               for i in range(num_shards[split])]
        shards.extend(nested_linspace_shards(split, items, out, ORIGINAL_NUM_THREADS))
        encoders[split] = _make_encoder(split, paths[split], synsets, texts, boxes or {})
    notes = [] if boxes is not None else [
        f"no {paths['bounding_box_file']}: records get no boxes."]
    labels = {0: "background", **{i + 1: texts[s] for i, s in enumerate(synsets)}}
    return ConversionPlan(
        shards=shards, encode=lambda item: encoders[item[0]](item[1:]), item_key=list,
        labels_to_names=labels, file_pattern="%s-*", notes=notes,
        extra={"source": options.image_dir},
        check_written=lambda result: check_readable_classes(found, result, synsets, texts,
                                                            paths))


def convert(dataset_dir: str, options: ConvertOptions) -> ConversionReport:
    """Converts a local raw ImageNet copy (see the module docstring for the layout).

    Args:
      dataset_dir: output directory.
      options: the user's options (`image_dir`, `imagenet`, shards).

    Returns:
      The conversion report.

    Raises:
      SlimError: missing folders or label files, malformed lines, unknown synsets.
    """
    if not options.image_dir:
        raise SlimError("--dataset_name=imagenet needs --image_dir=DIR, a local copy of the raw "
                        "ImageNet train/ and validation/ folders and synset files.")
    paths = _paths(os.path.abspath(options.image_dir), options.imagenet)
    splits = [s for s in SPLITS if os.path.isdir(paths[s])]
    if not splits:
        raise SlimError(f"neither {paths['train']!r} nor {paths['validation']!r} exists; pass "
                        f"--image_dir holding train/<synset>/*.JPEG and validation/.")
    num_shards = {s: options.shards_for(s, SPLITS[s]) for s in splits}
    settings = {"image_dir": paths, "num_shards": num_shards}

    def prepare() -> ConversionPlan:
        return _plan(dataset_dir, paths, splits, num_shards, options)

    return run_conversion(SPEC, dataset_dir, options, settings, prepare)


SPEC = DatasetSpec(
    name="imagenet",
    file_pattern="%s-*",
    splits_to_sizes={"train": 1281167, "validation": 50000},
    num_classes=1001,
    items_to_descriptions={"image": "A color image of varying height and width.",
                           "label": "The label id of the image, integer between 0 and 999",
                           "label_text": "The text of the label.",
                           "object/bbox": "A list of bounding boxes.",
                           "object/label": "A list of labels, one per each object."},
    convert=convert,
    description="ImageNet 2012 from a local raw copy (1,281,167 train / 50,000 validation).",
    download_options=(*SHARD_OPTIONS, "image_dir",
                      *(f.name for f in dataclasses.fields(ImagenetOptions))),
)
