"""Run folders: evaluations kept per source, saved predictions reused, ids kept inside the runs
folder, damaged folders listed as broken, racing names, listing summaries."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from PIL import Image
from test_train import fit_toy, make_dataset

import sightline
from sightline.cli import main
from sightline.errors import RunError
from sightline.run import evaluations as evaluation_store
from sightline.run import list_runs, load_run, new_run_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = make_dataset()
    root = tmp_path_factory.mktemp("runs")
    run = fit_toy(data, root, name="toy-run", epochs=2)
    run.evaluate(data, split="test")
    return run, data, root


def write_folder(root, data, split="test", names=None, layout=None):
    """The toy split as PNG files, one subfolder per class (``names`` renames the folders)."""
    part = data.splits()[split]
    base = root / layout if layout else root
    for i, (img, label) in enumerate(zip(part.images, part.labels.tolist(), strict=True)):
        folder = base / (names or data.classes)[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy()).save(folder / f"{i}.png")
    return root


def test_folder_evaluation_never_replaces_the_test_result(trained, tmp_path, capsys):
    run, data, root = trained
    test_acc = run.evaluation["accuracy"]
    folder = write_folder(tmp_path / "photos", data, split="val")
    (folder / "class1" / "junk.png").write_bytes(b"not an image")
    m = run.evaluate(str(folder))
    assert m.count == len(data.val)
    records = run.evaluations()
    (key,) = [k for k in records if k.startswith("folder-photos-")]
    rec = records[key]
    assert (
        rec["kind"] == "folder" and rec["path"] == str(folder.resolve()) and rec["split"] == "all"
    )
    assert rec["count"] == len(data.val) and rec["checkpoint"] == "best"
    assert [p for p, _ in rec["skipped"]] == [str(folder / "class1" / "junk.png")]
    assert run.evaluation["accuracy"] == test_acc and run.evaluation["split"] == "test"
    # --split val and --checkpoint last get their own files too
    run.evaluate(data, split="val")
    run.evaluate(data, split="test", which="last")
    assert {"test", "val", "test-last"} <= set(run.evaluations())
    assert run.evaluation["accuracy"] == test_acc
    # and `sightline runs` shows the test split's accuracy
    assert main(["runs", "--runs-dir", str(root), "--json"]) == 0
    (row,) = [r for r in json.loads(capsys.readouterr().out) if r["name"] == "toy-run"]
    assert row["test_accuracy"] == test_acc


def test_missing_split_of_a_split_folder_is_an_error(trained, tmp_path):
    run, data, _ = trained
    folder = write_folder(tmp_path / "tv", data, split="train", layout="train")
    write_folder(folder, data, split="val", layout="val")
    with pytest.raises(RunError, match=r"no 'test' split; it has: train, val"):
        run.evaluate(str(folder), split="test")
    assert run.evaluate(str(folder), split="val").count == len(data.val)  # not the training images


def test_class_folders_match_names_with_slashes(tmp_path):
    data = make_dataset()
    data.classes[:] = ["T-shirt/top", "Trouser", "Ankle boot"]
    run = fit_toy(data, tmp_path, epochs=1)
    folder = write_folder(tmp_path / "shop", data, names=["t-shirt_top", "TROUSER", "Ankle-boot"])
    assert run.evaluate(str(folder)).count == len(data.test)
    (folder / "TROUSER").rename(folder / "Trowsers")
    with pytest.raises(
        RunError, match=r"'Trowsers' \(did you mean 'Trouser'\?\) unknown to this model"
    ):
        run.evaluate(str(folder))


def test_saved_predictions_are_reused_until_the_model_changes(trained, monkeypatch):
    run, data, _ = trained
    fresh = load_run(run.path)  # no in-memory state
    m1, images = fresh.split_results("test", data=data)
    assert len(images) == len(data.test)
    import sightline.run.evaluate as evaluate_module

    def no_forward(*a, **k):
        raise AssertionError("evaluated again although saved predictions are current")

    monkeypatch.setattr(evaluate_module, "evaluate_images", no_forward)
    m2, _ = load_run(run.path).split_results("test", data=data)
    assert m2.accuracy == m1.accuracy and m2.confusion == m1.confusion and m2.loss == m1.loss
    assert torch.allclose(m2.probabilities, m1.probabilities)
    # a different model file (training went on) makes the saved predictions stale
    record = evaluation_store.read_evaluation(run.path, "test")
    record["model_sha256"] = "0" * 64
    evaluation_store.save_evaluation(run.path, "test", record, "x")
    with pytest.raises(AssertionError, match="evaluated again"):
        load_run(run.path).split_results("test", data=data)


def test_run_ids_stay_inside_the_runs_folder(trained, tmp_path):
    run, _, root = trained
    assert load_run("toy-run", runs_dir=root).path == run.path.resolve()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    for ref in ("../elsewhere", str(outside), "toy-run/../../elsewhere", "/etc", ".."):
        with pytest.raises(RunError):
            load_run(ref, runs_dir=root)
    with pytest.raises(
        RunError, match=r"opens as a pathlib.Path"
    ):  # says how to open a folder elsewhere
        load_run(str(outside), runs_dir=root)
    with pytest.raises(RunError, match="no run named 'nope'"):
        load_run("nope", runs_dir=root)
    assert load_run(run.path).path == run.path  # a Path the program chose is opened as is


def test_a_damaged_run_folder_is_listed_as_broken(trained, tmp_path):
    run, data, _ = trained
    root = tmp_path / "runs"
    good = fit_toy(data, root, name="good", epochs=1)
    bad = root / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    half = root / "half"
    half.mkdir()
    (half / "status.json").write_text("{}")
    runs = {r.name: r for r in list_runs(root)}
    assert set(runs) == {"good", "bad", "half"}
    assert runs["bad"].status["status"] == "broken" and "config.json" in runs["bad"].problem
    assert runs["good"].to_dict()["status"] == "finished"
    assert json.loads(json.dumps([r.to_dict() for r in runs.values()]))  # JSON-ready, even broken
    assert sightline.run.latest_run(root).name == good.name


def test_racing_runs_get_distinct_folders(tmp_path):
    got: list = []
    barrier = threading.Barrier(8)

    def make():
        barrier.wait()
        got.append(new_run_dir(tmp_path, "same"))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 8 and all(p.is_dir() for p in got)


def test_in_memory_dataset_run_says_to_pass_the_data(trained):
    run, data, _ = trained
    again = load_run(run.path)
    with pytest.raises(RunError, match="in-memory Dataset .* pass it"):
        again.load_data()
    assert again.evaluate(data).count == len(data.test)  # passing it works


def test_run_to_dict(trained):
    run, data, _ = trained
    d = load_run(run.path).to_dict()
    assert d["name"] == "toy-run" and d["status"] == "finished" and d["model"] == "mlp"
    assert d["epochs_done"] == 2 and d["test_accuracy"] == run.evaluation["accuracy"]
    assert d["test_ece"] == run.evaluation["ece"] and 0 <= d["test_ece"] <= 1
    assert d["test_ece_floor"] == run.evaluation["ece_floor"] and d["test_ece_floor"] >= 0
    assert d["best_value"] == run.status["best_value"] and d["monitor"] == "val_accuracy"
