"""The files a built-in dataset needs, found or fetched: the mirror, the cache, the network
(``download``), and members taken out of archives. The lookup order and its rules are in
``sightline.data.download``'s docstring."""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import sys
import tarfile
from pathlib import Path

from sightline.data.download import (
    CACHE_ENV,
    CHUNK,
    DEFAULT_TIMEOUT,
    MIRROR_ENV,
    Progress,
    fetch_to,
    file_md5,
    md5_matches,
    remember_md5,
    resolve_cache_dir,
    resolve_mirror,
    show_progress,
)
from sightline.data.part_files import part_file, remove_stale_parts
from sightline.data.registry import DataFile, DatasetSpec
from sightline.errors import DownloadError


def _check_mirror_file(path: Path, f: DataFile, source: str) -> Path | None:
    """``path`` if it is in the mirror and correct; None if absent; DownloadError if corrupt."""
    if not path.is_file():
        return None
    if md5_matches(path, f.md5):
        return path
    try:
        actual = f"md5 {file_md5(path)}, {path.stat().st_size:,} bytes"
    except OSError as e:
        actual = f"unreadable: {e.strerror or e}"
    raise DownloadError(
        f"corrupt mirror file {path} ({actual}); expected md5 {f.md5}, {f.size:,} bytes.\n"
        f"Replace it with the canonical file, or unset {source} to use the cache or the network."
    )


def _mirror_source(mirror: str | os.PathLike | None) -> str:
    return "the mirror argument" if mirror else MIRROR_ENV


def _check_cache_file(path: Path, md5: str, notes: list[str], progress: Progress) -> Path | None:
    """``path`` if cached and correct; a corrupt one is deleted (and noted) so it is re-fetched."""
    if not path.is_file():
        return None
    if md5_matches(path, md5):
        return path
    notes.append(f"cached {path} had the wrong md5; deleted it to fetch it again")
    if show_progress(progress):
        sys.stderr.write(f"  {path.name}: cached copy is corrupt, fetching it again\n")
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def dataset_files(
    spec: DatasetSpec,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    progress: Progress = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Path]:
    """Paths to verified copies of every file of ``spec`` (filename → path), fetching as needed."""
    cache = resolve_cache_dir(cache_dir)
    mirror_root = resolve_mirror(mirror)
    notes: list[str] = []
    found: dict[str, Path] = {}
    missing: list[DataFile] = []
    for f in spec.files:
        path = None
        if mirror_root is not None:
            path = _check_mirror_file(
                mirror_root / spec.folder / f.filename, f, _mirror_source(mirror)
            )
        if path is None:
            path = _check_cache_file(cache / spec.folder / f.filename, f.md5, notes, progress)
        if path is None:
            missing.append(f)
        else:
            found[f.filename] = path
    if missing:
        if spec.archive is not None:
            found.update(
                _fetch_from_archive(
                    spec, missing, cache, mirror_root, mirror, notes, progress, timeout
                )
            )
        else:
            for f in missing:
                dest = cache / spec.folder / f.filename
                urls = [base + f.filename for base in spec.urls]
                failures = fetch_to(urls, dest, f.md5, f.size, progress, timeout)
                if failures:
                    others = [m.filename for m in missing[missing.index(f) + 1 :]]
                    raise _missing_error(
                        spec, f, cache, mirror_root, mirror, failures, notes, others
                    )
                found[f.filename] = dest
    return {f.filename: found[f.filename] for f in spec.files}


def _fetch_from_archive(
    spec: DatasetSpec,
    missing: list[DataFile],
    cache: Path,
    mirror_root: Path | None,
    mirror_arg: str | os.PathLike | None,
    notes: list[str],
    progress: Progress,
    timeout: float,
) -> dict[str, Path]:
    """CIFAR-10: get the archive (mirror, cache or network), extract the missing members."""
    arch = spec.archive
    assert arch is not None and spec.archive_url is not None
    parent = Path(spec.folder).parent  # cifar-10/, beside cifar-10-batches-bin/
    archive = None
    if mirror_root is not None:
        archive = _check_mirror_file(
            mirror_root / parent / arch.filename, arch, _mirror_source(mirror_arg)
        )
    cached_archive = cache / parent / arch.filename
    if archive is None:
        archive = _check_cache_file(cached_archive, arch.md5, notes, progress)
    if archive is None:
        failures = fetch_to(
            [spec.archive_url], cached_archive, arch.md5, arch.size, progress, timeout
        )
        if failures:
            others = [m.filename for m in missing[1:]]
            raise _missing_error(
                spec, missing[0], cache, mirror_root, mirror_arg, failures, notes, others
            )
        archive = cached_archive
    out = _extract_members(archive, spec, missing, cache / spec.folder)
    if archive == cached_archive:
        # The members are what we read; keeping the 170 MB archive too would double the cache.
        with contextlib.suppress(OSError):
            cached_archive.unlink()
    return out


