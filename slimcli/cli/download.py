"""`slim-download`: Download datasets and convert them to TFRecords; download model-zoo checkpoints.

    slim-download --dataset_name=flowers --dataset_dir=/data/flowers
    slim-download --dataset_name=folder --image_dir=~/photos --dataset_dir=/data/mine
    slim-download --checkpoint=inception_v3 --checkpoint_dir=/data/ckpt

Flags: the fields of `slimcli.download.DownloadConfig`.
"""

from __future__ import annotations

from slimcli.cli.base import Command


def _download(config) -> None:
    from slimcli.download import download
    download(config)


COMMAND = Command("slim-download", "Download datasets and convert them to TFRecords; download "
                  "model-zoo checkpoints.", "slimcli.download:DownloadConfig", _download)
define_flags, main, run = COMMAND.define_flags, COMMAND.main, COMMAND.run

if __name__ == "__main__":
    run()
