"""The step's number format: autocast to bf16 or fp16 where the plan says so, and fp16's loss
scaling (Lightning's precision plugin). Its state, the loss scale, goes into the resume
checkpoint as ``scaler``.
"""

from __future__ import annotations

import contextlib

import torch

from sightline.devices import autocast_dtype


class Precision:
    def __init__(self, device: torch.device, amp: bool | None) -> None:
        self.device = device
        self.dtype = autocast_dtype(device, amp)  # None: float32 throughout
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        # CUDA graphs need autocast without its cache of cast weights (each weight is cast once
        # per step here anyway, so the cache saves nothing).
        self.cache_weights = True

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.dtype:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype, cache_enabled=self.cache_weights)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return {"scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.scaler.load_state_dict(state["scaler"])
