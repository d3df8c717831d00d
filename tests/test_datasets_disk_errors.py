"""slim-download's operational errors: one line naming the path and the fix, nothing that looks complete.

Tests run as root, which ignores file permissions, so the read-only and full-disk cases are
simulated by making the record writer or the file system call raise what the kernel would.
"""

from __future__ import annotations

import errno
import os

import pytest
import tensorflow as tf

from datasets_helpers import jpeg
from slimcli.cli import download as cli
from slimcli.datasets import get_dataset
from slimcli.datasets.shards import STATE_FILENAME
from slimcli.errors import SlimError


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    for c, name in enumerate(("ants", "bees")):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{i}.jpg").write_bytes(jpeg(12, 14, seed=10 * c + i))
    return root


def _download(tree, out, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["slim-download", "--dataset_name=folder", f"--image_dir={tree}",
                 f"--dataset_dir={out}", "--num_validation=2", "--noprogress"])
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


class _WriterFailingAfter:
    """A TFRecordWriter stand-in whose second record raises `error` (the disk fills up)."""

    def __init__(self, error: BaseException):
        self.error = error

    def __call__(self, path):
        self.real = _REAL_WRITER(path)
        self.count = 0
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    def write(self, record):
        self.count += 1
        if self.count > 1:
            raise self.error
        self.real.write(record)


_REAL_WRITER = tf.io.TFRecordWriter


def _assert_nothing_looks_complete(out) -> None:
    visible = [n for n in os.listdir(out) if not n.startswith(".")]
    assert "dataset.json" not in visible and "labels.txt" not in visible
    with pytest.raises(SlimError, match="did not finish; rerun|has no dataset.json"):
        get_dataset("folder", "train", str(out))


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    tf.errors.ResourceExhaustedError(None, None, "write failed: No space left on device"),
], ids=["ENOSPC", "ResourceExhaustedError"])
def test_full_disk_while_converting(tmp_path, tree, capsys, monkeypatch, error):
    out = tmp_path / "out"
    monkeypatch.setattr(tf.io, "TFRecordWriter", _WriterFailingAfter(error))
    code, err = _download(tree, out, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"slim-download: error: no space left on the device of {out} (")
    assert "free some space or choose another --dataset_dir" in err[0]
    _assert_nothing_looks_complete(out)
    monkeypatch.undo()  # space freed: the same command finishes the job
    code, err = _download(tree, out, capsys)
    assert code == 0, err
    assert get_dataset("folder", "train", str(out)).num_samples == 4
    assert not os.path.exists(out / STATE_FILENAME)


def test_read_only_dataset_dir(tmp_path, tree, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def read_only(path):
        raise PermissionError(errno.EROFS, "Read-only file system", path)
    monkeypatch.setattr(tf.io, "TFRecordWriter", read_only)
    code, err = _download(tree, out, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"slim-download: error: cannot write to {out}/")
    assert "read-only file system" in err[0]
    assert "choose a writable --dataset_dir or fix its permissions" in err[0]
    _assert_nothing_looks_complete(out)


def test_dataset_dir_that_cannot_be_created(tmp_path, tree, capsys, monkeypatch):
    parent = tmp_path / "locked"
    real_makedirs = os.makedirs

    def makedirs(path, *args, **kwargs):
        if str(path).startswith(str(parent)):
            raise PermissionError(errno.EACCES, "Permission denied", str(parent))
        return real_makedirs(path, *args, **kwargs)
    monkeypatch.setattr(os, "makedirs", makedirs)
    code, err = _download(tree, parent / "out", capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"slim-download: error: cannot write to {parent}: permission denied")


def test_dataset_dir_that_is_a_file(tmp_path, tree, capsys):
    out = tmp_path / "data.txt"
    out.write_text("mine")
    code, err = _download(tree, out, capsys)
    assert code == 2 and err == [
        f"slim-download: error: --dataset_dir={out} is a file, not a directory: pass a directory "
        f"(it is created if missing) or move the file away."]
    assert out.read_text() == "mine"
    code, err = _download(tree, out / "sub", capsys)  # a file in the middle of the path
    assert code == 2 and len(err) == 1 and "not a directory" in err[0], err
    assert "pass a directory for --dataset_dir" in err[0]
