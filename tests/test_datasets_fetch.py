"""Downloads (resume, checksums, mirrors) and safe archive extraction."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import tarfile
import zipfile

import pytest

from datasets_helpers import make_flowers_tgz, serve, sha256, write_sidecar
from slimcli.datasets import archives, fetch
from slimcli.errors import SlimError

URL = "https://download.tensorflow.org/example_images/flower_photos.tgz"


@pytest.fixture
def blob_dir(tmp_path):
    src = tmp_path / "srv"
    src.mkdir()
    (src / "flower_photos.tgz").write_bytes(os.urandom(300_000))
    return src


def _known(monkeypatch, path, url=URL):
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, url, fetch.KnownArchive(
        os.path.getsize(path), sha256(path), "the test"))


def test_download_verifies_published_checksum(tmp_path, blob_dir, monkeypatch, capsys):
    _known(monkeypatch, blob_dir / "flower_photos.tgz")
    with serve(str(blob_dir)) as server:
        got = fetch.fetch(URL, str(tmp_path / "out"), mirror=server.url, quiet=True)
    assert got.owned and got.sha256 == sha256(blob_dir / "flower_photos.tgz")
    assert open(got.path, "rb").read() == (blob_dir / "flower_photos.tgz").read_bytes()
    assert "matches the checksum published by the test" in capsys.readouterr().out
    assert os.listdir(tmp_path / "out") == ["flower_photos.tgz"]


def test_checksum_mismatch_names_file_and_both_hashes(tmp_path, blob_dir, monkeypatch):
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, URL, fetch.KnownArchive(None, "ab" * 32, "pub"))
    actual = sha256(blob_dir / "flower_photos.tgz")
    with serve(str(blob_dir)) as server:
        with pytest.raises(SlimError, match=rf"checksum mismatch for flower_photos.tgz: sha256 "
                                            rf"{actual}.*expected {'ab' * 32} from the checksum "
                                            rf"published by pub; the bad download was deleted"):
            fetch.fetch(URL, str(tmp_path / "out"), mirror=server.url, quiet=True)
    assert os.listdir(tmp_path / "out") == []


def test_local_mirror_mismatch_never_advises_deleting_the_mirror_copy(tmp_path, blob_dir,
                                                                      monkeypatch):
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, URL, fetch.KnownArchive(None, "ab" * 32, "pub"))
    mirror_copy = blob_dir / "flower_photos.tgz"
    before = mirror_copy.read_bytes()
    with pytest.raises(SlimError) as err:
        fetch.fetch(URL, str(tmp_path / "out"), mirror=str(blob_dir), quiet=True)
    message = str(err.value)
    assert message.startswith("checksum mismatch for flower_photos.tgz: sha256 ")
    assert f"{mirror_copy} is the --mirror's own copy and was left as it is: replace it with " \
        f"the genuine archive from {URL}, or convert a folder of your own images with " \
        f"--dataset_name=folder." in message
    assert "delete" not in message and "\n" not in message
    assert mirror_copy.read_bytes() == before  # the user's copy is untouched


def test_mismatch_of_an_earlier_download_advises_deleting_that_download(tmp_path, blob_dir,
                                                                        monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "flower_photos.tgz").write_bytes(b"a download slim-download finished earlier")
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, URL, fetch.KnownArchive(None, "ab" * 32, "pub"))
    with serve(str(blob_dir)) as server:
        with pytest.raises(SlimError, match=rf"; delete {out / 'flower_photos.tgz'} and rerun "
                                            rf"to download it again\.$"):
            fetch.fetch(URL, str(out), mirror=server.url, quiet=True)


def test_corrupt_archive_from_a_local_mirror_is_left_in_place(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "flower_photos.tgz").write_bytes(b"\x1f\x8b not really gzip")
    fixed = fetch.FetchedFile(str(mirror / "flower_photos.tgz"), False, "", None)
    with pytest.raises(SlimError) as err:
        archives.extract(fixed.path, str(tmp_path / "out"), fixed.fix)
    assert "is the --mirror's own copy" in str(err.value) and "delete" not in str(err.value)
    assert (mirror / "flower_photos.tgz").exists()


def test_real_urls_keep_their_published_checksums():
    for url, known in fetch.KNOWN_ARCHIVES.items():
        assert len(known.hexdigest) == fetch.DIGEST_ALGORITHMS[known.algorithm], url
        assert known.size > 0, url
    assert set(fetch.KNOWN_ARCHIVES) >= {
        URL, "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "http://images.cocodataset.org/zips/train2014.zip"}


def test_truncated_download_is_an_error_and_resumes(tmp_path, blob_dir, monkeypatch):
    _known(monkeypatch, blob_dir / "flower_photos.tgz")
    out = tmp_path / "out"
    with serve(str(blob_dir)) as server:
        server.truncate["flower_photos.tgz"] = 120_000
        with pytest.raises(SlimError, match=r"stopped at 120000 of 300000 bytes.*rerun the same "
                                            r"command to resume"):
            fetch.fetch(URL, str(out), mirror=server.url, quiet=True)
        assert os.path.getsize(out / "flower_photos.tgz.part") == 120_000
        assert not (out / "flower_photos.tgz").exists()
        got = fetch.fetch(URL, str(out), mirror=server.url, quiet=True)
        assert server.requests[-1] == ("flower_photos.tgz", "bytes=120000-")
    assert got.sha256 == sha256(blob_dir / "flower_photos.tgz")
    assert sorted(os.listdir(out)) == ["flower_photos.tgz"]


def test_resume_against_server_without_ranges_starts_over(tmp_path, blob_dir, monkeypatch):
    _known(monkeypatch, blob_dir / "flower_photos.tgz")
    out = tmp_path / "out"
    out.mkdir()
    (out / "flower_photos.tgz.part").write_bytes(b"garbage" * 10)
    with serve(str(blob_dir), ranges=False) as server:
        got = fetch.fetch(URL, str(out), mirror=server.url, quiet=True)
    assert got.sha256 == sha256(blob_dir / "flower_photos.tgz")


def test_complete_part_file_gets_416_and_is_used(tmp_path, blob_dir, monkeypatch):
    _known(monkeypatch, blob_dir / "flower_photos.tgz")
    out = tmp_path / "out"
    out.mkdir()
    (out / "flower_photos.tgz.part").write_bytes((blob_dir / "flower_photos.tgz").read_bytes())
    with serve(str(blob_dir)) as server:
        got = fetch.fetch(URL, str(out), mirror=server.url, quiet=True)
    assert got.sha256 == sha256(blob_dir / "flower_photos.tgz")


def test_pinned_digest_wins_over_the_mirror_sidecar(tmp_path, blob_dir, monkeypatch, capsys):
    # A hostile mirror serves another file with a .sha256 that matches it: still refused.
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, URL, fetch.KnownArchive(None, "ab" * 32, "pub"))
    write_sidecar(str(blob_dir / "flower_photos.tgz"))
    with serve(str(blob_dir)) as server:
        with pytest.raises(SlimError, match=r"checksum mismatch.*expected abab.*published by "
                                            r"pub; the bad download was deleted"):
            fetch.fetch(URL, str(tmp_path / "a"), mirror=server.url, quiet=True)
        assert ("flower_photos.tgz.sha256", None) not in server.requests  # never even read
    assert os.listdir(tmp_path / "a") == []
    with pytest.raises(SlimError, match=r"checksum mismatch.*published by pub; .* is the "
                                        r"--mirror's own copy"):
        fetch.fetch(URL, str(tmp_path / "b"), mirror=str(blob_dir), quiet=True)
    # The right file is accepted against its pin whatever a broken sidecar says.
    _known(monkeypatch, blob_dir / "flower_photos.tgz")
    (blob_dir / "flower_photos.tgz.sha256").write_text("00" * 32 + "  flower_photos.tgz\n")
    capsys.readouterr()
    got = fetch.fetch(URL, str(tmp_path / "c"), mirror=str(blob_dir), quiet=True)
    assert got.checked_against == "the checksum published by the test"
    assert "warning" not in capsys.readouterr().out


def _sha384(path) -> str:
    return hashlib.sha384(open(path, "rb").read()).hexdigest()


def test_sha384_pin_is_checked_in_the_same_single_read(tmp_path, blob_dir, monkeypatch,
                                                       capsys):
    archive = blob_dir / "flower_photos.tgz"
    monkeypatch.setitem(fetch.KNOWN_ARCHIVES, URL, fetch.KnownArchive(
        os.path.getsize(archive), f"sha384:{_sha384(archive)}", "the test"))
    opened = []
    real_open = open

    def counting_open(path, mode="r", *args, **kwargs):
        opened.append((os.path.basename(path), mode))
        return real_open(path, mode, *args, **kwargs)
    monkeypatch.setattr(fetch, "open", counting_open, raising=False)
    with serve(str(blob_dir)) as server:
        got = fetch.fetch(URL, str(tmp_path / "a"), mirror=server.url, quiet=True)
    assert got.sha256 == sha256(archive)  # the SHA-256 too, for the extraction marker
    assert opened == [("flower_photos.tgz.part", "wb")]  # hashed as it arrived, not re-read
    assert f"verified flower_photos.tgz: sha384 {_sha384(archive)[:16]}... matches" in \
        capsys.readouterr().out
    opened.clear()
    got = fetch.fetch(URL, str(tmp_path / "b"), mirror=str(blob_dir), quiet=True)
    assert got.sha256 == sha256(archive) and opened == [("flower_photos.tgz", "rb")]
    # Another file under the name: refused, naming both SHA-384 digests.
    (blob_dir / "flower_photos.tgz").write_bytes(b"x" * os.path.getsize(archive))
    with pytest.raises(SlimError, match=rf"checksum mismatch for flower_photos.tgz: sha384 "
                                        rf"{_sha384(archive)}, expected [0-9a-f]{{96}} from "):
        fetch.fetch(URL, str(tmp_path / "c"), mirror=str(blob_dir), quiet=True)


@pytest.mark.parametrize("digest", ["sha384:" + "ab" * 32, "md5:" + "ab" * 16, "ab" * 31,
                                    "sha256:" + "zz" * 32])
def test_malformed_pin_is_refused(digest):
    with pytest.raises(SlimError, match=rf"pinned digest '{digest}' \(by pub\) is not"):
        fetch.KnownArchive(1, digest, "pub")


def test_full_disk_while_downloading_is_not_a_broken_transfer(tmp_path, blob_dir, monkeypatch):
    real_open = open

    class Full:
        def __init__(self, path, mode):
            self.file = real_open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(fetch, "open", lambda path, mode="r": Full(path, mode)
                        if mode in ("wb", "ab") else real_open(path, mode), raising=False)
    with serve(str(blob_dir)) as server:
        with pytest.raises(OSError) as error:  # callers name the directory and its flag
            fetch.fetch(URL, str(tmp_path), mirror=server.url, quiet=True)
    assert error.value.errno == errno.ENOSPC


def test_sidecar_applies_only_without_a_pin_and_warns(tmp_path, blob_dir, monkeypatch, capsys):
    monkeypatch.delitem(fetch.KNOWN_ARCHIVES, URL)
    write_sidecar(str(blob_dir / "flower_photos.tgz"))
    with serve(str(blob_dir)) as server:
        got = fetch.fetch(URL, str(tmp_path / "a"), mirror=server.url + "/", quiet=True)
        assert got.checked_against == fetch.SIDECAR_SOURCE
        out = capsys.readouterr().out
        assert "warning: flower_photos.tgz has no pinned checksum" in out
        assert "not a tampered mirror" in out
        (blob_dir / "flower_photos.tgz.sha256").write_text("00" * 32 + "  flower_photos.tgz\n")
        with pytest.raises(SlimError, match="checksum mismatch.*the mirror's .sha256 file"):
            fetch.fetch(URL, str(tmp_path / "b"), mirror=server.url, quiet=True)


def test_unknown_digest_is_said_once_on_the_first_download(tmp_path, blob_dir, monkeypatch,
                                                            capsys):
    monkeypatch.delitem(fetch.KNOWN_ARCHIVES, URL)
    digest = sha256(blob_dir / "flower_photos.tgz")
    with serve(str(blob_dir)) as server:
        got = fetch.fetch(URL, str(tmp_path), mirror=server.url, quiet=True)
        assert got.checked_against is None
        lines = capsys.readouterr().out.splitlines()
        assert lines == [f"note: no published checksum for flower_photos.tgz (no pinned digest, "
                         f"no .sha256 file on the mirror), so it is unverified; its sha256 is "
                         f"{digest}."]
        fetch.fetch(URL, str(tmp_path), mirror=server.url, quiet=True)  # already downloaded
        assert capsys.readouterr().out == ""


def test_local_mirror_is_read_in_place(tmp_path, blob_dir, monkeypatch):
    _known(monkeypatch, blob_dir / "flower_photos.tgz")
    got = fetch.fetch(URL, str(tmp_path / "out"), mirror=str(blob_dir), quiet=True)
    assert got.path == str(blob_dir / "flower_photos.tgz") and not got.owned
    assert not (tmp_path / "out").exists()


def test_local_mirror_missing_file(tmp_path):
    with pytest.raises(SlimError, match=r"has no 'flower_photos.tgz'.*drop --mirror"):
        fetch.fetch(URL, str(tmp_path / "out"), mirror=str(tmp_path), quiet=True)


def test_http_404_and_unreachable_host(tmp_path, blob_dir):
    with serve(str(blob_dir)) as server:
        with pytest.raises(SlimError, match="HTTP 404"):
            fetch.fetch("http://x/none.tgz", str(tmp_path), mirror=server.url, quiet=True)
        port = server.server_address[1]
    with pytest.raises(SlimError, match="cannot download http://127.0.0.1"):
        fetch.fetch(f"http://127.0.0.1:{port}/none.tgz", str(tmp_path), quiet=True)


def test_existing_corrupt_download_is_reported(tmp_path, blob_dir, monkeypatch):
    _known(monkeypatch, blob_dir / "flower_photos.tgz")
    (tmp_path / "flower_photos.tgz").write_bytes(b"not it")
    with pytest.raises(SlimError, match=r"checksum mismatch.*size 6 bytes.*delete .*and rerun"):
        fetch.fetch(URL, str(tmp_path), quiet=True)  # no network: the file is there


# ------------------------------------------------------------------ extraction
def _tar_with(tmp_path, name: str, **attrs) -> str:
    path = str(tmp_path / "evil.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("good/file.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        for key, value in attrs.items():
            setattr(info, key, value)
        tar.addfile(info, io.BytesIO(b"x" * info.size))
    return path


@pytest.mark.parametrize("name,attrs,why", [
    ("../escape.txt", {"size": 1}, r"'\.\./escape\.txt' points outside"),
    ("good/../../escape.txt", {"size": 1}, "points outside"),
    ("/etc/evil", {"size": 1}, "has an absolute path"),
    ("good/link", {"type": tarfile.SYMTYPE, "linkname": "../../etc/passwd"}, "is a link to"),
    ("good/abs", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "absolute path"),
    ("good/hard", {"type": tarfile.LNKTYPE, "linkname": "../outside"}, "outside the target"),
    ("good/dev", {"type": tarfile.CHRTYPE}, "device"),
])
def test_hostile_tar_members_are_refused_and_nothing_is_left(tmp_path, name, attrs, why):
    archive = _tar_with(tmp_path, name, **attrs)
    target = tmp_path / "target"
    with pytest.raises(SlimError, match=f"refusing to extract evil.tar.gz: member .*{why}"):
        archives.extract(archive, str(target))
    assert os.listdir(target) == []
    assert not (tmp_path / "escape.txt").exists()


def test_symlink_inside_the_target_is_allowed(tmp_path):
    archive = _tar_with(tmp_path, "good/alias", type=tarfile.SYMTYPE, linkname="file.txt")
    archives.extract(archive, str(tmp_path / "t"))
    assert (tmp_path / "t" / "good" / "alias").read_text() == "ok"


def test_zip_traversal_is_refused(tmp_path):
    path = str(tmp_path / "evil.zip")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../evil.txt", "bad")
    with pytest.raises(SlimError, match=r"member '\.\./evil\.txt' points outside"):
        archives.extract(path, str(tmp_path / "t"))
    assert os.listdir(tmp_path / "t") == []


@pytest.mark.parametrize("cut", [100, 2000])
def test_corrupt_or_truncated_archive(tmp_path, cut):
    make_flowers_tgz(str(tmp_path))
    data = (tmp_path / "flower_photos.tgz").read_bytes()
    (tmp_path / "bad.tgz").write_bytes(data[:cut])
    with pytest.raises(SlimError, match=r"cannot extract .*bad.tgz: the archive is corrupt or "
                                        r"incomplete.*delete it and rerun"):
        archives.extract(str(tmp_path / "bad.tgz"), str(tmp_path / "t"))
    assert os.listdir(tmp_path / "t") == []


def test_extract_once_skips_a_second_extraction(tmp_path):
    make_flowers_tgz(str(tmp_path))
    archive = str(tmp_path / "flower_photos.tgz")
    names, marker = archives.extract_once(archive, "d1", str(tmp_path / "t"))
    assert names == ["flower_photos"] and os.path.isfile(marker)
    (tmp_path / "t" / "flower_photos" / "extra").write_text("kept")
    archives.extract_once(archive, "d1", str(tmp_path / "t"))
    assert (tmp_path / "t" / "flower_photos" / "extra").exists()
    archives.extract_once(archive, "d2", str(tmp_path / "t"))  # another archive: re-extracted
    assert not (tmp_path / "t" / "flower_photos" / "extra").exists()


def test_gzip_crc_error_in_the_trailer_is_caught(tmp_path):
    make_flowers_tgz(str(tmp_path))
    data = bytearray((tmp_path / "flower_photos.tgz").read_bytes())
    data[-6] ^= 0xFF  # inside the gzip CRC-32 trailer: every member still reads fine
    (tmp_path / "bad.tgz").write_bytes(bytes(data))
    with pytest.raises(SlimError, match="corrupt or incomplete .*CRC check failed"):
        archives.extract(str(tmp_path / "bad.tgz"), str(tmp_path / "t"))
    assert os.listdir(tmp_path / "t") == []
