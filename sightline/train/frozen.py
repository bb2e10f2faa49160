"""Transfer learning with a frozen backbone: features once, then a head in seconds.

A pretrained backbone (``efficientnet-lite0`` with ImageNet weights) already turns a photo into
1,280 numbers that separate most everyday classes. When it is frozen, those numbers never
change, so ``FrozenFeatures`` computes them once per image (and once per mirrored image
when flips are allowed: flip augmentation for free) and trains only the head on them — the
Teachable-Machine recipe: 600 photos cost one pass of the backbone (about 30 s on 2 CPU cores at
224 px), and each epoch of the head afterwards takes milliseconds.

It is the ordinary ``Trainer`` with another feed (``FrozenFeatures``: what a batch is, the
forward pass, validation, the inputs; see ``train/feed.py``), so the run folder, metrics, early stopping, events, ``should_stop``
and exact resume are the same as for any run; the saved model is the whole network (backbone
+ head), so predict, evaluate, inspect and the server need nothing special. A resumed run
recomputes the features (the same numbers: inference is deterministic) and goes on.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from sightline.data.preprocess import Preprocess
from sightline.infer.backbone import OnnxBackbone, feature_batch
from sightline.infer.batched import inference_copy
from sightline.train.feature_cache import FeatureCache, cached_features, recipe
from sightline.train.feed import ImageFeed
from sightline.train.optim import freeze_backbone, head_parameters
from sightline.train.trainer_view import TrainerView


def supports_frozen_features(model: nn.Module) -> bool:
    """A model whose ``forward`` is ``head(features(x))`` (e.g. efficientnet-lite0)."""
    return callable(getattr(model, "features", None)) and callable(getattr(model, "head", None))


@torch.inference_mode()
def extract_features(
    model: nn.Module,
    images: torch.Tensor,
    preprocess: Preprocess,
    device: torch.device,
    flip: bool = False,
    channels_last: bool = True,
    on_batch=None,
    note=None,
) -> torch.Tensor:
    """``model.features`` of prepared uint8 ``images`` (N, C, H, W), normalised by
    ``preprocess``, in batches, in eval mode → float32 (N, F) on ``device``. ``flip``: of the
    mirrored images. ``on_batch(done, total)`` after each batch. It runs
    ``inference_copy(model)``: BatchNorms folded into the convolutions where the model can, and
    on a CPU the backbone in ONNX Runtime where that is faster here (``infer/backbone.py``;
    ``note(text)`` hears which). ``model`` itself is left as it was."""
    was_training = model.training
    model.eval()
    try:
        net = inference_copy(model, preprocess, device, len(images), note)
        if isinstance(net, OnnxBackbone):
            return net.image_features(images, flip, on_batch).to(device)
        if channels_last and net is not model:  # a new copy (the model itself is the trainer's)
            net.to(memory_format=torch.channels_last)
        batch = feature_batch(torch.device(device))
        out = []
        for start in range(0, len(images), batch):
            x = preprocess.normalize(images[start : start + batch].to(device))
            if flip:
                x = x.flip(3)
            if channels_last:  # oneDNN's NHWC kernels: +15-44 % on a CPU (benchmarks/features.py)
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(net.features(x).float())
            if on_batch is not None:
                on_batch(min(start + batch, len(images)), len(images))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty((0, 0), device=device)


class FrozenFeatures(ImageFeed):
    """Feeds ``model.head`` the cached ``model.features`` of the images (see the module docstring)."""

    def __init__(self) -> None:
        self._features: dict[str, torch.Tensor] = {}
        self._said: set[str] = set()

    def _note(self, trainer: TrainerView):
        """Says once which engine computes the features (infer/backbone.py)."""

        def note(text: str) -> None:
            if text not in self._said:
                self._said.add(text)
                trainer.emit("on_message", text)

        return note

    def setup(self, model: nn.Module) -> None:
        if not supports_frozen_features(model):
            raise TypeError(
                f"{type(model).__name__} has no features()/head() split: it cannot train on frozen features"
            )
        if not head_parameters(model):
            raise TypeError(f"{type(model).__name__} has no classifier module to train")
        freeze_backbone(model, True)  # the optimizer (made next, by the Trainer) sees the head only

    # ------------------------------------------------------------------ features, once
    def _compute(
        self, trainer: TrainerView, split: str, images: torch.Tensor, flip: bool
    ) -> torch.Tensor:
        key = f"{split}-flip" if flip else split
        if key not in self._features:
            started = time.monotonic()
            last = [0.0]

            def on_batch(done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= 0.25 or done == total:
                    last[0] = now
                    trainer.emit(
                        "on_features",
                        {
                            "split": split,
                            "done": done,
                            "total": total,
                            "images_per_sec": round(done / max(now - started, 1e-9), 1),
                        },
                    )

            pre = trainer.preprocess
            cache = FeatureCache(recipe(trainer.model, pre.mean, pre.std, flip, trainer.device))
            feats, computed = cached_features(
                images, cache,
                lambda todo: extract_features(trainer.model, todo, pre, trainer.device,
                                              flip, on_batch=on_batch, note=self._note(trainer)),
            )  # fmt: skip
            self._features[key] = feats.to(trainer.device)
            took = time.monotonic() - started
            what = f"{len(images):,} {split} images" + (" (mirrored)" if flip else "")
            cached = (
                f"; {len(images) - computed:,} read from the cache"
                if computed < len(images)
                else ""
            )
            trainer.emit(
                "on_message",
                f"Features of {what}: {took:.1f} s ({len(images) / max(took, 1e-9):,.0f} images/s{cached})",
            )
        return self._features[key]

    # ------------------------------------------------------------------ the feed
    def train_inputs(self, trainer: TrainerView) -> torch.Tensor:
        views = [self._compute(trainer, "train", trainer.data.train.images, False)]
        if trainer.augment.flip:
            views.append(self._compute(trainer, "train", trainer.data.train.images, True))
        return torch.stack(views)  # (views, N, F)

    def batch(
        self, trainer: TrainerView, features: torch.Tensor, idx: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        if features.shape[0] == 1:
            return features[0, idx]
        # Each image is seen plain or mirrored at random (or alternately), as the image augmentation would.
        mask = trainer.flip_mask(idx)
        view = (
            mask.long()
            if mask is not None
            else torch.randint(0, features.shape[0], (len(idx),), generator=gen).to(features.device)
        )
        return features[view, idx]

    def forward(self, trainer: TrainerView, x: torch.Tensor) -> torch.Tensor:
        return trainer.model.head(x)

    def val_logits(self, trainer: TrainerView) -> torch.Tensor:
        val = trainer.data.val
        plain = self._compute(trainer, "val", val.images, False)
        model = trainer.model
        model.eval()
        try:
            with torch.inference_mode():
                logits = model.head(plain)
                if trainer.preprocess.flip_tta:  # as batched_logits does for the test set
                    logits = (
                        logits + model.head(self._compute(trainer, "val", val.images, True))
                    ) / 2
        finally:
            model.train()
        return logits.float().cpu()
