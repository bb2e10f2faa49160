"""bf16 or float32 on a CPU with AVX-512 BF16 but no AMX: timed on the run's own step, not guessed.

On a CPU with AMX a convnet trains in bf16 at 2-3x float32 (``train.device_defaults``): oneDNN
runs it on the matrix units. Without AMX, bf16 convolutions run on the AVX-512 BF16 dot-product
instructions, and whether they beat float32 depends on the core: on an Intel core with AMX held
to AVX-512 BF16 (``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``) airnet's bf16 step ran 0.68-0.84x its
float32 one (by published instruction tables that core issues the bf16 dot product at half its
float32 FMA rate); an AMD Zen 4 core issues it at its FMA rate, each doing twice the
multiply-adds, and could come out ahead. Not measurable here, so a run that leaves ``amp`` unset on such a CPU times a few steps
of each (``time_budget.measure_step_seconds``: a copy of the model, a forked random state) and
trains in bf16 only if it is at least ``BF16_MARGIN`` times faster. The choice is written to
config.json (``amp``, with both step times under ``extra.cpu_precision``); ``--amp`` or
``--no-amp`` skips the timing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from sightline.data.dataset import Dataset
from sightline.devices import cpu_has_amx, cpu_has_avx512_bf16
from sightline.models.hardware import has_conv
from sightline.plan.config import TrainConfig, plan_steps
from sightline.train.time_budget import measure_step_seconds

# bf16 trains to the same accuracy (airnet, 6 epochs: 94.24 % against 94.20 % in float32), but
# its rounding is a change: it must buy at least this much speed, more than timing noise.
BF16_MARGIN = 1.15
# The timing costs a few seconds: a run of fewer steps than this (a quick look, a test on a few
# hundred images) keeps float32 untimed.
MIN_RUN_STEPS = 500


def wants_timing(
    model: nn.Module, cfg: TrainConfig, device_type: str, given: set[str], train_size: int
) -> bool:
    """A convnet trained on a CPU with AVX-512 BF16 and no AMX for at least ``MIN_RUN_STEPS``
    steps, precision unset."""
    if device_type != "cpu" or cfg.amp is not None or "amp" in given or cfg.freeze:
        return False
    steps = plan_steps(train_size, cfg).stop_step
    return steps >= MIN_RUN_STEPS and has_conv(model) and bf16_needs_timing()


def bf16_needs_timing() -> bool:
    """This CPU has AVX-512 BF16 but no AMX: whether bf16 beats float32 must be timed."""
    return cpu_has_avx512_bf16() and not cpu_has_amx()


def bf16_wins(float32_s: float, bf16_s: float) -> bool:
    """The timed choice: bf16 only where its step is at least ``BF16_MARGIN`` times faster."""
    return float32_s >= BF16_MARGIN * bf16_s


def choose_precision(
    model: nn.Module, data: Dataset, cfg: TrainConfig
) -> tuple[TrainConfig, list[str], float]:
    """``cfg`` with ``amp`` set to the faster of bf16 and float32 here, a note line, and the chosen
    precision's step time (for a time budget)."""
    float32_s = measure_step_seconds(model, data, dataclasses.replace(cfg, amp=False))
    bf16_s = measure_step_seconds(model, data, dataclasses.replace(cfg, amp=True))
    bf16 = bf16_wins(float32_s, bf16_s)
    timing: dict[str, Any] = {
        "float32_step_s": round(float32_s, 5),
        "bf16_step_s": round(bf16_s, 5),
        "amp": bf16,
    }
    defaults = {**cfg.extra.get("device_defaults", {}), "amp": [None, bf16]}
    extra = {**cfg.extra, "device_defaults": defaults, "cpu_precision": timing}
    note = (
        f"CPU with AVX-512 BF16, no AMX: a step of {cfg.batch_size} images timed at {bf16_s * 1000:.3g} ms in bf16, "
        f"{float32_s * 1000:.3g} ms in float32 here: trains in {'bf16' if bf16 else 'float32'} "
        f"(--amp / --no-amp to choose)"
    )
    return dataclasses.replace(cfg, amp=bf16, extra=extra), [note], bf16_s if bf16 else float32_s
