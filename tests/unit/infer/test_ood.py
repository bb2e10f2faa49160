"""The "none of these" score (sightline.infer.ood) on generated features, and through a run:
fitted after training, kept in the model file, given by predict (table, JSON, CSV) and
evaluate, switched by ``unknown``."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from test_train import make_dataset

import sightline
from sightline.errors import ConfigError
from sightline.infer.ood import (
    KEEP,
    Detector,
    detector_of,
    fit_detector,
    is_unknown,
    penultimate,
    threshold_share,
)
from sightline.run import checkpoint as ckpt


def clusters(n: int, k: int = 4, d: int = 16, seed: int = 0, shift: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=torch.Generator().manual_seed(99)) * 6
    labels = torch.arange(k).repeat_interleave(n // k)
    return centres[labels] + torch.randn(len(labels), d, generator=g) + shift, labels


def test_far_features_score_higher_and_the_threshold_keeps_its_share():
    train, labels = clusters(2000)
    val, _ = clusters(1000, seed=1)
    detector = fit_detector(train, labels, 4, val)
    assert (detector.scores(val) <= detector.threshold).float().mean() == pytest.approx(
        threshold_share(KEEP, 1000), abs=0.002
    )
    test, _ = clusters(1000, seed=2)
    far, _ = clusters(1000, seed=3, shift=8.0)  # the same clusters, moved off
    kept = (detector.scores(test) <= detector.threshold).float().mean()
    assert 0.9 < kept <= 1.0
    assert (detector.scores(far) > detector.threshold).float().mean() > 0.99
    again = Detector.from_file(detector.tensors(), {"ood": detector.record()})
    assert torch.allclose(again.scores(far), detector.scores(far), rtol=1e-4, atol=1e-3)
    assert Detector.from_file({}, {}) is None
    with pytest.raises(ValueError, match="keep"):
        fit_detector(train, labels, 4, val, keep=1.0)


def test_the_threshold_keeps_its_share_of_new_images_with_confidence():
    """The validation images are a sample: a threshold at their plain 95 % quantile keeps
    less than 95 % of new images about half the time; threshold_share's bound rarely does."""
    train, labels = clusters(2000)
    fresh, _ = clusters(20000, seed=1)  # new real images: what the run meets later
    detector = fit_detector(train, labels, 4, clusters(400, seed=2)[0])
    fresh_scores = detector.scores(fresh).double()
    plain = bounded = 0
    for seed in range(40):
        val = detector.scores(clusters(400, seed=100 + seed)[0]).double()
        for share, count in ((KEEP, "plain"), (threshold_share(KEEP, len(val)), "bounded")):
            kept = float((fresh_scores <= torch.quantile(val, share)).double().mean())
            if kept < KEEP:
                plain, bounded = (plain + 1, bounded) if count == "plain" else (plain, bounded + 1)
    assert plain >= 10 and bounded <= 6  # of 40: ~20 and ~2 expected
    assert threshold_share(KEEP, 6000) == pytest.approx(0.9546, abs=1e-4)
    assert threshold_share(KEEP, 10) == 1.0  # too few to be sure: the largest score


def test_unknown_is_one_rule_for_numbers_tensors_and_none():
    assert is_unknown(2.0, 1.0) and not is_unknown(1.0, 1.0) and not is_unknown(0.5, 1.0)
    assert not is_unknown(None, 1.0) and not is_unknown(5.0, None)
    assert is_unknown(torch.tensor([0.5, 1.0, 1.5]), 1.0).tolist() == [False, False, True]


def test_penultimate_is_the_last_linear_layer():
    model = sightline.create_model("fastcnn", (1, 28, 28), 10)
    assert penultimate(model) is [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with pytest.raises(ValueError, match="no linear layer"):
        penultimate(torch.nn.Conv2d(1, 1, 3))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run, its data loaded again, the test PNGs): a run on an image folder, so that its
    training images and the files it predicts go through the same preparation."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("ood")
    toy = make_dataset(n_per_class=120)
    tests = []
    for split, part in (("train", toy.train), ("test", toy.test)):
        for i, (x, y) in enumerate(zip(part.images, part.labels, strict=True)):
            folder = tmp / "photos" / split / f"class{int(y)}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[0].numpy()).save(folder / f"{i}.png")
            if split == "test":
                tests.append(str(folder / f"{i}.png"))
    run = sightline.fit("mlp", tmp / "photos", runs_dir=tmp / "runs", epochs=8, progress="quiet",
                        model_options={"hidden": 32}, optimizer="adam", lr=3e-3)  # fmt: skip
    return run, run.load_data(), tests


