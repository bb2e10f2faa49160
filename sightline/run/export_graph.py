"""What an ONNX export's graph computes (``ExportedClassifier``): ``batched_logits`` of the
prepared uint8 images as one traceable module, and, for a run with a "none of these" detector,
its score from the same pass (``infer.ood``). ``run/export.py`` exports it and checks it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sightline.data.preprocess import Preprocess
from sightline.infer.ood import combined, feature_modules, part_distances, pooled


class ExportedClassifier(nn.Module):
    """uint8 (N, C, H, W) → logits: ``batched_logits`` as one traceable module; with the run's
    "none of these" detector (``infer.ood``), → (logits, ood scores), the scores computed from
    the same pass's features with ``Detector.scores``'s own functions and numbers."""

    def __init__(self, net: nn.Module, preprocess: Preprocess, detector: Any = None) -> None:
        super().__init__()
        self.net = net
        self.preprocess = preprocess
        self.scored = detector is not None
        self.sets: list[int] = []  # Gaussian sets' tensors, kept as buffers ood_{set}_{tensor}
        self.zscored = detector is not None and detector.zstats is not None
        self._features: dict[str, list[torch.Tensor]] = {}
        self._hooks: list[Any] = []
        if detector is not None:
            # What Detector.scores computes with, as buffers: the graph holds them as constants.
            gaussians = detector.gaussians()
            for i, gaussian in enumerate(gaussians):
                for j, tensor in enumerate(gaussian):
                    self.register_buffer(f"ood_{i}_{j}", tensor.clone())
            self.sets = [len(g) for g in gaussians]
            if self.zscored:
                self.register_buffer("ood_zstats", detector.zstats.float())
            for name, module in feature_modules(net, detector.taps):
                self._features[name] = []
                self._hooks.append(module.register_forward_pre_hook(self._keeper(name)))
        # The constants exactly as Preprocess.normalize computes them (same float32 ops), so the
        # graph normalises bit for bit like PyTorch does.
        self.register_buffer("mean", torch.tensor(preprocess.mean).view(1, -1, 1, 1) * 255.0)
        self.register_buffer(
            "inv_std", 1.0 / (torch.tensor(preprocess.std).view(1, -1, 1, 1) * 255.0)
        )

    def forward(self, images: torch.Tensor) -> Any:
        x = (images.float() - self.mean) * self.inv_std
        views = self.preprocess.tta_views(x)
        for kept in self._features.values():
            kept.clear()
        # One pass over the test-time views (mirror images, shifted copies) stacked: the network
        # appears once in the graph (half the export time and graph size of two calls for flips);
        # eval-mode layers treat each image on its own, so the logits are those of separate passes.
        logits = self.net(torch.cat(views) if len(views) > 1 else x).float()
        logits = Preprocess.views_mean(logits, len(views))
        if not self.scored:
            return logits
        # the features the hooks kept in this pass, averaged over the stacked views
        f = [Preprocess.views_mean(kept[-1], len(views)) for kept in self._features.values()]
        gaussians = [[getattr(self, f"ood_{i}_{j}") for j in range(n)]
                     for i, n in enumerate(self.sets)]  # fmt: skip
        parts = part_distances(f, gaussians)
        return logits, combined(parts, self.ood_zstats if self.zscored else None)

    def _keeper(self, name: str) -> Any:
        return lambda m, args: self._features[name].append(pooled(args[0]))

    def release(self) -> None:
        """Take the feature hooks off the network (it is used again after the export)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
