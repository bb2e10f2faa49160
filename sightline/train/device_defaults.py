"""Training defaults for the device a run trains on.

The models' ``train_defaults`` and the named recipes are tuned on a 2-core CPU, where a batch of
64-128 images is as fast per image as any larger one (the activations stay in cache) and gives
the most optimizer steps. On a GPU a batch that small leaves it idle: fastcnn runs 15-17k
images/s at batch 64 on an H100 and 160k at batch 512 (issue 12's measurements). So, for what
the caller left unset:

* **CUDA**: batches of at least ``GPU_BATCH``, and the peak learning rate scaled by the square
  root of the batch ratio (the rule that keeps SGD's and Adam's noise scale close for a fixed
  number of epochs, with the recipe's own warm-up, which large batches need). Mixed precision
  (bf16 where supported) and channels-last are already the CUDA defaults (``sightline.devices``).
  ``torch.compile`` stays off: on the H100 its compile time (minutes for max-autotune) is more
  than these short runs' training time.
* **CPU**: PyTorch's default of one intra-op thread per core is kept.

The run's config.json records the values used and ``extra.device_defaults`` says what changed.
"""

from __future__ import annotations

import dataclasses
import math

from sightline.train.config import TrainConfig

GPU_BATCH = 512  # images per step on a CUDA GPU unless the caller chose a batch size
MIN_STEPS_PER_EPOCH = 50  # ... and only for data that still gives this many steps per epoch at it
MAX_LR_SCALE = 4.0  # the square-root rule, capped: 64 -> 512 scales the lr by 2.83


def adapt_to_device(cfg: TrainConfig, device_type: str, given: set[str], train_size: int) -> tuple[TrainConfig, list[str]]:
    """``cfg`` with the batch size and learning rate chosen for ``device_type`` ("cuda", "cpu",
    "mps") where the caller did not set them (``given``: the option names the caller set), and
    note lines saying what changed. A frozen-feature head (``freeze``) trains on cached features
    and keeps its own settings; small data keeps its batch (it needs the steps more than speed)."""
    if (device_type != "cuda" or cfg.freeze or "batch_size" in given or cfg.batch_size >= GPU_BATCH
            or train_size < MIN_STEPS_PER_EPOCH * GPU_BATCH):  # fmt: skip
        return cfg, []
    ratio = GPU_BATCH / cfg.batch_size
    changes: dict = {"batch_size": GPU_BATCH}
    if "lr" not in given:
        changes["lr"] = cfg.lr * min(math.sqrt(ratio), MAX_LR_SCALE)
    note = (f"GPU: batch {GPU_BATCH} instead of {cfg.batch_size}" +
            (f", lr {changes['lr']:.3g} instead of {cfg.lr:.3g} (square-root scaling)" if "lr" in changes else "") +
            " (--batch-size sets it)")  # fmt: skip
    extra = {**cfg.extra, "device_defaults": {k: [getattr(cfg, k), v] for k, v in changes.items()}}
    return dataclasses.replace(cfg, **changes, extra=extra), [note]
