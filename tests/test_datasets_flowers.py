"""Flowers end to end: flower_photos.tgz served on 127.0.0.1 → records read back."""

from __future__ import annotations

import io
import math
import os
import random

import pytest
from PIL import Image

from datasets_helpers import FLOWER_CLASSES, make_flowers_tgz, pin, read_examples, serve, sha256
from slimcli.cli import download as cli
from slimcli.datasets import fetch, flowers, get_dataset
from slimcli.datasets.convert import ConvertOptions
from slimcli.datasets.shards import STATE_FILENAME
from slimcli.errors import SlimError


@pytest.fixture
def served_flowers(tmp_path, monkeypatch):
    """flower_photos.tgz (3 classes x 10) behind a local server, checksum registered."""
    src = tmp_path / "srv"
    src.mkdir()
    files = make_flowers_tgz(str(src))
    archive = str(src / "flower_photos.tgz")
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, flowers.DATA_URL, fetch.KnownArchive(
        os.path.getsize(archive), sha256(archive), "the test"))
    with serve(str(src)) as server:
        yield server, files


def _expected_split(files: dict, num_validation: int):
    """The original's procedure, written out: seed 0, shuffle, first N validate."""
    names = sorted(files)
    random.seed(0)
    random.shuffle(names)
    return names[num_validation:], names[:num_validation]


def _check_split(out: str, split: str, names: list[str], files: dict) -> None:
    ds = get_dataset("flowers", split, out)
    assert ds.num_samples == len(names) and ds.num_classes == 3
    assert [os.path.basename(f) for f in ds.files] == [
        f"flowers_{split}_{i:05d}-of-00005.tfrecord" for i in range(5)]
    per_shard = math.ceil(len(names) / 5)
    records = list(read_examples(ds.files))
    assert len(records) == len(names)
    for k, (record, name) in enumerate(zip(records, names)):
        assert record["image/encoded"] == [files[name]], name
        assert record["image/format"] == [b"jpg"]
        assert record["image/class/label"] == [FLOWER_CLASSES.index(name.split("/")[1])]
        width, height = Image.open(io.BytesIO(files[name])).size
        assert (record["image/height"], record["image/width"]) == ([height], [width])
    counts = [sum(1 for _ in read_examples([f])) for f in ds.files]
    assert counts == [max(0, min(per_shard, len(names) - i * per_shard)) for i in range(5)]


def test_flowers_download_and_convert(tmp_path, served_flowers):
    server, files = served_flowers
    out = str(tmp_path / "flowers")
    report = flowers.convert(out, ConvertOptions(mirror=server.url, quiet=True, num_threads=2))
    assert report.records == {"train": 27, "validation": 3}  # 350/3670 of 30 photos
    train, validation = _expected_split(files, 3)
    _check_split(out, "train", train, files)
    _check_split(out, "validation", validation, files)
    assert open(os.path.join(out, "labels.txt")).read() == "0:daisy\n1:roses\n2:tulips\n"
    # The archive and the extracted photos are deleted, as the original does.
    assert sorted(os.listdir(out)) == sorted(
        ["dataset.json", "labels.txt"] + [f"flowers_{s}_{i:05d}-of-00005.tfrecord"
                                         for s in ("train", "validation") for i in range(5)])


def test_flowers_cli_in_process_then_rerun_is_a_no_op(tmp_path, served_flowers, capsys):
    server, files = served_flowers
    out = str(tmp_path / "f")
    argv = ["slim-download", "--dataset_name=flowers", f"--dataset_dir={out}",
            f"--mirror={server.url}", "--num_validation=10", "--noprogress", "--keep_archives"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 0
    assert "Finished converting the flowers dataset" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(out, "flower_photos.tgz"))  # --keep_archives
    train, validation = _expected_split(files, 10)
    _check_split(out, "validation", validation, files)
    requests = len(server.requests)
    with pytest.raises(SystemExit):
        cli.run(argv)
    assert "already exist" in capsys.readouterr().out
    assert len(server.requests) == requests  # nothing downloaded again


