"""Model-zoo checkpoints: the table, download + unpack over 127.0.0.1, the printed flags."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

from datasets_helpers import make_checkpoint_tgz, serve, write_sidecar
from slimcli.cli import download as cli
from slimcli.datasets import checkpoints, fetch
from slimcli.errors import SlimError

# Every archive of the original README's model-zoo table (ResNet V2 200 is "TBA").
README_ARCHIVES = [
    "inception_v1_2016_08_28.tar.gz", "inception_v2_2016_08_28.tar.gz",
    "inception_v3_2016_08_28.tar.gz", "inception_v4_2016_09_09.tar.gz",
    "inception_resnet_v2_2016_08_30.tar.gz", "resnet_v1_50_2016_08_28.tar.gz",
    "resnet_v1_101_2016_08_28.tar.gz", "resnet_v1_152_2016_08_28.tar.gz",
    "resnet_v2_50_2017_04_14.tar.gz", "resnet_v2_101_2017_04_14.tar.gz",
    "resnet_v2_152_2017_04_14.tar.gz", "vgg_16_2016_08_28.tar.gz", "vgg_19_2016_08_28.tar.gz",
    "mobilenet_v1_2018_02_22/mobilenet_v1_1.0_224.tgz",
    "mobilenet_v1_2018_02_22/mobilenet_v1_0.5_160.tgz",
    "mobilenet_v1_2018_02_22/mobilenet_v1_0.25_128.tgz",
    "mobilenet_v2/checkpoints/mobilenet_v2_1.4_224.tgz",
    "mobilenet_v2/checkpoints/mobilenet_v2_1.0_224.tgz",
    "nasnet-a_mobile_04_10_2017.tar.gz", "nasnet-a_large_04_10_2017.tar.gz",
    "pnasnet-5_large_2017_12_13.tar.gz", "pnasnet-5_mobile_2017_12_13.tar.gz",
]
EXCLUDES = {
    "inception_v3": "InceptionV3/Logits,InceptionV3/AuxLogits",
    "inception_v1": "InceptionV1/Logits",
    "resnet_v1_50": "resnet_v1_50/logits",
    "resnet_v2_152": "resnet_v2_152/logits",
    "mobilenet_v1": "MobilenetV1/Logits",
    "mobilenet_v2_140": "MobilenetV2/Logits",
    "vgg_16": "vgg_16/fc8",
    "nasnet_mobile": "final_layer,aux_7",
    "nasnet_large": "final_layer,aux_11",
}
HOSTS = ("https://download.tensorflow.org/models/",
         "https://storage.googleapis.com/download.tensorflow.org/models/",
         "https://storage.googleapis.com/")


def test_zoo_covers_the_readme_table():
    urls = [entry.url for _, entry in checkpoints.ZOO.items() if not entry.quantized]
    assert sorted(u.split("/models/")[-1].replace("https://storage.googleapis.com/", "")
                  for u in urls) == sorted(README_ARCHIVES)
    assert all(entry.url.startswith(HOSTS) for _, entry in checkpoints.ZOO.items())


def test_zoo_has_the_quantized_mobilenet_v1_checkpoints_of_mobilenet_v1_md():
    quantized = {name: entry for name, entry in checkpoints.ZOO.items() if entry.quantized}
    assert len(quantized) == 16
    entry = quantized["mobilenet_v1_1.0_224_quant"]
    assert entry.url == ("https://download.tensorflow.org/models/mobilenet_v1_2018_08_02/"
                         "mobilenet_v1_1.0_224_quant.tgz")
    assert (entry.checkpoint, entry.top1, entry.model_name) == (
        "mobilenet_v1_1.0_224_quant.ckpt", 70.1, "mobilenet_v1")
    widths = {"0.25": "mobilenet_v1_025", "0.5": "mobilenet_v1_050", "0.75": "mobilenet_v1_075",
              "1.0": "mobilenet_v1"}
    for name, entry in quantized.items():
        assert entry.model_name == widths[name.split("_")[2]]
        assert entry.exclude_scopes == "MobilenetV1/Logits"
    hint = checkpoints.fine_tune_hint(checkpoints.CheckpointResult(
        "mobilenet_v1_0.25_128_quant", "/c/mobilenet_v1_0.25_128_quant.ckpt",
        "MobilenetV1/Logits", None, True))
    assert "--model_name=mobilenet_v1_025" in hint and "--quantize_delay=0" in hint
    assert "--train_image_size=128" in hint


@pytest.mark.parametrize("name,scopes", sorted(EXCLUDES.items()))
def test_exclude_scopes(name, scopes):
    assert checkpoints.ZOO.get(name).exclude_scopes == scopes


def test_unknown_checkpoint_suggests_closest():
    with pytest.raises(SlimError, match=r"'inception_v9'.*Did you mean"):
        checkpoints.download_checkpoint("inception_v9", "/tmp/unused")


def test_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["slim-download", "--checkpoint=list"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "inception_v3" in out and "pnasnet_mobile" in out and "vgg_16/fc8" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    assert out.splitlines()[0].split()[-2:] == ["pinned", "archive"]
    assert {name for name, row in rows.items() if row[-2] != "-"} == {
        "inception_v1", "inception_v2", "mobilenet_v2", "mobilenet_v2_140"}
    assert rows["inception_v2"][-2] == "sha384" and rows["mobilenet_v2"][-2] == "sha256"
    assert out.splitlines()[-1].startswith("pinned: the digest every download must match")


# The digests open_model_zoo's model.yml files record for the same upstream archives.
OPEN_MODEL_ZOO = {
    "inception_v1": ("sha256", "7a620c430fcaba8f8f716241f5148c4c47c035cce4e49ef02cfbe6cd1adf96a6"),
    "inception_v2": ("sha384", "c0b2efbae8fc5e237ae67637dca3f311d4b4f7da576b56067e83d95c398a2fcc"
                               "d50baff9cc0de64335f4d7b78e1adb07"),
    "mobilenet_v2": ("sha256", "318084bc1b63d6d7b854553e09cdf77078b1c0168be27c59a0d44253b5ed49dc"),
    "mobilenet_v2_140": ("sha384", "fd257f73e8ee5280328903afa6bbd646dcf4e8ae7c090e3424cf05d973c0"
                                   "940fe02ee220a3a5a20ea51cb9caacbf4961"),
}


@pytest.mark.parametrize("name", sorted(OPEN_MODEL_ZOO))
def test_zoo_pins(name):
    known = fetch.KNOWN_ARCHIVES[checkpoints.ZOO.get(name).url]
    assert (known.algorithm, known.hexdigest) == OPEN_MODEL_ZOO[name]
    assert known.published_by.startswith("open_model_zoo models/public/")


def test_pinned_checkpoint_refuses_a_mirror_copy_its_sidecar_vouches_for(tmp_path, capsys,
                                                                          monkeypatch):
    src = tmp_path / "mirror"
    src.mkdir()
    archive = src / "inception_v2_2016_08_28.tar.gz"
    make_checkpoint_tgz(str(archive), {"inception_v2.ckpt": b"not the zoo's"})
    write_sidecar(str(archive))
    argv = ["slim-download", "--checkpoint=inception_v2", f"--checkpoint_dir={tmp_path / 'c'}",
            f"--mirror={src}", "--noprogress"]
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "checksum mismatch for inception_v2_2016_08_28.tar.gz: sha384 " in err
    assert "open_model_zoo models/public/googlenet-v2-tf/model.yml" in err
    assert not (tmp_path / "c" / "inception_v2.ckpt").exists()
    # Pinned to this file instead (as a release would be), it is unpacked.
    digest = hashlib.sha384(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, checkpoints.ZOO.get("inception_v2").url,
                        fetch.KnownArchive(None, f"sha384:{digest}", "the test"))
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    assert exit_info.value.code == 0
    assert f"verified inception_v2_2016_08_28.tar.gz: sha384 {digest[:16]}" in \
        capsys.readouterr().out


def _fails(argv, capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.run(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1, err
    return err[0]


def test_checkpoint_dir_file_system_errors(tmp_path, capsys, monkeypatch):
    src = tmp_path / "mirror"
    src.mkdir()
    make_checkpoint_tgz(str(src / "vgg_16_2016_08_28.tar.gz"), {"vgg_16.ckpt": b"w"})
    argv = ["slim-download", "--checkpoint=vgg_16", "--noprogress"]
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    for where in (a_file, a_file / "sub"):
        err = _fails([*argv, f"--checkpoint_dir={where}", f"--mirror={src}"], capsys)
        assert err.startswith(f"slim-download: error: cannot write to {where}: a path "
                              f"component is a file, not a directory")
        assert err.endswith("pass a directory for --checkpoint_dir.")
    assert a_file.read_text() == "mine"
    real_makedirs = os.makedirs

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_makedirs(path, *args, **kwargs)
    monkeypatch.setattr(os, "makedirs", read_only)
    err = _fails([*argv, f"--checkpoint_dir={tmp_path / 'ro'}", f"--mirror={src}"], capsys)
    assert err.startswith(f"slim-download: error: cannot write to {tmp_path / 'ro'}: permission "
                          f"denied or read-only file system")
    assert err.endswith("choose a writable --checkpoint_dir or fix its permissions.")


def test_full_disk_while_downloading_a_checkpoint(tmp_path, capsys, monkeypatch):
    src = tmp_path / "srv"
    src.mkdir()
    make_checkpoint_tgz(str(src / "vgg_16_2016_08_28.tar.gz"), {"vgg_16.ckpt": b"w" * 5000})
    real_open = open

    def full_disk(path, mode="r", *args, **kwargs):
        if mode in ("wb", "ab"):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr(fetch, "open", full_disk, raising=False)
    ckpt = tmp_path / "ckpt"
    with serve(str(src)) as server:
        err = _fails(["slim-download", "--checkpoint=vgg_16", f"--checkpoint_dir={ckpt}",
                      f"--mirror={server.url}", "--noprogress"], capsys)
    assert err.startswith(f"slim-download: error: no space left on the device of {ckpt}/")
    assert err.endswith("free some space or choose another --checkpoint_dir; nothing was "
                        "half-written.")
    assert not (ckpt / "vgg_16.ckpt").exists()


def test_download_unpack_and_print_flags(tmp_path, capsys):
    src = tmp_path / "srv"
    src.mkdir()
    make_checkpoint_tgz(str(src / "inception_v3_2016_08_28.tar.gz"),
                        {"inception_v3.ckpt": b"v1-checkpoint-bytes"})
    make_checkpoint_tgz(str(src / "nasnet-a_mobile_04_10_2017.tar.gz"),
                        {"model.ckpt.index": b"i", "model.ckpt.data-00000-of-00001": b"d"})
    ckpt_dir = tmp_path / "ckpt"
    with serve(str(src)) as server:
        for name in ("inception_v3", "nasnet_mobile"):
            argv = ["slim-download", f"--checkpoint={name}", f"--checkpoint_dir={ckpt_dir}",
                    f"--mirror={server.url}", "--noprogress"]
            with pytest.raises(SystemExit) as exit_info:
                cli.run(argv)
            assert exit_info.value.code == 0
        requests = len(server.requests)
        with pytest.raises(SystemExit):
            cli.run(argv)  # already there: no download
        assert len(server.requests) == requests
    out = capsys.readouterr().out
    assert f"--checkpoint_path={ckpt_dir}/inception_v3.ckpt" in out
    assert "--checkpoint_exclude_scopes=InceptionV3/Logits,InceptionV3/AuxLogits" in out
    assert f"--checkpoint_path={ckpt_dir}/nasnet_mobile/model.ckpt" in out
    assert "already exists; not downloading it again" in out
    assert (ckpt_dir / "inception_v3.ckpt").read_bytes() == b"v1-checkpoint-bytes"
    assert sorted(os.listdir(ckpt_dir)) == ["inception_v3.ckpt", "nasnet_mobile"]


def test_archive_without_the_checkpoint(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    make_checkpoint_tgz(str(src / "vgg_16_2016_08_28.tar.gz"), {"readme.txt": b"nothing"})
    with pytest.raises(SlimError, match="holds no vgg_16.ckpt"):
        checkpoints.download_checkpoint("vgg_16", str(tmp_path / "c"), mirror=str(src),
                                        quiet=True)


def test_mirror_checksum_file_is_checked(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    archive = src / "vgg_19_2016_08_28.tar.gz"
    make_checkpoint_tgz(str(archive), {"vgg_19.ckpt": b"w"})
    write_sidecar(str(archive))
    result = checkpoints.download_checkpoint("vgg_19", str(tmp_path / "c"), mirror=str(src),
                                             quiet=True)
    assert result.checkpoint_path == str(tmp_path / "c" / "vgg_19.ckpt")
    assert "--labels_offset=1" in checkpoints.fine_tune_hint(result)
    (src / "vgg_19_2016_08_28.tar.gz.sha256").write_text("0" * 64)
    with pytest.raises(SlimError, match="checksum mismatch for vgg_19_2016_08_28.tar.gz"):
        checkpoints.download_checkpoint("vgg_19", str(tmp_path / "d"), mirror=str(src),
                                        quiet=True)


def test_checkpoint_needs_a_directory(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["slim-download", "--checkpoint=vgg_16"])
    assert exit_info.value.code == 2
    assert "needs --checkpoint_dir" in capsys.readouterr().err
