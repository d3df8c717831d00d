"""The TF-Slim model zoo: download, verify, unpack, and say how to fine-tune.

The table is the original README's (research/slim/README.md, "Pre-trained
Models"), kept on each net's registry entry (`NetSpec.zoo`, whose exclude
scopes are the net's logits scopes); ResNet V2 200 is listed there as "TBA"
and has no archive. No SHA-256 is published for these archives: a download is
checked against the server's Content-Length, the gzip CRC is checked while
unpacking, and a mirror's `<archive>.sha256` file is honoured when present.
The digest of what was downloaded is printed so it can be recorded.
"""

from __future__ import annotations

import dataclasses
import os

from slimcli import nets
from slimcli.datasets import archives, fetch
from slimcli.errors import SlimError
from slimcli.nets.registry import ZooCheckpoint
from slimcli.registry import Registry

# Every net's published checkpoint, from its registry entry (`NetSpec.zoo`).
ZOO: Registry[ZooCheckpoint] = Registry("checkpoint", "--checkpoint")
for _name, _spec in nets.NETS_REGISTRY.items():
    if _spec.zoo is not None:
        ZOO.register(_name, _spec.zoo)


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
