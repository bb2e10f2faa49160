"""Downloads, mirror and cache: a local HTTP server stands in for the network."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sightline.data import download
from sightline.data.download import (
    CACHE_ENV,
    MIRROR_ENV,
    dataset_files,
    download_file,
    file_md5,
    resolve_cache_dir,
    resolve_mirror,
)
from sightline.data.registry import DataFile, DatasetSpec
from sightline.errors import DownloadError

GOOD = bytes(range(256)) * 64  # 16 KiB
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()


class _Server:
    """Serves ``routes``: path → (body, declared Content-Length or None, delay seconds)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None, float]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, length, delay = server.routes[self.path]
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    s.routes["/good.bin"] = (GOOD, None, 0.0)
    s.routes["/truncated.bin"] = (GOOD[:5000], len(GOOD), 0.0)  # promises more than it sends
    s.routes["/short.bin"] = (GOOD[:5000], None, 0.0)  # a complete response, wrong bytes
    s.routes["/corrupt.bin"] = (b"x" + GOOD[1:], None, 0.0)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in (CACHE_ENV, MIRROR_ENV, "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------- download_file
def test_download_good_file(server, tmp_path):
    dest = tmp_path / "cache" / "good.bin"
    assert download_file(server.url + "good.bin", dest, GOOD_MD5, progress=False) == dest
    assert dest.read_bytes() == GOOD
    assert _leftovers(dest.parent) == ["good.bin"]  # no temp file left beside it


@pytest.mark.parametrize("route, why", [
    ("truncated.bin", "truncated"),
    ("short.bin", "md5 mismatch"),
    ("corrupt.bin", "md5 mismatch"),
    ("missing.bin", "HTTP 404"),
])
def test_failed_download_writes_nothing(server, tmp_path, route, why):
    dest = tmp_path / "cache" / "good.bin"
    with pytest.raises(DownloadError) as e:
        download_file(server.url + route, dest, GOOD_MD5, size=len(GOOD), progress=False)
    assert why in str(e.value)
    assert route in str(e.value)
    assert not dest.exists()
    assert _leftovers(dest.parent) == []


def test_falls_back_to_next_url(server, tmp_path):
    dest = tmp_path / "good.bin"
    urls = [server.url + r for r in ("missing.bin", "truncated.bin", "corrupt.bin", "good.bin")]
    download_file(urls, dest, GOOD_MD5, progress=False)
    assert dest.read_bytes() == GOOD
    assert server.requests == ["/missing.bin", "/truncated.bin", "/corrupt.bin", "/good.bin"]


def test_existing_good_file_is_not_fetched_again(server, tmp_path):
    dest = tmp_path / "good.bin"
    dest.write_bytes(GOOD)
    download_file(server.url + "good.bin", dest, GOOD_MD5, progress=False)
    assert server.requests == []


def test_corrupt_existing_file_is_fetched_again(server, tmp_path):
    dest = tmp_path / "good.bin"
    dest.write_bytes(GOOD[:100])
    download_file(server.url + "good.bin", dest, GOOD_MD5, progress=False)
    assert dest.read_bytes() == GOOD
    assert server.requests == ["/good.bin"]


def test_timeout_is_reported(server, tmp_path):
    server.routes["/slow.bin"] = (GOOD, None, 2.0)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        download_file(server.url + "slow.bin", tmp_path / "x.bin", GOOD_MD5, progress=False, timeout=0.3)
    assert time.monotonic() - t0 < 1.9


def test_forced_progress_bar_on_stderr(server, tmp_path, capsys):
    download_file(server.url + "good.bin", tmp_path / "g.bin", GOOD_MD5, progress="always")
    err = capsys.readouterr().err
    assert "g.bin" in err and "100.0%" in err and "MB/s" in err


def test_no_progress_when_stderr_is_not_a_terminal(server, tmp_path, capsys):
    download_file(server.url + "good.bin", tmp_path / "g.bin", GOOD_MD5, progress=True)
    assert "MB/s" not in capsys.readouterr().err


# ----------------------------------------------------------------------- locations, md5 memo
def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "sightline"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == tmp_path / "xdg" / "sightline"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_mirror_resolution(monkeypatch, tmp_path):
    assert resolve_mirror() is None
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert resolve_mirror() == tmp_path
    assert resolve_mirror(tmp_path / "arg") == tmp_path / "arg"


def test_md5_is_memoised_per_size_and_mtime(tmp_path, monkeypatch):
    f = tmp_path / "f.bin"
    f.write_bytes(GOOD)
    assert file_md5(f) == GOOD_MD5
    calls = []
    real_md5 = hashlib.md5
    monkeypatch.setattr(download.hashlib, "md5", lambda *a: calls.append(1) or real_md5(*a))
    assert file_md5(f) == GOOD_MD5
    assert calls == []  # second check: no re-hash
    expected = real_md5(b"changed").hexdigest()
    f.write_bytes(b"changed")
    assert file_md5(f) == expected
    assert calls == [1]


# ----------------------------------------------------------------------- dataset files
def _spec(base_url: str, files: dict[str, bytes], **kw) -> DatasetSpec:
    fields = dict(
        name="tiny", aliases=(), classes=("a", "b"), shape=(1, 2, 2),
        files=tuple(DataFile(n, hashlib.md5(b).hexdigest(), len(b)) for n, b in files.items()),
        urls=(base_url,), flip=False, dark_background=False, resize="pad", format="idx",
        folder="tiny", train_files=tuple(files), test_files=(), num_train=0, num_test=0,
    )
    fields.update(kw)
    return DatasetSpec(**fields)


def test_mirror_is_used_before_network_and_read_in_place(server, tmp_path):
    spec = _spec(server.url, {"good.bin": GOOD})
    mirror = tmp_path / "mirror"
    (mirror / "tiny").mkdir(parents=True)
    (mirror / "tiny" / "good.bin").write_bytes(GOOD)
    cache = tmp_path / "cache"
    paths = dataset_files(spec, cache_dir=cache, mirror=mirror, progress=False)
    assert paths == {"good.bin": mirror / "tiny" / "good.bin"}
    assert server.requests == []
    assert not (cache / "tiny" / "good.bin").exists()  # not copied


def test_mirror_from_environment(server, tmp_path, monkeypatch):
    spec = _spec(server.url, {"good.bin": GOOD})
    (tmp_path / "m" / "tiny").mkdir(parents=True)
    (tmp_path / "m" / "tiny" / "good.bin").write_bytes(GOOD)
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "m"))
    assert dataset_files(spec, cache_dir=tmp_path / "c", progress=False)["good.bin"].parent == tmp_path / "m" / "tiny"


