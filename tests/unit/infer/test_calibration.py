"""Calibration measures and temperature scaling (sightline.infer.calibration), on generated
logits whose true calibration is known by construction."""

from __future__ import annotations

import math

import pytest
import torch

from sightline.infer.calibration import (
    Calibrator,
    calibration,
    calibrator_of,
    ece_floor,
    expected_calibration_error,
    fit_calibrator,
    fit_temperature,
    reliability_bins,
    set_calibrator,
)
from sightline.infer.metrics import compute_metrics


def calibrated_set(n: int = 20000, k: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels drawn from the logits' own softmax: perfectly calibrated."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 2.5
    labels = torch.multinomial(logits.softmax(1), 1, generator=g).flatten()
    return logits, labels


def test_a_calibrated_set_has_a_small_ece_and_an_overconfident_one_a_large_one():
    logits, labels = calibrated_set()
    assert expected_calibration_error(logits.softmax(1), labels) < 0.015
    sharp = calibration(logits * 3, labels)  # the same answers, three times as sure
    assert sharp.ece > 0.1
    assert sharp.nll > calibration(logits, labels).nll


def test_ece_by_hand():
    # two bins in use: confidence 0.9 (right 1 of 2) and 0.6 (right 1 of 1), 15 bins
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]])
    labels = torch.tensor([0, 1, 1])
    want = (2 / 3) * abs(0.9 - 0.5) + (1 / 3) * abs(0.6 - 1.0)
    assert expected_calibration_error(probs, labels) == pytest.approx(want, abs=1e-6)
    assert math.isnan(expected_calibration_error(torch.zeros(0, 2), torch.zeros(0).long()))


