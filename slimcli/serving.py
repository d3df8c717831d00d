"""What a client of an exported net must know: preprocessing, labels, top-k output.

Shared by `slim-export` (which prints the input contract of the graph it
writes), `slim-predict` and the tests of the C++ `label_image`:

* `CLIENT_PREPROCESSING`: per preprocessing family, the eval preprocessing
  in words and, where it is one, as label_image's `(pixel - mean) / std`;
* `label_image_preprocess`: label_image's own preprocessing (decode,
  bilinear resize, `(pixel - mean) / std`) in Python, op for op;
* `read_labels` / `format_top_k`: the labels file rules and the
  `label (index): score` lines that label_image prints.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from slimcli.errors import SlimError


@dataclasses.dataclass(frozen=True)
class ClientPreprocessing:
    """The eval preprocessing of a family, as a client has to apply it.

    Attributes:
      name: the preprocessing family (`inception`, `vgg`, `cifarnet`, `lenet`).
      steps: what the net's own eval preprocessing does, in words.
      input_mean: label_image's `--input_mean` (pixel values in [0, 255]).
      input_std: label_image's `--input_std`.
      exact: whether `(pixel - mean) / std` after a plain resize is the whole
        normalization (False: it approximates it; `note` says how).
      note: what label_image cannot reproduce, and what to use instead.
    """
    name: str
    steps: str
    input_mean: float
    input_std: float
    exact: bool
    note: str = ""


CLIENT_PREPROCESSING: dict[str, ClientPreprocessing] = {
    "inception": ClientPreprocessing(
        "inception", "central crop of 87.5%, bilinear resize to {size}x{size}, "
        "x / 255 then (x - 0.5) * 2, i.e. values in [-1, 1]",
        input_mean=127.5, input_std=127.5, exact=True,
        note="label_image does not crop: give it an image already cropped, or accept a "
             "slightly different framing"),
    "vgg": ClientPreprocessing(
        "vgg", "aspect-preserving resize of the smaller side to 256, central crop "
        "{size}x{size}, subtract the RGB means (123.68, 116.78, 103.94); no scaling",
        input_mean=114.8, input_std=1.0, exact=False,
        note="label_image subtracts one mean from every channel: 114.8 (the average of the "
             "three) approximates the per-channel means; slim-predict applies them exactly"),
    "cifarnet": ClientPreprocessing(
        "cifarnet", "centre crop or zero-pad to {size}x{size}, then per-image "
        "standardization ((x - mean(x)) / max(std(x), 1/sqrt(N)))",
        input_mean=128.0, input_std=64.0, exact=False,
        note="per-image standardization depends on each image: label_image's fixed "
             "mean/std only approximates it; slim-predict applies it exactly"),
    "lenet": ClientPreprocessing(
        "lenet", "centre crop or zero-pad to {size}x{size}, then (x - 128) / 128",
        input_mean=128.0, input_std=128.0, exact=True,
        note="label_image resizes instead of cropping: give it a {size}x{size} image"),
}


def client_preprocessing(name: str) -> ClientPreprocessing:
    """The client-side description of preprocessing family `name`.

    Raises:
      SlimError: unknown family.
    """
    try:
        return CLIENT_PREPROCESSING[name]
    except KeyError:
        raise SlimError(f"unknown preprocessing {name!r}; known: "
                        f"{', '.join(CLIENT_PREPROCESSING)}.") from None


def decode_image_file(path: str, channels: int = 3) -> tf.Tensor:
    """Reads and decodes a JPEG, PNG, GIF or BMP file into a uint8 [H, W, channels] tensor.

    Raises:
      SlimError: the file is missing or not a decodable image.
    """
    if not tf.io.gfile.exists(path):
        raise SlimError(f"image file {path!r} does not exist; pass an existing JPEG, PNG, GIF "
                        f"or BMP file.")
    data = tf.io.read_file(path)
    try:
        return tf.io.decode_image(data, channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
        raise SlimError(f"cannot decode image {path!r} (JPEG, PNG, GIF or BMP expected): "
                        f"{getattr(e, 'message', e)}") from None


def label_image_preprocess(image: tf.Tensor, height: int, width: int, input_mean: float,
                           input_std: float) -> tf.Tensor:
    """label_image's preprocessing of one decoded image, as a [1, height, width, C] float batch.

    The same ops as the C++ label_image: cast to float, add the batch
    dimension, `ResizeBilinear` (TF1 sampling: no half-pixel centres), then
    `(x - input_mean) / input_std`.
    """
    batch = tf.expand_dims(tf.cast(image, tf.float32), 0)
    resized = tf.raw_ops.ResizeBilinear(images=batch, size=[height, width])
    return (resized - input_mean) / input_std


def read_labels(path: str) -> dict[int, str]:
    """Reads a labels file: `id:name` lines (slim's labels.txt) or one label per line.

    When every non-empty line is `<int>:<name>`, ids map to names; otherwise
    line i (from 0) is label i. Trailing empty lines are dropped. The C++
    label_image reads labels by the same rules.

    Raises:
      SlimError: the file does not exist.
    """
    if not tf.io.gfile.exists(path):
        raise SlimError(f"labels file {path!r} does not exist; pass --labels=PATH (a dataset's "
                        f"labels.txt) or leave --labels out to print class indices.")
    with tf.io.gfile.GFile(path) as f:
        lines = [line.rstrip("\r\n") for line in f]
    while lines and not lines[-1]:
        lines.pop()
    by_id: dict[int, str] = {}
    for line in lines:
        head, sep, tail = line.partition(":")
        if not sep or not head or not head.lstrip("-").isdigit():
            return dict(enumerate(lines))
        by_id[int(head)] = tail
    return by_id if lines else {}


def top_k(scores: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """`[(index, score), ...]` of the k highest scores of the first row, best first."""
    row = np.asarray(scores, np.float32)
    row = row.reshape(-1) if row.ndim <= 1 else row.reshape(row.shape[0], -1)[0]
    order = sorted(range(row.size), key=lambda i: -row[i])  # stable: ties keep index order
    return [(i, float(row[i])) for i in order[:k]]


def format_top_k(scores: np.ndarray, labels: dict[int, str] | None, k: int = 5) -> list[str]:
    """label_image's output lines `label (index): score` (score as C++ prints a float)."""
    labels = labels or {}
    return [f"{labels.get(i, str(i))} ({i}): {score:.6g}" for i, score in top_k(scores, k)]