def test_corrupt_mirror_file_is_an_error(server, tmp_path):
    spec = _spec(server.url, {"good.bin": GOOD})
    bad = tmp_path / "mirror" / "tiny" / "good.bin"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(GOOD[:-1])
    with pytest.raises(DownloadError) as e:
        dataset_files(spec, cache_dir=tmp_path / "cache", mirror=tmp_path / "mirror", progress=False)
    assert str(bad) in str(e.value) and GOOD_MD5 in str(e.value)
    assert server.requests == []


def test_network_download_goes_to_cache(server, tmp_path):
    spec = _spec(server.url, {"good.bin": GOOD})
    cache = tmp_path / "cache"
    paths = dataset_files(spec, cache_dir=cache, progress=False)
    assert paths["good.bin"] == cache / "tiny" / "good.bin"
    assert paths["good.bin"].read_bytes() == GOOD
    dataset_files(spec, cache_dir=cache, progress=False)
    assert server.requests == ["/good.bin"]  # second time: from the cache


def test_corrupt_cached_file_is_fetched_again(server, tmp_path):
    spec = _spec(server.url, {"good.bin": GOOD})
    cached = tmp_path / "cache" / "tiny" / "good.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"garbage")
    dataset_files(spec, cache_dir=tmp_path / "cache", progress=False)
    assert cached.read_bytes() == GOOD
    assert server.requests == ["/good.bin"]


