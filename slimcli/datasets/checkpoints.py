"""The TF-Slim model zoo: download, verify, unpack, and say how to fine-tune.

The table is the original README's (research/slim/README.md, "Pre-trained
Models"); ResNet V2 200 is listed there as "TBA" and has no archive. No
SHA-256 is published for these archives: a download is checked against the
server's Content-Length, the gzip CRC is checked while unpacking, and a
mirror's `<archive>.sha256` file is honoured when present. The digest of
what was downloaded is printed so it can be recorded.
"""

from __future__ import annotations

import dataclasses
import os

from slimcli.datasets import archives, fetch
from slimcli.errors import SlimError
from slimcli.registry import Registry

_TF = "http://download.tensorflow.org/models/"
_GCS = "https://storage.googleapis.com/download.tensorflow.org/models/"
_MOBILENET_V2 = "https://storage.googleapis.com/mobilenet_v2/checkpoints/"


@dataclasses.dataclass(frozen=True)
class ZooCheckpoint:
    """One model-zoo archive.

    Attributes:
      model_name: the `--model_name` it belongs to.
      url: the archive's upstream URL.
      checkpoint: the checkpoint prefix inside the archive.
      exclude_scopes: `--checkpoint_exclude_scopes` for fine-tuning on a new
        label set (the logits layers).
      top1: the README's ImageNet top-1 accuracy.
      notes: extra flags the README says the checkpoint needs.
      subdir: unpack into `<checkpoint_dir>/<subdir>` (archives whose
        checkpoint is the generic `model.ckpt`, which would collide).
    """
    model_name: str
    url: str
    checkpoint: str
    exclude_scopes: str
    top1: float
    notes: str = ""
    subdir: str = ""


_OFFSET = "Caffe-converted, 1000 classes: evaluate on ImageNet with --labels_offset=1"
_RESNET_V2 = "use --preprocessing_name=inception --eval_image_size=299"


def _inception(n: str, date: str, top1: float, aux: bool) -> ZooCheckpoint:
    scope = f"InceptionV{n}"
    scopes = f"{scope}/Logits,{scope}/AuxLogits" if aux else f"{scope}/Logits"
    return ZooCheckpoint(f"inception_v{n}", f"{_TF}inception_v{n}_{date}.tar.gz",
                         f"inception_v{n}.ckpt", scopes, top1)


def _resnet(version: int, depth: int, top1: float) -> ZooCheckpoint:
    name = f"resnet_v{version}_{depth}"
    date = "2016_08_28" if version == 1 else "2017_04_14"
    return ZooCheckpoint(name, f"{_TF}{name}_{date}.tar.gz", f"{name}.ckpt", f"{name}/logits",
                         top1, _OFFSET if version == 1 else _RESNET_V2)


def _mobilenet_v1(model: str, tag: str, top1: float) -> ZooCheckpoint:
    return ZooCheckpoint(model, f"{_TF}mobilenet_v1_2018_02_22/mobilenet_v1_{tag}.tgz",
                         f"mobilenet_v1_{tag}.ckpt", "MobilenetV1/Logits", top1)


def _mobilenet_v2(model: str, tag: str, top1: float) -> ZooCheckpoint:
    return ZooCheckpoint(model, f"{_MOBILENET_V2}mobilenet_v2_{tag}.tgz",
                         f"mobilenet_v2_{tag}.ckpt", "MobilenetV2/Logits", top1)


def _nas(model: str, archive: str, aux: int, top1: float) -> ZooCheckpoint:
    return ZooCheckpoint(model, f"{_GCS}{archive}", "model.ckpt", f"final_layer,aux_{aux}",
                         top1, subdir=model)


