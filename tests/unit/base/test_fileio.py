"""Atomic writes: a failed write leaves the old file and no temp files."""

from __future__ import annotations

import pytest

from sightline.fileio import atomic_open, atomic_write_json, read_json


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "sub" / "state.json"
    atomic_write_json(p, {"a": 1})
    atomic_write_json(p, {"a": 2})
    assert read_json(p) == {"a": 2}
    assert [f.name for f in p.parent.iterdir()] == ["state.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(p) as f:
        f.write(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert p.read_bytes() == b"old"
    assert [f.name for f in tmp_path.iterdir()] == ["model.bin"]
