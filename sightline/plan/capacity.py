"""Whether a training fits the machine, known before a byte of it is allocated.

The model is built on PyTorch's ``meta`` device (shapes without storage) and one image goes
through it there, so its parameters and the activations a step keeps for the backward pass
are counted in milliseconds, for any options. Training needs about ``PARAMETER_BYTES`` per
parameter (float32 weights, gradients and two optimizer moments) and ``ACTIVATION_BYTES`` per
activation of every image of a batch. A plan that would need more than ``MEMORY_SHARE`` of the
device's memory is refused with the numbers, so ``hidden: 1e8`` or a batch of 65,536 photos is
a clear error at the start (and a 400 from the server, nothing queued), not a crash minutes in.
"""

from __future__ import annotations

import os
from typing import Any

from sightline.errors import ConfigError

PARAMETER_BYTES = 16  # float32 weight + gradient + Adam's two moments
ACTIVATION_BYTES = 8  # float32 output kept for the backward pass + its gradient
MEMORY_SHARE = 0.6  # of the device's memory that one training may plan to take
GB = 1024**3


def count(
    model: str, model_options: dict[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> tuple[int, int] | None:
    """(parameters, activations per image) of ``model``; None when it cannot be built on the
    meta device (a model that reads weights or data while it is built)."""
    import torch

    from sightline.models.registry import architecture_options, create_model

    options = architecture_options(model_options)
    activations = 0

    def add(module: Any, inputs: Any, output: Any) -> None:
        nonlocal activations
        if isinstance(output, torch.Tensor):
            activations += output[0].numel()

    try:
        with torch.device("meta"):
            net = create_model(model, tuple(input_shape), num_classes, **options).eval()
            leaves = [m for m in net.modules() if not list(m.children())]
            hooks = [m.register_forward_hook(add) for m in leaves]
            net(torch.zeros(1, *input_shape))
        for h in hooks:
            h.remove()
    except (NotImplementedError, RuntimeError, ValueError, TypeError):
        return None  # options the real build refuses say so there, with its own message
    return sum(p.numel() for p in net.parameters()), activations


def device_memory(device: str | None) -> tuple[int, str]:
    """(bytes, what they are) of the memory a training on ``device`` can use."""
    from sightline.devices import resolve_device

    dev = resolve_device(device or "auto")
    if dev.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(dev).total_memory, f"the GPU's {dev}"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): no check
        total = 0
    return total, "this machine's"


def check_fits(
    model: str,
    model_options: dict[str, Any],
    input_shape: tuple[int, ...],
    num_classes: int,
    batch_size: int,
    device: str | None = None,
    frozen: bool = False,
) -> None:
    """ConfigError when training ``model`` on batches of ``batch_size`` images of
    ``input_shape`` would need more than ``MEMORY_SHARE`` of the device's memory."""
    counted = count(model, model_options, input_shape, num_classes)
    have, whose = device_memory(device)
    if counted is None or have <= 0:
        return
    params, activations = counted
    # A head on frozen features keeps no backbone gradients: the backbone only runs forward.
    per_param = 4 if frozen else PARAMETER_BYTES
    need = params * per_param + (0 if frozen else batch_size * activations * ACTIVATION_BYTES)
    if need <= MEMORY_SHARE * have:
        return
    options = ", ".join(f"{k}={v}" for k, v in model_options.items()) or "its defaults"
    raise ConfigError(
        f"model {model} ({options}) has {params:,} parameters and {activations:,} activations an "
        f"image of {'x'.join(map(str, input_shape))}: training it on batches of {batch_size:,} "
        f"needs about {need / GB:,.1f} GB, more than {MEMORY_SHARE:.0%} of {whose} "
        f"{have / GB:,.1f} GB; choose smaller model options or a smaller batch_size"
    )


def expected_input(
    dataset: Any, data_options: dict[str, Any]
) -> tuple[tuple[int, ...], int] | None:
    """(input shape, classes) a request's data will have, before it is loaded: a built-in's
    from its registry entry, a folder's from its class folders and the size it would get (at
    most ``folder_choices.MAX_SIDE`` when chosen from the images; RGB at most). None for a
    ``Dataset`` (already loaded: its own shape is checked) or an unknown name (its own error)."""
    from pathlib import Path

    from sightline.data.folder_choices import MAX_SIDE
    from sightline.data.image_options import parse_size
    from sightline.data.labels_file import is_labels_file
    from sightline.data.registry import find_dataset_spec

    if not isinstance(dataset, (str, os.PathLike)):
        return None
    spec = find_dataset_spec(str(dataset))
    chosen = data_options.get("classes")
    if spec is not None:
        (c, h, w), classes = spec.shape, len(chosen or spec.classes)
    elif Path(dataset).is_dir() or is_labels_file(dataset):
        from sightline.data.info import folder_info

        c, h, w = 3, MAX_SIDE, MAX_SIDE
        classes = len(chosen or folder_info(dataset)["classes"])
    else:
        return None
    size = parse_size(data_options.get("size"))
    if size is not None:
        h, w = size
    return (data_options.get("channels") or c, h, w), max(classes, 1)
