"""LiteRT exports (``--format litert``, run/export_litert.py, infer/litert.py): converted by
litert-torch, checked in LiteRT's interpreter beside PyTorch, channels-last uint8 in, sightline's
metadata inside the .tflite; predicting with the file as sightline does; refusals. The squares
run of tests/conftest.py."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from conftest import squares_photos

pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("litert_torch")

from sightline.cli import main  # noqa: E402
from sightline.errors import RunError  # noqa: E402
from sightline.infer.litert import LiteRtSession, load_litert, read_metadata  # noqa: E402
from sightline.infer.runtime import release_absl_stderr  # noqa: E402
from sightline.run.layout import RunLayout  # noqa: E402

release_absl_stderr()  # imported above by importorskip, as require_litert would


@pytest.fixture(scope="module")
def run(squares_run):
    return squares_run  # tests/conftest.py: trained once for this module


@pytest.fixture(scope="module")
def tflite(run):
    return run.export("litert")


def test_litert_export_is_checked_in_litert_and_predicts_as_pytorch(run, tflite):
    assert [e.format for e in tflite.exports] == ["onnx", "litert"]
    lite = tflite.exports[1]
    files = RunLayout(run.path)
    assert lite.path == files.litert("best") and lite.path.is_file()
    p = lite.parity
    assert p.source.startswith("images of the test split") and p.images >= 40
    assert p.max_abs_diff <= 1e-4 and p.top1_agreement == 1.0
    assert p.accuracy == pytest.approx(p.reference_accuracy) and p.unknown == p.reference_unknown
    # The run has a "none of these" detector: its score is an output, within the bar.
    assert p.score_rel_diff is not None and p.score_rel_diff <= 1e-2
    assert lite.runtime.startswith("LiteRT") and lite.size_bytes == lite.path.stat().st_size
    entries = {e["path"]: e for e in json.loads(files.export_report.read_text())["exports"]}
    assert entries["best.tflite"]["format"] == "litert"
    card = files.model_card.read_text()
    assert "channels last, 1 x 12 x 12 x 1" in card and "LiteRT" in card
    # The file carries sightline's metadata and takes the image as an app holds it.
    meta = read_metadata(lite.path.read_bytes())
    assert meta["classes"] == ["class0", "class1", "class2"] and meta["input_layout"] == "NHWC"
    assert meta["ood"]["threshold"] > 0 and meta["parity"]["top1_agreement"] == 1.0
    session = LiteRtSession(lite.path)
    assert (session.batch, *session.hwc) == (1, 12, 12, 1)
    model = load_litert(lite.path)
    assert model.sightline_ood is not None
    got = model.predict_files(squares_photos(run)).predictions
    want = run.predict_files(squares_photos(run)).predictions
    assert [x.label for x in got] == [x.label for x in want]
    assert [x.confidence for x in got] == pytest.approx([x.confidence for x in want], abs=1e-4)
    assert [x.ood_score for x in got] == pytest.approx([x.ood_score for x in want], rel=1e-3)


def test_a_fixed_batch_takes_any_number_of_images(run):
    """A file converted for 3 images at a time answers 7 (the last call padded) as PyTorch."""
    from sightline.infer.onnx import OnnxModel
    from sightline.infer.ood import detector_of
    from sightline.run import checkpoint as ckpt
    from sightline.run.export_litert import convert

    net, meta = ckpt.load_model(run.model_file("best"), "cpu")
    net = net.float().eval()
    detector = detector_of(net)
    blob = convert(net, run.preprocess, detector, batch=3)
    model = OnnxModel(LiteRtSession(blob), {**meta, "ood": detector.record()}, name="b3")
    images = torch.randint(0, 256, (7, 1, 12, 12), dtype=torch.uint8)
    logits, scores = model.scored_logits(images)
    want_logits, want_scores = run.predictor("best", "torch").scored_logits(images)
    assert logits.shape == (7, 3) and scores.shape == (7,)
    assert torch.allclose(logits, want_logits, atol=1e-4)
    assert torch.allclose(scores.double(), want_scores.double(), rtol=1e-3, atol=1e-3)
    # and the network given to the converter is left as it was (a copy is adapted)
    assert any(isinstance(m, torch.nn.AdaptiveMaxPool2d) for m in net.modules())


def test_predict_with_the_file_from_the_command_line(run, tflite, capsys):
    path = RunLayout(run.path).litert("best")
    assert (
        main(["predict", "--litert", str(path), *squares_photos(run, 2), "--format", "json"]) == 0
    )
    out = capsys.readouterr()
    body = json.loads(out.out)
    assert "class0" in out.out and out.out.count('"label"') >= 2, body
    assert "XNNPACK" not in out.err  # LiteRT's C++ log is not the user's business
    assert (
        main(["predict", "--litert", str(path), "--run", str(run.path), squares_photos(run, 1)[0]])
        != 0
    )
    assert "give one model" in capsys.readouterr().err


def test_export_command_prints_the_check_and_the_predict_line(run, capsys):
    assert main(["export", str(run.path), "--format", "litert"]) == 0
    out = capsys.readouterr().out
    assert "LiteRT, float32" in out and "top-1 agreement 100.00%" in out
    assert "sightline predict --litert" in out


def test_a_file_that_is_not_sightlines_is_refused(tmp_path, run, tflite):
    with pytest.raises(RunError, match="not found"):
        load_litert(tmp_path / "none.tflite")
    (tmp_path / "bad.tflite").write_bytes(b"\x00not a flatbuffer" * 8)
    with pytest.raises(RunError, match=r"bad\.tflite"):
        load_litert(tmp_path / "bad.tflite")
    # A real LiteRT model without sightline's metadata: its classes are unknown.
    from sightline.run.export_litert import convert

    plain = tmp_path / "plain.tflite"
    plain.write_bytes(convert(torch.nn.Flatten().eval(), run.preprocess))
    with pytest.raises(RunError, match="not a LiteRT model exported by sightline"):
        load_litert(plain)
    assert main(["predict", "--litert", str(plain), squares_photos(run, 1)[0]]) != 0


def test_a_missing_converter_names_the_extra_and_writes_nothing(run, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # as if not installed
    onnx = RunLayout(run.path).onnx("best")
    before = onnx.stat().st_mtime_ns if onnx.is_file() else None
    assert main(["export", str(run.path), "--format", "onnx", "litert"]) != 0
    assert 'pip install "sightline[export]"' in capsys.readouterr().err
    assert (onnx.stat().st_mtime_ns if onnx.is_file() else None) == before


def test_the_score_bar_is_relative_to_the_threshold_near_zero():
    """Float32 rounds a score made of distances near 1e5 by ~0.01: near a threshold of 1e4 that
    is nothing, and it passes; an error of 2 % of the threshold does not."""
    from sightline.run.export_check import SCORE_RTOL, score_difference

    want = torch.tensor([0.5, -3.0, 2.0e4, 1.2e4], dtype=torch.float64)
    assert score_difference(want + 0.02, want, 1.0e4) < 1e-5
    assert score_difference(want + torch.tensor([200.0, 0, 0, 0]), want, 1.0e4) > SCORE_RTOL
    # Far past the threshold, the share is of the score itself.
    assert score_difference(want * 1.001, want, 10.0) == pytest.approx(1e-3, rel=1e-2)
    assert score_difference(torch.empty(0), torch.empty(0), 1.0) == 0.0


def test_absls_handler_is_pointed_at_the_process_stderr():
    """absl (imported by LiteRT) closes the stream its handler holds when logging shuts handlers
    down (uvicorn's dictConfig does): a notebook's or test runner's stderr must not be it."""
    import io
    import logging.config

    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler().python_handler
    borrowed = io.StringIO()
    handler.stream = borrowed
    release_absl_stderr()
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    assert handler.stream is sys.__stderr__ and not borrowed.closed


def test_litert_int8_keeps_the_answers_and_verdicts_and_says_what_stayed_float(run):
    report = run.export("litert-int8")
    assert [e.format for e in report.exports] == ["onnx", "litert", "litert-int8"]
    fp32, int8 = report.exports[1:]
    assert int8.path == RunLayout(run.path).litert_int8("best") and int8.path.is_file()
    p = int8.parity
    assert p.top1_agreement >= 0.99 and p.verdict_agreement >= 0.99
    assert 100 * (p.reference_accuracy - p.accuracy) <= 0.5
    assert p.max_abs_diff > fp32.parity.max_abs_diff  # it really is another model
    assert int8.size_bytes < fp32.size_bytes and "depthwise convolutions" in int8.kept_float
    assert '"none of these" verdicts' in int8.bar
    meta = read_metadata(int8.path.read_bytes())
    assert meta["quantization"]["layers_int8"] >= 1 and "dynamic" in meta["quantization"]["method"]
    got = load_litert(int8.path).predict_files(squares_photos(run)).predictions
    assert [x.label for x in got] == [
        x.label for x in run.predict_files(squares_photos(run)).predictions
    ]


def test_an_int8_export_that_changes_the_unknown_verdicts_is_refused():
    """Static INT8 clipped the squares' features to the training range and answered unknown
    for 20 % of the test images (PyTorch: none): the INT8 bar holds the verdicts too."""
    from sightline.errors import ExportError
    from sightline.run.export_check import CheckImages, Parity
    from sightline.run.quantize import int8_verdict

    check = CheckImages(torch.zeros((45, 1, 12, 12), dtype=torch.uint8), "test images")
    p = Parity(45, "test images", 0.04, 0.01, 1.0, 2.6, 1.0, 1.0, 0.2, 0.0, 0.8)
    with pytest.raises(ExportError, match=r'"none of these" verdict kept on 80\.00%'):
        int8_verdict("the export", p, check, None)
    assert "accuracy drop <= 2 points" in int8_verdict("the export", p, check, 2.0)
    p.verdict_agreement = 1.0
    assert "verdicts" in int8_verdict("the export", p, check, None)
