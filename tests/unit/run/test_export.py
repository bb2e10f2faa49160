"""ONNX export (sightline.run.export) and ONNX Runtime inference (sightline.infer.onnx).

Parity with PyTorch per registered CPU model, the metadata round trip, predictions through ORT
equal to PyTorch's, atomic writes, the CLI and the server's ``engine="onnx"``. One toy MLP run
(12x12 gray squares, ~1 s of training) is exported once per module.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from test_train import fit_toy, make_dataset  # noqa: E402

import sightline  # noqa: E402
from sightline import load_onnx  # noqa: E402
from sightline.cli import main  # noqa: E402
from sightline.data.preprocess import Preprocess  # noqa: E402
from sightline.errors import ExportError, NotExportedError, RunError  # noqa: E402
from sightline.fileio import file_sha256  # noqa: E402
from sightline.infer.batched import batched_logits  # noqa: E402
from sightline.infer.onnx import OnnxModel  # noqa: E402
from sightline.run import (
    Run,  # noqa: E402
)
from sightline.run import checkpoint as ckpt  # noqa: E402
from sightline.run.export import export_onnx  # noqa: E402


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(run, its data, the export result): a finished toy run, exported to export/best.onnx."""
    data = make_dataset()
    run = fit_toy(data, tmp_path_factory.mktemp("runs"), name="toy", epochs=1)
    return run, data, export_onnx(run)


