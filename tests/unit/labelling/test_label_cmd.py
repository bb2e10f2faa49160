"""``sightline label`` as a user runs it, on the real pretrained features."""

from __future__ import annotations

import json

import pytest
from test_labelling import files_under, write_pool

from sightline.cli import main


@pytest.fixture
def folder(tmp_path):
    return write_pool(tmp_path, per_class=4)


def test_label_from_the_command_line(folder, capsys):
    before = files_under(folder)
    assert main(["label", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "0 labelled, 12 waiting" in out and "no model yet" in out

    assert main(["label", str(folder), "--next", "4", "--format", "json"]) == 0
    batch = json.loads(capsys.readouterr().out)["next"]
    assert len(batch) == 4 and all(row["path"].startswith("unlabelled/") for row in batch)
    assert all(row["suggestion"] is None for row in batch)

    first, second, third = (row["path"] for row in batch[:3])
    assert main(["label", str(folder), "--set", f"{first}=red", f"{second}=green"]) == 0
    assert "moved 2 files" in capsys.readouterr().out
    assert main(["label", str(folder), "--apart", third]) == 0
    assert "other/" in capsys.readouterr().out
    assert main(["label", str(folder), "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["classes"] == {"green": 1, "red": 1} and status["waiting"] == 9

    tasks = folder.parent / "tasks.json"
    assert main(["label", str(folder), "--export-label-studio", str(tasks)]) == 0
    assert "wrote 9 tasks" in capsys.readouterr().out and tasks.with_suffix(".xml").is_file()

    assert main(["label", str(folder), "--accept-above", "0.98"]) == 2
    assert "no model yet" in capsys.readouterr().err
    assert main(["label", str(folder), "--set", "unlabelled/nope.jpg=red"]) == 2
    assert "no image 'unlabelled/nope.jpg' waits" in capsys.readouterr().err
    assert main(["label", str(folder), "--set", "red"]) == 2
    assert "FILE=CLASS" in capsys.readouterr().err

    assert main(["label", str(folder), "--undo"]) == 0  # the set-apart
    assert main(["label", str(folder), "--undo"]) == 0  # the two labels
    assert "put back 2 files" in capsys.readouterr().out
    assert files_under(folder) == before
    assert main(["label", str(folder), "--undo"]) == 1
    assert "nothing to undo" in capsys.readouterr().err


def test_label_needs_a_folder(tmp_path, capsys):
    assert main(["label", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
