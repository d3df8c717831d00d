"""`class_name/*.jpg` trees: listing, the seed-0 validation split, encoding.

Shared by the flowers converter (flower_photos.tgz is such a tree) and the
`folder` converter for one's own images.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random

from slimcli.datasets import dataset_utils, images
from slimcli.datasets.shards import SkipItem
from slimcli.errors import SlimError

RANDOM_SEED = 0


@dataclasses.dataclass(frozen=True)
class ImageTree:
    """A listed tree.

    Attributes:
      root: the directory holding one sub-directory per class.
      class_names: sorted sub-directory names; label = position.
      items: sorted (relative path, label) of every image file.
      total_bytes: summed file sizes.
      ignored: relative paths of files without an image extension.
    """
    root: str
    class_names: list[str]
    items: list[tuple[str, int]]
    total_bytes: int
    ignored: list[str]


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_files(root: str, class_name: str) -> tuple[list[tuple[str, int]], list[str]]:
    """Image files (relative path, size) under one class folder, and ignored files."""
    found, ignored = [], []
    top = os.path.join(root, class_name)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        for name in sorted(filter(_visible, filenames)):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if name.lower().endswith(images.IMAGE_EXTENSIONS) and os.path.isfile(path):
                found.append((rel, os.path.getsize(path)))
            else:
                ignored.append(rel)
    return found, ignored


def list_image_tree(root: str) -> ImageTree:
    """Lists `root/<class>/**/<image>`; class names are the sorted folder names.

    Raises:
      SlimError: `root` is missing, has no class folders, or a class folder
        has no image file (an empty class would silently shift every later
        label, so it is refused rather than skipped).
    """
    if not os.path.isdir(root):
        raise SlimError(f"image directory {root!r} does not exist; pass --image_dir=DIR with one "
                        f"sub-folder of images per class.")
    class_names = sorted(d for d in os.listdir(root)
                         if _visible(d) and os.path.isdir(os.path.join(root, d)))
    if not class_names:
        raise SlimError(f"{root!r} has no class sub-folders; arrange the images as "
                        f"{root}/<class_name>/<image>.jpg.")
    bad = [n for n in class_names if "\n" in n or "\r" in n]
    if bad:
        raise SlimError(f"class folder name {bad[0]!r} contains a line break, which labels.txt "
                        f"cannot hold; rename the folder.")
    items, ignored, total = [], [], 0
    for label, name in enumerate(class_names):
        found, skipped = _class_files(root, name)
        if not found:
            raise SlimError(f"class folder {os.path.join(root, name)!r} has no image files "
                            f"({', '.join(images.IMAGE_EXTENSIONS[:4])}, ...); add images or "
                            f"remove the folder.")
        items.extend((rel, label) for rel, _ in found)
        total += sum(size for _, size in found)
        ignored.extend(skipped)
    return ImageTree(root, class_names, sorted(items), total, ignored)


def shuffle_split(items: list[tuple[str, int]], num_validation: int
                  ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The original flowers split: seed-0 shuffle, the first `num_validation` validate.

    Returns:
      (train items, validation items).
    """
    shuffled = list(items)
    random.Random(RANDOM_SEED).shuffle(shuffled)
    return shuffled[num_validation:], shuffled[:num_validation]


def validation_count(total: int, num_validation: int | None, fraction: float | None,
                     default: int) -> int:
    """Resolves --num_validation / --validation_fraction against `total` images.

    Raises:
      SlimError: both are given, a value is out of range, or no training
        image would be left.
    """
    if num_validation is not None and fraction is not None:
        raise SlimError(f"pass either --num_validation={num_validation} or "
                        f"--validation_fraction={fraction}, not both.")
    if fraction is not None:
        if not 0.0 <= fraction < 1.0:
            raise SlimError(f"--validation_fraction={fraction} must be in [0, 1).")
        count = int(round(total * fraction))
    else:
        count = default if num_validation is None else num_validation
    if count < 0 or count >= total:
        raise SlimError(f"{count} validation images out of {total} would leave no training "
                        f"image; pass a smaller --num_validation or --validation_fraction.")
    return count


def check_readable_classes(tree: ImageTree, skipped: list[tuple[str, str]]) -> None:
    """Refuses a class whose every image was skipped as unreadable.

    Such a class would be a label with no example, as an empty folder would.

    Raises:
      SlimError: naming the class folder, how many images it has and one reason.
    """
    reasons = dict(skipped)
    readable = collections.Counter(label for rel, label in tree.items if rel not in reasons)
    for label, name in enumerate(tree.class_names):
        if not readable[label]:
            rels = [rel for rel, item_label in tree.items if item_label == label]
            raise SlimError(
                f"class folder {os.path.join(tree.root, name)!r}: none of its {len(rels)} "
                f"image(s) can be read (e.g. {rels[0]}: {reasons[rels[0]]}); replace the "
                f"broken files or remove the folder.")


def make_encoder(root: str):
    """item (relative path, label) → serialized Example; unreadable files are skipped."""
    def encode(item: tuple[str, int]) -> bytes:
        rel, label = item
        try:
            with open(os.path.join(root, rel), "rb") as f:
                data = f.read()
            image = images.encode_for_record(data)
        except OSError as e:
            raise SkipItem(rel, e.strerror or str(e)) from None
        except images.UnreadableImage as e:
            raise SkipItem(rel, e.reason) from None
        return dataset_utils.image_example_bytes(image.data, image.format, image.height,
                                                 image.width, label)
    return encode
