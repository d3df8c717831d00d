"""Visual Wake Words (COCO zips over HTTP) and ImageNet (raw local copy)."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from datasets_helpers import (SYNSET_TEXT, SYNSETS, make_coco_zips, make_imagenet_tree, pin,
                             read_examples, serve, sha256)
from slimcli.cli import download as cli
from slimcli.datasets import fetch, get_dataset, imagenet, visualwakewords
from slimcli.datasets.convert import ConvertOptions, ImagenetOptions, VisualWakeWordsOptions
from slimcli.errors import SlimError

COCO = "http://images.cocodataset.org/"
COCO_FILES = {"zips/train2014.zip", "zips/val2014.zip",
              "annotations/annotations_trainval2014.zip"}


@pytest.fixture
def coco_server(tmp_path, monkeypatch):
    src = tmp_path / "srv"
    src.mkdir()
    truth = make_coco_zips(str(src))
    for rel in COCO_FILES:
        path = src / os.path.basename(rel)
        monkeypatch.setitem(fetch.KNOWN_ARCHIVES, COCO + rel, fetch.KnownArchive(
            os.path.getsize(path), sha256(path), "the test"))
    with serve(str(src)) as server:
        yield server, truth


def test_visualwakewords_download_and_convert(tmp_path, coco_server):
    server, truth = coco_server
    out = str(tmp_path / "vww")
    argv = ["slim-download", "--dataset_name=visualwakewords", f"--dataset_dir={out}",
            f"--mirror={server.url}", "--noprogress", "--train_shards=3"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 0
    assert open(os.path.join(out, "labels.txt")).read() == "0:background\n1:person\n"
    for split, num_shards in (("train", 3), ("val", 10)):
        ds = get_dataset("visualwakewords", split, out)
        assert ds.num_samples == 4 and ds.num_classes == 2
        assert [os.path.basename(f) for f in ds.files] == [
            f"{split}.record-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]
        coco, files = truth[split]
        order = [i for s in range(num_shards) for i in range(s, 4, num_shards)]
        records = list(read_examples(ds.files))
        for record, k in zip(records, order):
            image = coco["images"][k]
            data = files[f"{split}2014/{image['file_name']}"]
            assert record["image/encoded"] == [data]
            assert record["image/format"] == [b"jpeg"]
            assert record["image/filename"] == [image["file_name"].encode()]
            assert record["image/source_id"] == [str(image["id"]).encode()]
            assert record["image/key/sha256"] == [hashlib.sha256(data).hexdigest().encode()]
            assert record["image/class/label"] == [1 if k == 0 else 0]  # big person only
            assert len(record["image/object/bbox/xmin"]) == (1 if k == 0 else 0)
        box = records[0]["image/object/bbox/xmin"] + records[0]["image/object/bbox/ymax"]
        np.testing.assert_allclose(box, [2.0 / 50, (3.0 + 4.0) / 40], rtol=1e-6)
    assert os.path.isfile(os.path.join(out, "instances_visualwakewords_val2014.json"))
    assert os.path.isdir(os.path.join(out, "coco_dataset", "train2014"))  # kept, as upstream


def test_visualwakewords_threshold_and_unknown_class(tmp_path, coco_server):
    server, _ = coco_server
    out = str(tmp_path / "vww")
    options = ConvertOptions(mirror=server.url, quiet=True, num_shards=1,
                             visualwakewords=VisualWakeWordsOptions(
                                 small_object_area_threshold=0.0005))
    visualwakewords.convert(out, options)
    labels = [r["image/class/label"][0]
              for r in read_examples(get_dataset("visualwakewords", "train", out).files)]
    assert labels == [1, 1, 0, 0]  # the 0.1% person now counts
    bad = ConvertOptions(mirror=server.url, quiet=True, visualwakewords=VisualWakeWordsOptions(
        foreground_class_of_interest="persn"))
    with pytest.raises(SlimError, match="'persn' is not a COCO category; known: dog, person"):
        visualwakewords.convert(str(tmp_path / "other"), bad)


def test_visualwakewords_missing_image_is_skipped(tmp_path, coco_server):
    server, _ = coco_server
    out = tmp_path / "vww"
    visualwakewords.convert(str(out), ConvertOptions(mirror=server.url, quiet=True, num_shards=1,
                                                     keep_archives=True))
    coco_dir = out / "coco_dataset"
    os.remove(coco_dir / "val2014" / "COCO_val2014_000000000102.jpg")
    for name in os.listdir(out):
        if name.startswith(("val.record", "train.record", "dataset.json")):
            os.remove(out / name)
    report = visualwakewords.convert(str(out), ConvertOptions(mirror=server.url, quiet=True,
                                                              num_shards=1))
    assert report.records == {"train": 4, "val": 3}
    assert report.skipped[0][0] == "val2014/COCO_val2014_000000000102.jpg"


@pytest.fixture
def raw_imagenet(tmp_path):
    root = tmp_path / "raw"
    truth = make_imagenet_tree(str(root))
    return root, truth


def test_imagenet_from_raw_folders(tmp_path, raw_imagenet):
    root, truth = raw_imagenet
    out = str(tmp_path / "imagenet")
    report = imagenet.convert(out, ConvertOptions(image_dir=str(root), train_shards=16,
                                                  validation_shards=8, quiet=True))
    assert report.records == {"validation": 6, "train": 12}
    labels = open(os.path.join(out, "labels.txt")).read().splitlines()
    assert labels == ["0:background"] + [f"{i + 1}:{SYNSET_TEXT[s]}"
                                         for i, s in enumerate(SYNSETS)]
    for split in ("train", "validation"):
        ds = get_dataset("imagenet", split, out)
        assert ds.num_classes == 4 and ds.num_samples == len(truth[split])
        shards = 16 if split == "train" else 8
        assert os.path.basename(ds.files[0]) == f"{split}-00000-of-{shards:05d}"
        seen = {}
        for record in read_examples(ds.files):
            name = record["image/filename"][0].decode()
            rel = next(r for r in truth[split] if r.endswith(name))
            label = truth[split][rel]
            assert record["image/class/label"] == [label]
            assert record["image/class/synset"] == [SYNSETS[label - 1].encode()]
            assert record["image/class/text"] == [SYNSET_TEXT[SYNSETS[label - 1]].encode()]
            assert record["image/format"] == [b"JPEG"] and record["image/colorspace"] == [b"RGB"]
            decoded = Image.open(io.BytesIO(record["image/encoded"][0]))
            assert decoded.format == "JPEG" and decoded.mode == "RGB"  # PNG and CMYK fixed
            assert record["image/height"] == [decoded.size[1]]
            seen[name] = record
        assert len(seen) == len(truth[split])
    train = {r["image/filename"][0].decode(): r
             for r in read_examples(get_dataset("imagenet", "train", out).files)}
    boxed = train["n01440764_1.JPEG"]
    np.testing.assert_allclose(boxed["image/object/bbox/xmin"], [0.1, 0.05], rtol=1e-6)
    np.testing.assert_allclose(boxed["image/object/bbox/ymax"], [0.6, 0.95], rtol=1e-6)
    assert boxed["image/object/bbox/label"] == [1, 1]
    assert train["n01443537_1.JPEG"]["image/object/bbox/xmin"] == []


def test_imagenet_validation_only_and_label_mismatch(tmp_path, raw_imagenet):
    root, _ = raw_imagenet
    options = ConvertOptions(image_dir=str(root), quiet=True, validation_shards=8,
                             imagenet=ImagenetOptions(train_directory=str(root / "none")))
    out = str(tmp_path / "val_only")
    assert imagenet.convert(out, options).records == {"validation": 6}
    with pytest.raises(SlimError, match="Known splits: validation"):
        get_dataset("imagenet", "train", out)
    with open(root / "imagenet_2012_validation_synset_labels.txt", "a") as f:
        f.write("n01440764\n")
    with pytest.raises(SlimError, match="holds 6 JPEG files but .* lists 7 synsets"):
        imagenet.convert(str(tmp_path / "x"), options)


def test_imagenet_missing_metadata_text(tmp_path, raw_imagenet):
    root, _ = raw_imagenet
    (root / "imagenet_metadata.txt").write_text("n01440764\ttench\n")
    with pytest.raises(SlimError, match="has no text for synset n01443537"):
        imagenet.convert(str(tmp_path / "o"), ConvertOptions(image_dir=str(root), quiet=True,
                                                             num_shards=8))


def test_visualwakewords_coco_url_flags(tmp_path, coco_server, capsys):
    server, _ = coco_server
    out = str(tmp_path / "vww")
    argv = ["slim-download", "--dataset_name=visualwakewords", f"--dataset_dir={out}",
            f"--coco_train_url={server.url}/train2014.zip",
            f"--coco_validation_url={server.url}/val2014.zip",
            f"--coco_annotations_url={server.url}/annotations_trainval2014.zip",
            "--coco_dirname=coco", "--num_shards=1", "--noprogress"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.count("note: no published checksum for") == 3  # custom URLs: digest printed
    assert os.path.isdir(os.path.join(out, "coco", "val2014"))
    assert get_dataset("visualwakewords", "val", out).num_samples == 4


@pytest.mark.parametrize("bad_member,why", [
    ({}, "holds no annotations/instances_train2014.json"),
    ({"annotations/instances_train2014.json": "{not json"}, "is not valid JSON"),
    ({"annotations/instances_train2014.json": "[1, 2]"}, "has no 'images' list"),
], ids=["missing", "not-json", "not-coco"])
def test_visualwakewords_rejected_annotations_zip_leaves_nothing(tmp_path, coco_server,
                                                                  monkeypatch, bad_member, why):
    server, _ = coco_server
    archive = os.path.join(server.root, "annotations_trainval2014.zip")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("annotations/instances_val2014.json", '{"images": []}')
        for name, text in bad_member.items():
            zf.writestr(name, text)
    pin(monkeypatch, COCO + "annotations/annotations_trainval2014.zip", archive)
    out = tmp_path / "vww"
    options = ConvertOptions(mirror=server.url, quiet=True, num_shards=1)
    with pytest.raises(SlimError, match=rf"annotations_trainval2014.zip {why}|"
                                        rf"instances_train2014.json of annotations_trainval"
                                        rf"2014.zip {why}"):
        visualwakewords.convert(str(out), options)
    coco_dir = out / "coco_dataset"
    assert sorted(os.listdir(coco_dir)) == [  # the zips (kept, as upstream) and their images
        ".train2014.zip.extracted", ".val2014.zip.extracted", "annotations_trainval2014.zip",
        "train2014", "train2014.zip", "val2014", "val2014.zip"]


def test_imagenet_class_without_a_readable_image(tmp_path, raw_imagenet, capsys):
    root, _ = raw_imagenet
    synset_dir = root / "train" / "n01443537"
    names = sorted(os.listdir(synset_dir))
    for name in names:  # every goldfish photo broken: the first one empty, the others cut short
        data = (synset_dir / name).read_bytes()
        (synset_dir / name).write_bytes(b"" if name == names[0] else data[:40])
    (root / "train" / "n01440764" / "n01440764_1.JPEG").write_bytes(b"")  # one of four: skipped
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["slim-download", "--dataset_name=imagenet", f"--image_dir={root}",
                 f"--dataset_dir={out}", "--num_shards=8", "--noprogress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and err == [
        f"slim-download: error: ImageNet class n01443537 (goldfish, Carassius auratus) in "
        f"{root}/train: none of its 4 image(s) can be read (e.g. n01443537/{names[0]}: empty "
        f"file (0 bytes)); replace the broken files, or the class has no train example."]
    assert not (out / "dataset.json").exists() and not (out / "labels.txt").exists()
    # Replaced: the same command converts, and the one broken tench photo is skipped by name.
    make_imagenet_tree(str(tmp_path / "fresh"))
    for name in names:
        (synset_dir / name).write_bytes((tmp_path / "fresh" / "train" / "n01443537" /
                                         name).read_bytes())
    report = imagenet.convert(str(out), ConvertOptions(image_dir=str(root), quiet=True,
                                                       num_shards=8))
    assert report.records == {"validation": 6, "train": 11}
    assert [name for name, _ in report.skipped] == ["train/n01440764/n01440764_1.JPEG"]
