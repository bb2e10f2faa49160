"""Which engine predicts faster for one model on this machine: timed, not assumed.

ONNX Runtime runs airnet and fastcnn 6-12x faster than eager PyTorch on single small images
(benchmarks/inference.py), but not every model at every batch: a server classifying photos
answered 154 requests/s through a run's export and 198 through PyTorch. So ``faster_engine``
times both on the model's own input shape, at the batches a predictor sees (one image, and
the batches a server's dynamic batching makes), and picks the lower cost per image, with the
times that decided it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

BATCHES = (1, 16)  # a single prediction, and a batch of concurrent ones
REPEATS = 3  # timed runs per batch (after one untimed warm-up), the median kept


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # "torch", or an export's runtime: "onnx", "openvino", "litert"
    per_image_ms: dict[str, float]  # mean over BATCHES of each engine's time per image
    reason: str | None = None  # chosen for this rather than by the timing (nothing timed)
    task: str = "predicts"  # what the engine does faster, for the note

    @property
    def note(self) -> str:
        if self.reason:
            return f"{NAMES[self.engine]}: {self.reason}"
        times = ", ".join(f"{NAMES[e]} {ms:.2f} ms" for e, ms in sorted(self.per_image_ms.items()))
        return f"{NAMES[self.engine]} {self.task} faster here ({times} an image, measured)"

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "per_image_ms": self.per_image_ms}


NAMES = {"onnx": "ONNX Runtime", "torch": "PyTorch", "openvino": "OpenVINO", "litert": "LiteRT"}


def _seconds(fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> float:
    fn(x)  # warm-up: first-call costs, allocator, thread pools
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def faster_engine(
    engines: dict[str, Callable[[torch.Tensor], Any]],
    input_shape: tuple[int, ...],
    batches: tuple[int, ...] = BATCHES,
    task: str = "predicts",
) -> EngineChoice:
    """``engines``: name → a function from uint8 images (N, *input_shape) to logits (or
    whatever the engines compute: ``task`` says what, for the note)."""
    per_image = {}
    for name, fn in engines.items():
        costs = [
            _seconds(fn, torch.zeros((b, *input_shape), dtype=torch.uint8)) / b for b in batches
        ]
        per_image[name] = round(1000 * sum(costs) / len(costs), 3)
    return EngineChoice(min(per_image, key=per_image.__getitem__), per_image, task=task)
