"""Find the built-in dataset files: a local mirror, the cache, or a download — always md5-checked.

Lookup order for each file:

1. the mirror (argument, else ``$SIGHTLINE_DATA_MIRROR``): a folder laid out like
   ``<mirror>/fashion-mnist/<file>``, ``<mirror>/cifar-10/cifar-10-batches-bin/<member>``.
   Files are read in place, never copied. A corrupt mirror file is an error, not a fallback:
   the user pointed us there, so silently downloading instead would hide the problem.
2. the cache (argument, else ``$SIGHTLINE_CACHE_DIR``, ``$XDG_CACHE_HOME/sightline``,
   ``~/.cache/sightline``), same layout. A corrupt cached file is deleted and fetched again.
3. the network: each canonical URL in turn, streamed into a temp file beside the destination and
   renamed only once the md5 matches, so an interrupted or truncated download never leaves a
   file that looks cached. Temp files that a killed download could not delete are removed by the
   next download of the same file (see ``part_files``).

When all of that fails, one ``DownloadError`` says which file is missing, everywhere it looked,
why each URL failed, and how to provide the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from sightline.data.part_files import part_file, remove_stale_parts
from sightline.errors import DownloadError

CACHE_ENV = "SIGHTLINE_CACHE_DIR"
MIRROR_ENV = "SIGHTLINE_DATA_MIRROR"
DEFAULT_TIMEOUT = 30.0  # seconds without data before a connection is given up
CHUNK = 1 << 20

# True: bar if stderr is a terminal; "always": bar anyway; False: none; a function: gets
# {"kind": "download", "file", "done", "total", "mb_per_sec"} dicts instead of a bar.
Progress = bool | str | Callable[[dict], None]


# ----------------------------------------------------------------------- locations
def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: the argument, else $SIGHTLINE_CACHE_DIR, $XDG_CACHE_HOME/sightline,
    ~/.cache/sightline."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "sightline"
    return Path.home() / ".cache" / "sightline"


def resolve_mirror(mirror: str | os.PathLike | None = None) -> Path | None:
    """The mirror folder: the argument, else $SIGHTLINE_DATA_MIRROR, else None."""
    if mirror:
        return Path(mirror).expanduser()
    env = os.environ.get(MIRROR_ENV)
    return Path(env).expanduser() if env else None


# ----------------------------------------------------------------------- md5
# (resolved path, size, mtime_ns) → md5: a second load in the same process skips re-hashing
# 200 MB, while a file replaced in between (new size or mtime) is hashed again.
_md5_memo: dict[tuple[str, int, int], str] = {}


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def file_md5(path: str | os.PathLike) -> str:
    """md5 hex digest of a file, memoised per (path, size, mtime) in this process."""
    path = Path(path)
    key = _stat_key(path)
    if key not in _md5_memo:
        h = hashlib.md5()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        _md5_memo[key] = h.hexdigest()
    return _md5_memo[key]


def md5_matches(path: str | os.PathLike, md5: str) -> bool:
    """True if ``path`` is a file with this md5 (False if it is missing or unreadable)."""
    try:
        return Path(path).is_file() and file_md5(path) == md5
    except OSError:
        return False


def remember_md5(path: Path, md5: str) -> None:
    with contextlib.suppress(OSError):
        _md5_memo[_stat_key(path)] = md5


# ----------------------------------------------------------------------- progress bar
def show_progress(progress: Progress) -> bool:
    if callable(progress):
        return False
    if progress == "always":
        return True
    if not progress:
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class _Bar:
    """One line on stderr: name, MB done / total, percent, MB/s; redrawn at most 5x a second."""

    def __init__(self, label: str, total: int | None, progress: Progress) -> None:
        self.label, self.total = label, total
        self.enabled = show_progress(progress)
        self.callback = progress if callable(progress) else None
        self.start = self.last = time.monotonic()

    def update(self, done: int, final: bool = False) -> None:
        if not self.enabled and self.callback is None:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-6) / 1e6
        if self.callback is not None:
            self.callback(
                {
                    "kind": "download",
                    "file": self.label,
                    "done": done,
                    "total": self.total,
                    "mb_per_sec": round(rate, 3),
                    "final": final,
                }
            )
            return
        if self.total:
            pct = min(100.0, 100.0 * done / self.total)
            text = f"{done / 1e6:7.1f} / {self.total / 1e6:.1f} MB {pct:5.1f}%"
        else:
            text = f"{done / 1e6:7.1f} MB"
        sys.stderr.write(f"\r  {self.label}  {text}  {rate:6.2f} MB/s")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


# ----------------------------------------------------------------------- one download
class _Failed(Exception):
    """One URL did not deliver the right bytes; the message says why."""


def _fetch_one(
    url: str, dest: Path, md5: str, size: int | None, progress: Progress, timeout: float
) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "sightline"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            header = resp.headers.get("Content-Length")
            expected = int(header) if header and header.strip().isdigit() else None
            bar = _Bar(dest.name, expected or size, progress)
            h, n = hashlib.md5(), 0
            with part_file(dest) as f:
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
                    bar.update(n)
                bar.update(n, final=True)
                # Raising inside _part_file deletes the temp file: nothing half-done stays.
                if expected is not None and n != expected:
                    raise _Failed(f"truncated download: got {n:,} of {expected:,} bytes")
                got = h.hexdigest()
                if got != md5:
                    note = f" ({n:,} bytes, expected {size:,})" if size and n != size else ""
                    raise _Failed(f"md5 mismatch: got {got}, expected {md5}{note}")
        remember_md5(dest, md5)
    except _Failed:
        raise
    except urllib.error.HTTPError as e:
        raise _Failed(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Failed(f"timed out after {timeout:g} s") from None
        raise _Failed(f"network error: {reason}") from None
    except TimeoutError:
        raise _Failed(f"timed out after {timeout:g} s (no data)") from None
    except http.client.IncompleteRead as e:
        raise _Failed(
            f"truncated download: connection closed after {len(e.partial):,} bytes"
        ) from None
    except (http.client.HTTPException, OSError, ValueError) as e:
        raise _Failed(f"{type(e).__name__}: {e}") from None


def fetch_to(
    urls: Sequence[str], dest: Path, md5: str, size: int | None, progress: Progress, timeout: float
) -> list[tuple[str, str]]:
    """Try each URL in turn; return [] on success, else (url, why it failed) for each."""
    failures: list[tuple[str, str]] = []
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [(u, f"cannot create cache folder {dest.parent}: {e.strerror or e}") for u in urls]
    remove_stale_parts(dest)
    for url in urls:
        try:
            _fetch_one(url, dest, md5, size, progress, timeout)
            return []
        except _Failed as e:
            failures.append((url, str(e)))
    return failures


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike,
    md5: str,
    size: int | None = None,
    progress: Progress = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Make ``dest`` a verified copy of the file at one of ``urls`` (tried in order).

    An existing ``dest`` with the right md5 is kept; a wrong one is replaced. The file appears
    only once complete and verified. Raises ``DownloadError`` listing every URL and its failure.
    """
    dest = Path(dest)
    urls = [urls] if isinstance(urls, str) else list(urls)
    if md5_matches(dest, md5):
        return dest
    failures = fetch_to(urls, dest, md5, size, progress, timeout)
    if failures:
        tried = "\n".join(f"  {u}: {why}" for u, why in failures) or "  (no URLs given)"
        raise DownloadError(f"could not download {dest.name} (md5 {md5}) to {dest}:\n{tried}")
    return dest