def odd_images(n: int = 8) -> torch.Tensor:
    """Nothing like the toy's squares in a quadrant: full bright frames."""
    return torch.full((n, 1, 12, 12), 250, dtype=torch.uint8)


def test_training_fits_the_detector_into_the_model_file(trained):
    run, _, _ = trained
    tensors, meta = ckpt.read_model_file(run.model_file("best"))
    assert meta["ood"]["method"] == "relative-mahalanobis" and meta["ood"]["keep"] == KEEP
    assert any(k.startswith("ood.") for k in tensors)
    detector = detector_of(run.load_model())
    assert detector is not None and detector.threshold == pytest.approx(meta["ood"]["threshold"])
    assert detector_of(run.inference_model()) is not None  # the inference copy keeps it


def test_predictions_answer_unknown_for_images_unlike_the_training_data(trained):
    run, _, tests = trained
    pairs = [(f"real{i}", path) for i, path in enumerate(tests[::4])]
    pairs += [(f"odd{i}", odd_images(1)[0, 0].numpy()) for i in range(3)]
    reals = [name for name, _ in pairs if name.startswith("real")]
    report = run.predict_images(pairs, top_k=2)
    by = {p.path: p for p in report.predictions}
    assert all(by[f"odd{i}"].unknown and by[f"odd{i}"].label == "unknown" for i in range(3))
    assert sum(by[n].unknown for n in reals) <= max(1, len(reals) // 5)
    odd = by["odd0"]
    assert odd.closest in run.classes and odd.top[0][0] == odd.closest
    assert odd.ood_score > run.inference_model().sightline_ood.threshold
    # JSON, CSV and the table say it
    rows = json.loads(report.to_json())["predictions"]
    assert {r["path"]: r["unknown"] for r in rows}["odd0"] is True
    assert all("ood_score" in r and r["closest"] in run.classes for r in rows)
    table = list(csv.DictReader(io.StringIO(report.to_csv())))
    odd_row = next(r for r in table if r["path"] == "odd0")
    assert odd_row["label"] == "unknown" and odd_row["closest"] == odd.closest
    assert float(odd_row["ood_score"]) == pytest.approx(odd.ood_score, abs=1e-3)
    assert f"unknown (closest: {odd.closest})" in report.to_table()
    # off: never unknown, the score still given; a threshold of one's own
    off = run.predict_images(pairs, unknown="off").predictions
    assert not any(p.unknown for p in off) and all(p.ood_score is not None for p in off)
    strict = run.predict_images(pairs, unknown=-1e9).predictions
    assert all(p.unknown for p in strict)
    with pytest.raises(ConfigError, match="auto"):
        run.predict_images(pairs, unknown="sometimes")


def test_evaluations_report_the_share_answered_unknown(trained):
    run, data, _ = trained
    m = run.evaluate(data, split="test", save=False)
    assert m.unknown_rate is not None and m.unknown_rate <= 0.2
    assert m.to_dict()["unknown_rate"] == m.unknown_rate
    assert "answered unknown" in m.format_table()


def test_a_model_without_a_detector_predicts_as_before(trained, tmp_path):
    run, data, _ = trained
    path = run.model_file("best")
    copy = tmp_path / "m.safetensors"
    copy.write_bytes(path.read_bytes())
    ckpt.set_fitted(copy, detector=None)
    model, meta = ckpt.load_model(copy)
    assert detector_of(model) is None and "ood" not in meta
    from sightline.infer.predict import predict_images

    pairs = [("a", data.test.images[0, 0].numpy())]
    (p,) = predict_images(model, run.preprocess, run.classes, pairs).predictions
    assert p.ood_score is None and not p.unknown and p.label == p.closest
    with pytest.raises(ConfigError, match="calibrate"):
        predict_images(model, run.preprocess, run.classes, pairs, unknown=3.0)


def test_the_onnx_export_gives_the_same_score_and_answer(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from sightline import load_onnx
    from sightline.run.export import export_onnx

    run, _, tests = trained
    result = export_onnx(run, tmp_path / "m.onnx")
    assert result.parity.score_rel_diff is not None and result.parity.passed
    assert result.metadata["ood"]["threshold"] == pytest.approx(run.metadata()["ood"]["threshold"])
    pairs = [("real", tests[0]), ("odd", odd_images(1)[0, 0].numpy())]
    by_torch = run.predict_images(pairs).predictions
    by_onnx = load_onnx(result.path).predict_images(pairs).predictions
    for a, b in zip(by_torch, by_onnx, strict=True):
        assert (a.label, a.unknown, a.closest) == (b.label, b.unknown, b.closest)
        assert b.ood_score == pytest.approx(a.ood_score, rel=1e-3, abs=1e-2)
    assert by_onnx[1].unknown