def test_offline_error_says_where_it_looked_and_what_to_do(tmp_path):
    # Port 9 (discard) on localhost: refused at once, like a machine without network.
    spec = _spec("http://127.0.0.1:9/", {"good.bin": GOOD})
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as e:
        dataset_files(spec, cache_dir=cache, progress=False, timeout=2)
    msg = str(e.value)
    assert "good.bin" in msg
    assert str(cache / "tiny" / "good.bin") in msg
    assert "no mirror set" in msg
    assert MIRROR_ENV in msg
    assert "http://127.0.0.1:9/good.bin" in msg
    assert GOOD_MD5 in msg
    assert not (cache / "tiny" / "good.bin").exists()


def test_offline_error_names_missing_mirror_folder(tmp_path):
    spec = _spec("http://127.0.0.1:9/", {"good.bin": GOOD})
    with pytest.raises(DownloadError, match="does not exist"):
        dataset_files(spec, cache_dir=tmp_path / "c", mirror=tmp_path / "nope", progress=False, timeout=2)


# ----------------------------------------------------------------------- archives (CIFAR-10 style)
def _tar_gz(members: dict[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type, info.linkname = tarfile.SYMTYPE, symlink[1]
            tar.addfile(info)
    return buf.getvalue()


def _archive_spec(server, archive: bytes, members: dict[str, bytes]) -> DatasetSpec:
    server.routes["/batches.tar.gz"] = (archive, None, 0.0)
    return _spec(
        server.url, members, folder="toy/batches", format="cifar-bin",
        archive=DataFile("batches.tar.gz", hashlib.md5(archive).hexdigest(), len(archive)),
        archive_url=server.url + "batches.tar.gz", archive_folder="batches",
    )


def test_archive_extracts_only_expected_members_safely(server, tmp_path):
    members = {"a.bin": b"A" * 3073, "b.bin": b"B" * 3073}
    archive = _tar_gz(
        {"batches/a.bin": members["a.bin"], "./batches/b.bin": members["b.bin"],
         "batches/readme.html": b"<html>", "../evil.bin": b"evil", "/tmp/abs_evil.bin": b"evil"},
        symlink=("batches/link.bin", "/etc/passwd"),
    )
    spec = _archive_spec(server, archive, members)
    cache = tmp_path / "cache"
    paths = dataset_files(spec, cache_dir=cache, progress=False)
    assert {n: p.read_bytes() for n, p in paths.items()} == members
    assert sorted(p.name for p in (cache / "toy" / "batches").iterdir()) == ["a.bin", "b.bin"]
    assert not (tmp_path / "evil.bin").exists() and not (cache / "evil.bin").exists()
    assert not (cache / "toy" / "batches.tar.gz").exists()  # archive removed once extracted


def test_archive_member_with_wrong_md5_is_an_error(server, tmp_path):
    members = {"a.bin": b"A" * 3073}
    spec = _archive_spec(server, _tar_gz({"batches/a.bin": b"Z" * 3073}), members)
    with pytest.raises(DownloadError, match="a.bin"):
        dataset_files(spec, cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache" / "toy" / "batches" / "a.bin").exists()


def test_archive_mirror_members_used_in_place(server, tmp_path):
    members = {"a.bin": b"A" * 3073}
    spec = _archive_spec(server, _tar_gz({"batches/a.bin": members["a.bin"]}), members)
    (tmp_path / "m" / "toy" / "batches").mkdir(parents=True)
    (tmp_path / "m" / "toy" / "batches" / "a.bin").write_bytes(members["a.bin"])
    paths = dataset_files(spec, cache_dir=tmp_path / "c", mirror=tmp_path / "m", progress=False)
    assert paths["a.bin"] == tmp_path / "m" / "toy" / "batches" / "a.bin"
    assert server.requests == []


def test_archive_offline_error_mentions_member_and_archive(tmp_path):
    spec = _spec(
        "http://127.0.0.1:9/", {"a.bin": b"A"}, folder="toy/batches",
        archive=DataFile("batches.tar.gz", "0" * 32, 10), archive_url="http://127.0.0.1:9/batches.tar.gz",
        archive_folder="batches",
    )
    with pytest.raises(DownloadError) as e:
        dataset_files(spec, cache_dir=tmp_path / "c", progress=False, timeout=2)
    msg = str(e.value)
    assert "a.bin" in msg and "batches.tar.gz" in msg and MIRROR_ENV in msg
    assert str(tmp_path / "c" / "toy" / "batches" / "a.bin") in msg
