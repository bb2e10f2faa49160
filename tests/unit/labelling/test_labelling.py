"""The labelling loop on small generated folders: colour photos of three kinds waiting in
``unlabelled/``, ranked on a stand-in for the pretrained features (each image's 8 x 8 colour
thumbnail: the loop's logic, not the backbone's); one test runs the real backbone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sightline
from sightline.errors import DataError, SightlineError

COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}


def thumbs(files: list[Path]) -> torch.Tensor:
    rows = [
        np.asarray(Image.open(f).convert("RGB").resize((8, 8)), dtype=np.float32) for f in files
    ]
    return torch.from_numpy(np.stack(rows).reshape(len(files), -1) - 110.0)


def write_pool(root: Path, per_class: int = 30, odd: int = 0, seed: int = 0) -> Path:
    """``root/photos/unlabelled/`` with ``per_class`` noisy images of each colour (file names
    say nothing), and ``odd`` checkerboards unlike any; returns the folder and writes the
    truth to ``truth.json`` beside it."""
    rng = np.random.default_rng(seed)
    folder = root / "photos"
    (folder / "unlabelled" / "cam").mkdir(parents=True)
    truth = {}
    n = 0
    for name, rgb in COLOURS.items():
        for _ in range(per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 25, (24, 24, 3)), 0, 255)
            rel = f"unlabelled/cam/img{n:04d}.png" if n % 2 else f"unlabelled/img{n:04d}.jpg"
            Image.fromarray(pixels.astype(np.uint8)).save(folder / rel)
            truth[rel] = name
            n += 1
    for i in range(odd):
        board = (np.indices((24, 24)).sum(0) // 3 % 2 * 255).astype(np.uint8)
        rel = f"unlabelled/odd{i}.png"
        Image.fromarray(np.stack([board, 255 - board, board], 2)).save(folder / rel)
        truth[rel] = None
    (root / "truth.json").write_text(json.dumps(truth))
    return folder


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".sightline" not in p.as_posix()
    }


def test_the_pool_is_never_a_class_nor_a_split(tmp_path):
    from sightline.data import find_splits, list_images

    folder = write_pool(tmp_path, per_class=1)
    for name in ("cat", "dog"):
        (folder / name).mkdir()
        Image.new("RGB", (8, 8)).save(folder / name / "a.png")
    assert list_images(folder).classes == ["cat", "dog"]
    split = tmp_path / "split"
    for part in ("train/cat", "train/dog", "test/cat", "unlabelled"):
        (split / part).mkdir(parents=True)
    assert set(find_splits(split)) == {"train", "test"}  # a pool beside the splits keeps them
    with pytest.raises(DataError, match="waiting for a label"):
        sightline.data.class_folder(folder, "Unlabelled", create=True)


def test_a_first_batch_covers_the_folder_before_any_label(tmp_path):
    folder = write_pool(tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    loop = sightline.label(folder, featurize=thumbs)
    status = loop.status()
    assert status["classes"] == {} and status["waiting"] == 90 and status["estimate"] is None
    first = loop.next(3)["next"]
    assert len(first) == 3 and all(s.suggestion is None for s in first)
    assert {truth[s.path] for s in first} == set(COLOURS)  # one of each kind, not 3 reds
    with pytest.raises(DataError, match="1 image or more"):
        loop.next(0)


def test_labels_move_files_through_the_journal_and_one_undo_puts_them_back(tmp_path):
    folder = write_pool(tmp_path, per_class=4)
    before = files_under(folder)
    loop = sightline.label(folder, featurize=thumbs)
    journal = loop.set({"unlabelled/img0000.jpg": "red", "cam/img0001.png": "red",
                        "unlabelled/img0004.jpg": None})  # fmt: skip
    assert (folder / "red" / "img0000.jpg").is_file()
    assert (folder / "red" / "cam" / "img0001.png").is_file()  # its place below the pool kept
    assert (folder / ".sightline-quarantine" / "other" / "img0004.jpg").is_file()
    assert loop.status()["classes"] == {"red": 2} and loop.status()["waiting"] == 9
    assert loop.status()["last_change"] == journal["id"]
    with pytest.raises(DataError, match="labelled already"):
        loop.set({"red/img0000.jpg": "blue"})
    for bad in ("../photos/unlabelled/img0002.jpg", "/etc/passwd", "unlabelled/nope.jpg"):
        with pytest.raises(DataError):
            loop.set({bad: "red"})
    with pytest.raises(DataError, match="not allowed"):
        loop.set({"unlabelled/img0002.jpg": "../evil"})
    assert loop.undo()["id"] == journal["id"]
    assert files_under(folder) == before  # byte-identical, nothing lost
    assert loop.status()["classes"] == {}


def test_a_link_in_the_pool_is_never_read_nor_moved(tmp_path):
    folder = write_pool(tmp_path, per_class=2)
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), (255, 255, 255)).save(outside)
    os.symlink(outside, folder / "unlabelled" / "link.png")
    loop = sightline.label(folder, featurize=thumbs)
    assert "unlabelled/link.png" not in [s.path for s in loop.next(10)["next"]]
    with pytest.raises(DataError):
        loop.set({"unlabelled/link.png": "red"})
    assert outside.is_file() and (folder / "unlabelled" / "link.png").is_symlink()


def label_some(loop, truth: dict, per_class: int) -> None:
    taken = {c: 0 for c in COLOURS}
    chosen = {}
    for path, name in truth.items():
        if name and taken[name] < per_class:
            chosen[path] = name
            taken[name] += 1
    loop.set(chosen)


def test_with_labels_the_model_suggests_asks_about_the_uncertain_and_sets_apart_the_odd(tmp_path):
    folder = write_pool(tmp_path, per_class=30, odd=3)
    truth = json.loads((tmp_path / "truth.json").read_text())
    loop = sightline.label(folder, featurize=thumbs)
    label_some(loop, truth, 12)
    status = loop.status()
    assert status["classes"] == {"blue": 12, "green": 12, "red": 12}
    e = status["estimate"]
    assert e["accuracy"] >= 0.95 and e["low"] <= e["accuracy"] <= e["high"]
    batches = loop.next(10)
    rows = batches["next"]
    assert len(rows) == 10 and all(s.suggestion == truth[s.path] for s in rows)
    margins = [max(s.probabilities.values()) - sorted(s.probabilities.values())[-2] for s in rows]
    assert all(a <= b + 1e-6 for a, b in zip(margins, margins[1:], strict=False))  # uncertain first
    odd = {p for p, c in truth.items() if c is None}
    assert {s.path for s in batches["unlike"][:3]} == odd  # the least like anything first
    assert not {s.path for s in rows} & {s.path for s in batches["unlike"]}
    assert [p["labelled"] for p in loop.history()] == [36]


def test_with_few_labels_a_class_typical_images_come_before_uncertain_ones(tmp_path):
    """Under ``TYPICAL_PER_CLASS`` labels a class a model's doubts say little: the loop keeps
    asking about typical images, now with the model's suggestions; from there on, about the
    most uncertain."""
    from sightline.labelling.ranking import TYPICAL_PER_CLASS

    for per_class, why in ((TYPICAL_PER_CLASS - 1, "typical"), (TYPICAL_PER_CLASS, "uncertain")):
        root = tmp_path / str(per_class)
        folder = write_pool(root, per_class=20)
        truth = json.loads((root / "truth.json").read_text())
        loop = sightline.label(folder, featurize=thumbs)
        label_some(loop, truth, per_class)
        asked = loop.next(6)["next"]
        assert len(asked) == 6 and all(s.why.startswith(why) for s in asked), per_class
        assert all(s.suggestion == truth[s.path] and s.probability for s in asked)
        for s in asked:  # the suggestion and its probability are shown beside the why
            if why == "uncertain":  # it names the runner-up instead
                second, p = sorted(s.probabilities.items(), key=lambda kv: -kv[1])[1]
                assert s.why == f"uncertain: or {second} ({p:.0%})" and second != s.suggestion
            else:
                assert s.suggestion not in s.why and "%" not in s.why


def test_accepting_the_confident_rest_is_refused_while_unsure_and_undoable(tmp_path):
    folder = write_pool(tmp_path, per_class=30, odd=2)
    truth = json.loads((tmp_path / "truth.json").read_text())
    loop = sightline.label(folder, featurize=thumbs)
    label_some(loop, truth, 3)
    with pytest.raises(DataError, match="too few labels"):
        loop.accept_above(0.98)
    assert loop.status()["accept"].startswith("too few labels")
    label_some(loop, {p: c for p, c in truth.items() if (folder / p).exists()}, 12)
    before = files_under(folder)
    status = loop.status()
    assert status["accept"] is None and status["confident"] > 0
    journal = loop.accept_above(0.98)
    assert len(journal["moves"]) == status["confident"]
    for move in journal["moves"]:  # every accepted label right; the odd ones left waiting
        assert move["dst"].split("/")[0] == truth[move["src"]]
    assert all((folder / p).exists() for p, c in truth.items() if c is None)
    loop.undo()
    assert files_under(folder) == before
    with pytest.raises(DataError, match="0.5..1"):
        loop.accept_above(0.2)


def test_the_features_are_kept_per_file_and_follow_a_label(tmp_path):
    folder = write_pool(tmp_path, per_class=3)
    calls = []

    def counting(files):
        calls.append(len(files))
        return thumbs(files)

    sightline.label(folder, featurize=counting).next(2)
    assert calls == [9]
    loop = sightline.label(folder, featurize=counting)  # a new process: read from the memo
    loop.set({"unlabelled/img0000.jpg": "red"})
    loop.next(2)
    assert calls == [9]  # the moved file kept its row


def test_an_unreadable_image_is_left_out_and_named(tmp_path):
    folder = write_pool(tmp_path, per_class=2)
    (folder / "unlabelled" / "broken.jpg").write_bytes(b"not a jpeg")

    def strict(files):
        for f in files:
            Image.open(f).load()
        return thumbs(files)

    loop = sightline.label(folder, featurize=strict)  # PIL's error is an OSError
    status = loop.status()
    assert [u.split(":")[0] for u in status["unreadable"]] == ["unlabelled/broken.jpg"]
    assert "unlabelled/broken.jpg" not in [s.path for s in loop.next(10)["next"]]


def test_a_folder_that_is_not_one_is_a_clear_error(tmp_path):
    with pytest.raises(SightlineError, match="not a folder"):
        sightline.label(tmp_path / "nope")


def test_the_real_backbone_gives_the_rows_the_label_check_reads(tmp_path):
    from sightline.health.features import available, file_features

    if not available():
        pytest.fail("EfficientNet-Lite0's weights are part of the dev install")
    folder = write_pool(tmp_path, per_class=2)
    loop = sightline.label(folder)
    batch = loop.next(6)["next"]
    assert len(batch) == 6
    x, bad = loop.memo.features([batch[0].path])
    assert bad == [] and x.shape == (1, 1280)
    assert torch.allclose(x, file_features([folder / batch[0].path]), atol=1e-5)


def test_label_studio_tasks_out_and_annotations_back(tmp_path):
    from sightline.labelling import export_label_studio, import_label_studio

    folder = write_pool(tmp_path, per_class=6)
    truth = json.loads((tmp_path / "truth.json").read_text())
    loop = sightline.label(folder, featurize=thumbs)
    label_some(loop, truth, 3)
    made = export_label_studio(loop, tmp_path / "tasks.json")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert made["tasks"] == len(tasks) == 9
    xml = (tmp_path / "tasks.xml").read_text()
    assert '<Choice value="red"/>' in xml and 'toName="image"' in xml
    for task in tasks:  # the suggestions as pre-annotations, the image as local files serve it
        path = task["data"]["sightline_path"]
        assert task["data"]["image"].startswith("/data/local-files/?d=photos/")
        assert task["predictions"][0]["result"][0]["value"]["choices"] == [truth[path]]
    # what Label Studio exports: annotations (a cancelled one ignored), a task made up
    for i, task in enumerate(tasks):
        path = task["data"].pop("sightline_path") if i == 0 else task["data"]["sightline_path"]
        choice = (
            "(not any class)"
            if i == 1
            else truth[path]
            if i != 0
            else truth[
                "unlabelled/"
                + task["data"]["image"].split("d=photos/unlabelled/")[1].replace("%2F", "/")
            ]
        )
        task["annotations"] = [{"was_cancelled": True, "result": []},
                               {"result": [{"value": {"choices": [choice]}}]}]  # fmt: skip
    tasks[2]["annotations"] = []
    tasks.append({"id": 99, "data": {"sightline_path": "../../etc/passwd"}, "annotations": []})
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    before = files_under(folder)
    journal = import_label_studio(loop, tmp_path / "export.json")
    assert len(journal["moves"]) == 8 and journal["apart"] == 1
    assert len(journal["skipped"]) == 2 and "task 99" in journal["skipped"][1]
    for move in journal["moves"]:
        want = truth[move["src"]] if move["reason"] != "not any class" else ".sightline-quarantine"
        assert move["dst"].startswith(want)
    loop.undo()
    assert files_under(folder) == before
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="Label Studio"):
        import_label_studio(loop, tmp_path / "bad.json")


def test_a_pool_elsewhere_is_copied_in_and_left_as_it_is(tmp_path):
    from sightline.labelling import gather

    photos = write_pool(tmp_path / "a", per_class=2) / "unlabelled"  # the user's own folder
    folder = tmp_path / "shoes"
    folder.mkdir()
    before = files_under(photos)
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"x")
    os.symlink(outside, photos / "link.png")
    got = gather(folder, photos)
    assert sorted(got["copied"]) == sorted(f"unlabelled/{p}" for p in before)
    assert files_under(photos) == before | {"link.png": b"x"}  # untouched
    assert not (folder / "unlabelled" / "link.png").exists()  # no link followed
    (photos / "new.png").write_bytes((photos / "img0000.jpg").read_bytes())  # same bytes
    again = gather(folder, photos)
    assert again["copied"] == [] and again["known"] == len(before) + 1
    assert sightline.label(folder, featurize=thumbs).status()["waiting"] == len(before)
    with pytest.raises(DataError, match="outside"):
        gather(folder, folder / "unlabelled")
    with pytest.raises(DataError, match="not a folder"):
        gather(folder, tmp_path / "nope")


def test_the_first_batch_asks_about_typical_images_not_the_odd_ones(tmp_path):
    """k-center alone would ask about the three checkerboards first: each is the furthest from
    everything else. The typical images of the three kinds come first."""
    folder = write_pool(tmp_path, per_class=10, odd=3)
    truth = json.loads((tmp_path / "truth.json").read_text())
    first = sightline.label(folder, featurize=thumbs).next(3)["next"]
    assert {truth[s.path] for s in first} == set(COLOURS)


def test_the_odd_ones_are_asked_about_once_nothing_else_waits(tmp_path):
    folder = write_pool(tmp_path, per_class=12, odd=2)
    truth = json.loads((tmp_path / "truth.json").read_text())
    loop = sightline.label(folder, featurize=thumbs)
    label_some(loop, truth, 12)  # every image of the three kinds
    batches = loop.next(5)
    assert {s.path for s in batches["next"]} == {p for p, c in truth.items() if c is None}
    assert batches["unlike"] == []  # not listed twice


def test_in_the_background_a_change_refits_before_the_next_question(tmp_path, monkeypatch):
    from sightline.labelling import model as loop_model

    folder = write_pool(tmp_path, per_class=20)
    truth = json.loads((tmp_path / "truth.json").read_text())
    fits = []
    real_fit = loop_model.fit
    monkeypatch.setattr(loop_model, "fit", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    loop = sightline.label(folder, featurize=thumbs, background=True)
    label_some(loop, truth, 3)  # a change: the model is refit without being asked
    assert loop.settled(timeout=60) and loop.background_error is None
    assert len(fits) == 1
    assert loop.status()["estimate"]["labelled"] == 9 and len(fits) == 1  # asked: already fit
    asked = loop.next(5)["next"]
    assert len(fits) == 1 and all(s.suggestion for s in asked)
    loop.set({asked[0].path: truth[asked[0].path]})
    loop.undo()  # two changes in a row: refit once or twice, never left stale
    assert loop.settled(timeout=60)
    assert loop.status()["estimate"]["labelled"] == 9
    assert 2 <= len(fits) <= 3
    before = len(fits)
    quiet = sightline.label(folder, featurize=thumbs)  # the default: refit when asked
    quiet.set({asked[1].path: truth[asked[1].path]})
    assert quiet.settled(timeout=0) and len(fits) == before
    assert quiet.status()["estimate"]["labelled"] == 10 and len(fits) == before + 1