@pytest.fixture(scope="module")
def images(toy, tmp_path_factory) -> list[str]:
    """Six PNG files of the toy test split (two per class) and one broken file."""
    folder = tmp_path_factory.mktemp("images")
    data = toy[1]
    for i in (0, 1, 12, 13, 24, 25):
        Image.fromarray(data.test.images[i, 0].numpy()).save(folder / f"{i:02d}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    return sorted(str(p) for p in folder.iterdir())


def write_run(
    folder: Path, model: torch.nn.Module, preprocess: Preprocess, classes: list[str]
) -> Run:
    """A run folder around a model built by create_model (no training: parity needs none)."""
    folder.mkdir(parents=True)
    config = {
        "model": model.sightline_config,
        "data": {"name_or_path": "synthetic", "in_memory": True},
        "train": {},
    }
    (folder / "config.json").write_text(json.dumps(config))
    ckpt.save_model(
        folder / "best.safetensors",
        model,
        ckpt.model_metadata(model, classes, preprocess.to_dict()),
    )
    return Run(folder)


def like_trained(model: torch.nn.Module, batch: torch.Tensor, pre: Preprocess) -> torch.nn.Module:
    """BatchNorm statistics and scales away from the identity, and logits that differ from image
    to image by up to ~10, as a trained model's do: parity is then measured on numbers like real
    ones (a freshly built deep net's logits hardly depend on its input)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.1)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        if hasattr(
            model, "init_from_data"
        ):  # airnet: its whitening stem from the images, as fit does
            model.init_from_data(pre.normalize(batch))
        head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        if head.bias is not None:
            head.bias.zero_()
        head.weight.mul_(10 / batched_logits(model.eval(), batch, pre, "cpu").abs().max())
    return model


# ---------------------------------------------------------------------------- parity
@pytest.mark.parametrize(
    "name, shape, options, flip, count, shift",
    [
        ("mlp", (1, 12, 12), {"hidden": 32}, False, 64, 0),
        ("tutorial-cnn", (3, 32, 32), {}, True, 32, 0),
        ("fastcnn", (1, 28, 28), {}, True, 32, 0),
        ("airnet", (1, 28, 28), {}, True, 32, 0),
        (
            "airnet",
            (3, 32, 32),
            {"width": 16},
            True,
            32,
            1,
        ),  # flip and shift TTA: 6 views in the graph
        (
            "airnet",
            (3, 32, 32),
            {"widths": [16, 32, 32], "airbench": True},
            True,
            32,
            1,
        ),  # cifar10-airbench's form
        ("fastcnn", (1, 28, 28), {"width": 8}, False, 16, 2),  # shift TTA alone
        (
            "fastcnn",
            (1, 28, 28),
            {"width": 16, "pool_first": True},
            True,
            32,
            0,
        ),  # fashion-mnist-fast's form
        (
            "efficientnet-lite0",
            (3, 32, 32),
            {"pretrained": False},
            True,
            4,
            0,
        ),  # a few images: 4.7 M parameters
    ],
)
def test_every_cpu_model_exports_with_parity(name, shape, options, flip, count, shift, tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    # Smooth images with structure (a blurred random field), like photos rather than noise.
    base = torch.rand((count, shape[0], shape[1] // 4, shape[2] // 4), generator=g)
    batch = (torch.nn.functional.interpolate(base, size=shape[1:], mode="bilinear") * 255).to(
        torch.uint8
    )
    pre = Preprocess(shape[0], shape[1:], mean=(0.4,), std=(0.25,), flip_tta=flip, shift_tta=shift)
    model = like_trained(sightline.create_model(name, shape, 5, **options), batch, pre)
    run = write_run(tmp_path / "run", model, pre, [f"c{i}" for i in range(5)])
    result = export_onnx(run, images=batch)
    p = result.parity
    assert p is not None and p.images == count and p.source == "given images"
    assert p.max_abs_diff <= 1e-4 and p.top1_agreement == 1.0, p
    # What the graph computes is batched_logits, flip TTA included, at any batch size.
    onnx_model = load_onnx(result.path)
    net = run.load_model()
    for n in (1, 3):
        want = batched_logits(net, batch[:n], pre, "cpu")
        assert torch.allclose(onnx_model.logits(batch[:n]), want, atol=1e-4, rtol=0)
    if flip:  # the mirror images are in the graph: without them the logits would be off by far more
        plain = batched_logits(net, batch, dataclasses.replace(pre, flip_tta=False), "cpu")
        assert (onnx_model.logits(batch) - plain).abs().max() > 1e-3
    if shift:  # so are the shifted copies
        unshifted = batched_logits(net, batch, dataclasses.replace(pre, shift_tta=0), "cpu")
        assert (onnx_model.logits(batch) - unshifted).abs().max() > 1e-3
        assert (
            result.metadata["shift_tta"] == shift
            and result.metadata["preprocess"]["shift_tta"] == shift
        )
    assert result.path == run.path / "export" / "best.onnx"


def test_check_uses_the_runs_test_images_and_fails_loudly(toy, tmp_path, monkeypatch):
    run, data, result = toy
    assert (
        result.parity.source == "images of the test split of toy"
        and result.parity.images == len(data.test)
    )
    assert result.note is None and result.parity.max_abs_diff <= 1e-4
    # A failed check raises and writes nothing: neither the file nor a temp file nor the sidecar.
    from sightline.run import export_check

    monkeypatch.setattr(export_check, "PARITY_ATOL", -1.0)  # where the check's bar lives
    out = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportError, match="does not match PyTorch.*nothing was written"):
        export_onnx(run, out)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_written_atomically_with_nothing_left_over(toy, tmp_path):
    run, _, result = toy
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["best.onnx", "best.onnx.json"]
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")  # replaced whole
    again = export_onnx(run, out, check=False)
    assert again.parity is None and out.stat().st_size == again.size_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.json"]
    with pytest.raises(ExportError, match="must end in .onnx"):
        export_onnx(run, tmp_path / "m.bin", check=False)


# ---------------------------------------------------------------------------- metadata
def test_metadata_round_trip(toy):
    import onnx

    run, _, result = toy
    proto = onnx.load(str(result.path))
    embedded = json.loads({p.key: p.value for p in proto.metadata_props}["sightline"])
    assert embedded == json.loads(result.sidecar.read_text()) == result.metadata
    assert (
        embedded["run"] == "toy"
        and embedded["checkpoint"] == "best"
        and embedded["model"]["name"] == "mlp"
    )
    assert embedded["source_sha256"] == file_sha256(run.model_file("best"))
    assert embedded["opset"] == result.opset >= 18 and embedded["parity"]["max_abs_diff"] <= 1e-4
    model = OnnxModel.load(result.path)
    assert (
        model.preprocess == run.preprocess and model.classes == run.classes and model.name == "toy"
    )
    assert isinstance(model.session.get_inputs()[0].shape[0], str)  # the batch axis is dynamic
    assert model.session.get_inputs()[0].type == "tensor(uint8)"


def test_bad_files_are_one_clear_error(tmp_path, toy):
    import onnx

    with pytest.raises(RunError, match="ONNX model not found"):
        load_onnx(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(RunError, match="junk.onnx: not a readable ONNX model"):
        load_onnx(tmp_path / "junk.onnx")
    proto = onnx.load(str(toy[2].path))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "plain.onnx"))
    with pytest.raises(RunError, match="not one exported by sightline"):
        load_onnx(tmp_path / "plain.onnx")


# ---------------------------------------------------------------------------- predictions
def test_onnx_predictions_equal_pytorch(toy, images):
    run, data, _ = toy
    onnx_model = load_onnx(run)  # a run: its current export/best.onnx
    by_torch, by_onnx = (
        run.predict_files(images, top_k=3),
        onnx_model.predict_files(images, top_k=3),
    )
    assert [p.label for p in by_onnx.predictions] == [p.label for p in by_torch.predictions]
    assert [p.path for p in by_onnx.predictions] == [p.path for p in by_torch.predictions]
    for a, b in zip(by_onnx.predictions, by_torch.predictions, strict=True):
        assert (
            max(abs(x - y) for x, y in zip(a.probabilities, b.probabilities, strict=True)) <= 1e-4
        )
    assert by_onnx.skipped == by_torch.skipped and len(by_onnx.skipped) == 1
    assert torch.allclose(
        onnx_model.predict(data.test.images), run.predict(data.test.images), atol=1e-4
    )
    named = onnx_model.predict_images([("a", images[0])], top_k=1)
    assert named.predictions[0].label == by_torch.predictions[0].label


def test_stale_or_missing_export_is_refused(toy, tmp_path):
    run = Run(shutil.copytree(toy[0].path, tmp_path / "copy"))
    model = run.load_model()
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    ckpt.save_model(run.model_file(), model, run.metadata())  # the run "trained on"
    with pytest.raises(NotExportedError, match="older best checkpoint.*sightline export copy"):
        load_onnx(run)
    with pytest.raises(
        NotExportedError, match="has no ONNX export.*sightline export copy --checkpoint last"
    ):
        load_onnx(run, which="last")


# ---------------------------------------------------------------------------- CLI
def test_cli_export_and_predict(toy, images, tmp_path, capsys):
    run = toy[0]
    out = tmp_path / "cli.onnx"
    assert main(["export", str(run.path), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"Exported {out.resolve()}" in printed.out and "ONNX opset" in printed.out
    assert "parity with PyTorch on 32 random images: max abs difference" in printed.out
    assert (
        "top-1 agreement 100.0%" in printed.out and f"sightline predict --onnx {out}" in printed.out
    )
    # From disk the in-memory toy data can't be loaded again: said, not hidden.
    assert printed.err.startswith(
        "note: parity checked on 32 random images, not real ones: it was trained on an in-memory"
    )
    assert main(["predict", "--run", str(run.path), *images]) == 0
    by_torch = capsys.readouterr().out  # the "none of these" answer included: the same
    assert main(["predict", "--onnx", str(out), *images]) == 0
    assert capsys.readouterr().out == by_torch
    assert main(["predict", "--run", str(run.path), "--engine", "onnx", *images]) == 0
    assert capsys.readouterr().out == by_torch


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_cli_errors_are_one_line(toy, tmp_path, capsys, monkeypatch):
    assert main(["export", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert _one_error_line(capsys).startswith("sightline export: error: no run named 'nope'")
    assert (
        main(
            [
                "predict",
                "--run",
                str(toy[0].path),
                "--engine",
                "onnx",
                "--checkpoint",
                "last",
                "x.png",
            ]
        )
        == 2
    )
    assert "make one with `sightline export toy --checkpoint last`" in _one_error_line(capsys)
    assert main(["predict", "--onnx", str(tmp_path / "none.onnx"), "x.png"]) == 2
    assert "ONNX model not found" in _one_error_line(capsys)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: (
            None if name in ("onnx", "onnxruntime", "onnxscript") else real(name, *a, **k)
        ),
    )
    assert main(["export", str(toy[0].path)]) == 2
    assert _one_error_line(capsys) == (
        "sightline export: error: ONNX export needs onnx, onnxscript, onnxruntime, which "
        'are not installed: pip install "sightline[onnx]"'
    )
    assert main(["predict", "--run", str(toy[0].path), "--engine", "onnx", "x.png"]) == 2
    assert _one_error_line(capsys).endswith(
        'onnxruntime, which is not installed: pip install "sightline[onnx]"'
    )


# ---------------------------------------------------------------------------- server
def exported_and_plain(toy, tmp_path) -> tuple[Path, dict]:
    """(a runs folder holding the toy run as "toy", with its export, and as "plain", without
    one; an upload of one of its test images)."""
    run, data, _ = toy
    root = tmp_path / "runs"
    shutil.copytree(run.path, root / "toy")
    shutil.copytree(run.path, root / "plain", ignore=shutil.ignore_patterns("export"))
    buf = io.BytesIO()
    Image.fromarray(data.test.images[12, 0].numpy()).save(buf, format="PNG")
    return root, {"files": ("x.png", buf.getvalue(), "image/png")}


def test_server_predicts_through_onnx_and_refuses_runs_without_export(toy, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sightline.serve import create_app

    root, files = exported_and_plain(toy, tmp_path)
    csrf = {"X-Sightline-Request": "1"}
    answers = {}
    for engine in ("torch", "onnx"):
        app = create_app(runs_dir=root, engine=engine, start_workers=False)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            r = client.post(
                "/api/predict", files=files, data={"run": "toy", "k": "3"}, headers=csrf
            )
            assert r.status_code == 200, r.text
            answers[engine] = r.json()
            if engine == "onnx":
                assert app.state.sightline.models.get("toy").engine == "onnx"
                r = client.post("/api/predict", files=files, data={"run": "plain"}, headers=csrf)
                assert (
                    r.status_code == 409
                    and "make one with `sightline export plain`" in r.json()["error"]
                )
                run_copy, net = app.state.sightline.models.private_copy(
                    "plain"
                )  # inspection: PyTorch
                assert isinstance(net, torch.nn.Module) and run_copy.name == "plain"
    (a,), (b,) = answers["torch"]["results"], answers["onnx"]["results"]
    assert (
        answers["onnx"]["run"] == "toy"
        and a.get("closest", a["label"]) == b.get("closest", b["label"])
        and a["index"] == b["index"]
    )
    for x, y in zip(a["top_k"], b["top_k"], strict=True):
        assert x["label"] == y["label"] and abs(x["probability"] - y["probability"]) <= 1e-4


def timed_as(monkeypatch, engine: str) -> list:
    """The engine timing (infer/engine.py) answers ``engine``: which one is faster is this
    machine's business, not the test's. Returns the list of timings asked for."""
    from sightline.infer.engine import EngineChoice
    from sightline.run import exported

    asked: list = []

    def timing(engines, input_shape):
        asked.append(sorted(engines))
        return EngineChoice(
            engine, {"onnx": 1.0, "torch": 2.0} if engine == "onnx" else {"onnx": 2.0, "torch": 1.0}
        )

    monkeypatch.setattr(exported, "faster_engine", timing)
    # A timing saved beside the export by an earlier test (a real one) holds for its machine
    # key only: a machine of its own makes this test's timing the one that is asked and kept.
    monkeypatch.setattr(exported, "_machine", lambda: f"test machine timed as {engine}")
    return asked


def test_auto_engine_predicts_through_a_current_export_and_pytorch_otherwise(
    toy, tmp_path, monkeypatch
):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sightline.serve import create_app

    timed_as(monkeypatch, "onnx")
    root, files = exported_and_plain(toy, tmp_path)
    csrf = {"X-Sightline-Request": "1"}
    app = create_app(runs_dir=root, start_workers=False)  # engine "auto", the default
    models = app.state.sightline.models
    with TestClient(app, base_url="http://127.0.0.1") as client:
        answers = {}
        for name in ("toy", "plain"):
            r = client.post(
                "/api/predict",
                files=files,
                data={"run": name, "k": "3", "thumbnails": "true"},
                headers=csrf,
            )
            assert r.status_code == 200, (
                r.text
            )  # no 409 for a run without an export: PyTorch answers
            answers[name] = r.json()["results"][0]
            assert answers[name]["thumbnail"].startswith(
                "data:image/png;base64,"
            )  # what the model saw, either way
        assert models.get("toy").engine == "onnx" and models.get("plain").engine == "torch"
        # the class; only PyTorch gives the "none of these" answer so far
        assert answers["toy"]["index"] == answers["plain"]["index"]
        # An export made later switches the run over; one the run has outgrown switches it back.
        shutil.copytree(root / "toy" / "export", root / "plain" / "export")
        assert models.get("plain").engine == "onnx"
        model, _ = ckpt.load_model(root / "plain" / "best.safetensors")
        with torch.no_grad():
            next(model.parameters()).add_(0.01)
        ckpt.save_model(
            root / "plain" / "best.safetensors", model, Run(root / "plain").metadata()
        )  # trained on
        assert models.get("plain").engine == "torch"
        r = client.post("/api/predict", files=files, data={"run": "plain"}, headers=csrf)
        assert r.status_code == 200 and r.json()["engine"] == "torch", r.text


def test_auto_engine_keeps_pytorch_where_it_is_faster_and_times_once(toy, tmp_path, monkeypatch):
    """A run whose export is slower here predicts in PyTorch (the server said 154 requests/s
    through ONNX against 198); the timing is kept beside the export, so it is measured once."""
    from sightline.run.exported import auto_engine

    asked = timed_as(monkeypatch, "torch")
    run = Run(shutil.copytree(toy[0].path, tmp_path / "copy"))
    (run.path / "export" / "best.engine.json").unlink(missing_ok=True)  # another test's timing
    model, choice = auto_engine(run, "best", "cpu")
    assert model is None and choice.engine == "torch" and asked == [["onnx", "torch"]]
    assert "PyTorch predicts faster here (ONNX Runtime 2.00 ms, PyTorch 1.00 ms" in choice.note
    saved = json.loads((run.path / "export" / "best.engine.json").read_text())
    assert saved["engine"] == "torch" and saved["key"]["threads"] == torch.get_num_threads()
    model, again = auto_engine(run, "best", "cpu")
    assert again == choice and len(asked) == 1  # read back, not timed again
    saved["key"]["machine"] = "another CPU"
    (run.path / "export" / "best.engine.json").write_text(json.dumps(saved))
    auto_engine(run, "best", "cpu")
    assert len(asked) == 2  # another machine's timing is not this one's
    saved = json.loads((run.path / "export" / "best.engine.json").read_text())
    saved["key"]["inference_path"] -= 1  # timed before PyTorch's side changed (BatchNorms folded)
    (run.path / "export" / "best.engine.json").write_text(json.dumps(saved))
    auto_engine(run, "best", "cpu")
    assert len(asked) == 3


def test_the_timing_compares_both_engines_per_image():
    from sightline.infer.engine import BATCHES, faster_engine

    seen = {"slow": [], "fast": []}

    def engine(name, delay):
        def logits(x):
            seen[name].append(len(x))
            time.sleep(delay * len(x))
            return torch.zeros(len(x), 2)

        return logits

    choice = faster_engine({"slow": engine("slow", 0.002), "fast": engine("fast", 0.0)}, (1, 4, 4))
    assert choice.engine == "fast" and choice.per_image_ms["slow"] > choice.per_image_ms["fast"]
    assert sorted(set(seen["slow"])) == sorted(BATCHES)


def test_cli_predict_auto_engine_uses_the_current_export(
    toy, images, tmp_path, capsys, monkeypatch
):
    timed_as(monkeypatch, "onnx")
    run = toy[0]
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    assert main(["predict", "--run", str(copy), *images]) == 0
    auto = capsys.readouterr()
    assert "ONNX Runtime predicts faster here" in auto.err and "best.onnx" in auto.err
    assert main(["predict", "--run", str(copy), "--engine", "torch", *images]) == 0
    by_torch = capsys.readouterr()
    assert "ONNX" not in by_torch.err and by_torch.out == auto.out
    # An export from before the score (its metadata without one): auto keeps PyTorch, and
    # says why; so does the server, which chooses through the same auto_engine.
    import onnx

    from sightline.infer.onnx import META_KEY

    proto = onnx.load(copy / "export" / "best.onnx")
    for prop in proto.metadata_props:
        if prop.key == META_KEY:
            prop.value = json.dumps({k: v for k, v in json.loads(prop.value).items() if k != "ood"})
    onnx.save(proto, copy / "export" / "best.onnx")
    assert main(["predict", "--run", str(copy), *images]) == 0
    assert "no 'none of these' score" in capsys.readouterr().err
    (copy / "export" / "best.onnx").unlink()
    assert main(["predict", "--run", str(copy), *images]) == 0
    assert "ONNX" not in capsys.readouterr().err  # no export: PyTorch, no error


def test_auto_engine_keeps_pytorch_where_onnx_runtime_cannot_follow_it(monkeypatch):
    from sightline.infer import onnx as onnx_model

    assert onnx_model.runs_beside_torch("cpu")
    ort = pytest.importorskip("onnxruntime")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not onnx_model.runs_beside_torch(
        "cuda"
    )  # a CPU-only onnxruntime beside PyTorch on a GPU
    assert not onnx_model.runs_beside_torch("auto")
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert onnx_model.runs_beside_torch("cuda")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "onnxruntime" else real(name, *a, **k),
    )
    assert not onnx_model.runs_beside_torch("cpu")
