"""The TF-Slim model zoo: download, verify, unpack, and say how to fine-tune.

The table is the original README's (research/slim/README.md, "Pre-trained
Models"), kept on each net's registry entry (`NetSpec.zoo`, whose exclude
scopes are the net's logits scopes); ResNet V2 200 is listed there as "TBA"
and has no archive. Where a digest of an archive is published (`ZooCheckpoint.digest`,
from open_model_zoo) it is pinned in `fetch.KNOWN_ARCHIVES` and wins over a
mirror's `.sha256` file. For the others a download is checked against the
server's Content-Length, the gzip CRC while unpacking, and a mirror's
`<archive>.sha256` file when present; the first download says that no digest
is known and prints the archive's SHA-256 so it can be recorded.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from slimcli import nets
from slimcli.datasets import archives, fetch
from slimcli.errors import SlimError
from slimcli.nets.registry import ZooCheckpoint
from slimcli.registry import Registry
from slimcli.slim import train_dir

# Every net's published checkpoint, from its registry entry (`NetSpec.zoo`).
ZOO: Registry[ZooCheckpoint] = Registry("checkpoint", "--checkpoint")
for _, _spec in nets.NETS_REGISTRY.items():
    for _zoo in _spec.zoo_checkpoints:
        ZOO.register(_zoo.name, _zoo)
        if _zoo.digest:
            fetch.KNOWN_ARCHIVES[_zoo.url] = fetch.KnownArchive(_zoo.size, _zoo.digest,
                                                                _zoo.digest_source)


@dataclasses.dataclass(frozen=True)
class CheckpointResult:
    """Where the checkpoint is and the fine-tuning flags to use with it."""
    name: str
    checkpoint_path: str
    exclude_scopes: str
    sha256: str | None
    already_there: bool


def list_checkpoints() -> str:
    """A table of every zoo archive (for `--checkpoint=list`), with its pinned digest's
    algorithm (`-` where none is known)."""
    width = max(22, *(len(name) for name in ZOO.names()))
    rows = [f"{'checkpoint':{width}} {'top-1':>5}  {'exclude scopes':48} {'pinned':6} archive"]
    for name, entry in ZOO.items():
        known = fetch.KNOWN_ARCHIVES.get(entry.url)
        pinned = known.algorithm if known else "-"
        rows.append(f"{name:{width}} {entry.top1:5.1f}  {entry.exclude_scopes:48} {pinned:6} "
                    f"{entry.url}")
    rows.append("pinned: the digest every download must match; '-': none is published, so the "
                "first download prints the archive's sha256 (a mirror's .sha256 file is checked "
                "if present).")
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
      SlimError: unknown name, download/checksum/archive problems, an
        archive without the expected checkpoint, or the file system refused
        a write (read-only, no space left, a file in the way), naming the
        path and --checkpoint_dir.
    """
    entry = ZOO.get(name)
    try:
        return _download_checkpoint(name, entry, checkpoint_dir, mirror, keep_archive, quiet)
    except (OSError, tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError) as e:
        path = getattr(e, "filename", None) or checkpoint_dir
        if mirror and not _is_inside(path, checkpoint_dir):  # a local mirror's file
            raise SlimError(f"cannot read {path} ({e.strerror or e}); check --mirror.") from None
        raise train_dir.dir_error(path, e, flag="--checkpoint_dir") from None


def _is_inside(path: str, directory: str) -> bool:
    """Whether `path` is `directory` or lies under it."""
    path, directory = os.path.abspath(path), os.path.abspath(directory)
    return os.path.commonpath([path, directory]) == directory


def _download_checkpoint(name: str, entry: ZooCheckpoint, checkpoint_dir: str,
                         mirror: str | None, keep_archive: bool,
                         quiet: bool) -> CheckpointResult:
    target = os.path.join(checkpoint_dir, entry.subdir) if entry.subdir else checkpoint_dir
    prefix = os.path.join(target, entry.checkpoint)
    if _checkpoint_exists(prefix):
        return CheckpointResult(name, prefix, entry.exclude_scopes, None, True)
    os.makedirs(target, exist_ok=True)  # a refusal names the directory, before any download
    got = fetch.fetch(entry.url, target, mirror, quiet)
    archives.extract(got.path, target, got.fix)
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
             f"--trainable_scopes={result.exclude_scopes}"
             f"{' --quantize_delay=0' if entry.quantized else ''} --dataset_name=... "
             f"--dataset_dir=..."]
    if entry.notes:
        lines.append(f"Note: {entry.notes}.")
    if result.sha256:
        lines.append(f"sha256 of {os.path.basename(entry.url)}: {result.sha256}")
    return "\n".join(lines)
