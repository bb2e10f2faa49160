"""Core ML exports (``--format coreml``, run/export_coreml.py): a classifier .mlpackage (zipped)
by coremltools, taking an image; not run here (Core ML needs Apple's systems), so the program
converted is checked beside PyTorch and the saved spec read back. The squares run of
tests/conftest.py."""

from __future__ import annotations

import json
import sys
import zipfile

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("coremltools")

from sightline.cli import main  # noqa: E402
from sightline.errors import ExportError  # noqa: E402
from sightline.infer.runtime import release_absl_stderr  # noqa: E402
from sightline.run.export_coreml import check_spec  # noqa: E402
from sightline.run.layout import RunLayout  # noqa: E402

release_absl_stderr()  # coremltools may bring absl, imported above by importorskip


@pytest.fixture(scope="module")
def run(squares_run):
    return squares_run  # tests/conftest.py: trained once for this module


@pytest.fixture(scope="module")
def coreml(run):
    return run.export(["coreml", "package"])


def test_coreml_export_is_a_classifier_whose_spec_is_checked_and_said_not_run(
    run, coreml, tmp_path
):
    assert [e.format for e in coreml.exports] == ["onnx", "coreml"]
    e = coreml.exports[1]
    files = RunLayout(run.path)
    assert e.path == files.coreml("best") and zipfile.is_zipfile(e.path)
    assert e.parity is None and e.runtime.startswith("not run")
    assert "not run here" in e.note and "top-1 agreement 100.00%" in e.note
    assert "image input 12x12 grayscale" in e.note and "3 class labels" in e.note
    entry = {x["path"]: x for x in json.loads(files.export_report.read_text())["exports"]}
    assert entry["best.mlpackage.zip"]["format"] == "coreml"
    assert entry["best.mlpackage.zip"]["parity"] is None
    # The saved model read back: what an app developer drops into Xcode.
    with zipfile.ZipFile(e.path) as z:
        names = z.namelist()
        z.extractall(tmp_path)
    assert "best.mlpackage/Manifest.json" in names
    package = tmp_path / "best.mlpackage"
    classes = ["class0", "class1", "class2"]
    assert check_spec(package, run.preprocess, classes, scored=True).startswith("spec holds")
    with pytest.raises(ExportError, match="class labels"):
        check_spec(package, run.preprocess, ["a", "b", "c"], scored=True)
    with pytest.raises(ExportError, match="outputs"):
        check_spec(package, run.preprocess, classes, scored=False)
    import coremltools as ct

    spec = ct.utils.load_spec(str(package))
    meta = json.loads(spec.description.metadata.userDefined["sightline"])
    assert meta["classes"] == classes and meta["ood"]["threshold"] > 0
    assert spec.description.predictedFeatureName == "classLabel"
    # The card says it was not run; the package holds the .mlpackage folder for Xcode.
    card = files.model_card.read_text()
    assert "| best.mlpackage.zip | coreml |" in card and "not run" in card
    with zipfile.ZipFile(coreml.package) as z:
        assert f"{run.name}/model.mlpackage/Manifest.json" in z.namelist()


def test_export_command_says_it_was_not_run(run, capsys):
    assert main(["export", str(run.path), "--format", "coreml"]) == 0
    out = capsys.readouterr()
    assert "Core ML, float32" in out.out and "not run" in out.out
    assert (
        "predict --onnx" in out.out
        and "predict --onnx " + str(RunLayout(run.path).coreml("best")) not in out.out
    )


def test_a_missing_coremltools_names_the_extra(run, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "coremltools", None)  # as if not installed
    assert main(["export", str(run.path), "--format", "coreml"]) != 0
    assert 'pip install "sightline[export]"' in capsys.readouterr().err
