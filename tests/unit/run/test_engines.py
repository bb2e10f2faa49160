"""A run's float exports as engines (run/exported.py, run/predictor.py): ``--engine onnx |
openvino | litert`` predicts through that export (refused, saying how to make it, without
one), and ``auto`` times PyTorch and every current export whose runtime is here and keeps the
fastest, once. The squares run of tests/conftest.py."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import squares_photos

import sightline

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("litert_torch")

from sightline.cli import main  # noqa: E402
from sightline.errors import NotExportedError  # noqa: E402
from sightline.infer.runtime import release_absl_stderr  # noqa: E402
from sightline.run import ENGINE_EXPORTS, ENGINES, RunLayout  # noqa: E402

release_absl_stderr()  # LiteRT's absl, imported above by importorskip


@pytest.fixture(scope="module")
def run(squares_run):
    return squares_run  # tests/conftest.py: trained once for this module


def test_an_engine_without_its_export_is_refused_saying_how_to_make_it(run, capsys):
    assert ENGINES == ("auto", "torch", "onnx", "openvino", "litert")
    for engine, path in ENGINE_EXPORTS.items():
        if engine != "onnx":
            path(RunLayout(run.path), "best").unlink(missing_ok=True)
    with pytest.raises(NotExportedError, match=r"no LiteRT export .*--format litert"):
        run.predictor("best", "litert")
    assert (
        main(
            [
                "predict",
                "--run",
                str(run.path),
                "--engine",
                "litert",
                squares_photos(run, 4)[0],
            ]
        )
        != 0
    )
    assert "sightline export" in capsys.readouterr().err


@pytest.fixture(scope="module")
def exported(run):
    run.export(["onnx", "openvino", "litert"])
    return run


@pytest.mark.parametrize("engine", ["onnx", "openvino", "litert"])
def test_each_engine_predicts_through_its_export_as_pytorch(exported, engine):
    run = exported
    predictor = run.predictor("best", engine, "cpu")
    assert predictor.engine == engine and "as asked" in predictor.note
    images = torch.randint(0, 256, (5, 1, 12, 12), dtype=torch.uint8)
    logits, scores = predictor.scored_logits(images)
    want, want_scores = run.predictor("best", "torch", "cpu").scored_logits(images)
    assert torch.allclose(logits, want, atol=1e-4)
    assert torch.allclose(scores.double(), want_scores.double(), rtol=1e-3, atol=1e-3)
    photos = squares_photos(run, 4)
    got = run.predict_files(photos, engine=engine, device="cpu").predictions
    want = run.predict_files(photos, engine="torch", device="cpu").predictions
    assert [p.label for p in got] == [p.label for p in want]


def test_auto_times_pytorch_and_every_export_once_and_keeps_the_fastest(exported, capsys):
    run = exported  # exported since trained: Run.export dropped the predictor kept from then
    cache = RunLayout(run.path).engine_choice("best")
    cache.unlink(missing_ok=True)
    predictor = run.predictor("best", "auto", "cpu")
    saved = json.loads(cache.read_text())
    timed = saved["per_image_ms"]
    assert set(timed) == {"torch", "onnx", "openvino", "litert"}
    assert saved["engine"] == min(timed, key=timed.__getitem__) == predictor.engine
    assert set(saved["key"]["exports_sha256"]) == {"onnx", "openvino", "litert"}
    assert "faster here" in predictor.note and "measured" in predictor.note
    # Measured once: the saved choice is read again (by another Run), not timed again.
    before = cache.stat().st_mtime_ns
    again = sightline.load_run(run.path).predictor("best", "auto", "cpu")
    assert again.engine == predictor.engine and cache.stat().st_mtime_ns == before
    # An export gone: the choice is made again among those left.
    RunLayout(run.path).litert("best").unlink()
    third = sightline.load_run(run.path).predictor("best", "auto", "cpu")
    assert "litert" not in json.loads(cache.read_text())["per_image_ms"]
    assert third.engine in ("torch", "onnx", "openvino")


def test_the_server_predicts_through_the_engine_it_was_given(exported, tmp_path):
    from sightline.serve.services.model_cache import ModelCache

    run = exported
    run.export(["openvino"])
    cache = ModelCache(run.path.parent, device="cpu", engine="openvino")
    assert cache.get(run.name).engine == "openvino"
    RunLayout(run.path).openvino("best").unlink()
    with pytest.raises(NotExportedError, match="--format openvino"):
        ModelCache(run.path.parent, device="cpu", engine="openvino").get(run.name)


def test_openvino_sends_no_telemetry_on_the_users_behalf():
    """OpenVINO's converter and NNCF send events to Google Analytics (forking a process) unless
    declined: sightline declines for its process, writing nothing to the user's home."""
    from sightline.infer.openvino import require_openvino

    require_openvino(int8=True)
    from openvino_telemetry import Telemetry
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

    assert OptInChecker().check(enable_opt_in_dialog=False) == ConsentCheckResult.DECLINED
    t = Telemetry(app_name="nncf", app_version="0", tid="x", backend="ga4",
                  enable_opt_in_dialog=False)  # fmt: skip
    t.init(app_name="nncf", app_version="0", tid="x", backend="ga4", enable_opt_in_dialog=False)
    assert t.consent is False
