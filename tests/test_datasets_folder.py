"""`--dataset_name=folder`: one's own images → records, descriptor, labels."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from datasets_helpers import encode, image_array, jpeg, read_examples
from slimcli.cli import download as cli
from slimcli.datasets import folder, get_dataset
from slimcli.datasets.convert import ConvertOptions
from slimcli.errors import SlimError


@pytest.fixture
def image_dir(tmp_path):
    """cats (jpg + png + a nested jpeg), dogs (gif, bmp, CMYK jpg), owls (jpg), junk files."""
    root = tmp_path / "photos"
    files = {}

    def put(rel, data):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[rel] = data

    for i in range(4):
        put(f"cats/c{i}.jpg", jpeg(16 + i, 20, seed=i))
    put("cats/c_png.PNG", encode(image_array(12, 14, 40), "PNG"))
    put("cats/more/deep.jpeg", jpeg(10, 10, seed=41))
    put("dogs/d0.gif", encode(image_array(9, 11, 50), "GIF"))
    put("dogs/d1.bmp", encode(image_array(13, 7, 51), "BMP"))
    cmyk = io.BytesIO()
    Image.fromarray(image_array(8, 8, 52)).convert("CMYK").save(cmyk, format="JPEG")
    put("dogs/d2.jpg", cmyk.getvalue())
    for i in range(3):
        put(f"owls/o{i}.jpg", jpeg(11, 12, seed=60 + i))
    (root / "owls" / "notes.txt").write_text("not an image")
    (root / "owls" / ".hidden.jpg").write_bytes(b"hidden")
    return root, files


def _all_records(out: str) -> list[dict]:
    return [record for split in ("train", "validation")
            for record in read_examples(get_dataset("folder", split, out).files)]


def test_folder_converts_every_format(tmp_path, image_dir):
    root, files = image_dir
    out = str(tmp_path / "out")
    report = folder.convert(out, ConvertOptions(image_dir=str(root), num_validation=3,
                                                quiet=True, num_threads=2))
    assert report.records == {"train": 9, "validation": 3} and report.skipped == []
    assert open(os.path.join(out, "labels.txt")).read() == "0:cats\n1:dogs\n2:owls\n"
    train = get_dataset("folder", "train", out)
    assert train.num_samples == 9 and train.num_classes == 3 and train.from_descriptor
    assert train.labels_to_names == {0: "cats", 1: "dogs", 2: "owls"}
    assert [os.path.basename(f) for f in train.files] == ["folder_train_00000-of-00001.tfrecord"]
    by_bytes = {data: rel for rel, data in files.items()}
    seen = set()
    for record in _all_records(out):
        encoded, fmt = record["image/encoded"][0], record["image/format"][0]
        decoded = Image.open(io.BytesIO(encoded))
        assert record["image/height"] == [decoded.size[1]]
        assert record["image/width"] == [decoded.size[0]]
        if encoded in by_bytes:  # stored as is
            rel = by_bytes[encoded]
            assert fmt == (b"png" if rel.lower().endswith(".png") else b"jpg")
        else:  # re-encoded as PNG: pixels of the original file
            assert fmt == b"png" and decoded.format == "PNG"
            rel = next(r for r, d in files.items() if r.startswith("dogs/") and
                       Image.open(io.BytesIO(d)).size == decoded.size)
            expected = Image.open(io.BytesIO(files[rel])).convert(decoded.mode)
            np.testing.assert_array_equal(np.asarray(expected), np.asarray(decoded))
        assert record["image/class/label"] == [["cats", "dogs", "owls"].index(rel.split("/")[0])]
        seen.add(rel)
    assert seen == set(files)


def test_unreadable_images_are_reported_and_skipped(tmp_path, image_dir, capsys):
    root, _ = image_dir
    (root / "owls" / "broken.jpg").write_bytes(jpeg(30, 30, seed=9)[:200])
    (root / "owls" / "empty.png").write_bytes(b"")
    out = str(tmp_path / "out")
    argv = ["slim-download", "--dataset_name=folder", f"--image_dir={root}",
            f"--dataset_dir={out}", "--validation_fraction=0.25", "--noprogress"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "Skipped 2 unreadable file(s):" in text
    assert "owls/broken.jpg" in text and "owls/empty.png" in text
    assert "ignored 1 file(s) without an image extension" in text
    total = sum(get_dataset("folder", s, out).num_samples for s in ("train", "validation"))
    assert total == 12


def test_skip_reason_names_the_file_problem(tmp_path, image_dir):
    root, _ = image_dir
    (root / "owls" / "text.jpg").write_bytes(b"hello, not a photo")
    (root / "owls" / "empty.png").write_bytes(b"")
    (root / "owls" / "cut.png").write_bytes(encode(image_array(30, 30, 8), "PNG")[:90])
    report = folder.convert(str(tmp_path / "out"), ConvertOptions(image_dir=str(root),
                                                                  quiet=True))
    reasons = dict(report.skipped)
    assert reasons == {
        "owls/text.jpg": "not an image format Pillow knows (18 bytes starting b'hello, n')",
        "owls/empty.png": "empty file (0 bytes)",
        "owls/cut.png": "truncated or corrupt PNG data (image file is truncated)"}
    assert not any("BytesIO" in reason for reason in reasons.values())


def test_class_with_no_readable_image_is_an_error(tmp_path, image_dir, capsys):
    root, _ = image_dir
    (root / "zebras").mkdir()
    (root / "zebras" / "z0.jpg").write_bytes(b"garbage")
    (root / "zebras" / "z1.png").write_bytes(b"")
    out = tmp_path / "out"
    argv = ["slim-download", "--dataset_name=folder", f"--image_dir={root}",
            f"--dataset_dir={out}", "--noprogress"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"slim-download: error: class folder '{root / 'zebras'}': none of its 2 image(s) can be "
        f"read (e.g. zebras/z0.jpg: not an image format")
    assert "remove the folder" in err[0]
    assert os.listdir(out) == []  # no shard, state, labels.txt or dataset.json left
    (root / "zebras" / "z0.jpg").write_bytes(jpeg(10, 10, seed=3))  # fixed in place
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 0
    assert get_dataset("folder", "train", str(out)).num_classes == 4


def test_empty_class_folder_is_an_error(tmp_path, image_dir):
    root, _ = image_dir
    (root / "empty_class").mkdir()
    (root / "empty_class" / "readme.txt").write_text("nothing")
    with pytest.raises(SlimError, match=r"class folder '.*empty_class' has no image files.*"
                                        r"add images or remove the folder"):
        folder.convert(str(tmp_path / "out"), ConvertOptions(image_dir=str(root), quiet=True))
    assert not (tmp_path / "out").exists()


def test_no_validation_split_when_zero(tmp_path, image_dir):
    root, _ = image_dir
    out = str(tmp_path / "out")
    folder.convert(out, ConvertOptions(image_dir=str(root), num_validation=0, quiet=True,
                                       num_shards=2))
    ds = get_dataset("folder", "train", out)
    assert ds.num_samples == 12 and len(ds.files) == 2
    with pytest.raises(SlimError, match="Known splits: train"):
        get_dataset("folder", "validation", out)


def test_changed_tree_is_detected(tmp_path, image_dir):
    root, _ = image_dir
    out = str(tmp_path / "out")
    folder.convert(out, ConvertOptions(image_dir=str(root), quiet=True))
    (root / "owls" / "o9.jpg").write_bytes(jpeg(9, 9, seed=99))
    with pytest.raises(SlimError, match="already holds folder converted with other settings "
                                        r"\(listing"):
        folder.convert(out, ConvertOptions(image_dir=str(root), quiet=True))


@pytest.mark.parametrize("kwargs,message", [
    ({"image_dir": None}, "needs --image_dir"),
    ({"image_dir": "/nonexistent/photos"}, "does not exist"),
    ({"validation_fraction": 1.5}, r"--validation_fraction=1.5 must be in \[0, 1\)"),
    ({"validation_fraction": 0.5, "num_validation": 2}, "pass either"),
])
def test_bad_options(tmp_path, image_dir, kwargs, message):
    root, _ = image_dir
    options = ConvertOptions(**{"image_dir": str(root), "quiet": True, **kwargs})
    with pytest.raises(SlimError, match=message):
        folder.convert(str(tmp_path / "out"), options)


def test_output_inside_image_dir_is_refused(tmp_path, image_dir):
    root, _ = image_dir
    with pytest.raises(SlimError, match="is inside --image_dir"):
        folder.convert(str(root / "records"), ConvertOptions(image_dir=str(root), quiet=True))


def test_cli_rejects_flags_of_other_datasets(tmp_path, capsys):
    argv = ["slim-download", "--dataset_name=cifar10", f"--dataset_dir={tmp_path}",
            "--num_validation=3"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 2
    assert "--num_validation applies to --dataset_name=flowers/folder, not 'cifar10'" in \
        capsys.readouterr().err
