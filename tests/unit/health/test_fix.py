"""``sightline check --fix / --undo / --keep``: a fix moves, never deletes, through a journal
that completes or undoes an interrupted fix; reviewed findings are not reported again."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from planted_folder import blobs, plant

from sightline.cli import main
from sightline.health import check
from sightline.health.fix import QUARANTINE, apply_fix, finish_interrupted, plan_fix, undo_fix


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    root = tmp_path_factory.mktemp("fix") / "data"
    images, labels = blobs(400, seed=5)
    truth = plant(
        root, images, labels, list("abcde"), test=80, copies=6, conflicts=2, near=6, leaks=4
    )
    return root, truth, check(root)


@pytest.fixture
def folder(original, tmp_path):
    root, truth, report = original
    copy = tmp_path / "data"
    shutil.copytree(root, copy)
    return copy, truth, report


def files(root) -> dict[str, str]:
    """Every file under root (quarantine included) -> a digest of its bytes."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def contents(root) -> list[str]:
    return sorted(v for k, v in files(root).items() if not k.endswith(".json"))


def test_fix_moves_never_deletes_and_undo_puts_everything_back(folder, capsys):
    root, truth, _ = folder
    before = files(root)
    assert main(["check", str(root), "--fix", "--format", "json"]) == 0
    journal = json.loads(capsys.readouterr().out)
    assert contents(root) == sorted(before.values())  # every file still there, byte for byte
    after = check(root, labels=False)
    assert after.summary().keys() <= {"odd-size"}  # no corrupt file, copy or leak left
    manifest = json.loads((root / QUARANTINE / "manifest.json").read_text())["quarantined"]
    origins = {e["from"]: e for e in manifest}
    assert set(truth.corrupt) <= set(origins) and all(origins[p]["reason"] for p in origins)
    assert {test for _, test in truth.leaks} <= set(origins)  # the test copy, not the original
    assert not {train for train, _ in truth.leaks} & set(origins)
    relabelled = {
        m["src"]: m["dst"].split("/")[1] for m in journal["moves"] if m["kind"] == "label"
    }
    conflicts = {copy for _, copy in truth.conflicts}  # copies filed under another class
    # only flipped labels move (or copies under another class), each to the class it belongs to
    assert set(relabelled) <= set(truth.flipped) | conflicts
    assert all(relabelled[p] == truth.flipped[p] for p in relabelled if p in truth.flipped)
    assert len(relabelled) >= 0.4 * len(truth.flipped)  # the surest; the rest for review
    assert all(p.startswith("train/") for p in relabelled)  # a test image never moves alone

    assert main(["check", str(root), "--undo"]) == 0
    restored = files(root)
    assert {k: v for k, v in restored.items() if not k.startswith(QUARANTINE)} == before
    assert main(["check", str(root), "--undo"]) == 0
    assert "Nothing to undo" in capsys.readouterr().out


