"""Model-zoo checkpoints: the table, download + unpack over 127.0.0.1, the printed flags."""

from __future__ import annotations

import os

import pytest

from datasets_helpers import make_checkpoint_tgz, serve, write_sidecar
from slimcli.cli import download as cli
from slimcli.datasets import checkpoints
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
HOSTS = ("http://download.tensorflow.org/models/",
         "https://storage.googleapis.com/download.tensorflow.org/models/",
         "https://storage.googleapis.com/")


def test_zoo_covers_the_readme_table():
    urls = [entry.url for _, entry in checkpoints.ZOO.items()]
    assert sorted(u.split("/models/")[-1].replace("https://storage.googleapis.com/", "")
                  for u in urls) == sorted(README_ARCHIVES)
    assert all(u.startswith(HOSTS) for u in urls)


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
