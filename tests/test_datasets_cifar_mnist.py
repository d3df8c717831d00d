"""CIFAR-10 and MNIST end to end, plus the restricted CIFAR unpickler."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from datasets_helpers import (MNIST_FILES, make_cifar_archive, make_mnist_files, read_examples,
                             serve, sha256)
from slimcli.cli import download as cli
from slimcli.datasets import cifar10, fetch, get_dataset, mnist
from slimcli.datasets.convert import ConvertOptions
from slimcli.errors import SlimError


def _known(monkeypatch, url: str, path) -> None:
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, url, fetch.KnownArchive(
        os.path.getsize(path), sha256(path), "the test"))


def _check_png_records(out, name, split, images, labels, shape):
    ds = get_dataset(name, split, out)
    assert ds.num_samples == len(labels) and ds.from_descriptor
    assert [os.path.basename(f) for f in ds.files] == [f"{name}_{split}.tfrecord"]
    records = list(read_examples(ds.files))
    assert len(records) == len(labels)
    for record, image, label in zip(records, images, labels):
        assert record["image/format"] == [b"png"]
        assert record["image/class/label"] == [label]
        assert (record["image/height"], record["image/width"]) == ([shape[0]], [shape[1]])
        decoded = tf.io.decode_png(record["image/encoded"][0], channels=shape[2]).numpy()
        np.testing.assert_array_equal(decoded, image)


def test_cifar10_download_and_convert(tmp_path, monkeypatch):
    src = tmp_path / "srv"
    src.mkdir()
    truth = make_cifar_archive(str(src))
    _known(monkeypatch, cifar10.DATA_URL, src / "cifar-10-python.tar.gz")
    out = str(tmp_path / "cifar")
    with serve(str(src)) as server:
        argv = ["slim-download", "--dataset_name=cifar10", f"--dataset_dir={out}",
                f"--mirror={server.url}", "--noprogress", "--num_threads=2"]
        with pytest.raises(SystemExit) as exit_info:
            cli.run(argv)
    assert exit_info.value.code == 0
    for split in ("train", "test"):
        _check_png_records(out, "cifar10", split, *truth[split], (32, 32, 3))
    assert get_dataset("cifar10", "train", out).num_samples == 30  # 5 batches x 6
    lines = open(os.path.join(out, "labels.txt")).read().splitlines()
    assert lines[0] == "0:airplane" and lines[9] == "9:truck" and len(lines) == 10
    assert sorted(os.listdir(out)) == ["cifar10_test.tfrecord", "cifar10_train.tfrecord",
                                       "dataset.json", "labels.txt"]


def test_cifar_pickle_with_other_globals_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = (b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<i", len(f"touch {marker}"))
            + f"touch {marker}".encode() + b"\x85R.")
    path = tmp_path / "data_batch_1"
    path.write_bytes(evil)
    with pytest.raises(SlimError, match=r"not a CIFAR-10 python batch \(global os.system is "
                                        r"not allowed\)"):
        cifar10.load_batch(str(path))
    assert not marker.exists()


def test_cifar_batch_with_wrong_content_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}))
    with pytest.raises(SlimError, match=r"'data' must be uint8 \[n, 3072\]"):
        cifar10.load_batch(str(path))
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]}))
    with pytest.raises(SlimError, match=r"'labels' must be 2 integers in \[0, 9\]"):
        cifar10.load_batch(str(path))


def test_cifar_archive_without_batches(tmp_path, monkeypatch):
    src = tmp_path / "mirror"
    src.mkdir()
    with tarfile.open(src / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("something/else.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    _known(monkeypatch, cifar10.DATA_URL, src / "cifar-10-python.tar.gz")
    with pytest.raises(SlimError, match="has no cifar-10-batches-py/data_batch_1"):
        cifar10.convert(str(tmp_path / "out"), ConvertOptions(mirror=str(src), quiet=True))
    assert os.listdir(tmp_path / "out") == []  # the rejected archive's extraction is removed


def test_cifar_archive_with_a_hostile_batch_leaves_no_extraction(tmp_path, monkeypatch):
    src = tmp_path / "mirror"
    src.mkdir()
    evil = pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [os.getpid]})
    with tarfile.open(src / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(evil)
        tar.addfile(info, io.BytesIO(evil))
    _known(monkeypatch, cifar10.DATA_URL, src / "cifar-10-python.tar.gz")
    out = tmp_path / "out"
    with pytest.raises(SlimError, match="global posix.getpid is not allowed"):
        cifar10.convert(str(out), ConvertOptions(mirror=str(src), quiet=True))
    assert os.listdir(out) == []


def test_mnist_download_and_convert(tmp_path, monkeypatch):
    src = tmp_path / "srv"
    src.mkdir()
    truth = make_mnist_files(str(src))
    for names in MNIST_FILES.values():
        for name in names:
            _known(monkeypatch, mnist.DATA_URL + name, src / name)
    out = str(tmp_path / "mnist")
    with serve(str(src)) as server:
        report = mnist.convert(out, ConvertOptions(mirror=server.url + "/", quiet=True))
    assert report.records == {"train": 12, "test": 7}
    for split in ("train", "test"):
        _check_png_records(out, "mnist", split, *truth[split], (28, 28, 1))
    assert open(os.path.join(out, "labels.txt")).read().splitlines()[6] == "6:size"
    assert not [n for n in os.listdir(out) if n.endswith(".gz")]  # downloads deleted


def test_mnist_header_count_mismatch(tmp_path, monkeypatch):
    src = tmp_path / "mirror"
    src.mkdir()
    make_mnist_files(str(src))
    bad = src / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(struct.pack(">ii", 2049, 3) + bytes([1, 2, 3])))
    for names in MNIST_FILES.values():
        for name in names:
            _known(monkeypatch, mnist.DATA_URL + name, src / name)
    with pytest.raises(SlimError, match="has 7 images but t10k-labels-idx1-ubyte.gz has 3 labels"):
        mnist.convert(str(tmp_path / "out"), ConvertOptions(mirror=str(src), quiet=True))


@pytest.mark.parametrize("payload,message", [
    (struct.pack(">iiii", 2049, 1, 28, 28) + bytes(784), "not an MNIST image file"),
    (struct.pack(">iiii", 2051, 2, 28, 28) + bytes(784), "header says 2 images"),
])
def test_mnist_bad_image_files(tmp_path, payload, message):
    path = tmp_path / "x-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload))
    with pytest.raises(SlimError, match=message):
        mnist.read_images(str(path))


def test_mnist_truncated_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(bytes(5000))[:30])
    with pytest.raises(SlimError, match="not a complete gzip file"):
        mnist.read_images(str(path))
