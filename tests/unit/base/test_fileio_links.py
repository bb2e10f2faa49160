"""The one rule for guarded folders (``fileio.inside`` and its readers): no symbolic link below
the root is followed, whichever part of the path it is; the root itself may be one."""

from __future__ import annotations

import json
import os

import pytest

from sightline.errors import LinkRefusedError, PathRefusedError
from sightline.fileio import (
    atomic_write_json,
    entries_inside,
    inside,
    is_dir_inside,
    is_file_inside,
    is_link_inside,
    open_inside,
    read_bytes_inside,
    read_json_inside,
)

SECRET = "the secret outside the guarded folder"


@pytest.fixture
def tree(tmp_path):
    """(root, outside): root/sub/real.txt, root/sub/file-link -> outside/secret.txt,
    root/folder-link -> outside/, root/inner-link -> root/sub/real.txt (a link that stays in)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "secret.json").write_text(json.dumps({"secret": SECRET}))
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "real.txt").write_text("real")
    (root / "sub" / "file-link").symlink_to(outside / "secret.txt")
    (root / "sub" / "json-link").symlink_to(outside / "secret.json")
    (root / "folder-link").symlink_to(outside, target_is_directory=True)
    (root / "inner-link").symlink_to(root / "sub" / "real.txt")
    return root, outside


@pytest.mark.parametrize(
    "path, link",
    [
        ("sub/file-link", "sub/file-link"),  # the file itself
        ("folder-link/secret.txt", "folder-link"),  # a folder on the way
        ("folder-link", "folder-link"),
        ("inner-link", "inner-link"),  # even one that stays inside: never followed
    ],
)
def test_a_link_in_any_part_of_the_path_is_refused_and_named(tree, path, link):
    root, outside = tree
    for read in (
        lambda: inside(root, path),
        lambda: open_inside(root, path).read(),
        lambda: read_bytes_inside(root, path),
        lambda: open_inside(root, root / path, "r").read(),  # as root / name builds it
    ):
        with pytest.raises(LinkRefusedError) as refused:
            read()
        message = str(refused.value)
        assert refused.value.path == str(root / link)
        assert str(root / link) in message and "symbolic link" in message and "refused" in message
        assert SECRET not in message and str(outside) not in message  # never where it leads


def test_json_through_a_link_is_refused(tree):
    root, _ = tree
    with pytest.raises(LinkRefusedError, match="json-link is a symbolic link"):
        read_json_inside(root, "sub/json-link")


def test_plain_files_are_read_and_names_leaving_the_root_refused(tree, tmp_path):
    root, outside = tree
    assert open_inside(root, "sub/real.txt", "r").read() == "real"
    assert read_bytes_inside(root, root / "sub" / "real.txt") == b"real"
    assert inside(root, "sub/new/file.txt") == root / "sub" / "new" / "file.txt"  # not there yet
    for elsewhere in (
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        outside / "secret.txt",
    ):
        with pytest.raises(PathRefusedError, match="refused"):
            open_inside(root, elsewhere)
    with pytest.raises(FileNotFoundError):
        open_inside(root, "sub/missing.txt")
    with pytest.raises(OSError):  # a folder is no file
        open_inside(root, "sub")
    with pytest.raises(ValueError):
        open_inside(root, "sub/real.txt", "w")


def test_the_root_itself_may_be_a_link(tree, tmp_path):
    """--runs-dir or --data-dir given as a link: the user chose it."""
    root, _ = tree
    chosen = tmp_path / "chosen"
    chosen.symlink_to(root, target_is_directory=True)
    assert open_inside(chosen, "sub/real.txt", "r").read() == "real"
    with pytest.raises(LinkRefusedError):
        open_inside(chosen, "folder-link/secret.txt")


def test_a_fifo_is_not_opened_as_a_file(tree):
    root, _ = tree
    os.mkfifo(root / "sub" / "pipe")
    with pytest.raises(OSError, match="not a regular file"):
        open_inside(root, "sub/pipe")  # and does not hang waiting for a writer


def test_predicates_and_listings_name_links_without_looking_through_them(tree):
    root, _ = tree
    assert entries_inside(root) == {"folder-link": "link", "inner-link": "link", "sub": "dir"}
    assert entries_inside(root, "sub") == {
        "file-link": "link",
        "json-link": "link",
        "real.txt": "file",
    }
    assert entries_inside(root, "missing") == {}
    with pytest.raises(LinkRefusedError, match="folder-link is a symbolic link"):
        entries_inside(root, "folder-link")
    assert is_file_inside(root, "sub/real.txt") and is_dir_inside(root, "sub")
    assert not is_file_inside(root, "sub/file-link") and is_link_inside(root, "sub/file-link")
    assert not is_file_inside(root, "folder-link/secret.txt")  # behind a link: not a file here
    assert not is_link_inside(root, "folder-link/secret.txt")
    assert not is_dir_inside(root, "folder-link") and is_link_inside(root, "folder-link")


def test_an_atomic_write_through_a_linked_folder_is_refused(tree):
    root, outside = tree
    with pytest.raises(LinkRefusedError, match="folder-link"):
        atomic_write_json(root / "folder-link" / "new.json", {"a": 1}, root=root)
    with pytest.raises(LinkRefusedError):
        atomic_write_json(root / "folder-link" / "deeper" / "new.json", {"a": 1}, root=root)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json", "secret.txt"]
    atomic_write_json(root / "sub" / "ok.json", {"a": 1}, root=root)
    assert read_json_inside(root, "sub/ok.json") == {"a": 1}
