"""Picking the compute device, and the memory layout that is fastest on it."""

from __future__ import annotations

import torch
from torch import nn

from sightline.errors import ConfigError


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' → CUDA if present, else Apple MPS, else CPU. An unavailable device is an error."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA GPU(s) exist")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but Apple MPS is not available; use --device cpu or auto")
    return device


def has_conv(model: nn.Module) -> bool:
    from sightline.models.summary import conv_layers

    return bool(conv_layers(model))


def use_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Convnets run ~1.5x faster in NHWC on CPU (oneDNN) and on tensor-core GPUs."""
    return has_conv(model) and device.type in ("cpu", "cuda")


def autocast_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """Mixed precision: on by default on CUDA (bf16 where supported, else fp16); off elsewhere."""
    if device.type != "cuda" or amp is False:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
