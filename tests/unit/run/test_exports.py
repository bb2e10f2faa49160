"""Exports in several formats, each checked beside PyTorch (sightline.run.exports): the INT8
ONNX export (ONNX Runtime's static quantisation, run/quantize.py), its bar and its refusal,
export/report.json, the CLI and Run.export. One small convnet run on a folder of 12 px gray
squares (its test split has labels, so accuracy is compared)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import squares_photos
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from test_train import make_dataset  # noqa: E402  (the squares run of tests/conftest.py)

import sightline  # noqa: E402
from sightline.cli import main  # noqa: E402
from sightline.errors import ExportError  # noqa: E402
from sightline.run.exports import parse_formats  # noqa: E402
from sightline.run.layout import RunLayout  # noqa: E402
from sightline.run.quantize import calibration_sample, choose_layers  # noqa: E402


@pytest.fixture(scope="module")
def run(squares_run):
    return squares_run  # tests/conftest.py: trained once for this module


def test_formats_are_named_once_each_and_an_unknown_one_is_said():
    assert parse_formats("onnx,onnx-int8") == ["onnx", "onnx-int8"]
    assert parse_formats(["onnx-int8", "onnx", "onnx-int8"]) == ["onnx-int8", "onnx"]
    with pytest.raises(ExportError, match="unknown export format 'tflite'.*onnx-int8"):
        parse_formats("onnx,tflite")


def test_int8_export_is_checked_beside_pytorch_and_reported(run):
    report = run.export("onnx-int8")
    files = RunLayout(run.path)
    assert [e.format for e in report.exports] == ["onnx", "onnx-int8"]  # INT8 is made from fp32
    fp32, int8 = report.exports
    assert int8.path == files.onnx_int8("best") and int8.path.is_file() and fp32.path.is_file()
    p = int8.parity
    assert p.source.startswith("images of the test split")
    assert p.images == len(make_dataset(n_per_class=60).test.labels)  # all of them
    assert p.top1_agreement >= 0.99 and p.accuracy is not None and p.reference_accuracy > 0.9
    assert 100 * (p.reference_accuracy - p.accuracy) <= 0.5
    assert fp32.parity.accuracy == pytest.approx(fp32.parity.reference_accuracy)
    assert p.max_abs_diff > fp32.parity.max_abs_diff  # it really is another model
    assert "classifier" in " ".join(int8.kept_float) and int8.runtime.startswith("ONNX Runtime")
    # The report on disk: one entry per file, the numbers beside PyTorch's.
    body = json.loads(files.export_report.read_text())
    entries = {e["path"]: e for e in body["exports"]}
    assert set(entries) == {"best.onnx", "best.int8.onnx"}
    assert entries["best.int8.onnx"]["parity"]["reference_accuracy"] == p.reference_accuracy
    assert entries["best.int8.onnx"]["checkpoint"] == "best"
    # The file is int8 inside, carries the run's metadata and predicts like any export.
    import onnx

    proto = onnx.load(str(int8.path))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    model = sightline.load_onnx(int8.path)
    assert model.metadata["quantization"]["layers_int8"] >= 1
    assert model.metadata["classes"] == ["class0", "class1", "class2"]
    # Exported again as fp32 only: the INT8 entry stays in the report while its file is there.
    run.export("onnx")
    assert {e["path"] for e in json.loads(files.export_report.read_text())["exports"]} == {
        "best.onnx",
        "best.int8.onnx",
    }


def test_an_int8_export_that_answers_differently_is_refused_with_its_numbers(run, tmp_path):
    files = RunLayout(run.path)
    files.onnx_int8("best").unlink(missing_ok=True)
    # Scales fitted on black images clip every real activation: the answers fall apart.
    black = torch.zeros((64, *run.preprocess.input_shape), dtype=torch.uint8)
    from sightline.run.exports import export

    with pytest.raises(ExportError, match=r"top-1 agreement .*< 99%.*--accept-drop") as e:
        export(run, "onnx-int8", calibration=black)
    assert "Nothing INT8 was written" in str(e.value)
    assert not files.onnx_int8("best").exists()
    accepted = export(run, "onnx-int8", calibration=black, accept_drop=100)
    assert accepted.exports[1].bar == "accuracy drop <= 100 points"
    assert files.onnx_int8("best").is_file()
    with pytest.raises(ExportError, match="0 to 100"):
        export(run, "onnx-int8", accept_drop=-1)


def test_an_int8_export_whose_score_no_longer_tells_noise_apart_is_refused():
    import dataclasses

    from sightline.run.export_check import CheckImages, Parity, probe_images
    from sightline.run.quantize import int8_verdict

    kept = Parity(images=100, source="test split", max_abs_diff=0.1, mean_abs_diff=0.01,
                  top1_agreement=1.0, score_rel_diff=0.2, accuracy=0.95, reference_accuracy=0.95,
                  unknown=0.03, reference_unknown=0.03, verdict_agreement=1.0,
                  probe_unknown_kept=1.0, probe_unknown=1.0, reference_probe_unknown=1.0)  # fmt: skip
    check = CheckImages(torch.zeros(1), "test split")
    assert "also on noise" in int8_verdict("x", kept, check, None)
    lost = dataclasses.replace(kept, probe_unknown_kept=0.0, probe_unknown=0.0)
    with pytest.raises(ExportError, match=r"of 16 noise images, answered unknown 0% where PyTorch"):
        int8_verdict("x", lost, check, None)
    wary = dataclasses.replace(kept, probe_unknown=1.0, reference_probe_unknown=0.75)
    assert int8_verdict("x", wary, check, None)  # more noise unknown than PyTorch: not a miss
    pre = sightline.data.Preprocess(channels=3, size=(20, 16))
    probes = probe_images(pre)
    assert probes.shape == (16, 3, 20, 16) and probes.dtype == torch.uint8
    assert torch.equal(probes, probe_images(pre))  # the same every time


def test_the_first_and_last_layers_stay_float_and_the_sample_is_fixed(run):
    import onnx

    proto = onnx.load(str(RunLayout(run.path).onnx("best")))
    nodes, kept = choose_layers(proto)
    convs = [n.name for n in proto.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    assert nodes and nodes[0] != convs[0] and set(nodes) < set(convs)
    assert any(k.startswith("first layer") for k in kept)
    images = torch.arange(1000).view(1000, 1, 1, 1).to(torch.uint8)
    assert torch.equal(calibration_sample(images, 10), calibration_sample(images, 10))


def test_export_from_the_command_line(run, capsys):
    assert main(["export", str(run.path), "--format", "onnx", "onnx-int8"]) == 0
    out = capsys.readouterr().out
    assert "INT8" in out and "agreement" in out and "report.json" in out
    assert main(["export", str(run.path), "--format", "onnx-int8", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [e["format"] for e in body["exports"]] == ["onnx", "onnx-int8"]
    assert main(["export", str(run.path), "--format", "tflite"]) != 0
    assert "unknown export format" in capsys.readouterr().err


def test_the_plain_export_command_reports_and_writes_the_card_too(run, capsys, tmp_path):
    """`sightline export RUN` (ONNX alone, into the run) enters its check in report.json and
    writes MODEL_CARD.md as every --format does; -o elsewhere touches neither."""
    files = RunLayout(run.path)
    files.export_report.unlink(missing_ok=True)
    files.model_card.unlink(missing_ok=True)
    assert main(["export", str(run.path)]) == 0
    assert "model card:" in capsys.readouterr().out
    entry = json.loads(files.export_report.read_text())["exports"][-1]
    assert entry["format"] == "onnx" and entry["parity"]["top1_agreement"] == 1.0
    assert "| best.onnx | onnx |" in files.model_card.read_text()
    before = files.export_report.stat().st_mtime_ns
    assert main(["export", str(run.path), "-o", str(tmp_path / "m.onnx"), "--json"]) == 0
    assert "report" not in json.loads(capsys.readouterr().out)
    assert files.export_report.stat().st_mtime_ns == before


def test_the_public_api_exports_a_run_by_its_folder(run):
    report = sightline.export(run.path, "onnx-int8")
    assert report.path == RunLayout(run.path).export_report and len(report.exports) == 2
    assert sightline.export_onnx(run.path).path == RunLayout(run.path).onnx("best")


def _photos(folder) -> list[str]:
    """Images as an app has them: other sizes, modes and formats than the training PNGs."""
    import numpy as np

    rng = np.random.default_rng(3)
    folder.mkdir(exist_ok=True)
    made = []
    for i, (size, mode, ext) in enumerate(
        [
            ((12, 12), "L", "png"),
            ((50, 30), "RGB", "jpg"),
            ((20, 20), "RGBA", "png"),
            ((1400, 900), "RGB", "jpg"),
            ((33, 61), "L", "bmp"),
        ]  # fmt: skip
    ):
        a = rng.integers(0, 60, (size[1], size[0], len(mode)), dtype=np.uint8)
        a[: size[1] // 2, : size[0] // 2] += 180  # the bright quadrant of class0
        img = Image.fromarray(a[:, :, 0] if mode == "L" else a, mode)
        path = folder / f"{i}.{ext}"
        if i == 1:  # stored sideways, EXIF says turn it
            exif = Image.Exif()
            exif[0x0112] = 6
            img.save(path, exif=exif)
        else:
            img.save(path)
        made.append(str(path))
    return made


def test_the_package_predicts_as_sightline_without_it(run, tmp_path):
    import subprocess
    import sys
    import zipfile

    report = run.export(["onnx-int8", "package"])
    files = RunLayout(run.path)
    assert report.package == files.package("best") and files.model_card.is_file()
    with zipfile.ZipFile(report.package) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / run.name
    expected = {"model.onnx", "model.int8.onnx", "MODEL_CARD.md", "predict.py", "report.json"}
    assert names == {f"{run.name}/{n}" for n in expected}
    card = (folder / "MODEL_CARD.md").read_text()
    assert "class0" in card and "accuracy" in card and "Not tested" in card
    assert "| best.int8.onnx | onnx-int8 |" in card
    script = (folder / "predict.py").read_text()
    imports = [ln for ln in script.splitlines() if ln.startswith(("import ", "from "))]
    assert imports and not [ln for ln in imports if "sightline" in ln], imports
    photos = _photos(tmp_path / "photos")
    # -I: isolated, so the script's own folder and the standard library only (and the venv's
    # site-packages for onnxruntime, numpy, Pillow).
    done = subprocess.run([sys.executable, "-I", str(folder / "predict.py"), "--json", *photos],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = {a["file"]: a for a in json.loads(done.stdout)}
    want = run.predict_files(photos).predictions
    assert len(got) == len(want) == len(photos)
    for p in want:
        answer = got[p.path]
        assert answer["class"] == (p.closest or p.label), (p.path, answer, p)
        assert answer["probability"] == pytest.approx(p.confidence, abs=1e-4)
        assert answer["unknown"] == p.unknown


def test_openvino_export_is_checked_and_predicts_as_pytorch(run):
    pytest.importorskip("openvino")
    from sightline.infer.openvino import load_openvino

    report = run.export("openvino")
    assert [e.format for e in report.exports] == ["onnx", "openvino"]
    ov = report.exports[1]
    files = RunLayout(run.path)
    assert ov.path == files.openvino("best") and ov.path.with_suffix(".bin").is_file()
    assert ov.parity.max_abs_diff <= 1e-4 and ov.parity.top1_agreement == 1.0
    assert ov.parity.accuracy == pytest.approx(ov.parity.reference_accuracy)
    assert ov.runtime.startswith("OpenVINO") and ov.size_bytes > ov.path.stat().st_size
    assert not list(files.export.glob(".openvino-*"))  # no temporary folder left
    model = load_openvino(ov.path)
    assert model.classes == ["class0", "class1", "class2"] and model.sightline_ood is not None
    photos = squares_photos(run)
    got = model.predict_files(photos).predictions
    want = run.predict_files(photos).predictions
    assert [p.label for p in got] == [p.label for p in want]
    assert [p.confidence for p in got] == pytest.approx([p.confidence for p in want], abs=1e-4)


def test_an_openvino_file_that_is_not_sightlines_is_refused(tmp_path):
    pytest.importorskip("openvino")
    from sightline.errors import RunError
    from sightline.infer.openvino import load_openvino

    with pytest.raises(RunError, match="not found"):
        load_openvino(tmp_path / "none.xml")
    (tmp_path / "bad.xml").write_text("<net>not a model</net>")
    with pytest.raises(RunError, match="not a readable OpenVINO model"):
        load_openvino(tmp_path / "bad.xml")


def test_predict_takes_an_openvino_file_and_a_missing_converter_names_its_extra(
    run, capsys, monkeypatch
):
    pytest.importorskip("openvino")
    xml = RunLayout(run.path).openvino("best")
    if not xml.is_file():
        run.export("openvino")
    photo = squares_photos(run, 1)[0]
    assert main(["predict", "--openvino", str(xml), str(photo), "--format", "json"]) == 0
    assert "class0" in capsys.readouterr().out
    assert main(["predict", "--openvino", str(xml), "--onnx", str(xml), str(photo)]) != 0
    assert "give one model" in capsys.readouterr().err
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    before = RunLayout(run.path).onnx("best").stat().st_mtime_ns
    assert main(["export", str(run.path), "--format", "onnx", "openvino"]) != 0
    assert 'pip install "sightline[export]"' in capsys.readouterr().err
    assert RunLayout(run.path).onnx("best").stat().st_mtime_ns == before  # nothing was written


def test_openvino_int8_by_nncf_is_checked_in_openvino(run):
    pytest.importorskip("nncf")
    from sightline.infer.openvino import load_openvino

    report = run.export("openvino-int8")
    assert [e.format for e in report.exports] == ["onnx", "openvino-int8"]
    q = report.exports[1]
    assert (
        q.path == RunLayout(run.path).openvino_int8("best") and q.path.with_suffix(".bin").is_file()
    )
    assert q.parity.top1_agreement >= 0.99 and q.parity.max_abs_diff > 1e-4  # quantised, and close
    assert q.bar.startswith("top-1 agreement >= 99%") and "score" in " ".join(q.kept_float)
    model = load_openvino(q.path)
    assert model.metadata["quantization"]["method"].startswith("NNCF")
    photos = squares_photos(run)
    assert [p.label for p in model.predict_files(photos).predictions] == [
        p.label for p in run.predict_files(photos).predictions
    ]
    assert (
        q.parity.verdict_agreement >= 0.99
        and "extremes" in model.metadata["quantization"]["method"]
    )
    # Noise stays unknown: quantisers inside the score once made it one constant for every
    # image, which the run's own (known) images could not show.
    p = q.parity
    assert p.reference_probe_unknown >= 0.5 and p.probe_unknown_kept == 1.0


def test_the_json_report_is_all_stdout_holds(run, capsys):
    """NNCF logs and draws progress bars on stdout: none of it may reach `--json`'s report."""
    pytest.importorskip("nncf")
    assert main(["export", str(run.path), "--format", "openvino-int8", "--json"]) == 0
    out = capsys.readouterr().out
    body = json.loads(out)
    assert [e["format"] for e in body["exports"]] == ["onnx", "openvino-int8"]


def test_one_export_decodes_the_runs_data_once_and_packages_beside_openvino(run, monkeypatch):
    """INT8's training sample and the check's test images come from one load of the dataset
    (a folder of photos is decoded once); a package made beside an OpenVINO export holds the
    ONNX files only (predict.py runs ONNX)."""
    pytest.importorskip("nncf")
    import zipfile

    calls = []
    load = type(run).load_data
    monkeypatch.setattr(
        type(run), "load_data", lambda self, **kw: calls.append(kw) or load(self, **kw)
    )
    report = run.export(["onnx-int8", "openvino-int8", "package"])
    assert len(calls) == 1, calls
    assert [e.format for e in report.exports] == ["onnx", "onnx-int8", "openvino-int8"]
    names = {n.split("/", 1)[1] for n in zipfile.ZipFile(report.package).namelist()}
    assert {"model.onnx", "model.int8.onnx"} <= names and not any(".xml" in n for n in names)