ZOO: Registry[ZooCheckpoint] = Registry("checkpoint", "--checkpoint")
for _entry in [
    _inception("1", "2016_08_28", 69.8, aux=False),
    _inception("2", "2016_08_28", 73.9, aux=False),
    _inception("3", "2016_08_28", 78.0, aux=True),
    _inception("4", "2016_09_09", 80.2, aux=True),
    ZooCheckpoint("inception_resnet_v2", f"{_TF}inception_resnet_v2_2016_08_30.tar.gz",
                  "inception_resnet_v2_2016_08_30.ckpt",
                  "InceptionResnetV2/Logits,InceptionResnetV2/AuxLogits", 80.4),
    _resnet(1, 50, 75.2), _resnet(1, 101, 76.4), _resnet(1, 152, 76.8),
    _resnet(2, 50, 75.6), _resnet(2, 101, 77.0), _resnet(2, 152, 77.8),
    ZooCheckpoint("vgg_16", f"{_TF}vgg_16_2016_08_28.tar.gz", "vgg_16.ckpt", "vgg_16/fc8", 71.5,
                  _OFFSET),
    ZooCheckpoint("vgg_19", f"{_TF}vgg_19_2016_08_28.tar.gz", "vgg_19.ckpt", "vgg_19/fc8", 71.1,
                  _OFFSET),
    _mobilenet_v1("mobilenet_v1", "1.0_224", 70.9),
    _mobilenet_v1("mobilenet_v1_050", "0.5_160", 59.1),
    _mobilenet_v1("mobilenet_v1_025", "0.25_128", 41.5),
    _mobilenet_v2("mobilenet_v2_140", "1.4_224", 74.9),
    _mobilenet_v2("mobilenet_v2", "1.0_224", 71.9),
    _nas("nasnet_mobile", "nasnet-a_mobile_04_10_2017.tar.gz", 7, 74.0),
    _nas("nasnet_large", "nasnet-a_large_04_10_2017.tar.gz", 11, 82.7),
    _nas("pnasnet_large", "pnasnet-5_large_2017_12_13.tar.gz", 7, 82.9),
    _nas("pnasnet_mobile", "pnasnet-5_mobile_2017_12_13.tar.gz", 5, 74.2),
]:
    ZOO.register(_entry.model_name, _entry)


@dataclasses.dataclass(frozen=True)
class CheckpointResult:
    """Where the checkpoint is and the fine-tuning flags to use with it."""
    name: str
    checkpoint_path: str
    exclude_scopes: str
    sha256: str | None
    already_there: bool


def list_checkpoints() -> str:
    """A table of every zoo archive (for `--checkpoint=list`)."""
    rows = [f"{'checkpoint':22} {'top-1':>5}  {'exclude scopes':48} archive"]
    for name, entry in ZOO.items():
        rows.append(f"{name:22} {entry.top1:5.1f}  {entry.exclude_scopes:48} {entry.url}")
    return "\n".join(rows)


def _checkpoint_exists(prefix: str) -> bool:
    return os.path.isfile(prefix) or os.path.isfile(f"{prefix}.index")


def download_checkpoint(name: str, checkpoint_dir: str, mirror: str | None = None,
                        keep_archive: bool = False, quiet: bool = False) -> CheckpointResult:
    """Downloads, verifies and unpacks one zoo checkpoint into `checkpoint_dir`.

    Args:
      name: a zoo entry name (`inception_v3`, ...).
      checkpoint_dir: where to unpack (created).
      mirror: base URL or local directory holding the same archive name.
      keep_archive: keep the downloaded archive after unpacking.
      quiet: no progress bars.

    Returns:
      The checkpoint prefix to pass as --checkpoint_path and its exclude scopes.

    Raises:
      SlimError: unknown name, download/checksum/archive problems, or an
        archive without the expected checkpoint.
    """
    entry = ZOO.get(name)
    target = os.path.join(checkpoint_dir, entry.subdir) if entry.subdir else checkpoint_dir
    prefix = os.path.join(target, entry.checkpoint)
    if _checkpoint_exists(prefix):
        return CheckpointResult(name, prefix, entry.exclude_scopes, None, True)
    got = fetch.fetch(entry.url, target, mirror, quiet)
    archives.extract(got.path, target)
    if got.owned and not keep_archive:
        os.remove(got.path)
    if not _checkpoint_exists(prefix):
        raise SlimError(f"{os.path.basename(entry.url)} unpacked into {target} but holds no "
                        f"{entry.checkpoint}(.index); the archive is not the zoo's {name}. "
                        f"Check --mirror.")
    return CheckpointResult(name, prefix, entry.exclude_scopes, got.sha256, False)


def fine_tune_hint(result: CheckpointResult) -> str:
    """The lines `slim-download --checkpoint=...` prints."""
    entry = ZOO.get(result.name)
    lines = [f"--checkpoint_path={result.checkpoint_path}",
             f"--checkpoint_exclude_scopes={result.exclude_scopes}",
             f"Fine-tune: slim-train --model_name={entry.model_name} "
             f"--checkpoint_path={result.checkpoint_path} "
             f"--checkpoint_exclude_scopes={result.exclude_scopes} "
             f"--trainable_scopes={result.exclude_scopes} --dataset_name=... --dataset_dir=..."]
    if entry.notes:
        lines.append(f"Note: {entry.notes}.")
    if result.sha256:
        lines.append(f"sha256 of {os.path.basename(entry.url)}: {result.sha256}")
    return "\n".join(lines)
