"""Which way a model runs fastest on this hardware: a convnet in channels-last memory (oneDNN's
NHWC kernels on a CPU, tensor cores on a GPU), and in bf16 on a CPU with AMX. The hardware's
own facts are ``sightline.devices``'; what a convnet is, ``models.summary.conv_layers``."""

from __future__ import annotations

import torch
from torch import nn

from sightline import devices
from sightline.models.summary import conv_layers


def has_conv(model: nn.Module) -> bool:
    return bool(conv_layers(model))


def use_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Convnets run ~1.5x faster in NHWC on CPU (oneDNN) and on tensor-core GPUs."""
    return has_conv(model) and device.type in ("cpu", "cuda")


def cpu_bf16_is_fast(model: nn.Module) -> bool:
    """Whether ``model`` trains faster in bf16 than in float32 on this CPU: a convnet on AMX."""
    return has_conv(model) and devices.cpu_has_amx()
