"""Uploaded files → the items to classify, zip archives expanded into their members.

A zip is read from the bytes already in memory (the request's size limit bounds them), and
every number in it is a claim: the member count and the declared sizes are checked before
anything is decompressed, and each member is then read with a bounded read, so an archive
that lies about its sizes (a zip bomb) still cannot make the server decompress more than
``ARCHIVE_FACTOR`` times the upload limit in all. A member stored as a symbolic link is listed
as refused: its bytes are a path, never an image, and it is never followed.
"""

from __future__ import annotations

import io
import posixpath
import stat
import zipfile
import zlib
from dataclasses import dataclass

MAX_MEMBERS = 5000
ARCHIVE_FACTOR = 8  # uncompressed archive contents allowed, in multiples of the upload limit
MAX_NAME = 255
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive with members; an empty archive


class ArchiveTooLarge(Exception):
    """A zip whose contents exceed the limits: answered with 413, nothing of it classified."""


@dataclass
class Item:
    """One thing to classify: ``data`` (the bytes of a file), or ``error`` saying why not."""

    name: str
    data: bytes | None = None
    error: str | None = None
    pixels: int = 0  # width x height from the header, once checked (api/predict.py)


def is_zip(data: bytes) -> bool:
    return data[:4] in ZIP_MAGIC


def expand_uploads(files: list[tuple[str, bytes]], max_upload_bytes: int) -> list[Item]:
    """(file name, bytes) in upload order → items in the same order, each zip replaced by its
    members (named ``archive.zip/member/path``). Raises ``ArchiveTooLarge``."""
    budget = [ARCHIVE_FACTOR * max_upload_bytes]  # uncompressed bytes left, over all archives
    items: list[Item] = []
    for name, data in files:
        if is_zip(data):
            items += _expand_zip(name, data, max_upload_bytes, budget)
        else:
            items.append(Item(name, data))
    return items


def _skipped(member: str) -> bool:
    """Folders, macOS resource forks (__MACOSX/) and hidden files (.DS_Store, ._photo.jpg):
    not images anyone put there. A name that climbs out of the archive (``..``) is not skipped
    silently: it is listed with its reason (``_refused``)."""
    parts = [p for p in member.split("/") if p]
    return (
        member.endswith("/")
        or not parts
        or parts[0] == "__MACOSX"
        or any(p.startswith(".") and p != ".." for p in parts)
    )


def _refused(member: str) -> str | None:
    """Why a member's name is refused: absolute, or climbing out of the archive."""
    parts = member.split("/")
    if member.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
        return "skipped: its name leaves the archive ('..' or an absolute path)"
    return None


def _is_link(info: zipfile.ZipInfo) -> bool:
    """A member stored as a symbolic link (a Unix mode in the high bits of its attributes)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def _expand_zip(name: str, data: bytes, max_upload_bytes: int, budget: list[int]) -> list[Item]:
    mb = max_upload_bytes / (1024 * 1024)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError) as e:
        return [Item(name, error=f"not a readable zip archive ({e})")]
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveTooLarge(
                f"{name}: the archive holds {len(infos):,} entries; at most {MAX_MEMBERS:,} are "
                "accepted: split it into smaller archives"
            )
        files = [i for i in infos if not i.is_dir() and not _skipped(i.filename.replace("\\", "/"))]
        declared = sum(i.file_size for i in files)
        if declared > budget[0]:
            raise ArchiveTooLarge(
                f"{name}: the archive unpacks to {declared / 2**20:,.0f} MB; at most "
                f"{ARCHIVE_FACTOR} x the upload limit ({ARCHIVE_FACTOR * mb:g} MB in all) is "
                "accepted: send fewer images at a time"
            )
        if not files:
            return [
                Item(
                    name,
                    error="the zip archive holds no files (folders and hidden files are skipped)",
                )
            ]
        items = []
        for info in files:
            raw = info.filename.replace("\\", "/")
            member = posixpath.normpath(raw).lstrip("/")
            label = f"{name}/{member}"[:MAX_NAME]
            if (reason := _refused(raw)) is not None:
                items.append(Item(f"{name}/{raw}"[:MAX_NAME], error=reason))
                continue
            if _is_link(info):
                items.append(Item(label, error="skipped: a symbolic link (refused, not followed)"))
                continue
            if info.file_size > max_upload_bytes:
                items.append(
                    Item(
                        label,
                        error=f"file too large ({info.file_size / 2**20:.1f} MB; the limit per image "
                        f"is {mb:g} MB)",
                    )
                )
                continue
            items.append(
                _read_member(archive, info, label, min(max_upload_bytes, budget[0]), budget)
            )
        return items


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, limit: int, budget: list[int]
) -> Item:
    """One member, never more than ``limit`` bytes of it decompressed, whatever it declares."""
    try:
        with archive.open(info) as f:
            body = f.read(limit + 1)
    except (
        zipfile.BadZipFile,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        ValueError,
        OSError,
        EOFError,
    ) as e:
        # RuntimeError: encrypted; NotImplementedError: a compression method zipfile lacks
        return Item(label, error=f"cannot read this archive member ({e})")
    if len(body) > limit:
        raise ArchiveTooLarge(
            f"{label}: unpacks to more than the archive declares or the limits allow; the archive "
            "was refused (a zip bomb?)"
        )
    budget[0] -= len(body)
    return Item(label, body)
