"""Moving tensors to the training device without a wait (sightline.devices.to_device)."""

from __future__ import annotations

import torch

from sightline.devices import to_device


def test_a_tensor_already_there_is_returned_as_it_is():
    t = torch.arange(5)
    assert to_device(t, "cpu") is t
    assert to_device(t, torch.device("cpu")) is t


def test_a_cpu_tensor_goes_to_a_gpu_from_pinned_memory_without_blocking(monkeypatch):
    # No GPU here: stand-ins record what to_device asks of PyTorch. A blocking .to("cuda") would
    # make the host wait for the GPU's whole queue at every training step.
    calls = []

    class Pinned:
        def to(self, device, non_blocking=False):
            calls.append(("to", torch.device(device), non_blocking))
            return "on the gpu"

    def pin_memory(self):
        calls.append(("pin_memory", tuple(self.shape)))
        return Pinned()

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    assert to_device(torch.zeros(3), "cuda:0") == "on the gpu"
    assert calls == [("pin_memory", (3,)), ("to", torch.device("cuda:0"), True)]


def test_other_moves_are_plain_copies():
    t = torch.arange(4, dtype=torch.float32)
    moved = to_device(t, "meta")  # not a CUDA device: a plain .to
    assert moved.device.type == "meta" and moved.shape == t.shape
