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
from sightline import inference
from sightline.devices import retain_freed_cpu_memory
from sightline.errors import ConfigError
from sightline.train import loop

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt is glibc's; elsewhere the function leaves malloc alone")  # fmt: skip

# A few training steps of a small convnet, then the page faults per step and whether the
# allocator was tuned. A step frees its activations and gradients and allocates them again.
STEPS = """
import json, resource, sys, torch
from torch import nn
from sightline.devices import retain_freed_cpu_memory
tuned = retain_freed_cpu_memory()
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, 10))
x = torch.randn(64, 1, 28, 28)
def step():
    net.zero_grad(set_to_none=True)
    net(x).sum().backward()
for _ in range(10):  # the heap settles: 3 steps left kept memory still faulting ~50-90 pages a step
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"tuned": tuned, "again": retain_freed_cpu_memory(), "faults": faults}))
"""


def run_steps(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "SIGHTLINE_CPU_MALLOC"}
    out = subprocess.run([sys.executable, "-c", STEPS], env={**clean, "OMP_NUM_THREADS": "1", **env},
                         capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_training_steps_stop_page_faulting_once_freed_memory_is_kept():
    tuned, default = run_steps(), run_steps(SIGHTLINE_CPU_MALLOC="default")
    assert tuned["tuned"] is True and tuned["again"] is True  # set, and a second call says so
    assert default["tuned"] is False
    # glibc's defaults map 1,000-3,800 pages afresh every step of this net (one thread); kept
    # memory is reused, so a step faults in next to none (0-20 measured).
    assert default["faults"] > 500
    assert tuned["faults"] < default["faults"] / 10


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
    sightline.fit(model, data, name="run", runs_dir=tmp_path, epochs=1, batch_size=8, device="cpu", progress="quiet")
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
        with pytest.raises(ConfigError, match=r"SIGHTLINE_CPU_MALLOC='jemalloc'.*'default'.*'keep'"):
            retain_freed_cpu_memory()
    finally:
        retain_freed_cpu_memory.cache_clear()
