"""Batched forward passes over uint8 image tensors: the one inference loop.

Validation during training, ``evaluate`` and ``predict`` all go through ``batched_logits``, so
they normalise exactly the same way and never hold more than one float batch in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sightline.data.preprocess import Preprocess
from sightline.devices import resolve_device, retain_freed_cpu_memory
from sightline.infer.backbone import OnnxBackbone, fast_backbone
from sightline.infer.ood import detector_of, feature_modules, pooled
from sightline.models.fold import fold_batchnorms
from sightline.models.hardware import use_channels_last

# Inputs per forward pass, in values (N x C x H x W): 32 images at 224 px RGB. Larger batches of
# large images fall out of the CPU caches: EfficientNet-Lite0 at 224 px runs 10 img/s at batch
# 256 and 23 img/s at batch 32 on 2 cores (benchmarks/features.py); small images keep big batches.
MAX_BATCH_VALUES = 32 * 3 * 224 * 224
JOINT_VIEWS = 64  # images x TTA views up to which a batch's views run as one forward pass
# How ``inference_copy`` runs a model, as a number: raised when that changes its speed (2:
# BatchNorms folded for every model; 3: small batches run their TTA views in one pass), so an
# engine timing made before it is measured again.
INFERENCE_PATH = 3


def batched_logits(
    model: nn.Module,
    images: torch.Tensor,
    preprocess: Preprocess,
    device: torch.device | str | None = None,
    batch_size: int = 1000,
    features: bool | Sequence[str] = False,
) -> Any:
    """Logits (N, num_classes) on the CPU for uint8 ``images`` (N, C, H, W) on any device;
    with ``features``, (logits, features (N, D)): what the "none of these" score reads
    (``infer.ood``), averaged over the same views as the logits: the input of the model's last
    linear layer, followed by the ``pooled`` input of each tap module — True: the taps of the
    model's own detector (none without one), or the tap names given.

    With ``preprocess.flip_tta`` / ``shift_tta`` the logits are averaged over the mirrored and
    shifted images too (``Preprocess.tta_views``).
    Convnets run in channels-last memory where that is faster (the model is converted in place).
    """
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    if isinstance(model, OnnxBackbone) and device.type == "cpu" and model.accepts(preprocess):
        return model.batched(images, preprocess, features not in (False, None))  # ONNX Runtime
    if device.type == "cpu":
        retain_freed_cpu_memory()  # each batch's activations reuse the last one's memory
    channels_last = use_channels_last(model, device)
    if channels_last and not _in_channels_last(model):
        model.to(memory_format=torch.channels_last)
    per_image = max(1, images[0].numel()) if len(images) else 1
    batch_size = max(1, min(batch_size, MAX_BATCH_VALUES // per_image))
    was_training = model.training
    # eval() then train(was_training) sets every submodule's mode: a model already in eval mode
    # throughout (a server's, on every request) would end as it was, so its walks are skipped.
    toggle = any(m.training for m in model.modules())
    if toggle:
        model.eval()
    outs: list[torch.Tensor] = []
    feats: list[torch.Tensor] = []
    captured: dict[str, list[torch.Tensor]] = {}
    hooks = _feature_hooks(model, features, captured)
    try:
        with torch.inference_mode():  # no autograd bookkeeping at all: +18 % over no_grad on CPU
            for start in range(0, len(images), batch_size):
                x = preprocess.normalize(
                    images[start : start + batch_size].to(device, non_blocking=True)
                )
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                views = preprocess.tta_views(x)
                if channels_last and preprocess.shift_tta:  # a slice of the padded batch
                    views = [v.contiguous(memory_format=torch.channels_last) for v in views]
                for c in captured.values():
                    c.clear()
                n, k = len(x), len(views)
                if k > 1 and n * k <= JOINT_VIEWS and n * k * per_image <= MAX_BATCH_VALUES:
                    # A small batch (a server's few requests): every view in one forward pass,
                    # whose fixed cost per layer is most of such a batch's time.
                    joint = torch.cat(views)
                    if channels_last:
                        joint = joint.contiguous(memory_format=torch.channels_last)
                    logits = Preprocess.views_mean(model(joint).float(), k)
                    parts = [Preprocess.views_mean(c[0], k) for c in captured.values()]
                else:  # one view at a time: its memory
                    logits = sum(model(v).float() for v in views) / k
                    parts = [sum(c) / len(c) for c in captured.values()]
                outs.append(logits.cpu())
                if hooks:
                    feats.append(torch.cat(parts, 1).cpu())
    finally:
        for hook in hooks:
            hook.remove()
        if toggle:
            model.train(was_training)
    if not outs:
        return (torch.empty((0, 0)), torch.empty((0, 0))) if hooks else torch.empty((0, 0))
    logits = torch.cat(outs).clone()  # made outside inference mode: an ordinary tensor
    return (logits, torch.cat(feats).clone()) if hooks else logits


def feature_dims(
    model: nn.Module,
    taps: Sequence[str],
    images: torch.Tensor,
    preprocess: Preprocess,
    device: torch.device | str | None = None,
) -> list[int]:
    """How many of ``batched_logits(features=taps)``'s values each part is: the penultimate
    features, then each tap's (one image of ``images`` passed through to see)."""
    captured: dict[str, list[torch.Tensor]] = {}
    hooks = _feature_hooks(model, tuple(taps), captured)
    try:
        batched_logits(model, images[:1], preprocess, device)
    finally:
        for hook in hooks:
            hook.remove()
    return [c[0].shape[1] for c in captured.values()]


