"""Downloads, mirror and cache: a local HTTP server stands in for the network."""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sightline import fileio
from sightline.data import download, part_files
from sightline.data.dataset_files import dataset_files
from sightline.data.download import (
    CACHE_ENV,
    MIRROR_ENV,
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
    """Serves ``routes``: path → (body, declared Content-Length or None, delay seconds).
    ``trickle``: path → (bytes sent at once, seconds between the 64 KiB pieces of the rest)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None, float]] = {}
        self.trickle: dict[str, tuple[int, float]] = {}
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
                fast, pause = server.trickle.get(self.path, (len(body), 0.0))
                try:
                    self.wfile.write(body[:fast])
                    for i in range(fast, len(body), 1 << 16):
                        time.sleep(pause)
                        self.wfile.write(body[i : i + (1 << 16)])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed or interrupted

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


@pytest.mark.parametrize(
    "route, why",
    [
        ("truncated.bin", "truncated"),
        ("short.bin", "md5 mismatch"),
        ("corrupt.bin", "md5 mismatch"),
        ("missing.bin", "HTTP 404"),
    ],
)
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
        download_file(
            server.url + "slow.bin", tmp_path / "x.bin", GOOD_MD5, progress=False, timeout=0.3
        )
    assert time.monotonic() - t0 < 1.9


def test_forced_progress_bar_on_stderr(server, tmp_path, capsys):
    download_file(server.url + "good.bin", tmp_path / "g.bin", GOOD_MD5, progress="always")
    err = capsys.readouterr().err
    assert "g.bin" in err and "100.0%" in err and "MB/s" in err


def test_no_progress_when_stderr_is_not_a_terminal(server, tmp_path, capsys):
    download_file(server.url + "good.bin", tmp_path / "g.bin", GOOD_MD5, progress=True)
    assert "MB/s" not in capsys.readouterr().err


# ----------------------------------------------------------------------- interrupted downloads
BIG = random.Random(0).randbytes(3 << 20)  # three of the downloader's 1 MiB reads
BIG_MD5 = hashlib.md5(BIG).hexdigest()
_DOWNLOAD = "import sys; from sightline.data.download import download_file; download_file(*sys.argv[1:], progress=False)"


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part"))


def _bytes_on_disk(folder: Path) -> bool:
    return folder.exists() and any(p.stat().st_size for p in _parts(folder))


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_killed_download_is_cleaned_up_by_the_next(server, tmp_path, sig):
    """kill -9 mid-download: the process cannot delete its temp file, but the file never
    appears under the real name, and the next download deletes the leftover and completes.
    Ctrl-C (SIGINT: KeyboardInterrupt in the read) deletes the temp file on the way out."""
    server.routes["/big.bin"] = (BIG, None, 0.0)
    server.trickle["/big.bin"] = (
        len(BIG) // 2,
        2.0,
    )  # then 24 pieces, ~48 s: time to signal on a busy machine
    dest = tmp_path / "cache" / "big.bin"
    proc = subprocess.Popen(
        [sys.executable, "-c", _DOWNLOAD, server.url + "big.bin", str(dest), BIG_MD5],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        # Mid-download, with bytes on disk: the first 1 MiB is written, the rest still trickling.
        while not _bytes_on_disk(dest.parent):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.02)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not dest.exists()
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
        (left,) = _parts(dest.parent)  # the one thing kill -9 cannot prevent
        assert 0 < left.stat().st_size < len(BIG)
    else:
        assert proc.returncode != 0 and "KeyboardInterrupt" in err, err
        assert _leftovers(dest.parent) == []

    server.trickle.clear()
    assert download_file(server.url + "big.bin", dest, BIG_MD5, progress=False) == dest
    assert hashlib.md5(dest.read_bytes()).hexdigest() == BIG_MD5
    assert _leftovers(dest.parent) == ["big.bin"]  # the killed run's temp file is gone too


def test_interrupt_during_the_stream_leaves_no_temp_file(server, tmp_path, monkeypatch):
    server.routes["/big.bin"] = (BIG, None, 0.0)
    seen = []

    def ctrl_c(self, done, final=False):  # after the first 1 MiB is written
        seen.append(done)
        raise KeyboardInterrupt

    monkeypatch.setattr(download._Bar, "update", ctrl_c)
    dest = tmp_path / "cache" / "big.bin"
    with pytest.raises(KeyboardInterrupt):
        download_file(
            [server.url + "big.bin", server.url + "good.bin"], dest, BIG_MD5, progress=False
        )
    assert seen == [1 << 20]
    assert _leftovers(dest.parent) == []
    assert server.requests == [
        "/big.bin"
    ]  # Ctrl-C stops; it is not a failure to try the next URL for


@pytest.mark.skipif(part_files.fcntl is None, reason="no flock on this platform")
def test_live_temp_file_of_another_download_is_left_alone(server, tmp_path):
    """Two jobs sharing a cache: a download deletes abandoned temp files, never a live one."""
    dest = tmp_path / "good.bin"
    abandoned = tmp_path / ".good.bin.abandoned.part"
    abandoned.write_bytes(GOOD[:100])
    with (
        pytest.raises(RuntimeError),
        part_files.part_file(dest) as live,
    ):  # the other job, mid-download
        live.write(GOOD[:10])
        live.flush()
        download_file(server.url + "good.bin", dest, GOOD_MD5, progress=False)
        assert not abandoned.exists()
        (still,) = _parts(tmp_path)  # the live one
        assert still.read_bytes() == GOOD[:10]
        raise RuntimeError("the other job fails")
    assert _leftovers(tmp_path) == ["good.bin"]
    assert dest.read_bytes() == GOOD


@pytest.mark.skipif(part_files.fcntl is None, reason="no flock on this platform")
def test_temp_file_deleted_before_it_was_locked_is_replaced(tmp_path, monkeypatch):
    """Another download may take a brand-new temp file for abandoned before its lock is on."""
    real, made = tempfile.mkstemp, []

    def racy(**kw):
        fd, name = real(**kw)
        made.append(name)
        if len(made) == 1:
            os.unlink(name)  # the other download's _remove_stale_parts, in between
        return fd, name

    monkeypatch.setattr(fileio.tempfile, "mkstemp", racy)  # part files are made there
    with part_files.part_file(tmp_path / "x.bin") as f:
        f.write(b"data")
    assert len(made) == 2 and (tmp_path / "x.bin").read_bytes() == b"data"
    assert _leftovers(tmp_path) == ["x.bin"]


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
        name="tiny",
        aliases=(),
        classes=("a", "b"),
        shape=(1, 2, 2),
        files=tuple(DataFile(n, hashlib.md5(b).hexdigest(), len(b)) for n, b in files.items()),
        urls=(base_url,),
        flip=False,
        dark_background=False,
        resize="pad",
        format="idx",
        folder="tiny",
        train_files=tuple(files),
        test_files=(),
        num_train=0,
        num_test=0,
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
    assert (
        dataset_files(spec, cache_dir=tmp_path / "c", progress=False)["good.bin"].parent
        == tmp_path / "m" / "tiny"
    )


def test_corrupt_mirror_file_is_an_error(server, tmp_path):
    spec = _spec(server.url, {"good.bin": GOOD})
    bad = tmp_path / "mirror" / "tiny" / "good.bin"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(GOOD[:-1])
    with pytest.raises(DownloadError) as e:
        dataset_files(
            spec, cache_dir=tmp_path / "cache", mirror=tmp_path / "mirror", progress=False
        )
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
        dataset_files(
            spec, cache_dir=tmp_path / "c", mirror=tmp_path / "nope", progress=False, timeout=2
        )


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
        server.url,
        members,
        folder="toy/batches",
        format="cifar-bin",
        archive=DataFile("batches.tar.gz", hashlib.md5(archive).hexdigest(), len(archive)),
        archive_url=server.url + "batches.tar.gz",
        archive_folder="batches",
    )


def test_archive_extracts_only_expected_members_safely(server, tmp_path):
    members = {"a.bin": b"A" * 3073, "b.bin": b"B" * 3073}
    archive = _tar_gz(
        {
            "batches/a.bin": members["a.bin"],
            "./batches/b.bin": members["b.bin"],
            "batches/readme.html": b"<html>",
            "../evil.bin": b"evil",
            "/tmp/abs_evil.bin": b"evil",
        },
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
        "http://127.0.0.1:9/",
        {"a.bin": b"A"},
        folder="toy/batches",
        archive=DataFile("batches.tar.gz", "0" * 32, 10),
        archive_url="http://127.0.0.1:9/batches.tar.gz",
        archive_folder="batches",
    )
    with pytest.raises(DownloadError) as e:
        dataset_files(spec, cache_dir=tmp_path / "c", progress=False, timeout=2)
    msg = str(e.value)
    assert "a.bin" in msg and "batches.tar.gz" in msg and MIRROR_ENV in msg
    assert str(tmp_path / "c" / "toy" / "batches" / "a.bin") in msg
