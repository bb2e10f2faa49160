"""The label search's fold models train in bf16 by the training runs' rule (train/cpu_precision.py)."""

from __future__ import annotations

import time

import pytest
import torch

from sightline.health import labels
from sightline.train import cpu_precision


@pytest.fixture
def thumbs():
    x = torch.randn(128, 1, labels.THUMB, labels.THUMB).contiguous(
        memory_format=torch.channels_last
    )
    return x, torch.arange(128) % 3


def _hardware(monkeypatch, amx: bool, avx512_bf16: bool) -> None:
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: amx)
    monkeypatch.setattr(cpu_precision, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr(cpu_precision, "cpu_has_avx512_bf16", lambda: avx512_bf16)


def test_amx_trains_in_bf16_and_a_cpu_without_bf16_in_float32_untimed(monkeypatch, thumbs):
    steps = []
    monkeypatch.setattr(labels, "_step", lambda *a: steps.append(a[-1]))
    _hardware(monkeypatch, amx=True, avx512_bf16=True)
    assert labels.fold_precision(*thumbs, 3) is True
    _hardware(monkeypatch, amx=False, avx512_bf16=False)
    assert labels.fold_precision(*thumbs, 3) is False
    assert steps == []  # neither was timed


@pytest.mark.parametrize("bf16_ms, chosen", [(5.0, True), (12.0, False), (20.0, False)])
def test_avx512_bf16_without_amx_times_both_and_asks_the_margin(
    monkeypatch, thumbs, bf16_ms, chosen
):
    steps = []

    def step(model, opt, xb, yb, bf16):
        steps.append(bf16)
        time.sleep((bf16_ms if bf16 else 10.0) / 1000)

    monkeypatch.setattr(labels, "_step", step)
    _hardware(monkeypatch, amx=False, avx512_bf16=True)
    assert labels.fold_precision(*thumbs, 3) is chosen
    assert steps.count(True) == steps.count(False) == labels.TIMED_STEPS + 2


def test_the_margin_is_the_training_runs_one():
    assert cpu_precision.bf16_wins(1.15, 1.0) and not cpu_precision.bf16_wins(1.10, 1.0)