def test_nll_and_brier_by_hand():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25]]))
    labels = torch.tensor([0, 2])
    c = calibration(logits, labels)
    assert c.nll == pytest.approx(-(math.log(0.7) + math.log(0.25)) / 2, abs=1e-6)
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.25**2 + 0.5**2 + 0.75**2)) / 2
    assert c.brier == pytest.approx(brier, abs=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_fit_temperature_recovers_the_temperature_that_was_applied(temperature):
    logits, labels = calibrated_set(seed=int(temperature * 10))
    found = fit_temperature(logits * temperature, labels)  # over-confident by `temperature`
    assert found == pytest.approx(temperature, rel=0.05)
    fixed = calibration(logits * temperature / found, labels)
    assert fixed.ece < 0.015
    assert fixed.nll <= calibration(logits * temperature, labels).nll + 1e-9


def test_fit_temperature_never_changes_the_answer_and_refuses_an_empty_set():
    logits, labels = calibrated_set(n=500)
    t = fit_temperature(logits * 3, labels)
    assert torch.equal((logits * 3 / t).argmax(1), logits.argmax(1))
    with pytest.raises(ValueError, match="at least one"):
        fit_temperature(torch.zeros(0, 3), torch.zeros(0).long())


def test_evaluations_report_the_calibration():
    logits, labels = calibrated_set(n=2000)
    m = compute_metrics(logits * 4, labels, [f"c{i}" for i in range(10)])
    d = m.to_dict()
    assert {"ece", "nll", "brier"} <= d.keys()
    assert d["nll"] == pytest.approx(m.loss, abs=1e-5)  # the NLL is the loss
    assert d["ece"] > 0.1  # over-confident by construction
    assert "calibration: ECE" in m.format_table()
    assert "from sampling alone on 2,000 images" in m.format_table()
    assert 0 < d["ece_floor"] < d["ece"]


def label_smoothed_set(n: int = 8000, k: int = 10, seed: int = 1):
    """Probabilities squeezed toward the uniform as label smoothing leaves them, non-linearly
    in the log-probabilities: a temperature alone cannot undo it."""
    logits, labels = calibrated_set(n, k, seed)
    p = logits.softmax(1)
    return torch.log(0.8 * p**0.5 / (p**0.5).sum(1, keepdim=True) + 0.02), labels


def test_the_curve_wins_where_a_temperature_cannot_and_is_a_temperature_where_it_can():
    z, y = label_smoothed_set()
    zv, yv, zt, yt = z[:4000], y[:4000], z[4000:], y[4000:]
    curved = fit_calibrator(zv, yv)
    plain = Calibrator(1 / fit_temperature(zv, yv))
    assert curved.method == "log-quadratic"
    assert calibration(curved.apply(zt), yt).nll < calibration(plain.apply(zt), yt).nll
    assert calibration(curved.apply(zt), yt).ece < calibration(plain.apply(zt), yt).ece
    logits, labels = calibrated_set(seed=3)  # over-confident by 3: a temperature is all it needs
    c = fit_calibrator(logits * 3, labels)
    assert c.scale == pytest.approx(1 / 3, rel=0.05) and c.curve < 0.01
    assert fit_calibrator(logits[:100] * 3, labels[:100]).method == "temperature"  # few images


def test_a_calibrator_keeps_every_answer_and_inverts():
    z, _ = label_smoothed_set(n=2000)
    for c in (Calibrator(0.0, 0.5), Calibrator(0.7, 0.0), Calibrator(1.3, 0.2)):
        out = c.apply(z)
        assert torch.equal(out.argmax(1), z.argmax(1))
        assert torch.allclose(c.invert(out).softmax(1), z.softmax(1), atol=1e-5)
    assert Calibrator().identity and Calibrator().apply(z) is z
    for bad in ({"scale": -1}, {"scale": float("nan")}, {"scale": 0, "curve": 0}, None, {}):
        assert Calibrator.from_dict(bad).identity


def test_a_model_with_a_calibrator_gives_calibrated_logits():
    import sightline

    model = sightline.create_model("mlp", (1, 8, 8), 4, hidden=8).eval()
    x = torch.randn(5, 1, 8, 8)
    raw = model(x)
    c = Calibrator(0.5, 0.1)
    set_calibrator(model, c)
    assert calibrator_of(model) == c and torch.allclose(model(x), c.apply(raw))
    set_calibrator(model, Calibrator())
    assert calibrator_of(model).identity and torch.allclose(model(x), raw)


def test_reliability_bins_by_hand_and_ece_from_them():
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.35, 0.65], [0.05, 0.95]])
    labels = torch.tensor([0, 1, 1, 1])
    count, confidence, accuracy = reliability_bins(probs, labels, bins=10)
    assert count.tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 2, 1]  # 0.65 in (0.6, 0.7]; 0.9; 0.95
    assert accuracy[8] == 0.5 and confidence[8] == pytest.approx(0.9)
    assert torch.isnan(accuracy[0])  # an empty bin has no accuracy
    want = (2 * 0.4 + 1 * 0.35 + 1 * 0.05) / 4
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(want, abs=1e-6)


def test_the_ece_floor_is_what_a_perfectly_calibrated_set_shows_from_sampling_alone():
    """ece_floor: the ECE of probabilities right exactly as often as they say, on as many
    images. Measured here on 200 draws of labels from the probabilities themselves."""
    logits, _ = calibrated_set(n=2000, seed=3)
    probs = logits.softmax(1)
    floor = ece_floor(probs)
    g = torch.Generator().manual_seed(4)
    draws = [
        expected_calibration_error(probs, torch.multinomial(probs, 1, generator=g).flatten())
        for _ in range(200)
    ]
    assert floor == pytest.approx(sum(draws) / len(draws), rel=0.1)
    # noise shrinks as 1 / sqrt(N): four times the images (the same confidences), half the floor
    assert ece_floor(probs.repeat(4, 1)) == pytest.approx(floor / 2, rel=1e-6)
    assert ece_floor(torch.eye(3)) == 0.0  # sure and right: no noise
    assert math.isnan(ece_floor(torch.zeros(0, 3)))
    c = calibration(logits, torch.zeros(2000, dtype=torch.long))
    assert c.ece_floor == pytest.approx(floor) and c.to_dict()["ece_floor"] == round(floor, 6)