def test_changed_settings_on_existing_output_is_an_error(tmp_path, served_flowers, capsys):
    server, _ = served_flowers
    out = str(tmp_path / "f")
    flowers.convert(out, ConvertOptions(mirror=server.url, quiet=True))
    argv = ["slim-download", "--dataset_name=flowers", f"--dataset_dir={out}",
            f"--mirror={server.url}", "--num_validation=5"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "slim-download: error:" in err and "num_validation: None → 5" in err
    assert len(err.strip().splitlines()) == 1


def test_interrupted_conversion_resumes_without_redoing_shards(tmp_path, served_flowers,
                                                               monkeypatch):
    server, files = served_flowers
    out = str(tmp_path / "f")
    real = flowers.image_tree.make_encoder
    seen = []

    def flaky(root):
        encode = real(root)

        def wrapped(item):
            seen.append(item[0])
            if len(seen) == 17:
                raise KeyboardInterrupt
            return encode(item)
        return wrapped

    monkeypatch.setattr(flowers.image_tree, "make_encoder", flaky)
    with pytest.raises(KeyboardInterrupt):
        flowers.convert(out, ConvertOptions(mirror=server.url, quiet=True, num_threads=1))
    left = sorted(os.listdir(out))
    assert STATE_FILENAME in left and "dataset.json" not in left
    assert not [n for n in left if n.endswith(".incomplete")]
    done = [n for n in left if n.endswith(".tfrecord")]
    assert done == [f"flowers_train_{i:05d}-of-00005.tfrecord" for i in range(2)]
    with pytest.raises(SlimError, match="did not finish; rerun"):
        get_dataset("flowers", "train", out)
    seen.clear()
    monkeypatch.setattr(flowers.image_tree, "make_encoder", real)
    report = flowers.convert(out, ConvertOptions(mirror=server.url, quiet=True))
    assert report.records == {"train": 27, "validation": 3}
    train, validation = _expected_split(files, 3)
    _check_split(out, "train", train, files)
    assert not os.path.exists(os.path.join(out, STATE_FILENAME))


def test_corrupt_archive_leaves_nothing(tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "flower_photos.tgz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 50)
    pin(monkeypatch, flowers.DATA_URL, broken / "flower_photos.tgz")
    out = tmp_path / "out"
    with pytest.raises(SlimError, match="flower_photos.tgz: the archive is corrupt"):
        flowers.convert(str(out), ConvertOptions(mirror=str(broken), quiet=True))
    assert os.listdir(out) == []


def test_archive_rejected_after_extraction_leaves_nothing(tmp_path, monkeypatch):
    import tarfile
    src = tmp_path / "mirror"
    src.mkdir()
    with tarfile.open(src / "flower_photos.tgz", "w:gz") as tar:  # a valid tar, not flowers
        info = tarfile.TarInfo("holiday_photos/beach/1.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"jpg"))
    pin(monkeypatch, flowers.DATA_URL, src / "flower_photos.tgz")
    out = tmp_path / "out"
    with pytest.raises(SlimError, match="has no flower_photos/ folder; it is not the flowers"):
        flowers.convert(str(out), ConvertOptions(mirror=str(src), quiet=True))
    assert os.listdir(out) == []


def test_validation_count_rules():
    assert flowers.upstream_validation_count(3670) == 350
    assert flowers.upstream_validation_count(5000) == 350
    assert flowers.upstream_validation_count(100) == 10
    assert flowers.upstream_validation_count(3) == 1


def test_too_many_validation_images_is_a_clear_error(tmp_path, served_flowers):
    server, _ = served_flowers
    with pytest.raises(SlimError, match="30 validation images out of 30 would leave no training"):
        flowers.convert(str(tmp_path / "o"), ConvertOptions(mirror=server.url, quiet=True,
                                                            num_validation=30))


def _run(argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    return exit_info.value.code


def test_checksum_mismatch_through_the_cli(tmp_path, served_flowers, monkeypatch, capsys):
    server, _ = served_flowers
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, flowers.DATA_URL,
                        fetch.KnownArchive(None, "12" * 32, "the published list"))
    out = tmp_path / "f"
    assert _run(["slim-download", "--dataset_name=flowers", f"--dataset_dir={out}",
                 f"--mirror={server.url}", "--noprogress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("slim-download: error: checksum mismatch for flower_photos.tgz")
    assert "12" * 32 in err and len(err.splitlines()) == 1
    assert os.listdir(out) == []


def test_truncated_download_then_rerun_resumes(tmp_path, served_flowers, capsys):
    server, files = served_flowers
    out = tmp_path / "f"
    argv = ["slim-download", "--dataset_name=flowers", f"--dataset_dir={out}",
            f"--mirror={server.url}", "--noprogress"]
    server.truncate["flower_photos.tgz"] = 5000
    assert _run(argv) == 2
    assert "stopped at 5000 of" in capsys.readouterr().err
    assert os.listdir(out) == ["flower_photos.tgz.part"]
    assert _run(argv) == 0
    assert ("flower_photos.tgz", "bytes=5000-") in server.requests
    train, _ = _expected_split(files, 3)
    _check_split(str(out), "train", train, files)


def test_hostile_archive_through_the_converter(tmp_path, monkeypatch):
    import tarfile
    src = tmp_path / "mirror"
    src.mkdir()
    with tarfile.open(src / "flower_photos.tgz", "w:gz") as tar:
        info = tarfile.TarInfo("flower_photos/daisy/../../../escaped.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
        link = tarfile.TarInfo("flower_photos/roses/link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    pin(monkeypatch, flowers.DATA_URL, src / "flower_photos.tgz")
    out = tmp_path / "data" / "f"
    with pytest.raises(SlimError, match=r"refusing to extract flower_photos.tgz: member "
                                        r"'flower_photos/daisy/\.\./\.\./\.\./escaped.jpg'"):
        flowers.convert(str(out), ConvertOptions(mirror=str(src), quiet=True))
    assert os.listdir(out) == [] and not list(tmp_path.rglob("escaped.jpg"))
