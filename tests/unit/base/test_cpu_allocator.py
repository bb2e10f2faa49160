"""Keeping freed CPU memory for the next training step (sightline.devices.retain_freed_cpu_memory).

The cases that measure run in a fresh interpreter: the setting is process-wide and made once.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
from test_train import make_dataset

import sightline
from sightline.devices import retain_freed_cpu_memory
from sightline.errors import ConfigError
from sightline.infer import batched as inference
from sightline.train import loop

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's; elsewhere the function leaves malloc alone",
)

# One step of a tiny net in a fresh interpreter: whether the allocator was tuned (and a second
# call says so). How many page faults that saves depends on the machine: benchmarks/cpu_allocator.py.
STEPS = """
import json, torch
from sightline.devices import retain_freed_cpu_memory
tuned = retain_freed_cpu_memory()
net = torch.nn.Linear(4, 2)
net(torch.randn(8, 4)).sum().backward()
print(json.dumps({"tuned": tuned, "again": retain_freed_cpu_memory()}))
"""


def run_steps(**env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k != "SIGHTLINE_CPU_MALLOC"
    }
    out = subprocess.run(
        [sys.executable, "-c", STEPS],
        env={**clean, "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_training_processes_keep_freed_memory_unless_told_not_to():
    tuned, default = run_steps(), run_steps(SIGHTLINE_CPU_MALLOC="default")
    assert tuned["tuned"] is True and tuned["again"] is True  # set, and a second call says so
    assert default["tuned"] is False and default["again"] is False


@glibc_only
@pytest.mark.parametrize("variable", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"])
def test_a_users_own_malloc_tuning_is_left_alone(variable):
    assert run_steps(**{variable: str(64 << 20)})["tuned"] is False


def test_training_and_inference_on_a_cpu_ask_for_it(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(loop, "retain_freed_cpu_memory", lambda: calls.append("train"))
    monkeypatch.setattr(inference, "retain_freed_cpu_memory", lambda: calls.append("inference"))
    data = make_dataset(n_per_class=8)
    model = sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=8)
    sightline.fit(
        model,
        data,
        name="run",
        runs_dir=tmp_path,
        epochs=1,
        batch_size=8,
        device="cpu",
        progress="quiet",
    )
    assert calls[0] == "train" and "inference" in calls  # validation runs through batched_logits


@pytest.mark.parametrize("value", ["default", "off", "OFF", "0", "no", "false"])
def test_the_off_words_leave_malloc_alone(monkeypatch, value):
    monkeypatch.setenv("SIGHTLINE_CPU_MALLOC", value)
    retain_freed_cpu_memory.cache_clear()
    try:
        assert retain_freed_cpu_memory() is False
    finally:
        retain_freed_cpu_memory.cache_clear()


def test_an_unknown_setting_is_a_clear_error_not_silently_on(monkeypatch):
    monkeypatch.setenv("SIGHTLINE_CPU_MALLOC", "jemalloc")
    retain_freed_cpu_memory.cache_clear()
    try:
        with pytest.raises(
            ConfigError, match=r"SIGHTLINE_CPU_MALLOC='jemalloc'.*'default'.*'keep'"
        ):
            retain_freed_cpu_memory()
    finally:
        retain_freed_cpu_memory.cache_clear()
