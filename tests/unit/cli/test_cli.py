"""The CLI in-process on a generated image folder: every command, and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sightline
from sightline.cli import main


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """3 classes of 16x16 RGB images: a bright bar (horizontal / vertical / diagonal) on dark."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name in ("horizontal", "vertical", "diagonal"):
        (root / name).mkdir()
        for i in range(40):
            a = rng.integers(0, 50, (16, 16, 3), dtype=np.uint8)
            k = rng.integers(3, 13)
            if name == "horizontal":
                a[k - 1 : k + 1, :, :] = 230
            elif name == "vertical":
                a[:, k - 1 : k + 1, :] = 230
            else:
                idx = np.arange(16)
                a[idx, idx, :] = 230
                a[idx[1:], idx[:-1], :] = 230
            Image.fromarray(a).save(root / name / f"{i}.png")
    (root / "vertical" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "sightline" in capsys.readouterr().out
    for cmd in (
        "datasets",
        "models",
        "summary",
        "train",
        "evaluate",
        "predict",
        "runs",
        "plot",
        "inspect",
        "report",
    ):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: sightline " + cmd in capsys.readouterr().out


def test_models_and_datasets_lists(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mlp" in out and "tutorial-cnn" in out and "fastcnn  (default)" in out
    assert "airnet  (default for fashion-mnist)" in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist" in out and "Ankle boot" in out and "airplane" in out


def test_datasets_download_fetches_and_verifies(capsys, mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("SIGHTLINE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(tmp_path))
    assert main(["datasets", "--download", "mnist"]) == 0
    assert re.search(
        r"mnist: ready \(60,000 train / 10,000 test images\) in ", capsys.readouterr().out
    )
    assert main(["datasets", "--download", "imagenet"]) != 0
    assert "unknown dataset" in capsys.readouterr().err.lower()


def test_summary_counts(capsys):
    assert main(["summary", "mlp"]) == 0
    assert "101,770" in capsys.readouterr().out
    assert (
        main(["summary", "tutorial-cnn", "--input", "3x32x32", "--num-classes", "3", "--json"]) == 0
    )
    s = json.loads(capsys.readouterr().out)
    assert s["total"] == 289_443


def test_train_evaluate_predict_runs_on_a_folder(photo_folder, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    code = main(
        [
            "train",
            str(photo_folder),
            "--model",
            "mlp",
            "--epochs",
            "4",
            "--batch-size",
            "16",
            "--runs-dir",
            runs,
            "--name",
            "bars",
            "--progress",
            "lines",
            "--val-split",
            "0.25",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "skipped" in out and "corrupt.png" in out  # the broken file is named, training goes on
    assert "Run saved in" in out and "No test split" in out
    assert "Report:" in out and (tmp_path / "runs" / "bars" / "report.html").is_file()

    assert (
        main(["evaluate", "bars", "--runs-dir", runs, "--data", str(photo_folder), "--json"]) == 0
    )
    ev = json.loads(capsys.readouterr().out)
    assert ev["accuracy"] > 0.8 and ev["count"] == 120

    assert main(["runs", "--runs-dir", runs]) == 0
    assert "bars" in capsys.readouterr().out

    files = [
        str(photo_folder / "vertical" / "0.png"),
        str(photo_folder / "horizontal"),
        str(tmp_path / "missing.png"),
    ]
    assert (
        main(["predict", "--run", f"{runs}/bars", *files, "--format", "csv", "--top-k", "2"]) == 0
    )
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].startswith("path,label") and len(lines) == 1 + 41
    assert "missing.png" in captured.err

    assert (
        main(
            ["plot", "predictions", "bars", "--runs-dir", runs, "--split", "val", "--only-mistakes"]
        )
        == 0
    )
    assert (
        capsys.readouterr().out.strip().endswith("mistakes.png")
    )  # never over the report's predictions.png
    assert (
        main(
            ["plot", "confusion", f"{runs}/bars", "--split", "val", "-o", str(tmp_path / "cm.svg")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].endswith("cm.svg")
    assert (
        main(["inspect", f"{runs}/bars", str(photo_folder / "vertical" / "1.png"), "--json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)  # stdout is one JSON document, nothing else
    assert (
        set(doc["probabilities"]) == {"diagonal", "horizontal", "vertical"}
        and 0 < doc["confidence"] <= 1
    )
    assert doc["confidence"] == max(doc["probabilities"].values())
    assert all(Path(p).is_file() for p in doc["figures"].values()) and "saliency" in doc["figures"]
    # the same probabilities as predict gives for this run and image (flip TTA and all)
    run = sightline.load_run(Path(runs) / "bars")
    probs = run.predict([str(photo_folder / "vertical" / "1.png")])[0]
    assert [doc["probabilities"][c] for c in run.classes] == pytest.approx(probs.tolist(), abs=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "mnist", "--model", "nope"], "unknown model 'nope'"),
        (["train", "/no/such/folder"], "neither a built-in dataset nor an existing folder"),
        (["summary", "mlp", "--input", "2x28x28"], "channels must be 1 or 3"),
        (["evaluate", "/no/such/run"], "run folder not found"),
        (["predict", "--run", "/no/such/run", "x.png"], "run folder not found"),
    ],
)
def test_errors_are_one_clear_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_arguments_are_rejected_by_the_parser(capsys):
    for args in (
        ["train", "--epochs", "0"],
        ["train", "--size", "abc"],
        ["train", "--val-split", "2"],
        ["predict"],
    ):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2
        assert "error:" in capsys.readouterr().err


def test_json_progress_is_one_event_stream(photo_folder, tmp_path, capsys):
    code = main(
        [
            "train",
            str(photo_folder),
            "--model",
            "mlp",
            "--epochs",
            "2",
            "--runs-dir",
            str(tmp_path),
            "--val-split",
            "0.25",
            "--json",
            "--no-report",
        ]
    )
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]  # stdout: JSON lines only
    # the folder's check, said once its images are read (each decoded once), before the model
    first = next(i for i, e in enumerate(events) if e.get("topic") == "check")
    assert "data check" in events[first]["text"] and events[first - 1]["kind"] in (
        "data",
        "message",
    )
    assert first < [e["kind"] for e in events].index("model")
    events = [e for e in events if e.get("topic") != "check"]
    kinds = [e["kind"] for e in events]
    assert code == 0 and kinds.count("train_begin") == 1 and kinds.count("epoch") == 2
    assert kinds[0] == "data" and kinds[-1] == "done" and events[-1]["status"] == "finished"
    assert events[0]["skipped_count"] == 1 and "corrupt.png" in events[0]["skipped"][0][0]
