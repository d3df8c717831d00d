"""Downloads with progress, resume and checksum verification; `--mirror` support.

Every archive is named by its upstream URL. With a mirror, the same file
name is taken from the mirror instead: `--mirror=https://host/dir` fetches
`https://host/dir/<file name>`, `--mirror=/some/dir` reads `/some/dir/<file
name>` in place (never copied, never deleted).

Verification: the digest (and size) pinned for the upstream URL in
`KNOWN_ARCHIVES` always wins; a pin is a SHA-256 or SHA-384 digest (both are
computed in the same single pass over the bytes, while downloading or
verifying). A mirror may carry `<file name>.sha256` beside
the archive (`sha256sum` format), but it is read only for files with no pin:
then the file must match it, and a warning says that this guards against a
broken transfer, not against a tampered mirror. A pinned file that differs
from its pin is an error whatever the mirror says. A file with neither is
accepted, and its first download says so in one line with its digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from typing import Callable

from tqdm import tqdm

from slimcli import __version__, fileio
from slimcli.errors import SlimError

CHUNK = 1 << 20
TIMEOUT_S = 60


# Hex length of the digest of each algorithm a pin may name.
DIGEST_ALGORITHMS = {"sha256": 64, "sha384": 96}
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclasses.dataclass(frozen=True)
class KnownArchive:
    """A published checksum: byte size, digest and who published it.

    `digest` is a SHA-256 hex digest, or `<algorithm>:<hex>` for any algorithm
    of `DIGEST_ALGORITHMS` (`sha384:...`, as open_model_zoo publishes); its
    parts are `algorithm` and `hexdigest`.
    """
    size: int | None
    digest: str
    published_by: str
    algorithm: str = dataclasses.field(init=False)
    hexdigest: str = dataclasses.field(init=False)

    def __post_init__(self):
        algorithm, _, hexdigest = self.digest.lower().rpartition(":")
        algorithm = algorithm or "sha256"
        if DIGEST_ALGORITHMS.get(algorithm) != len(hexdigest) or not _HEX.match(hexdigest):
            raise SlimError(f"pinned digest {self.digest!r} (by {self.published_by}) is not "
                            f"'<hex>' (SHA-256) or '<algorithm>:<hex>' with an algorithm of "
                            f"{', '.join(DIGEST_ALGORITHMS)} and a hex digest of its length.")
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hexdigest", hexdigest)


class Digests:
    """The hashes of one byte stream, fed once: SHA-256 always, plus a pin's own algorithm."""

    def __init__(self, expected: KnownArchive | None = None):
        names = dict.fromkeys(["sha256", expected.algorithm if expected else "sha256"])
        self._hashers = {name: hashlib.new(name) for name in names}

    def update(self, chunk: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def hexdigest(self, algorithm: str = "sha256") -> str:
        return self._hashers[algorithm].hexdigest()


_TFDS = "TensorFlow Datasets url_checksums"
KNOWN_ARCHIVES: dict[str, KnownArchive] = {
    "https://download.tensorflow.org/example_images/flower_photos.tgz": KnownArchive(
        228813984, "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
        f"{_TFDS}/tf_flowers.txt"),
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz": KnownArchive(
        170498071, "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        "keras.datasets.cifar10 (file_hash)"),
    "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz": KnownArchive(
        9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        f"{_TFDS}/mnist.txt"),
    "http://yann.lecun.com/exdb/mnist/train-labels-idx1-ubyte.gz": KnownArchive(
        28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        f"{_TFDS}/mnist.txt"),
    "http://yann.lecun.com/exdb/mnist/t10k-images-idx3-ubyte.gz": KnownArchive(
        1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        f"{_TFDS}/mnist.txt"),
    "http://yann.lecun.com/exdb/mnist/t10k-labels-idx1-ubyte.gz": KnownArchive(
        4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        f"{_TFDS}/mnist.txt"),
    "http://images.cocodataset.org/zips/train2014.zip": KnownArchive(
        13510573713, "ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775",
        f"{_TFDS}/coco2014.txt"),
    "http://images.cocodataset.org/zips/val2014.zip": KnownArchive(
        6645013297, "fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0",
        f"{_TFDS}/coco2014.txt"),
    "http://images.cocodataset.org/annotations/annotations_trainval2014.zip": KnownArchive(
        252872794, "031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009",
        f"{_TFDS}/coco2014.txt"),
}


@dataclasses.dataclass(frozen=True)
class FetchedFile:
    """A verified local copy of an archive.

    Attributes:
      path: where the file is.
      owned: True when slimcli downloaded it (it may be deleted after use);
        False for a file read in place from a local mirror.
      sha256: its SHA-256 hex digest.
      checked_against: what the digest was compared with, or None.
    """
    path: str
    owned: bool
    sha256: str
    checked_against: str | None

    @property
    def fix(self) -> str:
        """What to do when this file turns out to be bad (see `bad_file_fix`)."""
        return bad_file_fix(self.path, self.owned)


def bad_file_fix(path: str, owned: bool, url: str | None = None) -> str:
    """The advice for a bad archive: only a file slim-download wrote itself is to be deleted.

    A download is deleted and fetched again. A file read in place from a local
    `--mirror` is the user's own copy: deleting it would leave nothing to rerun
    with, so the advice is to replace it with the genuine archive, or to convert
    one's own images instead.
    """
    if owned:
        return f"delete {path} and rerun to download it again"
    genuine = f" from {url}" if url else ""
    return (f"{path} is the --mirror's own copy and was left as it is: replace it with the "
            f"genuine archive{genuine}, or convert a folder of your own images with "
            f"--dataset_name=folder")


def archive_name(url: str) -> str:
    """The file name of `url` (its last path component)."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise SlimError(f"URL {url!r} does not end in a file name; pass the archive's URL.")
    return name


def is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _local_dir(mirror: str) -> str:
    return urllib.parse.urlparse(mirror).path if mirror.startswith("file://") else mirror


def fetch(url: str, dest_dir: str, mirror: str | None = None, quiet: bool = False) -> FetchedFile:
    """Makes a verified local copy of the archive at `url` (or of its mirror copy).

    Args:
      url: the upstream URL; its file name is looked up on the mirror.
      dest_dir: where downloads go (`<name>.part` while incomplete).
      mirror: a base URL or a local directory holding the same file name.
      quiet: no progress bars.

    Returns:
      The verified file.

    Raises:
      SlimError: unreachable host, HTTP error, interrupted download (rerun to
        resume), missing mirror file, or a checksum mismatch (naming the file
        and both hashes).
    """
    name = archive_name(url)
    if mirror and not is_remote(mirror):
        path = os.path.join(_local_dir(mirror), name)
        if not os.path.isfile(path):
            raise SlimError(f"--mirror={mirror!r} has no {name!r} (the upstream file name of "
                            f"{url}); put the archive there or drop --mirror to download it.")
        expected, source = _expected_for(url, lambda: _read_local_sidecar(path))
        digest = verify_file(path, expected, source, quiet, fix=bad_file_fix(path, False, url))
        return FetchedFile(path, False, digest, source)
    source_url = f"{mirror.rstrip('/')}/{name}" if mirror else url
    expected, source = _expected_for(
        url, (lambda: _read_remote_sidecar(f"{source_url}.sha256")) if mirror else None)
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, name)
    if os.path.isfile(dest):
        digest = verify_file(dest, expected, source, quiet, first_time=False)
        return FetchedFile(dest, True, digest, source)
    digests = _download(source_url, dest + ".part", quiet, expected)
    _check(dest + ".part", name, digests, os.path.getsize(dest + ".part"), expected, source,
           fix=None)
    fileio.publish(dest + ".part", dest)  # the .part file stays on failure: a rerun resumes it
    _report(name, digests, expected, source, first_time=True)
    return FetchedFile(dest, True, digests.hexdigest(), source)


def _report(name: str, digests: Digests, expected: KnownArchive | None, source: str | None,
            first_time: bool) -> None:
    """One line: what the file matched, or (on its first download) that nothing was known."""
    if expected is not None:
        print(f"verified {name}: {expected.algorithm} "
              f"{digests.hexdigest(expected.algorithm)[:16]}... matches {source}.")
    elif first_time:
        print(f"note: no published checksum for {name} (no pinned digest, no .sha256 file on "
              f"the mirror), so it is unverified; its sha256 is {digests.hexdigest()}.")


SIDECAR_SOURCE = "the mirror's .sha256 file"


def _expected_for(url: str, read_sidecar: Callable[[], str | None] | None
                  ) -> tuple[KnownArchive | None, str | None]:
    """The digest `url`'s file must match and where it comes from.

    The pinned digest wins; a mirror's `.sha256` file is read only for files
    without one, with a warning, since whoever serves the file also wrote it.
    """
    known = KNOWN_ARCHIVES.get(url)
    if known is not None:
        return known, f"the checksum published by {known.published_by}"
    sidecar = read_sidecar() if read_sidecar is not None else None
    if sidecar is None:
        return None, None
    print(f"warning: {archive_name(url)} has no pinned checksum; checking it against "
          f"{SIDECAR_SOURCE} only, which catches a broken transfer but not a tampered mirror.")
    return KnownArchive(None, sidecar, SIDECAR_SOURCE), SIDECAR_SOURCE


_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _parse_sidecar(text: str, where: str) -> str:
    token = text.strip().split()[0] if text.strip() else ""
    if not _HEX64.match(token):
        raise SlimError(f"{where} does not start with a SHA-256 hex digest (got {token[:80]!r}); "
                        f"fix it (format: `sha256sum` output) or remove it.")
    return token.lower()


def _read_local_sidecar(path: str) -> str | None:
    sidecar = f"{path}.sha256"
    if not os.path.isfile(sidecar):
        return None
    with open(sidecar, "r", encoding="utf-8", errors="replace") as f:
        return _parse_sidecar(f.read(4096), sidecar)


def _read_remote_sidecar(url: str) -> str | None:
    try:
        with urllib.request.urlopen(_request(url), timeout=TIMEOUT_S) as resp:
            return _parse_sidecar(resp.read(4096).decode("utf-8", "replace"), url)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise SlimError(f"cannot read checksum file {url}: HTTP {e.code} {e.reason}; "
                        f"check --mirror.") from None
    except (urllib.error.URLError, OSError, HTTPException) as e:
        raise SlimError(f"cannot reach {url}: {_reason(e)}; check --mirror and the "
                        f"network.") from None


def verify_file(path: str, expected: KnownArchive | None, source: str | None,
                quiet: bool = False, first_time: bool = True, fix: str | None = None) -> str:
    """Hashes `path` once and compares it with `expected`, then says what it matched.

    Args:
      first_time: the file was not seen before (a mirror's file read in place):
        a file with nothing to match says so.
      fix: the advice on a mismatch (default: delete `path`, a file slim-download
        wrote itself, and rerun).

    Returns:
      The SHA-256 hex digest.

    Raises:
      SlimError: size or digest differ; the message names the file and both values.
    """
    digests = _hash_file(path, expected, quiet)
    _check(path, os.path.basename(path), digests, os.path.getsize(path), expected, source,
           fix=fix or bad_file_fix(path, owned=True))
    _report(os.path.basename(path), digests, expected, source, first_time)
    return digests.hexdigest()


def _hash_file(path: str, expected: KnownArchive | None = None, quiet: bool = False) -> Digests:
    """The SHA-256 (and `expected`'s algorithm) of a file in one read, with a progress bar
    for big files."""
    digests = Digests(expected)
    size = os.path.getsize(path)
    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, leave=False,
                                     desc=f"checksum {os.path.basename(path)}",
                                     disable=quiet or size < 64 * CHUNK) as bar:
        while chunk := f.read(CHUNK):
            digests.update(chunk)
            bar.update(len(chunk))
    return digests


def _check(path: str, name: str, digests: Digests, size: int, expected: KnownArchive | None,
           source: str | None, fix: str | None) -> None:
    """Raises on a digest or size mismatch; `fix=None` marks a fresh download, deleted then."""
    if expected is None:
        return
    digest = digests.hexdigest(expected.algorithm)
    bad_size = expected.size is not None and size != expected.size
    if digest == expected.hexdigest and not bad_size:
        return
    if fix is None:
        os.remove(path)
        fix = "the bad download was deleted; check the mirror or network and rerun"
    size_note = f" (size {size} bytes, expected {expected.size})" if bad_size else ""
    raise SlimError(f"checksum mismatch for {name}: {expected.algorithm} {digest}{size_note}, "
                    f"expected {expected.hexdigest} from {source}; {fix}.")


def _request(url: str, start: int = 0) -> urllib.request.Request:
    headers = {"User-Agent": f"slimcli/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.Request(url, headers=headers)


def _reason(e: BaseException) -> str:
    return str(getattr(e, "reason", None) or e) or type(e).__name__


def _download(url: str, part: str, quiet: bool, expected: KnownArchive | None) -> Digests:
    """Downloads `url` into `part`, resuming from its current size; returns its digests
    (SHA-256 and `expected`'s algorithm), computed as the bytes arrive."""
    start = os.path.getsize(part) if os.path.isfile(part) else 0
    try:
        resp = urllib.request.urlopen(_request(url, start), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:
            return _range_not_satisfiable(url, part, e, quiet, expected)
        raise SlimError(f"download of {url} failed: HTTP {e.code} {e.reason}; check the URL "
                        f"or --mirror.") from None
    except (urllib.error.URLError, OSError, HTTPException) as e:
        raise SlimError(f"cannot download {url}: {_reason(e)}; check the network or pass "
                        f"--mirror=URL_OR_DIR holding {archive_name(url)}.") from None
    with resp:
        if resp.status != 206:
            start = 0  # The server ignored the range: start over.
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        digests = _hash_prefix(part, start, expected)
        received = _stream(resp, part, start, total, digests, url, quiet)
    if total is not None and received < total:
        raise SlimError(f"download of {url} stopped at {received} of {total} bytes; rerun the "
                        f"same command to resume from byte {received}.")
    return digests


def _range_not_satisfiable(url: str, part: str, error: urllib.error.HTTPError,
                           quiet: bool, expected: KnownArchive | None) -> Digests:
    """A 416 reply to a resume: the part is complete, or too long and restarted."""
    content_range = error.headers.get("Content-Range", "") if error.headers else ""
    total = content_range.rsplit("/", 1)[-1]
    if total.isdigit() and int(total) == os.path.getsize(part):
        return _hash_prefix(part, int(total), expected)
    os.remove(part)
    return _download(url, part, quiet, expected)


def _hash_prefix(part: str, start: int, expected: KnownArchive | None) -> Digests:
    """The digests of the `start` bytes already in `part` (a resumed download)."""
    if start:
        return _hash_file(part, expected, quiet=True)
    return Digests(expected)


def _stream(resp, part: str, start: int, total: int | None, digests: Digests, url: str,
            quiet: bool) -> int:
    """Appends the reply to `part`. A write error (a full disk) propagates as the OSError it
    is; a broken transfer is the error saying a rerun resumes."""
    received = start
    name = archive_name(url)
    with open(part, "ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=f"download {name}",
            disable=quiet) as bar:
        while chunk := _read_chunk(resp, url, received, total):
            out.write(chunk)
            digests.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received


def _read_chunk(resp, url: str, received: int, total: int | None) -> bytes:
    try:
        return resp.read(CHUNK)
    except (OSError, HTTPException) as e:
        of_total = f" of {total}" if total is not None else ""
        raise SlimError(f"download of {url} stopped at {received}{of_total} bytes "
                        f"({_reason(e)}); rerun the same command to resume.") from None