def test_an_interrupted_fix_is_completed_or_undone(folder, monkeypatch):
    import sightline.health.fix as fix

    root, _, report = folder
    before = files(root)
    moves, _ = plan_fix(report, root)
    real_move, done = fix._move, []

    def killed_after_five(*args):
        if len(done) == 5:
            raise KeyboardInterrupt  # as a kill in the middle of the fix
        made = real_move(*args)
        done.append(args)
        return made

    monkeypatch.setattr(fix, "_move", killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        apply_fix(root, moves)
    monkeypatch.setattr(fix, "_move", real_move)
    assert "completed the interrupted fix 1" in finish_interrupted(root)
    assert all((root / m.dst).exists() and not (root / m.src).exists() for m in moves)
    undo_fix(root)
    assert {k: v for k, v in files(root).items() if not k.startswith(QUARANTINE)} == before
    # killed again, then undone straight away: the moves made are put back too
    done.clear()
    monkeypatch.setattr(fix, "_move", killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        apply_fix(root, plan_fix(check(root, labels=False), root)[0])
    monkeypatch.setattr(fix, "_move", real_move)
    assert undo_fix(root)["status"] == "undone"
    assert {k: v for k, v in files(root).items() if not k.startswith(QUARANTINE)} == before


def test_a_fix_never_replaces_a_file(folder):
    root, truth, report = folder
    moves, _ = plan_fix(report, root)
    target = next(m for m in moves if m.dst.startswith(QUARANTINE))
    (root / target.dst).parent.mkdir(parents=True, exist_ok=True)
    (root / target.dst).write_bytes(b"already here")
    moves, _ = plan_fix(report, root)  # planned again: the name is taken, another is chosen
    again = next(m for m in moves if m.src == target.src)
    assert again.dst != target.dst and again.dst.endswith(
        "-1" + target.dst[target.dst.rfind(".") :]
    )


def test_kept_findings_are_not_reported_until_the_image_changes(folder, capsys):
    root, truth, _ = folder
    original, near_copy = truth.near[0]
    assert main(["check", str(root), "--no-labels", "--keep", near_copy]) == 0
    assert "kept as it is: near-duplicate" in capsys.readouterr().out
    report = check(root, labels=False)
    assert not any(near_copy in p.paths for p in report.of_kind("near-duplicate"))
    assert "kept as they are" in report.notes[-1]
    from PIL import Image

    img = Image.open(root / near_copy)
    img.rotate(180).save(root / near_copy)  # changed: the decision no longer holds
    img.save(root / near_copy, quality=95)  # the same picture again, other pixels
    assert any(near_copy in p.paths for p in check(root, labels=False).of_kind("near-duplicate"))


def test_keeping_is_listed_undone_and_revoked_from_the_command_line(folder, capsys):
    """Issue 51: a decision to keep could not be taken back."""
    root, truth, _ = folder
    corrupt = truth.corrupt[0]
    assert main(["check", str(root), "--no-labels", "--keep", corrupt]) == 0
    assert "--undo" in capsys.readouterr().out
    report = check(root, labels=False)
    assert [p.paths for p in report.kept] == [[corrupt]]
    assert main(["check", str(root), "--no-labels"]) == 0
    table = capsys.readouterr().out
    assert (
        "kept as they are by a person (1;" in table and corrupt in table.split("kept as they")[-1]
    )
    assert main(["check", str(root), "--undo"]) == 0
    assert "1 findings kept as they are are reported again" in capsys.readouterr().out
    assert corrupt in check(root, labels=False).flagged_paths() and files(root)  # nothing moved
    assert main(["check", str(root), "--no-labels", "--keep", corrupt]) == 0
    assert main(["check", str(root), "--no-labels", "--revoke", corrupt]) == 0
    assert f"reported again: corrupt {corrupt}" in capsys.readouterr().out
    again = check(root, labels=False)
    assert corrupt in again.flagged_paths() and again.kept == []


def test_the_report_after_a_fix_is_checked_again(folder):
    from sightline.health.check import recheck
    from sightline.health.fix import recommended, review_move

    root, truth, report = folder
    advice = recommended(report, root)
    assert all(a["action"] == "quarantine" for k, a in advice.items() if k.startswith("corrupt:"))
    original, copy = truth.conflicts[0]
    apply_fix(
        root, [review_move(root, copy, report.classes, original.split("/")[1], "duplicate", "test")]
    )
    after = recheck(report, root)
    moved = [p for p in after.of_kind("duplicate") if original in p.paths]
    assert moved and not moved[0].details.get("conflict")  # now a same-class copy, shown at once
    assert after.labels == report.labels and after.of_kind("label")  # label findings carried


def test_only_a_folder_can_be_fixed(capsys, tmp_path):
    assert main(["check", str(tmp_path / "nothing"), "--undo"]) == 2
    assert "only an image folder can be fixed" in capsys.readouterr().err
