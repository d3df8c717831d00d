"""Test helpers for slimcli.datasets: a local HTTP server and archive builders.

Every archive is built here in the real upstream layout (flower_photos.tgz,
CIFAR-10 python batches pickled the way Python 2 NumPy wrote them, MNIST idx
.gz files, COCO 2014 zips and instances JSON, an ImageNet raw folder, zoo
checkpoint tarballs) from small generated images. Nothing touches the network
beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


# ----------------------------------------------------------------- HTTP server
class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        server = self.server
        name = urllib.parse.unquote(urllib.parse.urlparse(self.path).path.lstrip("/"))
        server.requests.append((name, self.headers.get("Range")))
        path = os.path.join(server.root, name)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        wanted = self.headers.get("Range")
        if wanted and server.ranges:
            start = int(wanted.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = server.truncate.pop(name, None)
        self.wfile.write(body if cut is None else body[:cut])

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(root: str, ranges: bool = True):
    """Serves `root` on http://127.0.0.1:<port>; yields the server.

    `server.url` is the base URL, `server.requests` logs (name, Range header),
    `server.truncate[name] = n` makes the next reply of `name` stop after n
    body bytes (a dropped connection).
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.root, server.ranges, server.requests, server.truncate = root, ranges, [], {}
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------- images
def image_array(height: int, width: int, seed: int, channels: int = 3) -> np.ndarray:
    """A smooth random-ish uint8 image."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = (x * rng.randint(1, 9) + y * rng.randint(1, 9) + rng.randint(0, 255)) % 256
    noise = rng.randint(0, 40, size=(height, width, channels))
    return ((base[..., None] + noise) % 256).astype(np.uint8)


def encode(array: np.ndarray, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def jpeg(height: int = 24, width: int = 32, seed: int = 0) -> bytes:
    return encode(image_array(height, width, seed), "JPEG", quality=90)


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_sidecar(path: str) -> None:
    with open(path + ".sha256", "w") as f:
        f.write(f"{sha256(path)}  {os.path.basename(path)}\n")


def pin(monkeypatch, url: str, path) -> None:
    """Pins `url` to the digest of the file at `path`, as KNOWN_ARCHIVES pins real archives.

    A mirror's .sha256 file never overrides a pin, so a test that serves its own
    archive under an upstream URL pins that archive instead.
    """
    from slimcli.datasets import fetch
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, url, fetch.KnownArchive(
        os.path.getsize(path), sha256(path), "the test"))


# ----------------------------------------------------------------- flowers
FLOWER_CLASSES = ["daisy", "roses", "tulips"]


def make_flower_tree(root: str, classes=FLOWER_CLASSES, per_class: int = 10) -> dict[str, bytes]:
    """flower_photos/<class>/<n>.jpg under `root`; returns relative path → bytes."""
    files = {}
    for c, name in enumerate(classes):
        os.makedirs(os.path.join(root, "flower_photos", name), exist_ok=True)
        for i in range(per_class):
            rel = f"flower_photos/{name}/{1000 + 37 * i}_{name[:2]}.jpg"
            files[rel] = jpeg(20 + i, 30 + c, seed=100 * c + i)
            with open(os.path.join(root, rel), "wb") as f:
                f.write(files[rel])
    with open(os.path.join(root, "flower_photos", "LICENSE.txt"), "w") as f:
        f.write("test photos\n")
    return files


def make_flowers_tgz(directory: str, per_class: int = 10) -> dict[str, bytes]:
    """`directory/flower_photos.tgz` in the upstream layout; returns path → bytes."""
    src = os.path.join(directory, "src")
    files = make_flower_tree(src, per_class=per_class)
    with tarfile.open(os.path.join(directory, "flower_photos.tgz"), "w:gz") as tar:
        tar.add(os.path.join(src, "flower_photos"), arcname="flower_photos")
    return files


# ----------------------------------------------------------------- CIFAR-10
def _short_string(s: bytes) -> bytes:
    return b"U" + bytes([len(s)]) + s if len(s) < 256 else b"T" + struct.pack("<i", len(s)) + s


def _int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def py2_numpy_pickle(batch: dict) -> bytes:
    """Protocol-2 bytes as Python 2 cPickle wrote a CIFAR batch (str keys, numpy array)."""
    out = [b"\x80\x02}("]
    for key, value in batch.items():
        out.append(_short_string(key.encode()))
        if isinstance(value, np.ndarray):
            out.append(b"cnumpy.core.multiarray\n_reconstruct\nq\x01")
            out.append(b"cnumpy\nndarray\n" + _int(0) + b"\x85" + _short_string(b"b") + b"\x87R")
            out.append(b"(" + _int(1) + b"".join(_int(d) for d in value.shape)
                       + (b"\x86" if value.ndim == 2 else b"\x85"))
            out.append(b"cnumpy\ndtype\n" + _short_string(b"u1") + _int(0) + _int(1) + b"\x87R")
            out.append(b"(" + _int(3) + _short_string(b"|") + b"NNN" + _int(-1) + _int(-1)
                       + _int(0) + b"tb")
            raw = value.tobytes()
            out.append(b"\x89T" + struct.pack("<i", len(raw)) + raw + b"tb")
        elif isinstance(value, list):
            out.append(b"](")
            out.extend(_int(v) if isinstance(v, int) else _short_string(v.encode()) for v in value)
            out.append(b"e")
        else:
            out.append(_short_string(value.encode()))
    out.append(b"u.")
    return b"".join(out)


def make_cifar_archive(directory: str, per_batch: int = 6, seed: int = 0):
    """`cifar-10-python.tar.gz`; returns {split: (images [n,32,32,3], labels)}."""
    rng = np.random.RandomState(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    truth = {"train": ([], []), "test": ([], [])}
    with tarfile.open(os.path.join(directory, "cifar-10-python.tar.gz"), "w:gz") as tar:
        for name in names:
            images = rng.randint(0, 256, size=(per_batch, 32, 32, 3)).astype(np.uint8)
            labels = [int(v) for v in rng.randint(0, 10, size=per_batch)]
            data = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)
            blob = py2_numpy_pickle({"batch_label": name, "labels": labels, "data": data,
                                     "filenames": [f"img_{i}.png" for i in range(per_batch)]})
            _add_bytes(tar, f"cifar-10-batches-py/{name}", blob)
            split = "test" if name == "test_batch" else "train"
            truth[split][0].extend(images)
            truth[split][1].extend(labels)
        _add_bytes(tar, "cifar-10-batches-py/readme.html", b"<html></html>")
    return {s: (np.stack(i), l) for s, (i, l) in truth.items()}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


# ----------------------------------------------------------------- MNIST
MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def make_mnist_files(directory: str, sizes=(12, 7), seed: int = 0):
    """The four idx .gz files; returns {split: (images [n,28,28,1], labels)}."""
    rng = np.random.RandomState(seed)
    truth = {}
    for (split, (images_name, labels_name)), n in zip(MNIST_FILES.items(), sizes):
        images = rng.randint(0, 256, size=(n, 28, 28, 1)).astype(np.uint8)
        labels = rng.randint(0, 10, size=n).astype(np.uint8)
        with open(os.path.join(directory, images_name), "wb") as f:
            f.write(gzip.compress(struct.pack(">iiii", 2051, n, 28, 28) + images.tobytes()))
        with open(os.path.join(directory, labels_name), "wb") as f:
            f.write(gzip.compress(struct.pack(">ii", 2049, n) + labels.tobytes()))
        truth[split] = (images, labels.astype(int).tolist())
    return truth


# ----------------------------------------------------------------- COCO / VWW
def _coco_split(folder: str, first_id: int) -> tuple[dict, dict[str, bytes]]:
    """Four images: big person, tiny person, dog only, nothing."""
    images, annotations, files = [], [], {}
    specs = [("person", 0.02), ("person", 0.001), ("dog", 0.3), (None, 0)]
    for k, (category, share) in enumerate(specs):
        image_id = first_id + k
        height, width = 40, 50
        name = f"COCO_{folder}_{image_id:012d}.jpg"
        files[f"{folder}/{name}"] = jpeg(height, width, seed=image_id)
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        if category:
            area = share * height * width
            annotations.append({"id": 10 * image_id, "image_id": image_id,
                                "category_id": 1 if category == "person" else 18,
                                "area": area, "bbox": [2.0, 3.0, 10.0, area / 10.0],
                                "iscrowd": 0})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                           {"id": 18, "name": "dog", "supercategory": "animal"}]}
    return coco, files


def make_coco_zips(directory: str) -> dict:
    """train2014.zip, val2014.zip, annotations_trainval2014.zip; returns the COCO dicts."""
    result = {}
    annotations = {}
    for split, folder, first in (("train", "train2014", 1), ("val", "val2014", 101)):
        coco, files = _coco_split(folder, first)
        with zipfile.ZipFile(os.path.join(directory, f"{folder}.zip"), "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        annotations[f"annotations/instances_{folder}.json"] = json.dumps(coco)
        result[split] = (coco, files)
    with zipfile.ZipFile(os.path.join(directory, "annotations_trainval2014.zip"), "w") as zf:
        for name, text in annotations.items():
            zf.writestr(name, text)
    return result


# ----------------------------------------------------------------- ImageNet
SYNSETS = ["n01440764", "n01443537", "n01484850"]
SYNSET_TEXT = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
               "n01484850": "great white shark, white shark"}


def make_imagenet_tree(root: str, train_per_class: int = 4, val_per_class: int = 2) -> dict:
    """A raw ImageNet copy: train/<synset>/, flat validation/ + labels, synset files, boxes.

    One train file is a PNG named .JPEG and one a CMYK JPEG (the original's
    dirty files). Returns {'train': {rel: label}, 'validation': {rel: label}}.
    """
    truth = {"train": {}, "validation": {}}
    for label, synset in enumerate(SYNSETS, start=1):
        os.makedirs(os.path.join(root, "train", synset))
        for i in range(train_per_class):
            name = f"{synset}_{i}.JPEG"
            data = jpeg(30, 40, seed=label * 50 + i)
            if (label, i) == (1, 0):
                data = encode(image_array(30, 40, 7), "PNG")
            if (label, i) == (2, 0):
                data = _cmyk_jpeg()
            with open(os.path.join(root, "train", synset, name), "wb") as f:
                f.write(data)
            truth["train"][f"{synset}/{name}"] = label
    os.makedirs(os.path.join(root, "validation"))
    val_labels, index = [], 1
    for i in range(val_per_class):
        for label, synset in enumerate(SYNSETS, start=1):
            name = f"ILSVRC2012_val_{index:08d}.JPEG"
            with open(os.path.join(root, "validation", name), "wb") as f:
                f.write(jpeg(32, 28, seed=900 + index))
            val_labels.append(synset)
            truth["validation"][name] = label
            index += 1
    _write_lines(root, "imagenet_lsvrc_2015_synsets.txt", SYNSETS)
    _write_lines(root, "imagenet_2012_validation_synset_labels.txt", val_labels)
    _write_lines(root, "imagenet_metadata.txt",
                 [f"{s}\t{t}" for s, t in SYNSET_TEXT.items()] + ["n99999999\tunused"])
    _write_lines(root, "imagenet_2012_bounding_boxes.csv",
                 ["n01440764_1.JPEG,0.1000,0.2000,0.5000,0.6000",
                  "n01440764_1.JPEG,0.0500,0.0500,0.9000,0.9500",
                  "ILSVRC2012_val_00000002.JPEG,0.2500,0.2500,0.7500,0.7500"])
    return truth


def _cmyk_jpeg() -> bytes:
    rgb = Image.fromarray(image_array(30, 40, 9))
    out = io.BytesIO()
    rgb.convert("CMYK").save(out, format="JPEG", quality=95)
    return out.getvalue()


def _write_lines(root: str, name: str, lines) -> None:
    with open(os.path.join(root, name), "w") as f:
        f.write("\n".join(lines) + "\n")


# ----------------------------------------------------------------- records
def read_examples(files) -> list[dict[str, list]]:
    """Every record of `files`, in file order, as {key: list of values} (bytes, ints, floats)."""
    import tensorflow as tf

    parsed = []
    for path in files:
        for record in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(record.numpy())
            parsed.append({key: list(getattr(feature, feature.WhichOneof("kind")).value)
                           if feature.WhichOneof("kind") else []
                           for key, feature in example.features.feature.items()})
    return parsed


# ----------------------------------------------------------------- checkpoints
def make_checkpoint_tgz(path: str, members: dict[str, bytes]) -> None:
    """A zoo-style .tar.gz holding `members` at its top level."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            _add_bytes(tar, name, data)


def write_intensity_classes(image_dir, classes, per_class: int, spread: float, step: float,
                            size: int = 28, seed: int = 0) -> str:
    """One folder of PNGs per class: noise of `spread` levels above `step` x the class index, a
    set a small net learns in a few steps. Returns `image_dir` as a string."""
    rng = np.random.RandomState(seed)
    for c, name in enumerate(classes):
        os.makedirs(os.path.join(image_dir, name))
        for i in range(per_class):
            pixels = (rng.rand(size, size, 3) * spread + step * c).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(image_dir, name, f"{i}.png"))
    return str(image_dir)


def convert_folder(image_dir, dataset_dir, *flags: str) -> str:
    """Runs `slim-download --dataset_name=folder` on `image_dir` in-process; fails unless it
    exits 0. Returns `dataset_dir` as a string."""
    from slimcli.cli import download as download_cli
    argv = ["slim-download", "--dataset_name=folder", f"--image_dir={image_dir}",
            f"--dataset_dir={dataset_dir}", *flags]
    try:
        download_cli.run(argv)
    except SystemExit as stop:
        assert stop.code == 0, f"{' '.join(argv)} exited {stop.code}"
    return str(dataset_dir)
