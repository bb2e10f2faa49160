"""Training defaults for the device a run trains on.

The models' ``train_defaults`` and the named recipes are tuned on a 2-core CPU, where a batch of
64-128 images is as fast per image as any larger one (the activations stay in cache) and gives
the most optimizer steps. On a GPU a batch that small leaves it idle: on an H100 fastcnn
trains 9-17k images/s at batch 64 and 60-160k at batch 512 (with and without photo
re-framing). So, for what the caller left unset:

* **CUDA**: batches of at least ``GPU_BATCH``, the peak learning rate scaled by the square root
  of the batch ratio, and ``GPU_EPOCH_FACTOR`` times the epochs: a larger batch takes fewer
  optimizer steps per epoch, and on a GPU an epoch costs about a second, so more of them buy
  back the accuracy. Measured on an H100 (2026-11-23, from process start to the printed test
  accuracy, Fashion-MNIST): the default fastcnn at batch 64 (the CPU setting) 92.0 % in 40 s;
  batch 512 with the same 4 epochs 91.0 % in 15 s; batch 512 and 8 epochs 92.8 % in 19 s
  (lr 0.4 instead of the square-root 0.57: 92.4 %). fashion-mnist-fast (7 epochs then) at its
  batch 128 93.2 % in 32 s; batch 512 and 14 epochs 93.6 % in 21 s (its 6 epochs with Lookahead
  became 12 there; that schedule in float32 on a CPU, seed 0: 93.38 % against 93.54 % for
  the 14 before; its 12 epochs now, the AVX-512 schedule, become 24: on an H200, 93.83 % in
  12.4 s from process start, 7.6 s of it training). Mixed precision (bf16 where supported) and
  channels-last are already the CUDA defaults (``sightline.devices``), and the step replays as
  a CUDA graph (``train/cuda_graphs.py``: no compiling). ``torch.compile`` stays off: it loses
  end to end on these short runs. Measured on the H100 (2026-11-25, benchmarks/compile_train.py,
  the cifar10-airbench training step at batch 1024, bf16): eager 5.2 ms a step; mode "default"
  15.5 s of compiling and 6.6 ms a step; "reduce-overhead" (CUDA graphs) 7.7 s and 3.8 ms,
  which pays back after ~5,000 steps (the recipe takes 539, ~3 s of training);
  "max-autotune-no-cudagraphs" 132 s and 5.3 ms.
* **CPU**: PyTorch's default of one intra-op thread per core is kept. On a CPU with AMX (Intel
  Sapphire Rapids and later) a convnet trains in bf16 mixed precision: oneDNN runs its
  convolutions on the matrix units. Measured on 2 such cores (2026-11-25, training steps at
  batch 128, channels-last): airnet 2.0x float32 on Fashion-MNIST and 2.9x at width 64 on
  CIFAR-10, fastcnn 1.8x (width 16: 1.35x), tutorial-cnn 1.95x; the MLP 0.77x, so it stays in
  float32. Without AMX bf16 stays off on AVX2; with AVX-512 BF16 a run times a few steps of
  each and takes the faster (``train/cpu_precision.py``: an Intel core held to it ran bf16 at
  0.68-0.84x float32, an AMD Zen 4 core may run it faster).

The run's config.json records the values used and ``extra.device_defaults`` says what changed.
"""

from __future__ import annotations

import dataclasses
import math

from sightline.plan.config import TrainConfig

GPU_BATCH = 512  # images per step on a CUDA GPU unless the caller chose a batch size
MIN_STEPS_PER_EPOCH = 50  # ... and only for data that still gives this many steps per epoch at it
GPU_EPOCH_FACTOR = 2  # epochs times this with the larger batch, unless the caller chose the epochs
MAX_PIXELS = (
    64 * 64
)  # only for images this small: 512 larger ones (224 px photos) may not fit a smaller GPU
MAX_LR_SCALE = 4.0  # the square-root rule, capped: 64 -> 512 scales the lr by 2.83


def adapt_to_device(
    cfg: TrainConfig,
    device_type: str,
    given: set[str],
    train_size: int,
    image_pixels: int,
    *,
    fast_bf16: bool = False,
) -> tuple[TrainConfig, list[str]]:
    """``cfg`` with the batch size and learning rate chosen for ``device_type`` ("cuda", "cpu",
    "mps") where the caller did not set them (``given``: the option names the caller set), and
    note lines saying what changed. A frozen-feature head (``freeze``) trains on cached features
    and keeps its own settings; small data keeps its batch (it needs the steps more than speed),
    and so do large images (``image_pixels`` = H x W; memory). ``fast_bf16``: the model trains
    faster in bf16 on this CPU (a convnet on an AMX CPU: ``sightline.models.hardware.cpu_bf16_is_fast``)."""
    if (
        device_type == "cpu"
        and fast_bf16
        and not cfg.freeze
        and cfg.amp is None
        and "amp" not in given
    ):
        extra = {
            **cfg.extra,
            "device_defaults": {**cfg.extra.get("device_defaults", {}), "amp": [None, True]},
        }
        note = "CPU with AMX: bf16 mixed precision, about 2x float32 for a convnet (--no-amp trains in float32)"
        return dataclasses.replace(cfg, amp=True, extra=extra), [note]
    if (
        device_type != "cuda"
        or cfg.freeze
        or "batch_size" in given
        or cfg.batch_size >= GPU_BATCH
        or train_size < MIN_STEPS_PER_EPOCH * GPU_BATCH
        or image_pixels > MAX_PIXELS
    ):
        return cfg, []
    ratio = GPU_BATCH / cfg.batch_size
    changes: dict = {"batch_size": GPU_BATCH}
    if "lr" not in given:
        changes["lr"] = cfg.lr * min(math.sqrt(ratio), MAX_LR_SCALE)
    if "epochs" not in given:
        changes["epochs"] = cfg.epochs * GPU_EPOCH_FACTOR
    note = (
        f"GPU: batch {GPU_BATCH} instead of {cfg.batch_size}"
        + (
            f", lr {changes['lr']:.3g} instead of {cfg.lr:.3g} (square-root scaling)"
            if "lr" in changes
            else ""
        )
        + (f", {changes['epochs']} epochs instead of {cfg.epochs}" if "epochs" in changes else "")
        + " (--batch-size sets it)"
    )
    extra = {**cfg.extra, "device_defaults": {k: [getattr(cfg, k), v] for k, v in changes.items()}}
    return dataclasses.replace(cfg, **changes, extra=extra), [note]
