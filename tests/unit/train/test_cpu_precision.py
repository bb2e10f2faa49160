"""bf16 or float32 on a CPU with AVX-512 BF16 and no AMX, timed (sightline/train/cpu_precision.py)."""

from __future__ import annotations

import pytest
import torch
from test_train import make_dataset

import sightline
from sightline.devices import cpu_has_avx512_bf16, cpuinfo_value
from sightline.plan.config import resolve_config
from sightline.train import cpu_precision, time_budget


def cnn(data):
    torch.manual_seed(0)
    return sightline.create_model("fastcnn", data.input_shape, data.num_classes, width=4)


@pytest.fixture
def bf16_cpu(monkeypatch):
    """A CPU with AVX-512 BF16 and no AMX; returns a dict that sets what each precision's step
    takes (seconds) and records the precisions timed."""
    monkeypatch.setattr(cpu_precision, "cpu_has_avx512_bf16", lambda: True)
    monkeypatch.setattr(cpu_precision, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(
        cpu_precision, "MIN_RUN_STEPS", 10
    )  # the toy runs' 24 steps are worth timing here
    times = {"float32": 0.010, "bf16": 0.005, "timed": []}

    def fake(model, data, cfg):
        which = "bf16" if cfg.amp else "float32"
        times["timed"].append(which)
        return times[which]

    monkeypatch.setattr(cpu_precision, "measure_step_seconds", fake)
    monkeypatch.setattr(time_budget, "measure_step_seconds", fake)
    return times


def test_the_faster_precision_is_chosen_and_recorded(bf16_cpu):
    data = make_dataset(size=16)
    cfg = resolve_config(epochs=2, batch_size=32)
    chosen, notes, step_s = cpu_precision.choose_precision(cnn(data), data, cfg)
    assert chosen.amp is True and step_s == 0.005 and bf16_cpu["timed"] == ["float32", "bf16"]
    assert chosen.extra["cpu_precision"] == {
        "float32_step_s": 0.01,
        "bf16_step_s": 0.005,
        "amp": True,
    }
    assert chosen.extra["device_defaults"]["amp"] == [None, True]
    assert "5 ms in bf16, 10 ms in float32 here: trains in bf16" in notes[0]
    bf16_cpu["bf16"] = 0.0095  # faster, but within the margin: float32 stays
    chosen, notes, step_s = cpu_precision.choose_precision(cnn(data), data, cfg)
    assert chosen.amp is False and step_s == 0.010 and "trains in float32" in notes[0]


def test_timed_only_for_a_convnet_on_such_a_cpu_with_the_precision_unset(bf16_cpu, monkeypatch):
    data = make_dataset(size=16)
    model, cfg, n = cnn(data), resolve_config(epochs=2, batch_size=32), 1000  # 2 x 32 steps

    def wants(model=model, cfg=cfg, device="cpu", given=frozenset(), n=n):
        return cpu_precision.wants_timing(model, cfg, device, set(given), n)

    assert wants()
    assert not wants(device="cuda")
    assert not wants(given={"amp"})
    assert not wants(cfg=resolve_config(epochs=2, amp=False))
    assert not wants(cfg=resolve_config(freeze=True))
    assert not wants(n=100)  # 8 steps in all: not worth the timing
    assert not wants(cfg=resolve_config(epochs=2, batch_size=32, max_steps=5))
    mlp = sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=8)
    assert not wants(model=mlp)  # bf16 is for convolutions
    monkeypatch.setattr(
        cpu_precision, "cpu_has_amx", lambda: True
    )  # AMX: bf16 without timing (device_defaults)
    assert not wants()
    monkeypatch.setattr(cpu_precision, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(
        cpu_precision, "cpu_has_avx512_bf16", lambda: False
    )  # AVX2, or AVX-512 without BF16
    assert not wants()


def test_a_run_trains_in_the_precision_chosen_and_its_budget_reuses_the_timing(
    bf16_cpu, tmp_path, monkeypatch
):
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: False)  # device_defaults' own rule
    data = make_dataset(size=16)
    events = []
    run = sightline.fit(
        cnn(data),
        data,
        name="timed",
        runs_dir=tmp_path,
        progress="quiet",
        on_event=events.append,
        epochs=4,
        batch_size=32,
        time_budget=0.07,
        device="cpu",
    )
    train = run.config["train"]
    assert train["amp"] is True and train["extra"]["cpu_precision"]["amp"] is True
    assert bf16_cpu["timed"] == [
        "float32",
        "bf16",
    ]  # the budget took the bf16 step time, not a third timing
    assert (
        train["epochs"] == train["extra"]["time_budget"]["epochs"] == 2
    )  # 6 steps of 5 ms + validation: 2 fit
    texts = [e.get("text", "") for e in events]
    assert any("trains in bf16" in t for t in texts) and any(
        t.startswith("time budget") for t in texts
    )
    bf16_cpu["timed"].clear()
    given = sightline.fit(
        cnn(data),
        data,
        name="given",
        runs_dir=tmp_path,
        progress="quiet",
        epochs=1,
        amp=False,
        device="cpu",
    )  # --no-amp: no timing
    assert not bf16_cpu["timed"] and given.config["train"]["amp"] is False


def test_the_cpu_flag_is_read_from_cpuinfo(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n"
    )
    assert cpuinfo_value("model name", info) == "Some CPU"
    monkeypatch.setattr("sightline.devices.CPUINFO", info)
    try:
        for text, has in (
            ("flags\t: fpu avx512_bf16\n", True),
            ("flags\t: fpu avx2 avx512f avx512_vnni\n", False),
        ):
            info.write_text(text)
            cpu_has_avx512_bf16.cache_clear()
            assert cpu_has_avx512_bf16() is has
        info.unlink()
        cpu_has_avx512_bf16.cache_clear()
        assert (
            not cpu_has_avx512_bf16() and cpuinfo_value("flags") is None
        )  # no such file: another OS
    finally:
        cpu_has_avx512_bf16.cache_clear()  # the real CPU's answer for the tests after this one
