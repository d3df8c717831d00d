"""Visual Wake Words: COCO 2014 → `train.record-?????-of-00100`, `val.record-?????-of-00010`.

As the original: the COCO train2014/val2014 zips and the 2014 annotations zip
are downloaded into `<dataset_dir>/coco_dataset` and kept there (the original
does not delete them). An image is labelled 1 when it has at least one
annotation of the foreground class (`person`) whose `area` is more than
`small_object_area_threshold` (0.5%) of the image area, else 0; those boxes
are kept. The filtered annotations are written to
`instances_visualwakewords_{train,val}2014.json`, `labels.txt` is
`0:background`, `1:person`, and image `i` goes to shard `i % num_shards`.
Records carry the original's keys, `image/format` = `jpeg`.

Differences: an unknown --foreground_class_of_interest is an error (the
original silently used category id 1), and missing or undecodable images are
reported and skipped (the original stopped).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os

from slimcli.datasets import archives, dataset_utils, fetch, images
from slimcli.datasets.convert import (ConversionPlan, ConversionReport, ConvertOptions,
                                      VisualWakeWordsOptions, run_conversion)
from slimcli.datasets.shards import SkipItem, round_robin_shards
from slimcli.datasets.spec import SHARD_OPTIONS, DatasetSpec
from slimcli.errors import SlimError

SPLITS = {  # split → (COCO annotations file, image folder, default shards)
    "train": ("instances_train2014.json", "train2014", 100),
    "val": ("instances_val2014.json", "val2014", 10),
}


def output_name(split: str, shard_id: int, num_shards: int) -> str:
    """`train.record-00000-of-00100`."""
    return dataset_utils.sharded_filename(f"{split}.record", shard_id, num_shards)


def filter_annotations(coco: dict, threshold: float, foreground: str) -> dict:
    """COCO instances → Visual Wake Words annotations.

    Args:
      coco: a parsed COCO instances JSON.
      threshold: minimum object area as a fraction of the image area.
      foreground: the category name of interest.

    Returns:
      `{'images': [...], 'annotations': {image_id: {'objects': [{'area',
      'bbox'}], 'label': 0|1}}, 'categories': {id: category}}`.

    Raises:
      SlimError: `foreground` is not a category of the file.
    """
    categories = {c["id"]: c for c in coco.get("categories", []) if c.get("name") == foreground}
    if not categories:
        names = sorted(c.get("name", "?") for c in coco.get("categories", []))
        raise SlimError(f"--foreground_class_of_interest={foreground!r} is not a COCO category; "
                        f"known: {', '.join(names)}.")
    foreground_id = next(iter(categories))
    by_image = collections.defaultdict(list)
    for annotation in coco.get("annotations", []):
        by_image[annotation["image_id"]].append(annotation)
    filtered = {}
    for image in coco["images"]:
        area = float(image["height"]) * float(image["width"])
        objects = [{"area": a["area"], "bbox": a["bbox"]} for a in by_image[image["id"]]
                   if int(a["category_id"]) == foreground_id and a["area"] / area > threshold]
        filtered[image["id"]] = {"objects": objects, "label": 1 if objects else 0}
    return {"images": coco["images"], "annotations": filtered, "categories": categories}


def _feature_dict(image: dict, annotation: dict, data: bytes) -> dict:
    height, width = image["height"], image["width"]
    xmin, xmax, ymin, ymax, area = [], [], [], [], []
    for obj in annotation["objects"]:
        x, y, w, h = (float(v) for v in obj["bbox"])
        xmin.append(x / width)
        xmax.append((x + w) / width)
        ymin.append(y / height)
        ymax.append((y + h) / height)
        area.append(obj["area"])
    f = dataset_utils
    return {
        "image/height": f.int64_list(height),
        "image/width": f.int64_list(width),
        "image/filename": f.bytes_list(image["file_name"].encode("utf8")),
        "image/source_id": f.bytes_list(str(image["id"]).encode("utf8")),
        "image/key/sha256": f.bytes_list(hashlib.sha256(data).hexdigest().encode("utf8")),
        "image/encoded": f.bytes_list(data),
        "image/format": f.bytes_list(b"jpeg"),
        "image/class/label": f.int64_list(annotation["label"]),
        "image/object/bbox/xmin": f.float_list(xmin),
        "image/object/bbox/xmax": f.float_list(xmax),
        "image/object/bbox/ymin": f.float_list(ymin),
        "image/object/bbox/ymax": f.float_list(ymax),
        "image/object/area": f.float_list([float(a) for a in area]),
    }


def _make_encoder(coco_dir: str):
    def encode(item: tuple[str, dict, dict]) -> bytes:
        folder, image, annotation = item
        name = f"{folder}/{image['file_name']}"
        try:
            with open(os.path.join(coco_dir, folder, image["file_name"]), "rb") as f:
                data = f.read()
            images.decode_check(data)
        except OSError as e:
            raise SkipItem(name, e.strerror or str(e)) from None
        except images.UnreadableImage as e:
            raise SkipItem(name, e.reason) from None
        return dataset_utils.serialize_example(_feature_dict(image, annotation, data))
    return encode


def _download_coco(coco_dir: str, vww: VisualWakeWordsOptions,
                   options: ConvertOptions) -> dict[str, dict]:
    """Fetches and extracts the three COCO zips; returns each split's instances JSON.

    An annotations zip without both instances files (or with one that is not
    COCO's) is rejected with its extraction removed, so a rerun with the
    right zip starts clean.
    """
    for url in (vww.coco_train_url, vww.coco_validation_url):
        got = fetch.fetch(url, coco_dir, options.mirror, options.quiet)
        archives.extract_once(got.path, got.sha256, coco_dir)
    got = fetch.fetch(vww.coco_annotations_url, coco_dir, options.mirror, options.quiet)
    with archives.checked_extraction(got.path, got.sha256, coco_dir):
        return {split: _load_instances(coco_dir, name, os.path.basename(got.path))
                for split, (name, _, _) in SPLITS.items()}


def _load_instances(coco_dir: str, name: str, archive: str) -> dict:
    """`annotations/<name>` of the extracted annotations zip, checked to be COCO instances."""
    path = os.path.join(coco_dir, "annotations", name)
    fix = "it is not COCO's 2014 annotations zip; check --coco_annotations_url or --mirror"
    if not os.path.isfile(path):
        raise SlimError(f"{archive} holds no annotations/{name}: {fix}.")
    try:
        with open(path, "r", encoding="utf-8") as f:
            coco = json.load(f)
    except ValueError as e:
        raise SlimError(f"annotations/{name} of {archive} is not valid JSON ({e}): "
                        f"{fix}.") from None
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise SlimError(f"annotations/{name} of {archive} has no 'images' list: {fix}.")
    return coco


def convert(dataset_dir: str, options: ConvertOptions) -> ConversionReport:
    """Downloads COCO 2014 (or takes it from --mirror) and builds Visual Wake Words.

    Args:
      dataset_dir: output directory (COCO goes to its `coco_dirname` sub-folder).
      options: the user's options, `options.visualwakewords` included.

    Returns:
      The conversion report.

    Raises:
      SlimError: download, checksum, archive or annotation problems.
    """
    vww = options.visualwakewords
    if not 0.0 <= vww.small_object_area_threshold < 1.0:
        raise SlimError(f"--small_object_area_threshold={vww.small_object_area_threshold} must "
                        f"be a fraction of the image area in [0, 1).")
    num_shards = {s: options.shards_for(s, d) for s, (_, _, d) in SPLITS.items()}
    settings = {"small_object_area_threshold": vww.small_object_area_threshold,
                "foreground_class_of_interest": vww.foreground_class_of_interest,
                "num_shards": num_shards}
    coco_dir = os.path.join(dataset_dir, vww.coco_dirname)

    def prepare() -> ConversionPlan:
        instances = _download_coco(coco_dir, vww, options)
        shards = []
        for split, (_, folder, _) in SPLITS.items():
            filtered = filter_annotations(instances[split], vww.small_object_area_threshold,
                                          vww.foreground_class_of_interest)
            out = os.path.join(dataset_dir, f"instances_visualwakewords_{split}2014.json")
            with open(out, "w", encoding="utf-8") as f:
                json.dump(filtered, f)
            items = [(folder, image, filtered["annotations"][image["id"]])
                     for image in filtered["images"]]
            paths = [os.path.join(dataset_dir, output_name(split, i, num_shards[split]))
                     for i in range(num_shards[split])]
            shards.extend(round_robin_shards(split, items, paths))
        return ConversionPlan(
            shards=shards, encode=_make_encoder(coco_dir),
            item_key=lambda i: [i[0], i[1]["file_name"], i[2]["label"]],
            labels_to_names={0: "background", 1: vww.foreground_class_of_interest},
            file_pattern="%s.record-*", extra={"source": "COCO 2014"})

    originals = [output_name(s, i, d) for s, (_, _, d) in SPLITS.items() for i in range(d)]
    return run_conversion(SPEC, dataset_dir, options, settings, prepare, originals)


SPEC = DatasetSpec(
    name="visualwakewords",
    file_pattern="%s.record-*",
    splits_to_sizes={"train": 82783, "val": 40504},
    num_classes=2,
    items_to_descriptions={"image": "A color image of varying height and width.",
                           "label": "The label id of the image, an integer in {0, 1}",
                           "object/bbox": "A list of bounding boxes."},
    split_aliases={"validation": "val"},
    convert=convert,
    description="Visual Wake Words (person / not person) from COCO 2014.",
    download_options=(*SHARD_OPTIONS, "mirror",
                      *(f.name for f in dataclasses.fields(VisualWakeWordsOptions))),
)
