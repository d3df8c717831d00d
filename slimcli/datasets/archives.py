"""Safe extraction of .tar(.gz) and .zip archives.

Every member is checked before it is written: no absolute paths, no `..`
escaping the target, no symbolic or hard links pointing outside it, no device
files. Extraction goes into a hidden staging directory inside the target and
its top-level entries are moved into place only when the whole archive has
been read; a corrupt or hostile archive leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from typing import Iterator

from slimcli import fileio
from slimcli.errors import SlimError


def extract(archive: str, target_dir: str, fix: str | None = None) -> list[str]:
    """Extracts `archive` into `target_dir`.

    Args:
      archive: a .tar, .tar.gz/.tgz or .zip file.
      target_dir: the directory to extract into (created if needed). Entries
        already there with the same top-level name are replaced.
      fix: the advice for a corrupt archive (`FetchedFile.fix`; default: delete
        it and rerun, right for a download only).

    Returns:
      The top-level names extracted (e.g. `['flower_photos']`).

    Raises:
      SlimError: the archive is corrupt, of an unknown kind, or has a member
        that would escape `target_dir`; nothing is left extracted.
    """
    with fileio.staging_dir(target_dir, os.path.basename(archive)) as staging:
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, staging)
            else:
                _extract_tar(archive, staging)
        except _Corrupt as e:
            raise SlimError(f"cannot extract {archive}: the archive is corrupt or incomplete "
                            f"({e}); {fix or 'delete it and rerun to download it again'}.") \
                from None
        names = sorted(os.listdir(staging))
        for name in names:
            dest = os.path.join(target_dir, name)
            if os.path.isdir(dest) and not os.path.islink(dest):
                shutil.rmtree(dest)
            elif os.path.lexists(dest):
                os.remove(dest)
            os.replace(os.path.join(staging, name), dest)
        return names


def _member_path(archive: str, name: str) -> str:
    """The normalised relative path of a member, or an error if it escapes."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise _unsafe(archive, name, "has an absolute path")
    norm = posixpath.normpath(clean)
    if norm == ".." or norm.startswith("../"):
        raise _unsafe(archive, name, "points outside the target directory ('..')")
    return norm


def _unsafe(archive: str, name: str, why: str) -> SlimError:
    return SlimError(f"refusing to extract {os.path.basename(archive)}: member {name!r} {why}; "
                     f"the archive is damaged or hostile, get it again from a trusted source.")


class _Corrupt(Exception):
    """An archive that does not read to its end (the message is the reader's error)."""


def _check_tar_member(archive: str, member: tarfile.TarInfo) -> None:
    path = _member_path(archive, member.name)
    if member.issym() or member.islnk():
        target = member.linkname.replace("\\", "/")
        if member.issym():
            target = posixpath.join(posixpath.dirname(path), target)
        if target.startswith("/"):
            raise _unsafe(archive, member.name,
                          f"is a link to the absolute path {member.linkname!r}")
        norm = posixpath.normpath(target)
        if norm == ".." or norm.startswith("../"):
            raise _unsafe(archive, member.name,
                          f"is a link to {member.linkname!r}, outside the target directory")
    elif not (member.isfile() or member.isdir()):
        raise _unsafe(archive, member.name, "is a device, fifo or other special file")


def _extract_tar(archive: str, staging: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                _check_tar_member(archive, member)
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, staging, filter="data")
                else:  # pragma: no cover - Python without extraction filters
                    tar.extract(member, staging)
            _read_to_end(tar.fileobj)
    except SlimError:
        raise
    except tarfile.FilterError as e:
        member = getattr(e, "tarinfo", None)
        raise _unsafe(archive, member.name if member else "?", str(e)) from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise _Corrupt(e) from None


def _read_to_end(fileobj) -> None:
    """Reads a compressed tar stream to its end, so gzip checks its CRC and length."""
    while fileobj.read(1 << 20):
        pass


def _extract_zip(archive: str, staging: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                path = _member_path(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise _unsafe(archive, info.filename, "is a symbolic link")
                dest = os.path.join(staging, path)
                if info.is_dir():
                    os.makedirs(dest, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except SlimError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
        raise _Corrupt(e) from None


def extract_once(archive: str, sha256: str, target_dir: str,
                 fix: str | None = None) -> tuple[list[str], str]:
    """Extracts `archive` unless this very archive was already extracted there.

    A marker `.<archive name>.extracted` records the archive's SHA-256 and
    the top-level names; a rerun after an interrupted conversion skips the
    extraction when they still match.

    Args:
      archive: the archive path.
      sha256: its verified digest.
      target_dir: where to extract.

    Returns:
      (top-level names, marker path).

    Raises:
      SlimError: as `extract`.
    """
    marker = os.path.join(target_dir, f".{os.path.basename(archive)}.extracted")
    try:
        with open(marker, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
        if lines and lines[0] == sha256 and all(
                os.path.lexists(os.path.join(target_dir, n)) for n in lines[1:]):
            return lines[1:], marker
    except OSError:
        pass
    names = extract(archive, target_dir, fix)
    with open(marker, "w", encoding="utf-8") as f:
        f.write("\n".join([sha256, *names]) + "\n")
    return names, marker


@contextlib.contextmanager
def checked_extraction(archive: str, sha256: str, target_dir: str,
                       fix: str | None = None) -> Iterator[tuple[list[str], str]]:
    """`extract_once`, for a body that checks what came out of the archive.

    A `SlimError` raised in the body (the archive is not the one expected: a
    folder or file missing, a batch that does not parse) removes the extracted
    entries and the marker before it propagates, so nothing of a rejected
    archive stays in `target_dir`.

    Yields:
      (top-level names, marker path), as `extract_once` returns.
    """
    names, marker = extract_once(archive, sha256, target_dir, fix)
    try:
        yield names, marker
    except SlimError:
        remove_paths([os.path.join(target_dir, n) for n in names] + [marker])
        raise


def remove_paths(paths: list[str]) -> None:
    """Deletes files and directory trees (links themselves, not their targets); absent is fine."""
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