def _extract_members(
    archive: Path, spec: DatasetSpec, members: list[DataFile], dest_dir: Path
) -> dict[str, Path]:
    """Extract exactly ``members`` from the tarball, each md5-checked, atomically.

    Destination paths are built from our own file names, never from names inside the archive,
    so a hostile archive cannot write outside ``dest_dir`` (no path traversal, no links).
    """
    wanted = {f"{spec.archive_folder}/{f.filename}": f for f in members}
    out: dict[str, Path] = {}
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                f = wanted.get(posixpath.normpath(info.name))
                if f is None or f.filename in out or not info.isreg():
                    continue
                src = tar.extractfile(info)
                assert src is not None
                dest = dest_dir / f.filename
                remove_stale_parts(dest)
                h = hashlib.md5()
                with part_file(dest) as w:
                    while chunk := src.read(CHUNK):
                        w.write(chunk)
                        h.update(chunk)
                    if h.hexdigest() != f.md5:
                        raise DownloadError(
                            f"{archive} member {info.name} has md5 {h.hexdigest()}, expected {f.md5}; "
                            f"delete {archive} and try again"
                        )
                remember_md5(dest, f.md5)
                out[f.filename] = dest
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DownloadError(f"cannot extract {archive}: {e}; delete it and try again") from None
    absent = [f.filename for f in members if f.filename not in out]
    if absent:
        raise DownloadError(
            f"{archive} does not contain {', '.join(absent)} (under {spec.archive_folder}/)"
        )
    return out


def _missing_error(
    spec: DatasetSpec,
    f: DataFile,
    cache: Path,
    mirror_root: Path | None,
    mirror_arg: str | os.PathLike | None,
    failures: list[tuple[str, str]],
    notes: list[str],
    others: list[str],
) -> DownloadError:
    """The one message for "this file is nowhere": where we looked, why, what to do."""
    cache_path = cache / spec.folder / f.filename
    if mirror_root is None:
        mirror_line = f"no mirror set ({MIRROR_ENV} is empty)"
    elif not mirror_root.is_dir():
        mirror_line = f"{mirror_root} does not exist"
    else:
        mirror_line = f"{mirror_root / spec.folder / f.filename} (not there)"
    tried = "\n".join(f"    {u}: {why}" for u, why in failures)
    lines = [
        f"dataset file {f.filename} of {spec.name} is missing and could not be downloaded.",
        "Looked in:",
        f"  cache:   {cache_path} (not there)",
        f"  mirror:  {mirror_line}",
        "  network:",
        tried,
        *[f"  note: {n}" for n in notes],
        *([f"  also missing: {', '.join(others)}"] if others else []),
        "To provide it, either:",
        f"  - set {MIRROR_ENV} to a folder laid out like /path/to/mirror/{spec.folder}/{f.filename}",
        f"  - or copy {f.filename} (md5 {f.md5}, {f.size:,} bytes) to {cache_path}",
    ]
    if spec.archive is not None:
        lines.append(
            f"  - or copy {spec.archive.filename} (md5 {spec.archive.md5}) to "
            f"{cache / Path(spec.folder).parent / spec.archive.filename}"
        )
    lines.append(f"(the cache folder can be changed with {CACHE_ENV})")
    return DownloadError("\n".join(lines))


def file_locations(
    spec: DatasetSpec,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
) -> dict[str, bool]:
    """Cheap presence check for listings (names and sizes only, no hashing): cached / mirrored."""
    cache = resolve_cache_dir(cache_dir)
    mirror_root = resolve_mirror(mirror)

    def complete(root: Path | None) -> bool:
        if root is None:
            return False
        for f in spec.files:
            p = root / spec.folder / f.filename
            try:
                if p.stat().st_size != f.size:
                    return False
            except OSError:
                return False
        return True

    return {"cached": complete(cache), "mirrored": complete(mirror_root)}