def _feature_hooks(
    model: nn.Module, features: bool | Sequence[str], captured: dict[str, list[torch.Tensor]]
) -> list[Any]:
    """Hooks that append each view's features to ``captured`` (penultimate first, then each
    tap in order), for ``batched_logits(features=...)``; [] without features."""
    if features is False or features is None:
        return []
    detector = detector_of(model)
    taps = tuple(features) if features is not True else (detector.taps if detector else ())
    sources = feature_modules(model, taps)
    for name, _ in sources:
        captured[name] = []

    def hook(name: str) -> Any:
        return lambda m, args: captured[name].append(pooled(args[0].detach()))

    return [m.register_forward_pre_hook(hook(n)) for n, m in sources]


def inference_copy(
    model: nn.Module,
    preprocess: Preprocess | None = None,
    device: torch.device | str = "cpu",
    images: int | None = None,
    note: Any = None,
) -> nn.Module:
    """The network to run forward passes with (predict, evaluate, the server, frozen features).

    A model with a ``fused()`` method (efficientnet-lite0: each BatchNorm folded into the
    convolution before it) runs as that inference-only copy: the same outputs to float rounding,
    ~1.5x the images/s on a CPU, where each BatchNorm was one more pass over the widest
    activations (benchmarks/features.py, benchmarks/inference.py). Given the ``preprocess`` of
    the images it will see on ``device`` (and how many ``images``, if known), its backbone runs
    in ONNX Runtime where that is faster here (``infer/backbone.py``; ``note`` hears the
    choice; ``batched_logits`` then hands it the prepared images). Any
    other model runs with the BatchNorms that follow its convolutions folded into them
    (``models/fold.py``), or as it is when it has none. The copy is for inference only: train,
    inspect and export the model itself.
    """
    fused = getattr(model, "fused", None)
    net = fused() if callable(fused) else fold_batchnorms(model)
    if net is model:
        return model
    from sightline.infer.calibration import calibrator_of, set_calibrator

    if callable(fused) and preprocess is not None:
        dev = resolve_device(device)
        net = fast_backbone(net, model, preprocess, dev, images, note) or net
    copy = set_calibrator(net, calibrator_of(model))  # the copy is as calibrated
    object.__setattr__(copy, "sightline_ood", getattr(model, "sightline_ood", None))
    return copy


def _in_channels_last(model: nn.Module) -> bool:
    """Whether every 4-D parameter and buffer already has the strides that
    ``model.to(memory_format=torch.channels_last)`` gives: that call then changes nothing, and
    this check costs a fifth of it (it ran on every forward pass, 0.3 ms for a small convnet)."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.dim() == 4:
            _, c, h, w = t.shape
            if t.stride() != (h * w * c, 1, w * c, c):
                return False
    return True
