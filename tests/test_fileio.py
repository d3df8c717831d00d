"""slimcli.fileio: a file or directory appears whole or not at all."""

import json
import os

import pytest
import tensorflow as tf

from slimcli import fileio


def _listing(directory):
    return sorted(os.listdir(directory))


def test_write_file_text_and_bytes_replace_the_old_content(tmp_path):
    path = str(tmp_path / "sub" / "out.txt")
    assert fileio.write_file(path, "old\n") == path
    fileio.write_file(path, "naïve\n")
    with open(path, encoding="utf-8") as f:
        assert f.read() == "naïve\n"
    fileio.write_file(path, b"\x00\xff")
    with open(path, "rb") as f:
        assert f.read() == b"\x00\xff"
    assert _listing(tmp_path / "sub") == ["out.txt"]


def test_write_json_round_trips_and_ends_in_a_newline(tmp_path):
    path = str(tmp_path / "r.json")
    fileio.write_json(path, {"b": 1, "a": [1.5, "x"]}, indent=2, sort_keys=True)
    with open(path) as f:
        text = f.read()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [1.5, "x"], "b": 1}


def test_unserialisable_json_leaves_the_old_file(tmp_path):
    path = str(tmp_path / "r.json")
    fileio.write_json(path, {"ok": True})
    with pytest.raises(TypeError):
        fileio.write_json(path, {"bad": object()})
    with open(path) as f:
        assert json.load(f) == {"ok": True}
    assert _listing(tmp_path) == ["r.json"]


def test_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = str(tmp_path / "data.bin")
    fileio.write_file(path, b"old")
    with pytest.raises(KeyboardInterrupt):
        with fileio.writing(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half of the new")
            assert os.path.basename(tmp).startswith(".") and tmp.endswith(".incomplete")
            raise KeyboardInterrupt
    with open(path, "rb") as f:
        assert f.read() == b"old"
    assert _listing(tmp_path) == ["data.bin"]


def test_failure_inside_write_file_leaves_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "model.tflite")
    fileio.write_file(path, b"old")
    real_write = tf.io.gfile.GFile.write

    def write_then_fail(self, data):
        real_write(self, data[:2])
        raise OSError("disk full")

    monkeypatch.setattr(tf.io.gfile.GFile, "write", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        fileio.write_file(path, b"new content")
    monkeypatch.undo()
    with open(path, "rb") as f:
        assert f.read() == b"old"
    assert _listing(tmp_path) == ["model.tflite"]


def test_tfrecord_writer_through_writing_publishes_only_when_closed(tmp_path):
    path = str(tmp_path / "x_train_00000-of-00001.tfrecord")
    with fileio.writing(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        writer.write(b"record")
        assert not os.path.exists(path)
        assert tf.io.gfile.glob(str(tmp_path / "x_train_*.tfrecord")) == []
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == [b"record"]
    assert _listing(tmp_path) == [os.path.basename(path)]


def test_staging_dir_is_removed_whatever_happens(tmp_path):
    with fileio.staging_dir(str(tmp_path), "ckpt") as staging:
        open(os.path.join(staging, "a"), "w").close()
        fileio.publish(os.path.join(staging, "a"), str(tmp_path / "a"))
        open(os.path.join(staging, "left"), "w").close()
    assert _listing(tmp_path) == ["a"]
    with pytest.raises(RuntimeError):
        with fileio.staging_dir(str(tmp_path), "ckpt") as staging:
            raise RuntimeError
    assert _listing(tmp_path) == ["a"]


def test_staging_dir_removal_does_not_follow_symbolic_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    with fileio.staging_dir(str(tmp_path / "target"), "archive") as staging:
        os.symlink(outside, os.path.join(staging, "link"))
    assert (outside / "keep.txt").read_text() == "keep"
    assert _listing(tmp_path / "target") == []


def test_writing_dir_replaces_a_directory_whole_or_not_at_all(tmp_path):
    target = str(tmp_path / "saved_model")
    with fileio.writing_dir(target) as tmp:
        os.makedirs(tmp)
        (open(os.path.join(tmp, "v1"), "w")).close()
    assert _listing(target) == ["v1"]
    with pytest.raises(ValueError):
        with fileio.writing_dir(target) as tmp:
            os.makedirs(tmp)
            open(os.path.join(tmp, "half"), "w").close()
            raise ValueError
    assert _listing(target) == ["v1"] and _listing(tmp_path) == ["saved_model"]
    with fileio.writing_dir(target + "/") as tmp:
        os.makedirs(tmp)
        open(os.path.join(tmp, "v2"), "w").close()
    assert _listing(target) == ["v2"] and _listing(tmp_path) == ["saved_model"]
